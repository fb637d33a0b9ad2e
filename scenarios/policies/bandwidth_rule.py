"""An example user policy for adaptsim: a hand-written bandwidth rule.

Plug it into a scenario as ``policy: policies/bandwidth_rule.py:BandwidthRule``
(a class, built with the scenario's ``params``) or ``...:cheapest_now`` (a plain
function ``decide(view) -> point ordinal``). A policy sees only ``view``: the
time, the current point, the monitor's latest (delayed, noisy) reading, the
requests finished since its last decision, and the calibration's predictions.
"""

from __future__ import annotations


class BandwidthRule:
    """Pick one of two points by a bandwidth threshold on the monitor's reading."""

    def __init__(
        self, low_point: int, high_point: int, threshold_mbps: float, period_s: float = 1.0
    ):
        self.low_point, self.high_point = low_point, high_point
        self.threshold_mbps = threshold_mbps
        self.period_s = period_s
        self.name = "bandwidth-rule"

    def decide(self, view) -> int:
        if view.monitor is None:
            return view.current_point
        if view.monitor.bandwidth_mbps < self.threshold_mbps:
            return self.low_point
        return self.high_point


def cheapest_now(view) -> int:
    """The best point for the monitor's latest reading, taken at face value."""
    if view.monitor is None:
        return view.current_point
    return view.best_point(view.monitor)
