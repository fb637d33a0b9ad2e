"""The monitor: what a policy reads of the conditions, periodic, delayed and noisy.

A reading is taken every ``observe.period_s``; reading ``m`` reports the
conditions at ``m * period - delay`` (never before t = 0), each factor times its
own noise draw (CPU and memory capped at 100 %). The simulator and the real
testbed hand policies the same readings for the same scenario and seed. The
conditions read are the traces as written (:func:`seen_conditions`): the real
testbed's monitor reads the trace, not the state its conditions are in, so a
twin whose world follows the traces late keeps reading the traces.
"""

from __future__ import annotations

import numpy as np

from adaptsim.simulator.policies import Conditions
from adaptsim.simulator.scenario import Scenario

__all__ = ["Monitor", "seen_conditions", "true_conditions"]


def true_conditions(scenario: Scenario, t: float) -> Conditions:
    """The traces' values at time ``t``: the world's conditions."""
    sc = scenario
    return Conditions(sc.bandwidth.at(t), sc.edge_cpu.at(t), sc.edge_mem.at(t))


def seen_conditions(scenario: Scenario, t: float) -> Conditions:
    """The conditions at ``t`` as the monitor reads them: the traces as written, which
    a folded-back twin keeps in its belief when its world follows them late (see
    :meth:`~adaptsim.simulator.scenario.Scenario.seen_traces`); else the world's."""
    bw, cpu, mem = scenario.seen_traces()
    return Conditions(bw.at(t), cpu.at(t), mem.at(t))


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
            true = seen_conditions(sc, max(0.0, m * sc.observe_period_s - sc.observe_delay_s))
            f = self.noise[min(m, len(self.noise) - 1)]
            self.reading = Conditions(
                true.bandwidth_mbps * f[0],
                min(true.edge_cpu_pct * f[1], 100.0),
                min(true.edge_mem_pct * f[2], 100.0),
            )
        return self.reading
