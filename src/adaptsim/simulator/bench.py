"""``adaptsim bench``: simulated requests per wall-second, fast engine vs the naive one.

Both engines run the same 3-stage scenario (edge CPU, uplink, cloud with two
servers; bandwidth and edge CPU stress both vary) with the same reactive policy
and seed, in one process, one after the other, ``repeats`` times each; the report
gives the medians and their ratio. The fast engine also runs the scenario with
each adaptive built-in at its defaults (:data:`POLICIES`), interleaved in the same
rounds, per wall-second and per CPU-second of this process. These machines are
shared and noisy: compare only numbers measured side by side in one run (on a
loaded machine, the CPU-second figures).
"""

from __future__ import annotations

import platform
import statistics
import time

import numpy as np

from adaptsim.simulator.engine import run_policy
from adaptsim.simulator.naive import run_policy_naive
from adaptsim.simulator.scenario import PolicySpec, Scenario, scenario_from_dict

__all__ = ["POLICIES", "bench", "bench_scenario", "policy_rate"]

# The adaptive built-ins, at their defaults, as the fast engine's per-policy figures.
POLICIES: dict[str, PolicySpec] = {
    "reactive": PolicySpec(policy="reactive", params={"period_s": 1.0}),
    "mpc": PolicySpec(policy="mpc"),
    "neurosurgeon": PolicySpec(policy="neurosurgeon"),
    "changepoint": PolicySpec(policy="changepoint"),
}


def bench_scenario(duration_s: float = 2000.0, rate_hz: float = 30.0) -> Scenario:
    """LeNet at 30 frames/s; 1 s bandwidth steps of 5-50 Mbit/s; edge CPU 0/50/100 % every 10 s."""
    rng = np.random.default_rng(0)
    bw = [[float(t), round(float(v), 3)] for t, v in enumerate(rng.uniform(5, 50, 600))]
    cpu = [
        [float(t), float(v)]
        for t, v in zip(range(0, 600, 10), rng.choice([0, 50, 100], 60), strict=True)
    ]
    doc = {
        "name": "bench",
        "model": "lenet",
        "duration_s": duration_s,
        "arrivals": {"kind": "poisson", "rate_hz": rate_hz},
        "deadline_s": 0.1,
        "one_way_latency_s": 0.005,
        "cloud": {"servers": 2},
        "traces": {
            "bandwidth_mbps": {"steps": bw, "end": "loop"},
            "edge_cpu_pct": {"steps": cpu, "end": "loop"},
        },
        "repartition": {"pause_s": 0.01},
        "observe": {"period_s": 1.0, "delay_s": 0.2, "noise": 0.1},
        "policies": [{"policy": "reactive", "params": {"period_s": 1.0}}],
    }
    return scenario_from_dict(doc, "bench scenario")


def _rate(fn, scenario, spec) -> tuple[float, int]:
    t0 = time.perf_counter()
    cols, _, _ = fn(scenario, spec, 0)
    wall = time.perf_counter() - t0
    return len(cols["request"]) / wall, len(cols["request"])


def policy_rate(scenario: Scenario, spec: PolicySpec) -> tuple[float, float]:
    """One fast-engine run: (requests per wall-second, requests per CPU-second)."""
    t0, c0 = time.perf_counter(), time.process_time()
    cols, _, _ = run_policy(scenario, spec, 0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = len(cols["request"])
    return n / wall, n / max(cpu, 1e-9)


def bench(
    repeats: int = 3,
    fast_duration_s: float = 2000.0,
    naive_duration_s: float = 300.0,
    progress=None,
) -> dict:
    """Medians of requests/s for both engines, and their ratio; the fast engine's
    medians per adaptive built-in (per wall- and per CPU-second)."""
    fast_sc = bench_scenario(fast_duration_s)
    naive_sc = bench_scenario(naive_duration_s)
    spec = fast_sc.policies[0]
    fast, naive = [], []
    per_policy: dict[str, list[tuple[float, float]]] = {name: [] for name in POLICIES}
    for r in range(repeats):
        fast.append(_rate(run_policy, fast_sc, spec))
        naive.append(_rate(run_policy_naive, naive_sc, spec))
        for name, policy in POLICIES.items():
            per_policy[name].append(policy_rate(fast_sc, policy))
        if progress:
            progress(r + 1, repeats)
    f = statistics.median(x for x, _ in fast)
    n = statistics.median(x for x, _ in naive)
    return {
        "scenario": "lenet, Poisson 30/s, 1 s bandwidth steps 5-50 Mbit/s, edge CPU steps, "
        "2 cloud servers, reactive policy (1 s period)",
        "repeats": repeats,
        "fast_requests": fast[0][1],
        "naive_requests": naive[0][1],
        "fast_requests_per_s": round(f),
        "naive_requests_per_s": round(n),
        "speedup": round(f / n, 2),
        "fast_all": [round(x) for x, _ in fast],
        "naive_all": [round(x) for x, _ in naive],
        "policy_requests_per_s": {
            name: round(statistics.median(w for w, _ in r)) for name, r in per_policy.items()
        },
        "policy_requests_per_cpu_s": {
            name: round(statistics.median(c for _, c in r)) for name, r in per_policy.items()
        },
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
