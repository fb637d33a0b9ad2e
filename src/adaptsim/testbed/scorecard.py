"""The measurement protocol's tables: one run fitted, another scored, before and after.

``scripts/validate_shipped.sh`` runs each shipped scenario for real twice (seed 1,
then seed 2 with ``--fold-back`` of the seed-1 folder: the fold-back is fitted on
seed 1 and its twin re-simulated for seed 2, never fitted on the run it scores)
and prints :func:`scorecard` of the two folders: per policy the errors of mean,
p50 and p95 and the deadline-miss rates on both seeds, seed 2 before and after
the fold-back, whether the targets are met (mean within 10 %, p95 within 15 %),
the rankings and Kendall's tau, the fold-back's factors, and per stage where
seed 2's error sits. Where the runs probed their host's speed
(:mod:`~adaptsim.testbed.host_speed`): each policy run's host speed, seed 2 against
the twin at its probed speed, and after the fold-back as fitted without the probes
beside the one relative to the host's speed. Everything comes from the folders' own files, so the
tables can be printed again at any time: ``python -m adaptsim.testbed.scorecard
SEED1_DIR SEED2_DIR``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

from adaptsim.errors import UserError
from adaptsim.testbed.compare import ranking
from adaptsim.testbed.folder import validation_facts, validation_table
from adaptsim.testbed.report import STAGE_LABELS

__all__ = ["MEAN_TARGET_PCT", "P95_TARGET_PCT", "scorecard"]

MEAN_TARGET_PCT = 10.0  # |simulated - measured| / measured of the mean, at most
P95_TARGET_PCT = 15.0  # the same of the p95


def _pct(v: float) -> str:
    return f"{v:+.1f} %" if math.isfinite(v) else "n/a"


def _ms(v: float) -> str:
    return f"{v * 1e3:.1f}" if math.isfinite(v) else "n/a"


def _met(t: pd.Series) -> str:
    ok = abs(t["mean_error_pct"]) <= MEAN_TARGET_PCT and abs(t["p95_error_pct"]) <= P95_TARGET_PCT
    return "yes" if ok else "no"


def _md(rows: list[list[str]], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _spread(t: pd.Series, key: str) -> str:
    lo, hi = t.get(f"{key}_p10", math.nan), t.get(f"{key}_p90", math.nan)
    if not (isinstance(lo, float) and math.isfinite(lo)):
        return "n/a"
    return f"{_ms(lo)}-{_ms(hi)}"


def _single(t: pd.Series, short: str) -> str:
    v = t.get(f"single_{short}_error_pct", math.nan)
    return _pct(v) if isinstance(v, float) else "n/a"


def _inside(t: pd.Series, short: str) -> str:
    v = t.get(f"{short}_inside")
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else (
        "yes" if bool(v) else "no")  # fmt: skip


def _policy_rows(t: pd.DataFrame) -> list[list[str]]:
    return [
        [
            r["policy"],
            str(int(r["frames"])),
            _ms(r["measured_mean_s"]),
            _ms(r["simulated_mean_s"]),
            _spread(r, "simulated_mean_s"),
            _pct(r["mean_error_pct"]),
            _single(r, "mean"),
            _pct(r["p50_error_pct"]),
            _ms(r["measured_p95_s"]),
            _ms(r["simulated_p95_s"]),
            _spread(r, "simulated_p95_s"),
            _inside(r, "p95"),
            _pct(r["p95_error_pct"]),
            _single(r, "p95"),
            f"{100 * r['measured_miss_rate']:.1f} / {100 * r['simulated_miss_rate']:.1f} %",
            _met(r),
        ]
        for _, r in t.iterrows()
    ]


_POLICY_COLS = ["policy", "frames", "mean measured (ms)", "simulated (median of draws)",
                "draws 10-90 %", "mean error", "one draw", "p50 error", "p95 measured (ms)",
                "simulated (median of draws)", "draws 10-90 %", "measured inside",
                "p95 error", "one draw", "misses measured / simulated", "targets met"]  # fmt: skip


def _read(folder: Path, name: str) -> pd.DataFrame:
    return validation_table(folder, name)


def _optional(folder: Path, name: str) -> pd.DataFrame | None:
    return validation_table(folder, name) if (folder / name).is_file() else None


def _speed(v) -> str:
    return "n/a" if v is None else f"x{float(v):.3f}"


def _ranking_line(t: pd.DataFrame, records: pd.DataFrame) -> str:
    r = ranking(t, records)
    return (f"ranking by mean: measured {' < '.join(r['measured'])}; simulated "
            f"{' < '.join(r['simulated'])}; Kendall's tau {r['kendall_tau']:.2f}; "
            f"{r['discordant_pairs']} pairs ordered oppositely (pairs the twin ties "
            f"not counted), {r['separated_discordant_pairs']} of them told apart by the "
            "real run (paired Wilcoxon, 5 %)")  # fmt: skip


def scorecard(seed1: Path, seed2: Path, resimulate: bool = False, pool: str | None = None) -> str:
    """The protocol's tables (markdown) from the seed-1 folder and the folded seed-2 folder.

    The simulated statistics are the median over the twin's noise draws
    (:mod:`~adaptsim.testbed.twin`), with the draws' 10-90 % spread and draw 0's
    error ("one draw") beside them. Folders written before the draws existed have
    no spread in their CSVs: their twins are simulated again from the saved facts
    (:mod:`~adaptsim.testbed.rescore`), as with ``resimulate`` (the current twin
    and fold-back code against the saved real runs). ``pool`` (``run`` or ``seed``:
    :mod:`~adaptsim.testbed.speed_track`) re-scores them with the probes pooled so;
    default each folder's own ``probe_pool``.
    """
    if pool is not None:
        from adaptsim.testbed.speed_track import check_probe_pool

        check_probe_pool(pool)
        resimulate = True
    seed1, seed2 = Path(seed1), Path(seed2)
    first = _read(seed1, "comparison.csv")
    before = _read(seed2, "comparison.csv")
    after = _read(seed2, "comparison_folded.csv")
    stages = _read(seed2, "stages.csv")
    facts = validation_facts(seed2)
    fb = facts.get("fold_back") or {}
    if Path(fb.get("from", "")).resolve() != seed1.resolve():
        raise UserError(f"{seed2} was not folded back from {seed1} (validate --seed 2 "
                        f"--fold-back {seed1})")  # fmt: skip
    probed = _optional(seed2, "comparison_probed.csv")
    plain = _optional(seed2, "comparison_folded_plain.csv")
    note = None
    if resimulate or not all("simulated_p95_s_p10" in t for t in (first, before, after)):
        from dataclasses import asdict

        from adaptsim.testbed.rescore import rescore_folder

        first, _ = rescore_folder(seed1)
        before, _ = rescore_folder(seed2)
        after, fitted = rescore_folder(seed2, fold_back_from=seed1, pool=pool)
        fb = {"from": str(seed1), **asdict(fitted)}
        from adaptsim.testbed.rescore import rescore_probed

        probed = rescore_probed(seed2, pool=pool)
        plain = None
        if fitted.host_relative:
            plain, _ = rescore_folder(seed2, fold_back_from=seed1, host_speed=False)
        note = (f"(the twins simulated again now from the saved facts, "
                f"{int(first['noise_draws'].iloc[0])} noise draws each, against the saved "
                "real runs; the fold-back fitted again on seed 1"
                + (f"; the host speed's probes: pool {pool}" if pool else "") + ")")  # fmt: skip
    out = [f"## {facts.get('scenario')}: {facts.get('frames_per_run', '?')} frames per policy "
           f"and run, traces x{facts.get('time_scale')} faster, {facts.get('duration_s')} s per "
           f"policy at {facts.get('rate_hz')} frames/s"]  # fmt: skip
    if note:
        out += ["", note]
    real1 = pd.read_parquet(seed1 / "real" / "records.parquet")
    real2 = pd.read_parquet(seed2 / "real" / "records.parquet")
    tables = [("seed 1 (measured vs simulated)", first, real1),
              ("seed 2 before the fold-back", before, real2)]  # fmt: skip
    if probed is not None:
        tables.append(("seed 2, the twin at each policy run's probed host speed (not fitted)",
                       probed, real2))  # fmt: skip
    if plain is not None:
        tables.append(("seed 2 after the fold-back fitted on seed 1, without the probes "
                       "(as before them)", plain, real2))  # fmt: skip
    relative = " relative to the host's speed" if fb.get("host_relative") else ""
    tables.append((f"seed 2 after the fold-back fitted on seed 1{relative}", after, real2))
    for title, t, real in tables:
        out += ["", f"### {title}", "", _md(_policy_rows(t), _POLICY_COLS), "",
                _ranking_line(t, real)]  # fmt: skip
        met = sum(_met(r) == "yes" for _, r in t.iterrows())
        out.append(f"targets (mean within {MEAN_TARGET_PCT:g} %, p95 within "
                   f"{P95_TARGET_PCT:g} %) met by {met} of {len(t)} policies")  # fmt: skip
        if "p95_inside" in t:
            out.append(f"measured mean inside the draws' 10-90 % for "
                       f"{int(t['mean_inside'].sum())} of {len(t)} policies, p95 for "
                       f"{int(t['p95_inside'].sum())} of {len(t)}")  # fmt: skip
    for name, folder in (("seed 1", seed1), ("seed 2", seed2)):
        speeds = validation_facts(folder).get("host_speed") or {}
        if speeds:
            out += ["", f"### {name}: the host's speed per policy run (median probe / "
                    "calibration's at no stress)", "",
                    ", ".join(f"{k} edge {_speed(v.get('edge'))} cloud {_speed(v.get('cloud'))}"
                              + _during(v) for k, v in speeds.items())]  # fmt: skip
    factors = {k: v for k, v in fb.items() if k != "from"}
    out += ["", "### the fold-back fitted on seed 1", "",
            ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in factors.items())]  # fmt: skip
    rows = [[r["policy"], STAGE_LABELS.get(r["stage"], r["stage"]), _ms(r["measured_s"]),
             _ms(r["simulated_s"]), _ms(r["diff_s"]), _pct(r["error_pct"])]
            for _, r in stages.iterrows()]  # fmt: skip
    out += ["", "### seed 2 per stage (before the fold-back; mean of finished frames)", "",
            _md(rows, ["policy", "stage", "measured (ms)", "simulated (ms)",
                       "simulated - measured (ms)", "error"])]  # fmt: skip
    return "\n".join(out) + "\n"


def _during(p: dict) -> str:
    """`` (12 probes during it, 3 skipped; edge over time x0.95-1.20)`` for a run that
    probed during it (``--probe-every``), else nothing."""
    if "skipped" not in p:
        return ""
    steps = [v for _, v in p.get("edge_speed_steps") or []]
    over = f"; edge over time x{min(steps):.3g}-{max(steps):.3g}" if steps else ""
    return (
        f" ({(p.get('at') or []).count('during')} probes during it, {p['skipped']} skipped{over})"
    )


if __name__ == "__main__":  # python -m adaptsim.testbed.scorecard [--resimulate] SEED1 SEED2
    args = sys.argv[1:]
    again = "--resimulate" in args
    args = [a for a in args if a != "--resimulate"]
    pooled = None
    if "--probe-pool" in args:  # --probe-pool run|seed: re-scored with the probes so
        i = args.index("--probe-pool")
        pooled = args[i + 1] if i + 1 < len(args) else ""
        del args[i : i + 2]
    if len(args) != 2:
        sys.exit("usage: python -m adaptsim.testbed.scorecard [--resimulate] "
                 "[--probe-pool run|seed] SEED1_DIR SEED2_DIR")  # fmt: skip
    try:
        sys.stdout.write(scorecard(Path(args[0]), Path(args[1]), resimulate=again, pool=pooled))
    except UserError as exc:
        sys.stderr.write(f"adaptsim: error: {exc}\n")
        sys.exit(2)
