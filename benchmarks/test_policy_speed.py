"""Simulated requests per second of the adaptive built-ins, side by side with reactive.

The scenario is ``adaptsim bench``'s (LeNet, Poisson 30 frames/s, bandwidth and
edge CPU stepping, two cloud servers). Each policy runs with its defaults (all
four decide every second and read their finished uploads for the ``planned``
discount), ``REPEATS`` times interleaved, in one process; the medians are printed.
These machines are shared and noisy: compare only figures from one run.
"""

from __future__ import annotations

import json
import statistics
import time

import pytest

from adaptsim.simulator.bench import bench_scenario
from adaptsim.simulator.engine import run_policy
from adaptsim.simulator.scenario import PolicySpec

REPEATS = 3
POLICIES = {
    "reactive": PolicySpec(policy="reactive", params={"period_s": 1.0}),
    "mpc": PolicySpec(policy="mpc"),
    "neurosurgeon": PolicySpec(policy="neurosurgeon"),
    "changepoint": PolicySpec(policy="changepoint"),
}


def policy_rates(duration_s: float = 2000.0, repeats: int = REPEATS) -> dict[str, float]:
    """Median simulated requests per wall-second per policy."""
    sc = bench_scenario(duration_s)
    rates: dict[str, list[float]] = {name: [] for name in POLICIES}
    for _ in range(repeats):
        for name, spec in POLICIES.items():
            t0 = time.perf_counter()
            cols, _, _ = run_policy(sc, spec, 0)
            rates[name].append(len(cols["request"]) / (time.perf_counter() - t0))
    return {name: round(statistics.median(r)) for name, r in rates.items()}


@pytest.mark.benchmark
def test_mpc_keeps_up_with_reactive(capsys):
    """Issue 17 asks for >= 50,000 requests/s with mpc; on a shared 2-core machine
    only a side-by-side ratio means anything, so that is what is checked here. mpc
    plans its horizon in closed form and decides every second like reactive; both
    read the frames' own uploads, so per frame they cost the same: measured side by
    side, mpc ran at 0.9-1.7x reactive (docs/policies.md); 0.6 leaves room for noise."""
    rates = policy_rates()
    with capsys.disabled():
        print("\n" + json.dumps(rates, indent=1))
    assert rates["mpc"] >= 0.6 * rates["reactive"]
