"""The policy table with i.i.d. and with persistent service noise, feedback off and on, one run.

Every shipped scenario (its own policy list replaced, as benchmarks/policy_scores.py
does) runs twice on the same seeds: with its calibration's spread as shipped
(i.i.d. per frame) and with the same spread made persistent in time
(``persistence_s`` / ``persistence_share`` per part, given here, measured by
benchmarks/noise_persistence.py; the marginal is unchanged, see
:mod:`adaptsim.simulator.draws`). Each run holds the baselines, the four adaptive
built-ins (neurosurgeon, mpc and changepoint with their default ``service_feedback:
true``), and those three with ``service_feedback: false`` (labelled ``(no
feedback)``). Printed: per scenario and policy mean latency, the difference to
static-best and the gap closed with its paired bootstrap interval; per
policy the six trace scenarios' mean gap closed with a 95 % interval (seeds
resampled together across the six, 2,000 draws) and the worst difference to
static-best over all scenarios. Without persistence the variants without feedback
must equal the defaults frame for frame (checked, or the script stops).

Run: ``.venv/bin/python benchmarks/persistence_scores.py [--seeds 5] [--edge TAU[:SHARE]]
[--comm TAU[:SHARE]] [--cloud TAU[:SHARE]] [SCENARIO.yaml ...]``
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.scoring import per_seed_metrics
from adaptsim.simulator import load_scenario, run_scenario
from adaptsim.simulator.scenario import PolicySpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from near_repeat_spread import TRACE_SCENARIOS
from policy_scores import ADAPTIVE, BOUNDS, markdown, policy_table, shipped_scenarios

__all__ = ["FEEDBACK", "overall_row", "persistent", "run_variant", "six_trace_mean"]

FEEDBACK = ("neurosurgeon", "mpc", "changepoint")
_BOOT = 2000


def persistent(sc, per_part: dict[str, tuple[float, float]]):
    """``sc`` with each part's spread given ``persistence_s`` and ``persistence_share``."""
    spread = {p: dict(q) for p, q in sc.model.spread.items()}
    for part, (tau_s, share) in per_part.items():
        spread[part] = {**spread[part], "persistence_s": tau_s, "persistence_share": share}
    return dataclasses.replace(sc, model=dataclasses.replace(sc.model, spread=spread))


def _specs() -> tuple[PolicySpec, ...]:
    specs = [PolicySpec(policy=p) for p in (*BOUNDS, *ADAPTIVE)]
    specs += [
        PolicySpec(policy=p, params={"service_feedback": False}, label=f"{p} (no feedback)")
        for p in FEEDBACK
    ]
    return tuple(specs)


def run_variant(path: Path, seeds: tuple[int, ...], per_part: dict | None) -> pd.DataFrame:
    """Records of every policy of :func:`_specs` on one scenario, i.i.d. (``per_part``
    None) or persistent."""
    sc = load_scenario(path)
    sc = dataclasses.replace(sc, policies=_specs(), seeds=seeds)
    if per_part:
        sc = persistent(sc, per_part)
    rec = run_scenario(sc).records
    return rec.assign(scenario=sc.name)


def six_trace_mean(per_seed: dict[str, pd.DataFrame], policy: str, rng) -> tuple[float, ...]:
    """Mean over the scenarios of the gap closed (seed means), and its bootstrap 95 %
    interval with the same resampled seeds in every scenario (common random numbers)."""
    walls = []
    for ps in per_seed.values():
        w = ps.pivot(index="seed", columns="policy", values="mean_s")
        walls.append(w[["static-best", "oracle", policy]].to_numpy())
    n = walls[0].shape[0]

    def mean_gap(idx):
        gaps = []
        for w in walls:
            sb, o, p = (w[idx, j].mean(axis=-1) for j in range(3))
            gaps.append((sb - p) / (sb - o))
        return np.mean(gaps, axis=0)

    est = float(mean_gap(np.arange(n)))
    boot = mean_gap(rng.integers(0, n, (_BOOT, n)))
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])
    return est, float(lo), float(hi)


def overall_row(policy: str, gap: tuple[float, float, float], mine: pd.DataFrame) -> dict:
    """One policy's line of the overall table: the six traces' mean gap closed with its
    interval (``gap``: :func:`six_trace_mean`), and its worst scenario against
    static-best among its rows ``mine`` of the per-scenario table."""
    worst = mine.loc[mine["vs_static_best_pct"].idxmax()]
    return {
        "policy": policy,
        "six_trace_gap_closed": gap[0],
        "ci_lo": gap[1],
        "ci_hi": gap[2],
        "worst_vs_static_best_pct": worst["vs_static_best_pct"],
        "worst_on": worst["scenario"],
    }


def _part(text: str) -> tuple[float, float]:
    tau, _, share = text.partition(":")
    return float(tau), float(share or 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", type=Path)
    ap.add_argument("--seeds", type=int, default=5)
    for part in ("edge", "comm", "cloud"):
        ap.add_argument(f"--{part}", type=_part, default=None, help="TAU_S[:SHARE]")
    args = ap.parse_args()
    per_part = {p: getattr(args, p) for p in ("edge", "comm", "cloud") if getattr(args, p)}
    seeds = tuple(range(1, args.seeds + 1))
    paths = args.scenarios or shipped_scenarios()
    rng = np.random.default_rng(0)
    tables, per_seed = {}, {"iid": {}, "persistent": {}}
    t0 = time.perf_counter()
    for path in paths:
        for variant, pp in (("iid", None), ("persistent", per_part)):
            rec = run_variant(path, seeds, pp)
            if variant == "iid":  # feedback without persistence must change nothing
                for p in FEEDBACK:
                    a = rec[rec["policy"] == p]["latency_s"].to_numpy()
                    b = rec[rec["policy"] == f"{p} (no feedback)"]["latency_s"].to_numpy()
                    if not np.array_equal(a, b):
                        sys.exit(f"{path.stem}: feedback changed {p} without persistence")
            tables[(path.stem, variant)] = policy_table(rec).assign(
                scenario=path.stem, noise=variant
            )
            per_seed[variant][path.stem] = per_seed_metrics(rec)
            print(f"[{time.perf_counter() - t0:.0f} s] {path.stem} {variant}", file=sys.stderr)
    full = pd.concat(tables.values(), ignore_index=True)
    cols = ["scenario", "noise", "policy", "mean_s", "p95_s", "vs_static_best_pct", "gap_closed",
            "gap_lo", "gap_hi"]  # fmt: skip
    print(f"persistence per part (tau_s, share): {per_part}; seeds {seeds}\n")
    print(markdown(full[cols]))
    rows = []
    adaptive = [*ADAPTIVE, *(f"{p} (no feedback)" for p in FEEDBACK)]
    traces = [s for s in TRACE_SCENARIOS if s in per_seed["iid"]]
    for variant in ("iid", "persistent"):
        for policy in adaptive:
            est, lo, hi = (
                six_trace_mean({s: per_seed[variant][s] for s in traces}, policy, rng)
                if traces
                else (np.nan,) * 3
            )
            mine = full[(full["noise"] == variant) & (full["policy"] == policy)]
            rows.append({"noise": variant, **overall_row(policy, (est, lo, hi), mine)})
    print(f"\n## Six trace scenarios ({', '.join(traces)}) and the worst vs static-best\n")
    print(markdown(pd.DataFrame(rows)))
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
