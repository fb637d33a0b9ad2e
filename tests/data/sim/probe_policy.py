"""Policies for tests whose right answer is known (loaded as file.py:Class by scenarios)."""

from __future__ import annotations


class SwitchAt:
    """Point 2 until ``at_s``, then ``to``: a re-partition at a known time."""

    def __init__(self, at_s: float, to: int, period_s=None):
        self.at_s, self.to, self.period_s = at_s, to, period_s
        self.name = "switch-at"

    def decide(self, view) -> int:
        return self.to if view.now_s >= self.at_s else 2


class ReadingAbove:
    """``high`` while the monitor's bandwidth reading exceeds ``mbps``, else ``low``.

    The point each frame was served at then tells which reading the policy saw.
    """

    def __init__(self, mbps: float, high: int = 1, low: int = 3, period_s=None):
        self.mbps, self.high, self.low, self.period_s = mbps, high, low, period_s
        self.name = "reading-above"

    def decide(self, view) -> int:
        return self.high if view.monitor.bandwidth_mbps > self.mbps else self.low


class Replay:
    """Serve request n at ``points[n]``, except request ``fork_at`` at ``fork_to``.

    Replaying the oracle's own choices up to a request puts the queues exactly where
    the oracle had them; the fork then asks what another point would have given that
    request from the same state. It pays the switch pause, as the oracle does.
    """

    uses_finished = False

    def __init__(self, points: list[int], fork_at: int, fork_to: int, period_s=None):
        self.points, self.fork_at, self.fork_to = points, fork_at, fork_to
        self.period_s = None
        self.name = "replay"
        self._n = 0

    def decide(self, view) -> int:
        n = self._n
        self._n += 1
        return self.fork_to if n == self.fork_at else self.points[min(n, len(self.points) - 1)]


class FinishedWatch:
    """Serve at ``slow`` after a finished frame took longer than ``threshold_s``, else ``fast``.

    It checks what it is handed: every finished frame is back by now, arrives once,
    in the order results came back.
    """

    uses_finished = True

    def __init__(self, fast: int, slow: int, threshold_s: float, period_s=None):
        self.fast, self.slow, self.threshold_s, self.period_s = fast, slow, threshold_s, period_s
        self.name = "finished-watch"
        self.seen: set[float] = set()
        self.last_back = -1.0

    def decide(self, view) -> int:
        point = view.current_point
        for o in view.finished:
            if not (o.time_s <= view.now_s and o.time_s >= self.last_back):
                raise AssertionError(f"observation back at {o.time_s} handed at {view.now_s}")
            if o.time_s in self.seen:
                raise AssertionError(f"observation back at {o.time_s} handed twice")
            self.seen.add(o.time_s)
            self.last_back = o.time_s
            point = self.slow if o.latency_s > self.threshold_s else self.fast
        return point


class BacklogLog:
    """Keeps ``point``; logs (now, uplink_unacked_bytes) at every decision."""

    uses_finished = False

    def __init__(self, point: int, period_s=None):
        self.point, self.period_s = point, period_s
        self.name = "backlog-log"
        self.log: list[tuple[float, float]] = []

    def decide(self, view) -> int:
        self.log.append((view.now_s, view.uplink_unacked_bytes))
        return self.point


class Bare:
    """A user policy declaring no flag at all: the protocol's defaults apply."""

    def decide(self, view) -> int:
        return view.current_point


class BadFlag(Bare):
    """A user policy whose flag has the wrong type."""

    clairvoyant = "yes"
