"""Simulated requests per second of the adaptive built-ins, side by side.

The scenario is ``adaptsim bench``'s (LeNet, Poisson 30 frames/s, bandwidth and
edge CPU stepping, two cloud servers). Each policy runs with its defaults (all
four decide every second and read their finished uploads for the ``planned``
discount), ``REPEATS`` times interleaved, in one process; the medians are printed,
per wall-second and per CPU-second of this process (on a shared, loaded machine
the CPU-second figure is the one that means something).
"""

from __future__ import annotations

import json
import statistics

import pytest

from adaptsim.simulator.bench import POLICIES, bench_scenario, policy_rate

REPEATS = 3


def policy_rates(duration_s: float = 2000.0, repeats: int = REPEATS) -> dict[str, dict]:
    """Median simulated requests per wall-second and per CPU-second, per policy."""
    sc = bench_scenario(duration_s)
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in POLICIES}
    for _ in range(repeats):
        for name, spec in POLICIES.items():
            rates[name].append(policy_rate(sc, spec))
    return {
        name: {
            "wall": round(statistics.median(w for w, _ in r)),
            "cpu": round(statistics.median(c for _, c in r)),
        }
        for name, r in rates.items()
    }


@pytest.mark.benchmark
def test_mpc_reaches_50000_requests_per_cpu_second(capsys):
    """Issue 17 asks for >= 50,000 requests/s with mpc. On a shared 2-core machine
    wall-clock figures depend on the neighbours, so the CPU-second figure is held to
    it (measured: about 70,000 under load, docs/policies.md), and mpc, which plans a
    horizon, to at least 0.8x reactive side by side (measured: about 1x)."""
    rates = policy_rates()
    with capsys.disabled():
        print("\n" + json.dumps(rates, indent=1))
    assert rates["mpc"]["cpu"] >= 50_000
    assert rates["mpc"]["cpu"] >= 0.8 * rates["reactive"]["cpu"]
