"""``risk``: the split with the least *expected* latency under the link's own surprises.

The other forecasting built-ins plan with one bandwidth (the latest reading, a
harmonic mean), divided by a learned discount. A point forecast hides what makes
a split risky: a cloud-heavy split sends megabytes, and if the link collapses
while they are on the wire the frame (and every frame queued behind it) waits;
an edge-heavy split sends little and barely notices. A scalar discount learned
from the policy's own uploads also stops learning once it has moved to a split
that sends nothing informative (all-edge sends only the result): on the FCC trace
one bad upload kept mpc and neurosurgeon on the edge for the rest of the run
(which there was the right bet; docs/policies.md).

This policy learns, online and only from what it has observed itself (the
monitor's readings, which keep coming whatever the split), the empirical
distribution of the bandwidth's multiplicative change over ``L`` readings,
``bw(t + L) / bw(t)``, for every lag ``L`` up to ``max_lag``. For each point it
takes the lag that matches that point's lead time (from the latest reading's
moment to the middle of that point's transfer: the wait for the next frame, the
edge's backlog, the head's compute, half the transfer; plus one reading for the
monitor's own delay), and scores the point by its latency *averaged over*
``quantiles`` evenly spaced quantiles of that distribution, each through the
queues of the next ``horizon`` frames as :func:`~adaptsim.simulator.forecast.queue_done_s`
predicts them (the edge's backlog, the send backlog at that quantile's
bandwidth, the switch pause paid once by a point other than the current one).
The expectation of a latency that is convex in 1/bandwidth and compounds through
the queues makes volatile links favour edge-heavy splits by themselves, and a
steady link (every ratio 1) gives exactly the point forecast's choice. Nothing
is tuned to a trace: the distribution is the link's own recent history.

Not a built-in: it did not meet the bar set for one (docs/policies.md, "risk":
on the held-out traces it closes less of the gap than mpc and neurosurgeon, and
on the FCC trace it is 1.4 % behind static-best). A scenario names it as
``policy: adaptsim.simulator.risk:RiskAware``.

Edge stress is the monitor's latest reading (as for the other built-ins); service
times are mean times (the calibration's spread included, see
:func:`~adaptsim.simulator.forecast.mean_factors`).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from adaptsim.simulator.forecast import (
    SampleFeed,
    Source,
    check_period,
    condition,
    expected,
    mean_factors,
    next_arrival_s,
    queue_done_s,
)
from adaptsim.simulator.params import (
    MAX_FRAME_PLANS,
    MAX_HORIZON_FRAMES,
    MAX_LAG_READINGS,
    MAX_QUANTILES,
    MAX_SAMPLES,
    choice,
    flag,
    whole,
)
from adaptsim.simulator.policies import BasePolicy, Conditions, Estimate, View
from adaptsim.units import seconds_per_byte

__all__ = ["RiskAware", "base_level", "lag_quantiles"]

# Readings needed before the history is trusted; until then the latest reading stands.
_MIN_HISTORY = 8
_MIN_SAMPLES = 8  # changes needed at a lag before a narrower set of them stands
_FLOOR_MBPS = 1e-3  # a zero reading (an outage) as a tiny positive rate, for the logs


def lag_quantiles(
    log_bw: np.ndarray,
    max_lag: int,
    quantiles: int,
    anchors: np.ndarray | None = None,
    k: int = 1,
) -> np.ndarray:
    """Quantiles of the log change over each lag: row ``L - 1`` holds those of
    ``log_bw[t + L] - base[t]``, at probabilities ``(i + 0.5) / quantiles``, where
    ``base[t]`` is the mean of the ``k`` readings up to ``t`` (fewer at the start):
    the change of a reading from the level the policy plans from (:func:`base_level`).

    The starts ``t``: every reading of the history, or the ``anchors`` only (the
    readings in force when frames arrived: changes at the frames' own phase, which
    matters when the link steps in time with the frames) where at least
    ``_MIN_SAMPLES`` of them reach that far. A lag the history is too short for takes
    the longest one it has (no history at all: no change).

    Args:
        log_bw: log bandwidth readings, oldest first.
        max_lag: the longest lag (readings).
        quantiles: how many evenly spaced quantiles.
        anchors: indices into ``log_bw`` the changes start from (None: all).
        k: readings in the base level.

    Returns:
        (max_lag, quantiles) array of log ratios.
    """
    probs = (np.arange(quantiles) + 0.5) / quantiles
    out = np.zeros((max_lag, quantiles))
    n = len(log_bw)
    if k == 1:
        base = log_bw
    else:  # running means by cumulative sums
        cum = np.r_[0.0, np.cumsum(log_bw)]
        end = np.arange(1, n + 1)
        first = np.maximum(end - k, 0)
        base = (cum[end] - cum[first]) / (end - first)
    for lag in range(1, max_lag + 1):
        if n - lag < 2:
            out[lag - 1] = out[lag - 2] if lag > 1 else 0.0
            continue
        starts = np.arange(n - lag)
        if anchors is not None:
            reach = anchors[anchors + lag < n]
            if len(reach) >= _MIN_SAMPLES:
                starts = reach
        out[lag - 1] = np.quantile(log_bw[starts + lag] - base[starts], probs)
    return out


def base_level(log_bw, k: int) -> float:
    """The level a decision plans from: the mean log bandwidth of the latest ``k``
    readings (a geometric mean: one noisy reading does not move it alone)."""
    recent = list(log_bw)[-k:]
    return sum(recent) / len(recent)


@dataclass
class RiskAware(BasePolicy):
    """The point with the least expected latency over the next ``horizon`` frames, the
    expectation taken over the link's own recent changes at each point's lead time.

    Args:
        horizon: frames planned ahead (>= 1); the pause is paid once over them.
        quantiles: quantiles of the change distribution averaged over (>= 1).
        history: readings the distribution is learned from (>= 10).
        max_lag: the longest lead, in readings, a distribution is kept for (>= 1).
        k: readings whose geometric mean is the level planned from (default 1: the
            latest reading; 5, as mpc's harmonic mean, switched less but closed less
            of the gap on the training traces), the changes measured from the same
            kind of level.
        anchored: learn from the changes that start at the readings in force when
            frames arrived (default; all changes while fewer than 8 reach a lag):
            the frames' own phase, which matters when the link steps in time with
            them; ``false``: from every reading.
        source: bandwidth readings from the ``monitor`` (default) or the frames' own
            ``transfers`` (monitor readings while no upload has told anything).
        period_s: decide every this many seconds (default 1: between frames, so a
            switch's pause can fall in the edge's idle time); ``None`` or 0: every frame.
    """

    horizon: int = 5
    quantiles: int = 16
    history: int = 120
    max_lag: int = 10
    k: int = 1
    anchored: bool = True
    source: Source = Source.monitor
    period_s: float | None = 1.0
    name: str = "risk"
    uses_finished: bool = False
    _feed: SampleFeed = field(init=False, repr=False)
    _log_bw: list = field(default_factory=list, init=False, repr=False)
    _times: list = field(default_factory=list, init=False, repr=False)
    _dropped: int = field(default=0, init=False, repr=False)  # readings trimmed off the front
    _anchors: deque = field(init=False, repr=False)  # absolute reading indices
    _last_arrival_s: float = field(default=-math.inf, init=False, repr=False)
    _factors: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.horizon = whole(self.horizon, "horizon", 1, MAX_HORIZON_FRAMES, "frames planned")
        self.quantiles = whole(self.quantiles, "quantiles", 1, MAX_QUANTILES)
        if self.horizon * self.quantiles > MAX_FRAME_PLANS:  # a decision plans every pair
            raise ValueError(
                f"horizon x quantiles must be at most {MAX_FRAME_PLANS} (frames planned per "
                f"decision at every point), not {self.horizon} x {self.quantiles}"
            )
        self.history = whole(self.history, "history", 10, MAX_SAMPLES, "readings")
        self.max_lag = whole(self.max_lag, "max_lag", 1, MAX_LAG_READINGS, "readings")
        self.k = whole(self.k, "k", 1, MAX_SAMPLES, "readings")
        self.source = choice(self.source, Source, "source")
        self.period_s = check_period(self.period_s)
        self._feed = SampleFeed(self.source)
        self.anchored = flag(self.anchored, "anchored")
        self._anchors = deque(maxlen=self.history)
        self.uses_finished = self.source is Source.transfers

    def _reading_period_s(self) -> float:
        """Seconds between the readings as they came (median), 1 s before there are any."""
        if len(self._times) < 3:
            return 1.0
        gaps = np.diff(np.asarray(self._times[-self.history :]))
        gaps = gaps[gaps > 0]
        return float(np.median(gaps)) if len(gaps) else 1.0

    def _observe(self, view: View) -> None:
        """Take the new readings, and anchor the latest frame to the reading it was
        served with (the latest seen before it arrived)."""
        for x in self._feed.new(view):
            self._log_bw.append(math.log(max(x, _FLOOR_MBPS)))
            self._times.append(view.now_s)
        keep = self.history + self.max_lag
        if len(self._log_bw) > 2 * keep:  # trim, keeping absolute indices valid
            cut = len(self._log_bw) - keep
            del self._log_bw[:cut], self._times[:cut]
            self._dropped += cut
        a = view.last_arrival_s
        if a > self._last_arrival_s:
            self._last_arrival_s = a
            i = bisect.bisect_left(self._times, a) - 1
            if i >= 0:
                self._anchors.append(self._dropped + i)

    def _window(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The readings the distribution is learned from, and the frame anchors among them."""
        n = min(len(self._log_bw), self.history + self.max_lag)
        log_bw = np.asarray(self._log_bw[-n:])
        if not self.anchored:
            return log_bw, None
        first = self._dropped + len(self._log_bw) - n
        anchors = np.asarray(self._anchors, dtype=int) - first
        return log_bw, anchors[anchors >= 0]

    def decide(self, view: View) -> int:
        self._observe(view)
        if not self._log_bw:
            return view.current_point
        latest_mbps = math.exp(base_level(self._log_bw[-self.k :], self.k))
        est = self._estimate_at(view, latest_mbps)
        cost = self.expected_cost(view, est, latest_mbps, view.monitor)
        return int(view.ordinals[int(np.argmin(cost))])

    def _estimate_at(self, view: View, bandwidth_mbps: float) -> Estimate:
        """Mean service seconds per point at ``bandwidth_mbps`` and the latest stress."""
        if self._factors is None:
            self._factors = mean_factors(view)
        return expected(view, condition(bandwidth_mbps, view.monitor), self._factors)

    def expected_cost(
        self, view: View, est: Estimate, latest_mbps: float, m: Conditions | None
    ) -> np.ndarray:
        """Expected summed latency of the next ``horizon`` frames, per point."""
        if len(self._log_bw) < _MIN_HISTORY:
            ratios = np.zeros((1, len(view.ordinals)))
        else:
            log_bw, anchors = self._window()
            table = lag_quantiles(log_bw, self.max_lag, self.quantiles, anchors, self.k)
            lags = self._lags(view, est)
            ratios = table[lags - 1].T  # (quantiles, points)
        bw = latest_mbps * np.exp(ratios)
        comm = self._comm_s(view, bw, m)
        total = np.zeros(len(view.ordinals))
        for q in range(bw.shape[0]):
            backlog_s = view.uplink_unacked_bytes * seconds_per_byte(float(np.min(bw[q])))
            est_q = Estimate(edge_s=est.edge_s, comm_s=comm[q], cloud_s=est.cloud_s)
            done = queue_done_s(view, est_q, frames=self.horizon, uplink_backlog_s=backlog_s)
            total += done.sum(axis=0)
        return total / bw.shape[0]

    def _lags(self, view: View, est: Estimate) -> np.ndarray:
        """Each point's lead, in readings: the reading's own delay (one), then from now
        to the middle of that point's transfer of the next frame."""
        gap_s = 1.0 / view.arrival_rate_hz if view.arrival_rate_hz > 0 else 0.0
        start = max(next_arrival_s(view, gap_s), view.edge_free_s)
        lead_s = start - view.now_s + est.edge_s + 0.5 * est.comm_s
        lags = 1 + np.rint(lead_s / self._reading_period_s()).astype(int)
        return np.clip(lags, 1, self.max_lag)

    def _comm_s(self, view: View, bw_mbps: np.ndarray, m: Conditions | None) -> np.ndarray:
        """Mean link seconds per (bandwidth sample, point): the link law of
        :meth:`View.predict` with a bandwidth per point."""
        cond = condition(1.0, m)
        e = view.model.edge_blocks
        cpu = round(min(max(cond.edge_cpu_pct, e.cpu_levels[0]), e.cpu_levels[-1]))
        mem = round(min(max(cond.edge_mem_pct, e.mem_levels[0]), e.mem_levels[-1]))
        _, over, wire_bytes, host = view.tables.at(float(cpu), float(mem))
        s_per_byte = seconds_per_byte(np.maximum(bw_mbps, 1e-6))
        return np.maximum(over + wire_bytes * s_per_byte, host) * self._factors[1]
