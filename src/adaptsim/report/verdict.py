"""The verdict a reader came for: does adapting pay here, by how much, how sure?

The numbers are :func:`adaptsim.scoring.score_policies`' (per-seed metrics,
paired across seeds, 95 % intervals), not a copy of them. The *best practical
policy* is the non-clairvoyant one (not static-best, which knows the conditions
at t = 0, nor the oracle, which knows them all the time) with the lowest mean
latency over seeds, among those whose frames all finished (a policy that leaves
frames unfinished has censored latency statistics, so it cannot win on them);
if none finished every frame, among all.

Warnings say plainly what would make the numbers mislead: frames that never
finished, frames that arrived a deadline or more before the run's end and still
finished after it (a backlog), frames dropped by admission control, a
backlog that grew until the end of the run (saturation, see
:mod:`adaptsim.simulator.saturation`), policies that failed or ran fewer seeds, an
interrupted run, a single seed (no intervals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from adaptsim.report.tables import Cell, Table, fmt_interval, fmt_number, fmt_pct
from adaptsim.scoring import (
    METRICS,
    ORACLE,
    ORACLE_FREE,
    ORACLE_RACE,
    STATIC_BEST,
    score_policies,
)
from adaptsim.simulator.results import run_saturation
from adaptsim.simulator.saturation import Saturation

__all__ = ["CLAIRVOYANT", "Verdict", "run_warnings", "verdict"]

CLAIRVOYANT = (STATIC_BEST, ORACLE)
_NOT_PRACTICAL = (*CLAIRVOYANT, ORACLE_FREE, ORACLE_RACE)  # never named the best practical
_LABELS = {
    "mean_s": "mean latency (s)",
    "p95_s": "p95 latency (s)",
    "deadline_miss_rate": "deadline misses (%)",
}


@dataclass
class Verdict:
    """The sentence, the table behind it and the scores it came from."""

    best: str | None
    sentence: str
    table: Table | None
    scores: pd.DataFrame
    n_seeds: int
    warnings: list[str] = field(default_factory=list)


def _dropped(records: pd.DataFrame) -> np.ndarray:
    """Frames dropped by admission control (a record without the column: none)."""
    if "dropped" not in records:
        return np.zeros(len(records), dtype=bool)
    return records["dropped"].astype(object).fillna(False).astype(bool).to_numpy()


def _unfinished(records: pd.DataFrame) -> pd.Series:
    """Frames that never came back and were not dropped (a queue or transfer that never ended)."""
    lat = records["latency_s"].to_numpy(dtype=float)
    return pd.Series(~np.isfinite(lat) & ~_dropped(records), index=records.index)


def run_warnings(records: pd.DataFrame, meta: dict) -> list[str]:
    """Plain-language warnings about the run (see the module docstring for the list)."""
    out: list[str] = []
    if meta.get("interrupted"):
        out.append("The run was interrupted: only the runs that finished are in this report.")
    if meta.get("hedge"):
        out.append(
            f"The practical policies raced each frame on a second path (hedge, path "
            f"{meta['hedge'].get('path')}): the oracle chooses one point per frame and pays the "
            "switch pause, which a race's second path does not, so it is no bound for them (the "
            "gap closed may pass 100 %); oracle-free is the fairer yardstick "
            "(summary.csv: gap_closed_vs_oracle_free_mean_s beside gap_closed_vs_oracle_mean_s)."
        )
    for e in meta.get("errors") or []:
        out.append(f"A policy failed: {e}")
    duration_s = float(meta.get("duration_s", np.inf))
    deadline_s = float(meta.get("deadline_s", np.inf))
    seeds_run = records.groupby("policy", sort=False)["seed"].nunique()
    if len(seeds_run) and seeds_run.min() < seeds_run.max():
        short = ", ".join(f"{p} ({n})" for p, n in seeds_run.items() if n < seeds_run.max())
        out.append(
            f"Some policies ran fewer seeds than others: {short} of {seeds_run.max()}; "
            "the paired comparisons use only the seeds every policy ran."
        )
    unfinished = _unfinished(records)
    done = records["done_s"].to_numpy(dtype=float)
    # A frame that arrives just before the end may well finish after it; one that
    # arrived a deadline or more before the end and still finished late is a backlog.
    arrival = records["arrival_s"].to_numpy(dtype=float)
    late = np.isfinite(done) & (done > duration_s) & (arrival < duration_s - deadline_s)
    records = records.assign(_unf=unfinished.to_numpy(), _late=late, _drop=_dropped(records))
    saturated = run_saturation(records, duration_s) if np.isfinite(duration_s) else {}
    for p, r in records.groupby("policy", sort=False):
        n = len(r)
        u = int(r["_unf"].sum())
        if u:
            out.append(
                f"{p}: {u} of {n} frames ({100 * u / n:.1f} %) never finished (latency ∞ or "
                "missing); they count as deadline misses, and its latency statistics cover "
                "the finished frames only (censored)."
            )
        k = int(r["_late"].sum())
        if k:
            out.append(
                f"{p}: {k} of {n} frames arrived at least a deadline before the run's end "
                f"({duration_s:g} s) and finished after it: a backlog was still being served "
                "(the summary's throughput leaves them out)."
            )
        if d := int(r["_drop"].sum()):
            stages = r.loc[r["_drop"], "drop_stage"].value_counts() if "drop_stage" in r else {}
            where = ", ".join(f"{k} {v}" for k, v in stages.items() if k)
            out.append(
                f"{p}: {d} of {n} frames ({100 * d / n:.1f} %) were dropped by admission "
                f"control{f' (at the {where})' if where else ''}; they count as deadline "
                "misses, and its latency statistics cover the delivered frames only."
            )
        sat = [v for (q, _), v in saturated.items() if q == p]
        if sat:
            first = min(sat, key=lambda x: x.at_s)
            worst = max(x.final_wait_s for x in sat)
            line = Saturation(first.at_s, worst).sentence(str(p))
            seeds = r["seed"].nunique()
            out.append(line + (f" ({len(sat)} of {seeds} seeds)" if seeds > 1 else ""))
    if records["seed"].nunique() < 2:
        out.append("One seed only: no intervals; run more seeds (`--seed`) for a verdict.")
    return out


def _pick_best(records: pd.DataFrame, scores: pd.DataFrame) -> str | None:
    practical = [p for p in scores["policy"].unique() if p not in _NOT_PRACTICAL]
    if not practical:
        return None
    unf = _unfinished(records).groupby(records["policy"]).sum()
    whole = [p for p in practical if unf.get(p, 0) == 0] or practical
    m = scores[scores["metric"] == "mean_s"].set_index("policy")
    p95 = scores[scores["metric"] == "p95_s"].set_index("policy")
    return min(whole, key=lambda p: (m.loc[p, "value"], p95.loc[p, "value"]))


def _value_cell(v: float, metric: str, key: str) -> Cell:
    if metric == "deadline_miss_rate":
        return Cell(fmt_pct(100 * v), 100 * v, key)
    return Cell(fmt_number(v), v, key)


def _diff_cells(row: pd.Series, col: str, metric: str, key: str) -> tuple[Cell, Cell]:
    """Change in % of the baseline (misses: in percentage points, since 0 % has no %)."""
    if metric == "deadline_miss_rate":
        est, lo, hi = (100 * row[f"{col}{s}"] for s in ("", "_lo", "_hi"))
        text = f"{est:+.1f} pp" if math.isfinite(est) else "n/a"
        return Cell(text, est, key), Cell(fmt_interval(lo, hi, unit="pp"), None, f"{key}:ci")
    est, lo, hi = (row[f"{col}_pct{s}"] for s in ("", "_lo", "_hi"))
    return (
        Cell(fmt_pct(est, signed=True), est, key),
        Cell(fmt_interval(lo, hi), None, f"{key}:ci"),
    )


def _rel(pct: float) -> str:
    """``4.1 % below`` / ``2.0 % above`` / ``equal to``, for a change in percent."""
    if round(pct, 1) == 0:
        return "equal to"
    return f"{abs(pct):.1f} % {'below' if pct < 0 else 'above'}"


def _is_fixed(policy: str) -> bool:
    """Built-in policies that never re-partition (a user's may; they count as adaptive)."""
    return policy in ("all-edge", "all-cloud") or policy.startswith("static")


def _sentence(best: str, s: pd.DataFrame, n_seeds: int) -> str:
    row = s.loc[(best, "mean_s")]
    d, lo, hi = (row[f"vs_static_best_pct{k}"] for k in ("", "_lo", "_hi"))
    orc = s.loc[(ORACLE, "mean_s")]["vs_static_best_pct"]
    gap = row["gap_closed"]
    span = f"95 % interval over {n_seeds} seeds"
    if not math.isfinite(d):
        return f"No verdict: the mean latency of {best} or static-best is undefined."
    mean = f"{best}'s mean latency is {_rel(d)} static-best's"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        head = f"{mean} (one seed, so no interval: run more seeds before trusting it)"
    elif lo == hi == 0:
        head = (
            f"No practical policy beats static-best here: the best, {best}, matches it "
            "exactly on every seed"
        )
    elif hi < 0:
        lead = "A fixed split beats static-best here" if _is_fixed(best) else "Adapting pays here"
        head = f"{lead}: {mean} ({span}: {-hi:.1f} to {-lo:.1f} % below)"
    elif lo > 0:
        head = (
            f"No practical policy beats static-best here: {mean} "
            f"({span}: {lo:.1f} to {hi:.1f} % above)"
        )
    else:
        head = (
            f"No clear winner: {mean}, but the {span} ({_rel(lo)} to {_rel(hi)}) includes no change"
        )
    if not math.isfinite(orc) or round(orc, 1) >= 0:
        return head + "; the oracle does no better than static-best, so there is nothing to gain."
    tail = f"; the oracle's is {_rel(orc)} static-best's"
    if math.isfinite(gap):
        tail = (
            f"; it closes {100 * gap:.0f} % of the gap to the oracle, whose mean is "
            f"{_rel(orc)} static-best's"
        )
    return head + tail + "."


def verdict(records: pd.DataFrame, meta: dict, seed: int = 0) -> Verdict:
    """Score the run's policies and say, in one sentence and a small table, what they show.

    Args:
        records: the run's per-frame records (all policies, all seeds).
        meta: the run's facts (run.json): duration, deadline, errors, interrupted.
        seed: seeds the bootstrap of the gap-closed interval (same records, same page).
    """
    scores = score_policies(records, seed=seed)
    n_seeds = int(records["seed"].nunique())
    warn = run_warnings(records, meta)
    have = set(scores["policy"])
    best = _pick_best(records, scores)
    missing = [p for p in CLAIRVOYANT if p not in have]
    if missing or best is None:
        if missing:
            need, add = " and ".join(missing), "them" if len(missing) > 1 else "it"
        else:
            need, add = "practical (non-clairvoyant) policy", "one"
        sentence = (
            f"No verdict: the run has no {need} to compare against "
            f"(it ran {', '.join(sorted(have))}); add {add} to the scenario's policies."
        )
        return Verdict(best, sentence, None, scores, n_seeds, warn)
    s = scores.set_index(["policy", "metric"])
    t = Table(
        [
            "metric",
            f"{best}",
            "static-best",
            "oracle",
            f"{best} vs static-best",
            "95 % interval",
            f"{best} vs oracle",
            "95 % interval",
        ],
        caption=(
            f"Means over {n_seeds} seed(s) of each seed's value; differences paired by seed, "
            "in % of the baseline (deadline misses: in percentage points, pp)."
        ),
        table_id="verdict-table",
    )
    for metric in METRICS:
        b = s.loc[(best, metric)]
        vs_sb = _diff_cells(b, "vs_static_best", metric, f"{metric}:vs_static_best")
        vs_o = _diff_cells(b, "regret_vs_oracle", metric, f"{metric}:vs_oracle")
        t.add(
            Cell(_LABELS[metric]),
            _value_cell(b["value"], metric, f"{metric}:best"),
            _value_cell(s.loc[(STATIC_BEST, metric)]["value"], metric, f"{metric}:static-best"),
            _value_cell(s.loc[(ORACLE, metric)]["value"], metric, f"{metric}:oracle"),
            *vs_sb,
            *vs_o,
        )
    return Verdict(best, _sentence(best, s, n_seeds), t, scores, n_seeds, warn)
