"""Saturation: does a run's queue grow without bound until its end?

With ``admission: drop: never`` a stage that serves frames more slowly than they
arrive queues them forever: every frame waits longer than the one before, and
the latency statistics describe the length of the run more than the policy.
:func:`saturation` says so, from the records alone and the same way for every
scenario (no per-scenario threshold):

- the *backlog at the end* is large: the frames arriving in the last tenth of
  the run waited (all queues together) more than ``MIN_BACKLOG_GAPS`` mean
  arrival gaps, i.e. that many frames were ahead of them on average;
- and it was still *growing*: over the second half of the run the wait's
  least-squares line rose by more than ``MIN_GROWTH_GAPS`` arrival gaps, with a
  slope of at least ``MIN_SLOPE`` (seconds of wait per second of arrival: a stage
  offered 2 % more than it serves), not just a burst that was draining;
- frames at the end that never got through (infinite waits: a link dead for
  good) are *unfinished*, warned about as such, not called saturation.

It saturated *at* the arrival of the last frame that found the queues (nearly)
empty, waiting less than one arrival gap: from then on the backlog never
cleared. A bounded, stable queue, however busy, does not trip it; with
``drop: stale`` or a queue limit the waits stay bounded and it does not either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_BACKLOG_GAPS", "MIN_GROWTH_GAPS", "MIN_SLOPE", "Saturation", "saturation"]

MIN_BACKLOG_GAPS = 20.0
MIN_GROWTH_GAPS = 10.0
MIN_SLOPE = 0.02


@dataclass(frozen=True)
class Saturation:
    """A run whose backlog grew until its end: from when, and the wait it had reached."""

    at_s: float  # arrival of the last frame that found the queues (nearly) empty
    final_wait_s: float  # the mean wait of the frames of the run's last tenth

    def sentence(self, policy: str) -> str:
        """``all-cloud saturated at t=412 s: its backlog grew until the end (final wait ...)``."""
        w = self.final_wait_s
        wait = f"{w:.2f} s" if w < 10 else f"{w:,.0f} s"
        return (
            f"{policy} saturated at t={self.at_s:,.0f} s: its backlog grew until the end "
            f"(final wait {wait}); its latency statistics grow with the run's length. "
            "Set admission (drop: stale or a queue_limit) to see what a real system would do."
        )


def saturation(arrival_s, wait_s, duration_s: float) -> Saturation | None:
    """The run's saturation, or ``None`` when its queues stayed bounded.

    Args:
        arrival_s: each frame's arrival, in arrival order.
        wait_s: each frame's total queueing wait (edge + uplink + cloud; inf when it
            never got through; dropped frames left out by the caller).
        duration_s: the run's length (frames arrive in [0, duration_s)).
    """
    a = np.asarray(arrival_s, dtype=float)
    w = np.asarray(wait_s, dtype=float)
    n = len(a)
    if n < 8 or duration_s <= 0:
        return None
    gap = duration_s / n
    tail = a >= 0.9 * duration_s
    if not tail.any():
        return None
    if not np.isfinite(w[tail]).all():  # unfinished, not saturated (see above)
        return None
    final = float(np.mean(w[tail]))
    if final <= MIN_BACKLOG_GAPS * gap:
        return None
    window = (a >= 0.5 * duration_s) & np.isfinite(w)
    x, y = a[window], w[window]
    if len(x) < 4 or np.ptp(x) <= 0:
        return None
    slope = float(np.polyfit(x, y, 1)[0])
    rise = slope * float(np.ptp(x))
    if slope < MIN_SLOPE or rise < MIN_GROWTH_GAPS * gap:
        return None
    empty = np.flatnonzero(w <= gap)
    at = float(a[empty[-1]]) if len(empty) else 0.0
    return Saturation(at, final)
