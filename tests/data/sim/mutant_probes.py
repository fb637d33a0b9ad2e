"""Policies for tests/test_sim_mutants.py (loaded as file.py:Class by the engines)."""

from __future__ import annotations


class FinishedLog:
    """Keeps ``point``; logs (now, arrival of every finished frame it is handed)."""

    uses_finished = True

    def __init__(self, point: int, period_s=None):
        self.point, self.period_s = point, period_s
        self.name = "finished-log"
        self.log: list[tuple[float, list[float]]] = []

    def decide(self, view) -> int:
        self.log.append((view.now_s, [o.time_s - o.latency_s for o in view.finished]))
        return self.point


class PeeksTruth:
    """Serves at point 1 while the true bandwidth exceeds ``mbps``, else 3: it asks
    for the truth, which only a clairvoyant policy may see."""

    def __init__(self, mbps: float, clairvoyant: bool = False, period_s=None):
        self.mbps, self.clairvoyant, self.period_s = mbps, clairvoyant, period_s
        self.name = "peeks-truth"

    def decide(self, view) -> int:
        return 1 if view.truth().bandwidth_mbps > self.mbps else 3
