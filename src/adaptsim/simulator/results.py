"""Running a whole scenario (every policy x seed) and summarising the records.

Records are collected as lists during the run, turned into one DataFrame at the
end, and written as Parquet; the summary has one row per policy (all seeds
pooled): mean, p50, p95, p99 latency, deadline-miss rate, throughput, bytes sent,
re-partitions and time spent switching.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.atomic import write_atomic
from adaptsim.simulator.engine import Tables, run_policy
from adaptsim.simulator.scenario import Scenario

__all__ = ["Results", "run_scenario", "summarise", "write_results"]


@dataclass
class Results:
    scenario: Scenario
    records: pd.DataFrame
    summary: pd.DataFrame
    runs: pd.DataFrame  # one row per (policy, seed): repartitions, switching
    wall_s: float
    interrupted: bool = False


def run_scenario(
    scenario: Scenario,
    progress: Callable[[str, int, int], None] | None = None,
) -> Results:
    """Simulate every policy with every seed (common random numbers across policies).

    Ctrl-C stops between runs and returns what finished, flagged ``interrupted``.
    """
    t0 = time.perf_counter()
    tables = Tables(scenario)
    frames, runs = [], []
    total = len(scenario.policies) * len(scenario.seeds)
    done = 0
    interrupted = False
    try:
        for spec in scenario.policies:
            for seed in scenario.seeds:
                cols, stats, name = run_policy(scenario, spec, seed, tables)
                f = pd.DataFrame(cols)
                f.insert(0, "seed", seed)
                f.insert(0, "policy", name)
                frames.append(f)
                runs.append(
                    {
                        "policy": name,
                        "seed": seed,
                        "repartitions": stats.repartitions,
                        "switching_s": stats.switching_s,
                    }
                )
                done += 1
                if progress:
                    progress(name, done, total)
    except KeyboardInterrupt:
        interrupted = True
    records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not records.empty:
        t = records["arrival_s"].to_numpy()
        records["bandwidth_mbps"] = scenario.bandwidth.at_many(t)
        records["edge_cpu_pct"] = scenario.edge_cpu.at_many(t)
        records["edge_mem_pct"] = scenario.edge_mem.at_many(t)
        records["deadline_met"] = records["latency_s"] <= scenario.deadline_s
    runs_frame = pd.DataFrame(runs)
    return Results(
        scenario,
        records,
        summarise(records, runs_frame, scenario),
        runs_frame,
        time.perf_counter() - t0,
        interrupted,
    )


def summarise(records: pd.DataFrame, runs: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """One row per policy, seeds pooled (re-partitions and switching summed over seeds)."""
    if records.empty:
        return pd.DataFrame()
    rows = []
    n_seeds = max(records["seed"].nunique(), 1)
    for policy, r in records.groupby("policy", sort=False):
        lat = r["latency_s"].to_numpy()
        finite = lat[np.isfinite(lat)]
        completed = np.isfinite(r["done_s"]) & (r["done_s"] <= scenario.duration_s)
        rr = runs[runs["policy"] == policy]
        rows.append(
            {
                "policy": policy,
                "requests": len(r),
                "mean_s": float(np.mean(finite)) if len(finite) else np.nan,
                "p50_s": float(np.percentile(finite, 50)) if len(finite) else np.nan,
                "p95_s": float(np.percentile(finite, 95)) if len(finite) else np.nan,
                "p99_s": float(np.percentile(finite, 99)) if len(finite) else np.nan,
                "deadline_miss_rate": float(1.0 - r["deadline_met"].mean()),
                "throughput_rps": float(completed.sum() / (scenario.duration_s * n_seeds)),
                "bytes_sent": float(r["payload_bytes"].sum()),
                "repartitions": int(rr["repartitions"].sum()),
                "switching_s": float(rr["switching_s"].sum()),
            }
        )
    return pd.DataFrame(rows)


def write_results(results: Results, out_dir: str | Path) -> list[Path]:
    """records.parquet, summary.csv and run.json (scenario facts) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sc = results.scenario
    meta = {
        "scenario": sc.name,
        "description": sc.description,
        "source": sc.source,
        "model": sc.model.model,
        "calibration": sc.calibration_name,
        "duration_s": sc.duration_s,
        "deadline_s": sc.deadline_s,
        "seeds": list(sc.seeds),
        "bandwidth_trace": sc.bandwidth.label,
        "edge_cpu_trace": sc.edge_cpu.label,
        "edge_mem_trace": sc.edge_mem.label,
        "pause_s": sc.pause_s,
        "wall_s": round(results.wall_s, 3),
        "interrupted": results.interrupted,
        "points": {
            str(int(o)): n for o, n in zip(sc.model.ordinals, sc.model.layer_names, strict=True)
        },
        "traces": {
            name: [[t, trace.at(t)] for t in trace.breakpoints(sc.duration_s)]
            for name, trace in (
                ("bandwidth_mbps", sc.bandwidth),
                ("edge_cpu_pct", sc.edge_cpu),
                ("edge_mem_pct", sc.edge_mem),
            )
        },
    }
    paths = [out / "records.parquet", out / "summary.csv", out / "run.json"]
    write_atomic(paths[0], lambda p: results.records.to_parquet(p, index=False))
    write_atomic(paths[1], lambda p: results.summary.to_csv(p, index=False))
    write_atomic(paths[2], lambda p: p.write_text(json.dumps(meta, indent=1)))
    return paths
