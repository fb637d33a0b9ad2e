"""Re-score seed 2 of a `scripts/validate_shipped.sh` run with the current fold-back and twin.

The fold-back is fitted on the seed-1 folder and the seed-2 twin re-simulated with
it, beside seed 2's saved real run: no new real run, the folders only read. The
twin is simulated with its noise draws (adaptsim.testbed.twin): the errors are
against the median over draws, the draws' 10-90 % spread and the single draw's
(draw 0) errors beside them. Used when the twin's model changes after the real
runs were made (docs/validation.md). `python -m adaptsim.testbed.scorecard
--resimulate SEED1 SEED2` prints every table so.

Where the folders probed their host's speed (adaptsim.testbed.host_speed) the fold-back
is fitted relative to seed 1's host speed and applied at each seed-2 policy run's own,
and a second table gives it fitted without the probes (as before them).

Usage: .venv/bin/python scripts/rescore_foldback.py [--probe-pool run|seed] VALIDATION_OUT
[SCENARIO ...] (VALIDATION_OUT holds SCENARIO-seed1 and SCENARIO-seed2; default scenarios:
vehicle_trace busy_edge; --probe-pool: each policy run's host speed from its own probes
or all the seed's pooled, default the folders' own, adaptsim.testbed.speed_track.)
Prints a Markdown table per scenario.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

from adaptsim.errors import UserError, script_main
from adaptsim.testbed.compare import ranking
from adaptsim.testbed.rescore import rescore_folder
from adaptsim.testbed.scorecard import MEAN_TARGET_PCT, P95_TARGET_PCT


def _ms(v: float) -> str:
    return f"{v * 1e3:.1f}"


def rescore(out: Path, name: str, pool: str | None = None) -> str:
    s1, s2 = out / f"{name}-seed1", out / f"{name}-seed2"
    t, fb = rescore_folder(s2, fold_back_from=s1, pool=pool)
    text = _table(name, t, fb)
    if fb.host_relative:  # the same without the probes, beside it
        plain, fb_plain = rescore_folder(s2, fold_back_from=s1, host_speed=False)
        text += _table(f"{name} (without the probes)", plain, fb_plain)
    return text


def _table(name: str, t, fb) -> str:
    met = (t["mean_error_pct"].abs() <= MEAN_TARGET_PCT) & (
        t["p95_error_pct"].abs() <= P95_TARGET_PCT
    )
    lines = [
        f"## {name}: seed 2 after the fold-back fitted on seed 1 (current code, "
        f"{int(t['noise_draws'].iloc[0])} noise draws)",
        "",
        f"fold-back: {asdict(fb)}",
        "",
        "| policy | mean error | one draw | p95 measured (ms) | median of draws | draws 10-90 % "
        "| p95 error | one draw | targets met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (_, r), ok in zip(t.iterrows(), met, strict=True):
        lines.append(
            f"| {r['policy']} | {r['mean_error_pct']:+.1f} % | {r['single_mean_error_pct']:+.1f} % "
            f"| {_ms(r['measured_p95_s'])} | {_ms(r['simulated_p95_s'])} "
            f"| {_ms(r['simulated_p95_s_p10'])}-{_ms(r['simulated_p95_s_p90'])} "
            f"| {r['p95_error_pct']:+.1f} % | {r['single_p95_error_pct']:+.1f} % "
            f"| {'yes' if ok else 'no'} |"
        )
    rk = ranking(t)
    lines += [
        "",
        f"targets met by {int(met.sum())} of {len(t)} policies; Kendall's tau "
        f"{rk['kendall_tau']:.2f}; {rk['discordant_pairs']} pairs ordered oppositely "
        "(pairs the twin ties not counted); measured p95 inside the draws' 10-90 % for "
        f"{int(t['p95_inside'].sum())} of {len(t)}",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    from adaptsim.testbed.speed_track import check_probe_pool

    args, pool = list(argv), None
    if "--probe-pool" in args:
        i = args.index("--probe-pool")
        pool = args[i + 1] if i + 1 < len(args) else ""
        del args[i : i + 2]
        check_probe_pool(pool)
    if not args:
        raise UserError(
            "usage: rescore_foldback.py [--probe-pool run|seed|ends] VALIDATION_OUT [SCENARIO ...]"
        )
    folder = Path(args[0])
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder; give the OUT of scripts/validate_shipped.sh")
    for scenario in args[1:] or ["vehicle_trace", "busy_edge"]:
        print(rescore(folder, scenario, pool))


if __name__ == "__main__":
    script_main("rescore_foldback", lambda: main(sys.argv[1:]))
