"""The uplink: bytes through a time-varying bandwidth, like SimPy's ``Cable`` example.

The link's cumulative capacity ``C(t)`` (bytes it could have carried since t = 0)
is piecewise linear; a transfer that starts sending at ``s`` finishes at
``C^-1(C(s) + bytes)``. That integrates across bandwidth changes rather than
pricing the transfer at the rate at its start, and a zero-rate interval stalls
it (``C`` is flat there). Looping traces repeat their capacity every period.
"""

from __future__ import annotations

import bisect
import math

from adaptsim.simulator.traces import End, Trace
from adaptsim.units import bytes_per_s

__all__ = ["Link"]


class Link:
    """Capacity of a bandwidth trace (Mbit/s); FIFO occupancy is the engine's."""

    def __init__(self, trace: Trace):
        self.trace = trace
        self._t = [*trace.times, trace.duration_s]
        rate = [bytes_per_s(v) for v in trace.values]
        cum = [0.0]
        for j, r in enumerate(rate):
            cum.append(cum[-1] + r * (self._t[j + 1] - self._t[j]))
        self._rate = rate
        self._cum = cum
        self.period_bytes = cum[-1]
        self._loop = trace.end is End.loop
        self._last_rate = rate[-1]

    def capacity(self, t: float) -> float:
        """C(t): bytes the link could carry in [0, t]."""
        base = 0.0
        if t >= self.trace.duration_s:
            if self._loop:
                k = math.floor(t / self.trace.duration_s)
                base = k * self.period_bytes
                t -= k * self.trace.duration_s
            else:
                return self.period_bytes + self._last_rate * (t - self.trace.duration_s)
        j = bisect.bisect_right(self._t, t) - 1
        return base + self._cum[j] + self._rate[j] * (t - self._t[j])

    def time_at(self, c: float) -> float:
        """C^-1(c): the earliest time the link has carried ``c`` bytes (inf if never)."""
        base = 0.0
        if c > self.period_bytes:
            if self._loop:
                if self.period_bytes <= 0:
                    return math.inf
                k = math.floor(c / self.period_bytes)
                if k * self.period_bytes == c:
                    k -= 1
                base = k * self.trace.duration_s
                c -= k * self.period_bytes
            else:
                if self._last_rate <= 0:
                    return math.inf
                return self.trace.duration_s + (c - self.period_bytes) / self._last_rate
        j = bisect.bisect_left(self._cum, c)
        if j < len(self._cum) and self._cum[j] == c:
            return base + self._t[min(j, len(self._t) - 1)]
        j -= 1
        return base + self._t[j] + (c - self._cum[j]) / self._rate[j]

    def finish(self, start_s: float, payload_bytes: float) -> float:
        """When a transfer of ``payload_bytes`` that starts sending at ``start_s`` ends."""
        if payload_bytes <= 0:
            return start_s
        if start_s == math.inf:  # behind a transfer that never ends: never starts
            return math.inf
        return self.time_at(self.capacity(start_s) + payload_bytes)
