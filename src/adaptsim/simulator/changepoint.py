"""``changepoint``: re-partition when the conditions shift, in the manner of Edgent.

Edgent (Li et al., 2018/2019) precomputes the best partition for each network
state and switches when the state changes. Here the state is the regime of each
condition: the log bandwidth (bandwidth moves multiplicatively, so a 2x drop is
the same shift at 4 or at 40 Mbit/s), the edge CPU stress and the edge memory
stress. A two-sided CUSUM per series (:class:`Cusum`) detects a shift of the mean
against the series' own short-term noise, estimated from the median absolute
difference of successive samples, so it needs no tuning to a trace's noise; the
regime's level is the mean of its samples since its last change. The point for a
regime comes from a table precomputed lazily (per bandwidth bin of 2 % and whole
percent of stress): the best point under those conditions among those that keep
up with the frame rate, by mean latency (the calibration's spread included, see
:func:`~adaptsim.simulator.forecast.mean_factors`). For the first few samples of
a regime its point follows the regime's settling mean; then it stays put until
the next change (or until the regime's bandwidth, discounted by its error on the
uploads it planned, moves by more than 10 %), so it pays the switch cost only at
real shifts.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from adaptsim.simulator.forecast import (
    PLANNED_PER_DECISION,
    BandwidthForecast,
    Discount,
    RecentService,
    SampleFeed,
    Source,
    check_params,
    expected,
    mean_factors,
    next_arrival_s,
    transfer_samples,
)
from adaptsim.simulator.params import MAX_SDS, bounded
from adaptsim.simulator.policies import BasePolicy, Conditions, View

__all__ = ["ChangePoint", "Cusum"]

_SIGMA_FROM_DIFFS = 1.4826 / math.sqrt(2.0)  # median |x_t - x_t-1| -> sd of x, if Gaussian
_BW_BIN = math.log(1.02)
_SETTLE = 5  # samples after a change during which the regime's point is refined


class Cusum:
    """Two-sided CUSUM for a shift in the mean of a noisy series.

    Args:
        threshold: alarm when a side's sum exceeds this many noise sds (h).
        drift: slack per sample in noise sds (k): shifts smaller than about
            twice this are ignored.
        min_sigma: floor of the noise sd (a constant series has none).
        window: successive differences kept for the noise estimate.
        warmup: samples that set a new regime's level before it is tested.
    """

    def __init__(
        self,
        threshold: float = 5.0,
        drift: float = 1.0,
        min_sigma: float = 0.05,
        window: int = 60,
        warmup: int = 3,
    ):
        if threshold <= 0 or drift < 0 or min_sigma <= 0:
            raise ValueError("threshold and min_sigma must be > 0, drift >= 0")
        self.h, self.k, self.min_sigma, self.warmup = threshold, drift, min_sigma, warmup
        self.diffs: deque[float] = deque(maxlen=window)
        self.level: float | None = None
        self.changes = 0
        self._n = 0
        self._prev: float | None = None
        self._hi = self._lo = 0.0

    @property
    def samples_in_regime(self) -> int:
        """Samples the current level is the mean of."""
        return self._n

    @property
    def sigma(self) -> float:
        if len(self.diffs) < 3:
            return self.min_sigma
        return max(float(np.median(self.diffs)) * _SIGMA_FROM_DIFFS, self.min_sigma)

    def add(self, x: float) -> bool:
        """Take one sample; ``True`` when it signals a change (a new regime begins).

        A regime's first ``warmup`` samples only set its level (their mean); the
        CUSUM then runs against that level, which keeps following the regime's mean.
        """
        if self._prev is not None:
            self.diffs.append(abs(x - self._prev))
        self._prev = x
        if self.level is None or self._n < self.warmup:
            self._n += 1
            self.level = x if self.level is None else self.level + (x - self.level) / self._n
            return False
        z = (x - self.level) / self.sigma
        self._hi = max(0.0, self._hi + z - self.k)
        self._lo = max(0.0, self._lo - z - self.k)
        if self._hi > self.h or self._lo > self.h:
            self.level, self._n = x, 1  # the new regime begins with this sample
            self._hi = self._lo = 0.0
            self.changes += 1
            return True
        self._n += 1
        self.level += (x - self.level) / self._n
        return False


@dataclass
class ChangePoint(BasePolicy):
    """Switch to the regime's precomputed point when a change is detected.

    Args:
        threshold: CUSUM alarm level in noise sds.
        drift: CUSUM slack per sample in noise sds.
        source: bandwidth from the ``monitor`` (default) or the frames' own ``transfers``;
            stress always from the monitor.
        discount: ``planned`` (default): the regime's bandwidth divided by its mean
            error on the uploads planned with it (as mpc's, see
            :class:`~adaptsim.simulator.forecast.BandwidthForecast`), the point
            looked up again when that moves by more than 10 %; ``none``.
        period_s: look every this many seconds (default 1, between frames, so a
            switch's pause can fall in idle time); ``None`` or 0: at every frame.
        service_feedback: look the regime's point up with this frame's expected
            service times, from its own finished frames
            (:class:`~adaptsim.simulator.forecast.RecentService`), not from the table
            (default true: a no-op without persistence in the calibration).
    """

    threshold: float = 5.0
    drift: float = 1.0
    source: Source = Source.monitor
    discount: Discount = Discount.planned
    period_s: float | None = 1.0
    service_feedback: bool = True
    name: str = "changepoint"
    uses_finished: bool = False
    _feed: SampleFeed = field(init=False, repr=False)
    _detectors: tuple[Cusum, Cusum, Cusum] = field(init=False, repr=False)
    _seen: Conditions | None = field(default=None, init=False, repr=False)
    _table: dict = field(default_factory=dict, init=False, repr=False)
    _factors: np.ndarray | None = field(default=None, init=False, repr=False)
    _point: int | None = field(default=None, init=False, repr=False)
    _plan: BandwidthForecast = field(init=False, repr=False)
    _planned_bw: float | None = field(default=None, init=False, repr=False)
    _recent: RecentService | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        check_params(self)
        self.threshold = bounded(
            self.threshold, "threshold", 0, MAX_SDS, lo_open=True, what="noise sds"
        )
        self.drift = bounded(self.drift, "drift", 0, MAX_SDS, what="noise sds")
        self._feed = SampleFeed(self.source)
        self._detectors = (
            Cusum(self.threshold, self.drift, min_sigma=0.05),  # log bandwidth
            Cusum(self.threshold, self.drift, min_sigma=2.0),  # edge CPU %
            Cusum(self.threshold, self.drift, min_sigma=2.0),  # edge memory %
        )
        if self.discount not in (Discount.none, Discount.planned):
            raise ValueError("changepoint's discount is none or planned")
        self._plan = BandwidthForecast(k=1, discount=self.discount)
        self._recent = RecentService() if self.service_feedback else None
        self.uses_finished = (
            self.source is Source.transfers
            or self.discount is Discount.planned
            or self._recent is not None
        )

    @property
    def changes(self) -> int:
        """Changes detected so far, over the three series."""
        return sum(d.changes for d in self._detectors)

    def decide(self, view: View) -> int:
        bw, cpu, mem = self._detectors
        if self._recent is not None:
            self._recent.observe(view)
        moved = False
        for x in self._feed.new(view):
            moved |= bw.add(math.log(max(x, 1e-3)))
        m = view.monitor
        if m is not None and m is not self._seen:
            self._seen = m
            moved |= cpu.add(m.edge_cpu_pct)
            moved |= mem.add(m.edge_mem_pct)
        if bw.level is None:
            return view.current_point
        level_bw = math.exp(bw.level)
        if level_bw != self._plan.harmonic_mean():
            self._plan.add(level_bw)
        if self.discount is Discount.planned:
            self._plan.planned_rates(transfer_samples(view, PLANNED_PER_DECISION))
            self._plan.stamp(view.now_s)
        planned = self._plan.forecast()
        drifted = self._planned_bw is None or abs(math.log(planned / self._planned_bw)) > 0.1
        live = self._recent is not None and bool(self._recent.last)
        if moved or drifted or live or self._point is None or bw.samples_in_regime <= _SETTLE:
            self._planned_bw = planned
            self._point = self._lookup(view, math.log(planned), cpu.level or 0.0, mem.level or 0.0)
        return self._point

    def _lookup(self, view: View, log_bw: float, cpu: float, mem: float) -> int:
        key = (round(log_bw / _BW_BIN), round(cpu), round(mem))
        live = self._recent is not None and bool(self._recent.last)
        point = None if live else self._table.get(key)
        if point is None:
            cond = Conditions(math.exp(key[0] * _BW_BIN), float(key[1]), float(key[2]))
            if self._factors is None:
                self._factors = mean_factors(view)
            factors = self._factors
            if live:  # this frame's expected service, not the regime's: not tabled
                gap_s = 1.0 / view.arrival_rate_hz if view.arrival_rate_hz > 0 else 0.0
                factors = self._recent.factors(view, factors, next_arrival_s(view, gap_s))
            est = expected(view, cond, factors)
            total = est.total_s
            ok = view.stable(cond, est)
            total = np.where(ok, total, np.inf) if ok.any() else total
            point = int(view.ordinals[int(np.argmin(total))])
            if not live:
                self._table[key] = point
        return point
