"""``reactive``: an EWMA of the monitor's readings, a switching threshold and hysteresis.

The simplest adaptive policy a user would write, kept as the baseline of the
adaptive ones. Its bandwidth is the EWMA of the monitor's readings, divided (by
default, ``discount: planned``) by that estimate's own mean error on the uploads
it planned, as mpc's and changepoint's (see
:class:`~adaptsim.simulator.forecast.BandwidthForecast`): a monitor that reads a
link one second late, on a link whose steps fall on the frames, overstates what
the frame's transfer will get, and the policy's own uploads say by how much
(without it reactive lost 5.2 % to static-best on the FCC trace).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adaptsim.simulator.forecast import (
    PLANNED_PER_DECISION,
    BandwidthForecast,
    Discount,
    transfer_samples,
)
from adaptsim.simulator.params import MAX_COUNT, bounded, choice, number, whole
from adaptsim.simulator.policies import BasePolicy, Conditions, View

__all__ = ["Reactive"]


@dataclass
class Reactive(BasePolicy):
    """EWMA of the monitor's readings; switch when the predicted gain beats a threshold.

    Candidates are the points that keep up with the arrival rate at the estimated
    conditions (see :meth:`View.stable`), when there are any.

    Args:
        alpha: EWMA weight of a new reading (1 = trust the latest reading only).
        threshold: relative predicted gain needed to consider switching.
        hysteresis: how many decisions in a row must agree before switching.
        discount: ``planned`` (default: the EWMA bandwidth divided by its mean error
            on the uploads planned with it) or ``none`` (the EWMA as it is).
        period_s: decision period (``None`` or 0: every request).
    """

    alpha: float = 0.5
    threshold: float = 0.1
    hysteresis: int = 2
    discount: Discount = Discount.planned
    period_s: float | None = 1.0
    name: str = "reactive"
    uses_finished: bool = True
    _estimate: tuple[float, float, float] | None = field(default=None, init=False, repr=False)
    _seen: Conditions | None = field(default=None, init=False, repr=False)
    _streak: int = field(default=0, init=False, repr=False)
    _candidate: int | None = field(default=None, init=False, repr=False)
    _plan: BandwidthForecast = field(init=False, repr=False)

    def __post_init__(self):
        self.alpha = bounded(self.alpha, "alpha", 0, 1, lo_open=True, what="EWMA weight")
        # a gain is a share of the current latency, below 1: a threshold of 1 never switches
        self.threshold = bounded(
            self.threshold, "threshold", 0, 1, hi_open=True, what="relative gain"
        )
        self.hysteresis = whole(self.hysteresis, "hysteresis", 1, MAX_COUNT, "decisions in a row")
        self.discount = choice(self.discount, Discount, "discount")
        if self.discount not in (Discount.none, Discount.planned):
            raise ValueError("reactive's discount is none or planned")
        self.uses_finished = self.discount is Discount.planned
        self._plan = BandwidthForecast(k=1, discount=self.discount)
        if self.period_s is not None:
            self.period_s = number(self.period_s, "period_s")
            if self.period_s < 0:
                raise ValueError(f"period_s must be >= 0, not {self.period_s:g}")
        if not self.period_s:
            self.period_s = None

    def _bandwidth_mbps(self, view: View) -> float:
        """The EWMA bandwidth, discounted by its error on the planned uploads."""
        bw = self._estimate[0]
        if self.discount is Discount.none:
            return bw
        if bw != self._plan.harmonic_mean():
            self._plan.add(bw)
        self._plan.planned_rates(transfer_samples(view, PLANNED_PER_DECISION))
        self._plan.stamp(view.now_s)
        return self._plan.forecast()

    def decide(self, view: View) -> int:
        m = view.monitor
        if m is not None and m is not self._seen:
            x = (m.bandwidth_mbps, m.edge_cpu_pct, m.edge_mem_pct)
            if self._estimate is None:
                self._estimate = tuple(float(v) for v in x)
            else:  # plain floats: three numbers, where numpy's per-call cost would dominate
                a = self.alpha
                self._estimate = tuple(
                    a * v + (1 - a) * e for v, e in zip(x, self._estimate, strict=True)
                )
            self._seen = m
        if self._estimate is None:
            return view.current_point
        _, cpu, mem = self._estimate
        est = Conditions(self._bandwidth_mbps(view), cpu, mem)
        estimate = view.predict(est)
        pred = estimate.total_s
        ords = view.ordinals
        stable = view.stable(est, estimate)
        best = (
            int(np.argmin(np.where(stable, pred, np.inf))) if stable.any() else int(np.argmin(pred))
        )
        cur = int(np.flatnonzero(ords == view.current_point)[0])
        if best != cur and pred[cur] - pred[best] > self.threshold * pred[cur]:
            self._streak = self._streak + 1 if self._candidate == best else 1
            self._candidate = best
        else:
            self._streak, self._candidate = 0, None
        if self._streak >= self.hysteresis:
            self._streak, self._candidate = 0, None
            return int(ords[best])
        return view.current_point
