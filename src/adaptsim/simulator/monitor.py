"""The monitor: what a policy reads of the conditions, periodic, delayed and noisy.

A reading is taken every ``observe.period_s``; reading ``m`` reports the true
conditions at ``m * period - delay`` (never before t = 0), each factor times its
own noise draw (CPU and memory capped at 100 %). The simulator and the real
testbed hand policies the same readings for the same scenario and seed.
"""

from __future__ import annotations

import numpy as np

from adaptsim.simulator.policies import Conditions
from adaptsim.simulator.scenario import Scenario

__all__ = ["Monitor", "true_conditions"]


def true_conditions(scenario: Scenario, t: float) -> Conditions:
    """The traces' values at time ``t``."""
    sc = scenario
    return Conditions(sc.bandwidth.at(t), sc.edge_cpu.at(t), sc.edge_mem.at(t))


class Monitor:
    """Periodic, delayed, noisy readings of the true conditions."""

    def __init__(self, scenario: Scenario, noise: np.ndarray):
        self.sc = scenario
        self.noise = noise
        self.index = -1
        self.reading: Conditions | None = None

    def read(self, now: float) -> Conditions:
        """The latest reading at time ``now`` (a new one once per period)."""
        sc = self.sc
        m = int(now / sc.observe_period_s + 1e-9)
        if m != self.index:
            self.index = m
            true = true_conditions(sc, max(0.0, m * sc.observe_period_s - sc.observe_delay_s))
            f = self.noise[min(m, len(self.noise) - 1)]
            self.reading = Conditions(
                true.bandwidth_mbps * f[0],
                min(true.edge_cpu_pct * f[1], 100.0),
                min(true.edge_mem_pct * f[2], 100.0),
            )
        return self.reading
