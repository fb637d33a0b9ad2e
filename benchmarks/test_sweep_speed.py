"""Sweep speed: 1 vs 2 Dask workers, and the sweep's overhead over a plain loop.

The shipped example sweep (sweeps/shipped_traces.yaml: the six shipped traces, the
eight calibrated models, its eight policy variants) with the base's pause only and
ADAPTSIM_BENCH_SEEDS seeds (default 11: 4,224 runs; 3 give 1,152) of 600 simulated
seconds each (the shipped scenario's length). Three ways, side by side in one session, each
repeated, medians reported:

- ``direct``: the simulator called in a loop in this process (each cell's
  scenario built once, ``run_policy`` per run): the floor.
- ``sweep_1w`` / ``sweep_2w``: ``run_sweep`` on an already started LocalCluster
  of one / two worker processes, into a fresh folder (Parquet written, summary
  rows returned); the cluster's start-up is measured apart.

Wall time on a shared machine moves with the other load, and a 1-worker sweep
has more processes (driver + worker) to collect CPU time than the loop, so the
overhead is also measured in CPU seconds: the loop's thread against this process
(driver, schedulers) plus the sweep's workers (``client.run(time.process_time)``);
that moves much less with the other load. Excluded from the default run
(``-m benchmark``); the ratios, measured side by side, are what to read.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import pytest

from adaptsim.simulator import run_policy, scenario_from_dict
from adaptsim.simulator.engine import Tables
from adaptsim.simulator.scenario import PolicySpec
from adaptsim.sweep import load_plan, open_client, run_sweep
from adaptsim.sweep.plan import make_plan
from adaptsim.sweep.spec import read_sweep

SWEEP = Path(__file__).resolve().parent.parent / "sweeps" / "shipped_traces.yaml"
SEEDS = int(os.environ.get("ADAPTSIM_BENCH_SEEDS", "11"))  # fewer: a quick look only
REPEATS = int(os.environ.get("ADAPTSIM_BENCH_REPEATS", "3"))


def _plan():
    spec, base_doc, base_dir = read_sweep(SWEEP)
    spec = spec.model_copy(update={"fields": {}, "seeds": SEEDS})
    return make_plan(spec, base_doc, base_dir, str(SWEEP), SWEEP.parent)


def _cpu_s(client=None) -> float:
    """CPU seconds of this process (driver, and the local schedulers) plus, with a
    client, of that cluster's workers (not of the other, idle cluster)."""
    total = time.process_time()
    if client is not None:
        total += sum(client.run(time.process_time).values())
    return total


def _direct(plan, cal_cache: dict) -> float:
    t0 = time.perf_counter()
    cells: dict = {}
    for r in plan.runs:
        if r.cell not in cells:
            doc = json.loads(plan.cells[r.cell].doc_json)
            doc["policies"] = [{"policy": "static-best"}]
            sc = scenario_from_dict(doc, "bench", Path("/"), cal_cache)
            cells[r.cell] = (sc, Tables(sc))
        sc, tables = cells[r.cell]
        run_policy(sc, PolicySpec.model_validate(plan.variants[r.variant].spec()), r.seed, tables)
    return time.perf_counter() - t0


def _sweep(plan, client) -> float:
    with tempfile.TemporaryDirectory(prefix=f"adaptsim-bench-{id(plan)}-") as tmp:
        outcome = run_sweep(plan, Path(tmp), client=client)
        assert outcome.done == len(plan.runs) and outcome.failed == 0
        return outcome.wall_s


@pytest.mark.benchmark
def test_sweep_scales_and_costs_little_over_a_loop(capsys):
    plan = _plan()
    assert len(plan.runs) >= 1000 or "ADAPTSIM_BENCH_SEEDS" in os.environ
    warm = load_plan(Path(__file__).resolve().parent.parent / "tests/data/sweep/small.yaml")
    clients, start_s = {}, {}
    for n in (1, 2):
        t0 = time.perf_counter()
        clients[n] = open_client(workers=n)
        start_s[n] = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:  # workers import adaptsim once
            run_sweep(warm, Path(tmp), client=clients[n])
    times: dict[str, list[float]] = {"direct": [], "sweep_1w": [], "sweep_2w": []}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    cal_cache: dict = {}
    ways = {
        "direct": lambda: _direct(plan, cal_cache),
        "sweep_1w": lambda: _sweep(plan, clients[1]),
        "sweep_2w": lambda: _sweep(plan, clients[2]),
    }
    try:
        for _ in range(REPEATS):
            for name, way in ways.items():
                # the loop: this thread's CPU; a sweep: this process (driver and both
                # local schedulers, so the idle one counts against the sweep) and the
                # workers of the cluster that ran it
                n = {"sweep_1w": 1, "sweep_2w": 2}.get(name)
                clock = (lambda n=n: _cpu_s(clients[n])) if n else time.thread_time
                c0 = clock()
                times[name].append(way())
                cpu[name].append(clock() - c0)
    finally:
        for c in clients.values():
            cluster = c.cluster
            c.close()
            cluster.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    result = {
        "runs": len(plan.runs),
        "simulated_s_per_run": json.loads(plan.cells[0].doc_json)["duration_s"],
        "repeats": REPEATS,
        "times_s": times,
        "median_s": med,
        "cpu_s": cpu,
        "median_cpu_s": med_cpu,
        "cpu_overhead_per_run_pct": 100.0
        * (med_cpu["sweep_1w"] - med_cpu["direct"])
        / med_cpu["direct"],
        "cluster_start_s": start_s,
        "speedup_2w_over_1w": med["sweep_1w"] / med["sweep_2w"],
        "wall_overhead_per_run_pct": 100.0 * (med["sweep_1w"] - med["direct"]) / med["direct"],
        "overhead_per_run_ms": 1000.0 * (med["sweep_1w"] - med["direct"]) / len(plan.runs),
    }
    with capsys.disabled():
        print("\n" + json.dumps(result, indent=1))
    assert result["speedup_2w_over_1w"] >= 1.8
    assert result["cpu_overhead_per_run_pct"] <= 10.0
