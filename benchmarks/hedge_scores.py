"""Hedged execution as built (the scenario key ``hedge``): the shipped policies scored.

Each scenario as shipped (its policies and seeds, ``oracle-free`` and ``oracle-race``
added) is run twice through ``run_scenario`` (what ``adaptsim run`` calls): without a
hedge and with ``hedge: {path: PATH, gate: GATE}``. Printed: per scenario and practical
policy, the mean and p95 latency, the difference to static-best, the gap closed in mean
latency against the paying oracle, ``oracle-free`` and the (hedged) ``oracle-race``
(the summary's columns), the
share of frames raced and the losers' cost per frame (edge CPU ms, uplink kB, and
in % of the same policy's without the hedge); then the mean over the six trace
scenarios with a paired bootstrap 95 % interval (seeds resampled together).

Run: ``.venv/bin/python benchmarks/hedge_scores.py [--path either] [--no-gate]
[--rate-x X] [SCENARIO.yaml ...]`` (default: the six trace scenarios, vehicle_trace
and busy_edge). Tables of the 1 Dec run in benchmarks/spread_tables/hedge_scores.md,
the reading in docs/policies.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.scoring import ORACLE, ORACLE_FREE, ORACLE_RACE, per_seed_metrics
from adaptsim.simulator import load_scenario, run_scenario
from adaptsim.simulator.hedge import HEDGE_PATHS, Hedge
from adaptsim.simulator.scenario import PolicySpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from near_repeat_spread import TRACE_SCENARIOS
from persistence_scores import six_trace_mean
from policy_scores import ROOT, markdown

DEFAULT_SCENARIOS = (*TRACE_SCENARIOS, "vehicle_trace", "busy_edge")
BOUNDS = ("static-best", ORACLE, ORACLE_FREE, ORACLE_RACE)


def _with_free(sc):
    """The scenario with ``oracle-free`` and ``oracle-race`` among its policies (the
    racer's yardsticks)."""
    names = {p.policy for p in sc.policies}
    extra = tuple(PolicySpec(policy=o) for o in (ORACLE_FREE, ORACLE_RACE) if o not in names)
    return dataclasses.replace(sc, policies=(*sc.policies, *extra))


def _as_oracle(per_seed: pd.DataFrame, name: str) -> pd.DataFrame:
    """Per-seed metrics with ``name`` (``oracle-free``, ``oracle-race``) in the oracle's place."""
    ps = per_seed[per_seed["policy"] != ORACLE]
    return ps.replace({"policy": {name: ORACLE}})


def _rows(name: str, plain, hedged) -> list[dict]:
    s0 = plain.summary.set_index("policy")
    s1 = hedged.summary.set_index("policy")
    sb = s0.loc["static-best", "mean_s"]
    r0 = plain.records.groupby("policy")
    rows = []
    for policy in s1.index:
        if policy in BOUNDS:
            continue
        edge0 = r0.get_group(policy)["edge_s"].sum() / s0.loc[policy, "requests"]
        bytes0 = r0.get_group(policy)["payload_bytes"].sum() / s0.loc[policy, "requests"]
        for label, s in ((policy, s0), (f"{policy} + hedge", s1)):
            row = s.loc[policy]
            out = {
                "scenario": name,
                "policy": label,
                "mean_s": row["mean_s"],
                "p95_s": row["p95_s"],
                "vs_static_best_pct": 100 * (row["mean_s"] / sb - 1),
            }
            if s is s1:
                out |= {
                    "gap_vs_oracle": row["gap_closed_vs_oracle_mean_s"],
                    "gap_vs_oracle_free": row["gap_closed_vs_oracle_free_mean_s"],
                    "gap_vs_oracle_race": row["gap_closed_vs_oracle_race_mean_s"],
                    "raced_pct": 100 * row["raced_share"],
                    "extra_edge_ms": 1e3 * row["extra_edge_s_per_frame"],
                    "extra_edge_pct": 100 * row["extra_edge_s_per_frame"] / edge0,
                    "extra_uplink_kB": row["extra_uplink_bytes_per_frame"] / 1e3,
                    "extra_uplink_pct": 100 * row["extra_uplink_bytes_per_frame"] / bytes0,
                }
            rows.append(out)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", type=Path)
    ap.add_argument("--path", default="either", choices=HEDGE_PATHS)
    ap.add_argument("--no-gate", action="store_true")
    ap.add_argument("--rate-x", type=float, default=1.0, help="frame rate times this")
    args = ap.parse_args()
    hedge = Hedge(args.path, gate=not args.no_gate)
    paths = args.scenarios or [ROOT / "scenarios" / f"{s}.yaml" for s in DEFAULT_SCENARIOS]
    t0 = time.perf_counter()
    rows, per_seed = [], {}
    for path in paths:
        sc = _with_free(load_scenario(path))
        sc = dataclasses.replace(sc, rate_hz=sc.rate_hz * args.rate_x)
        plain = run_scenario(sc)
        hedged = run_scenario(dataclasses.replace(sc, hedge=hedge))
        if plain.errors or hedged.errors:
            sys.exit(f"{path.stem}: {plain.errors or hedged.errors}")
        rows += _rows(sc.name, plain, hedged)
        racers = hedged.records[~hedged.records["policy"].isin(BOUNDS)]
        race = hedged.records[hedged.records["policy"] == ORACLE_RACE]  # the hedged one
        plain_records = plain.records[plain.records["policy"] != ORACLE_RACE]
        both = [plain_records, race, racers.assign(policy=racers["policy"] + " + hedge")]
        per_seed[sc.name] = per_seed_metrics(pd.concat(both, ignore_index=True))
        print(f"[{time.perf_counter() - t0:.0f} s] {sc.name}", file=sys.stderr)
    table = pd.DataFrame(rows)
    print(f"hedge: {hedge.describe()}, frame rate x{args.rate_x:g}\n")
    print(markdown(table))
    traces = [s for s in TRACE_SCENARIOS if s in per_seed]
    if traces:
        rng = np.random.default_rng(0)
        out = []
        policies = table.loc[table["scenario"].isin(traces), "policy"].unique()
        for policy in policies:
            mine = table[(table["policy"] == policy) & table["scenario"].isin(traces)]
            if len(mine) < len(traces):
                continue
            gap = six_trace_mean({s: per_seed[s] for s in traces}, policy, rng)
            free = six_trace_mean(
                {s: _as_oracle(per_seed[s], ORACLE_FREE) for s in traces}, policy, rng
            )
            race = six_trace_mean(
                {s: _as_oracle(per_seed[s], ORACLE_RACE) for s in traces}, policy, rng
            )
            out.append({
                "policy": policy, "vs_oracle": gap[0], "lo": gap[1], "hi": gap[2],
                "vs_oracle_free": free[0], "free_lo": free[1], "free_hi": free[2],
                "vs_oracle_race": race[0], "race_lo": race[1], "race_hi": race[2],
                "mean_vs_static_best_pct": mine["vs_static_best_pct"].mean(),
                "worst_vs_static_best_pct": mine["vs_static_best_pct"].max(),
                "mean_p95_s": mine["p95_s"].mean(),
                "extra_edge_pct": mine.get("extra_edge_pct", pd.Series(np.nan)).mean(),
                "extra_uplink_pct": mine.get("extra_uplink_pct", pd.Series(np.nan)).mean(),
            })  # fmt: skip
        print(f"\n## The trace scenarios ({', '.join(traces)})\n")
        print(markdown(pd.DataFrame(out)))
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
