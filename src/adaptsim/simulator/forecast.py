"""What the adaptive policies share: bandwidth samples, forecasts and queue-aware predictions.

A real edge application knows two things about its uplink: what a network
monitor reports (:attr:`Source.monitor`: the view's periodic, delayed, noisy
readings) and how fast its own uploads went (:attr:`Source.transfers`: each
finished frame's payload over its upload time, the way ABR video players
estimate throughput). Upload times include the per-message overhead of the
calibrated link law, which a small payload (an all-edge split sends only the
result) is all overhead; so a transfer sample is the wire bytes over the upload
time less that overhead, and samples the overhead or the hosts dominate say
nothing about the wire and are skipped. Without an informative upload yet, the
transfer source falls back to the monitor, so a policy that keeps its splits
small never goes blind.

:func:`queue_done_s` predicts when the next frames would finish at every point,
starting from the queues as they stand (edge, uplink, cloud servers) and paying
the switch cost for a point other than the current one: Neurosurgeon looks one
frame ahead with it, the MPC policy a horizon of frames.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from enum import StrEnum
from typing import NamedTuple

import numpy as np

from adaptsim.simulator.params import MAX_SAMPLES, choice, flag, number, whole
from adaptsim.simulator.policies import Conditions, Estimate, View
from adaptsim.units import mbps

__all__ = [
    "PLANNED_PER_DECISION",
    "BandwidthForecast",
    "Discount",
    "Horizon",
    "Outlook",
    "RecentService",
    "SampleFeed",
    "ServiceLists",
    "Source",
    "check_params",
    "check_period",
    "condition",
    "expected",
    "mean_factors",
    "next_arrival_s",
    "queue_done_s",
    "transfer_rates_mbps",
    "transfer_samples",
]

# A transfer tells about the wire only when the wire is at least this share of its time.
_MIN_WIRE_SHARE = 0.3
# Forecasts remembered for scoring against uploads (the ``planned`` discount).
_PLANNED_KEPT = 256
# Uploads per decision the ``planned`` discount scores, the latest: at tens of frames
# per decision they were all planned with the same forecast and say the same thing.
PLANNED_PER_DECISION = 8


class Source(StrEnum):
    """Where a policy's bandwidth samples come from."""

    monitor = "monitor"
    transfers = "transfers"


def transfer_rates_mbps(view: View) -> list[float]:
    """Wire rates (Mbit/s) achieved by the uploads of the frames that finished since
    the last decision, oldest first; uploads dominated by overhead or host time are
    left out (see the module docstring)."""
    return [rate for _, rate in transfer_samples(view)]


def transfer_samples(view: View, last: int | None = None) -> list[tuple[float, float]]:
    """(arrival_s, wire rate in Mbit/s) of the informative uploads finished since the
    last decision (see :func:`transfer_rates_mbps`), oldest first; with ``last``, of
    the latest ``last`` finished frames only."""
    out = []
    if not view.finished:
        return out
    finished = view.finished if last is None else view.finished[-last:]
    m = view.monitor
    cpu = m.edge_cpu_pct if m is not None else 0.0
    mem = m.edge_mem_pct if m is not None else 0.0
    e = view.model.edge_blocks
    cpu = float(round(min(max(cpu, e.cpu_levels[0]), e.cpu_levels[-1])))
    mem = float(round(min(max(mem, e.mem_levels[0]), e.mem_levels[-1])))
    law = view.tables.uplink_law(cpu, mem)  # cached per stress level
    append = out.append
    for obs in finished:
        over, wire_bytes, host = law[obs.point]
        uplink_s = obs.uplink_s
        wire_s = uplink_s - over
        if wire_s <= _MIN_WIRE_SHARE * uplink_s or uplink_s <= host * 1.05:
            continue
        append((obs.time_s - obs.latency_s, mbps(wire_bytes, wire_s)))
    return out


class SampleFeed:
    """The bandwidth samples (Mbit/s) that are new at each decision, from one source.

    ``monitor``: the latest reading, once per reading. ``transfers``: the informative
    uploads finished since the last decision; while none has come for three frame
    intervals (at the start, or while the split sends too little to tell), the
    monitor's readings instead.
    """

    def __init__(self, source: Source):
        self.source = Source(source)
        self._seen: Conditions | None = None
        self._last_upload_s = -np.inf

    def new(self, view: View) -> list[float]:
        if self.source is Source.transfers:
            rates = transfer_rates_mbps(view)
            if rates:
                self._last_upload_s = view.now_s
                self._seen = view.monitor  # a reading older than the uploads adds nothing
                return rates
            gap_s = 1.0 / view.arrival_rate_hz if view.arrival_rate_hz > 0 else 1.0
            if view.now_s - self._last_upload_s <= 3.0 * gap_s:
                return []
        m = view.monitor
        if m is None or m is self._seen:
            return []
        self._seen = m
        return [m.bandwidth_mbps]


class Discount(StrEnum):
    """How a forecast allows for the bandwidth's surprises (see :class:`BandwidthForecast`)."""

    none = "none"
    max_error = "max_error"
    spread = "spread"
    planned = "planned"


class BandwidthForecast:
    """Harmonic mean of the last ``k`` bandwidth samples, discounted for surprises.

    The harmonic mean is the bandwidth at which a transfer takes the mean of the
    times it would have taken at each sample (time goes with 1/bandwidth). The
    discount (``discount``) then plans for less:

    - ``max_error``: robustMPC's (Yin et al., SIGCOMM 2015): divide by ``1 + max`` of
      the relative errors the last ``k`` forecasts made on the sample that followed;
    - ``spread``: divide by the mean of ``exp(-r)`` over the log changes ``r`` between
      samples ``lag`` apart over the last ``history`` samples, so that the forecast's
      1/bandwidth is the expected 1/bandwidth ``lag`` samples on (a steady link: no
      discount; one that collapses now and then: planned for accordingly);
    - ``planned`` (fed by :meth:`stamp` and :meth:`planned_rates`): divide by the mean
      of harmonic mean / achieved rate over the last ``history`` uploads, each
      against the harmonic mean in force when its frame arrived: the forecast's own
      error on the transfers it planned, at the lead time that matters (no uploads
      yet: no discount);
    - ``none``.

    Args:
        k: how many recent samples (and forecast errors) count.
        discount: see above.
        lag: samples ahead the ``spread`` discount looks (a reading's delay plus a transfer).
        history: samples the ``spread`` discount learns from.
    """

    def __init__(
        self, k: int = 5, discount: Discount = Discount.spread, lag: int = 2, history: int = 60
    ):
        if k < 1 or lag < 1 or history < 2:
            raise ValueError("k and lag must be >= 1, history >= 2")
        self.k = k
        self.discount = Discount(discount)
        self.lag = lag
        self.samples: deque[float] = deque(maxlen=k)
        self.errors: deque[float] = deque(maxlen=k)
        self.recent: deque[float] = deque(maxlen=history + lag)
        self._last: float | None = None
        self._factor = 1.0
        self._forecast: float | None = None
        # (time, forecast) pairs, the latest 256, as two lists (bisect needs the times)
        self._planned_t: list[float] = []
        self._planned_f: list[float] = []
        self._ratios: deque[float] = deque(maxlen=history)

    def add(self, bandwidth_mbps: float) -> None:
        """Record one sample (Mbit/s; zero or less counts as a tiny positive rate)."""
        x = max(float(bandwidth_mbps), 1e-3)
        if self._last is not None:
            self.errors.append(abs(self._last - x) / x)
        self.samples.append(x)
        self.recent.append(x)
        self._last = self.harmonic_mean()
        if self.discount is Discount.spread and len(self.recent) > self.lag:
            r = np.asarray(self.recent)
            self._factor = max(float(np.mean(r[: -self.lag] / r[self.lag :])), 1.0)
        self._forecast = self._compute()

    def stamp(self, now_s: float) -> None:
        """Remember the (undiscounted) forecast in force from ``now_s`` (for ``planned``)."""
        if self._last is not None and (not self._planned_f or self._planned_f[-1] != self._last):
            self._planned_t.append(now_s)
            self._planned_f.append(self._last)
            if len(self._planned_t) > _PLANNED_KEPT:
                del self._planned_t[0], self._planned_f[0]

    def planned_rates(self, samples: list[tuple[float, float]]) -> None:
        """Score the forecasts against uploads: (frame arrival_s, achieved Mbit/s) pairs."""
        if not self._planned_t or not samples:
            return
        times, planned = self._planned_t, self._planned_f
        for arrival_s, rate in samples:
            i = bisect.bisect_right(times, arrival_s) - 1
            if i >= 0:
                self._ratios.append(planned[i] / max(rate, 1e-3))
        if self._ratios and self.discount is Discount.planned:
            self._factor = sum(self._ratios) / len(self._ratios)
            self._forecast = self._compute()

    def harmonic_mean(self) -> float | None:
        if not self.samples:
            return None
        return len(self.samples) / sum(1.0 / x for x in self.samples)

    def forecast(self) -> float | None:
        """The bandwidth to plan for (Mbit/s), or ``None`` before the first sample."""
        return self._forecast

    def _compute(self) -> float | None:
        hm = self._last
        if hm is None:
            return None
        if self.discount is Discount.max_error and self.errors:
            return hm / (1.0 + max(self.errors))
        if self.discount in (Discount.spread, Discount.planned):
            return hm / self._factor
        return hm


def mean_factors(view: View) -> np.ndarray:
    """Mean service-time factors of the calibration's spread: (3, points), rows edge,
    link, cloud, one column per point.

    The calibration's tables give typical (median) times; the simulator, like a
    real host, multiplies each by a draw from the measured spread, which is
    skewed (slow outliers), so the mean time is the typical one times these
    factors. A point with a spread of its own (``by_point``) gets its own mean.
    A policy after the least mean latency predicts with them.
    """
    u = (np.arange(2000) + 0.5) / 2000
    ordinals = [str(int(o)) for o in view.ordinals]
    out = np.ones((3, len(ordinals)))
    for j, part in enumerate(("edge", "comm", "cloud")):
        q = view.model.spread.get(part)
        if not q:
            continue
        mean = {None: float(np.mean(np.exp(np.interp(u, q["probs"], q["log_ratio"]))))}
        for point, lr in q.get("by_point", {}).items():
            mean[point] = float(np.mean(np.exp(np.interp(u, q["probs"], lr))))
        out[j] = [mean.get(o, mean[None]) for o in ordinals]
    return out


def expected(view: View, cond: Conditions, factors: np.ndarray) -> Estimate:
    """Mean edge, link and cloud seconds per point under ``cond`` (``factors``: see
    :func:`mean_factors`)."""
    est = view.predict(cond)
    return Estimate(
        edge_s=est.edge_s * factors[0],
        comm_s=est.comm_s * factors[1],
        cloud_s=est.cloud_s * factors[2],
    )


def check_period(period_s) -> float | None:
    """A policy's ``period_s`` checked: a number >= 0, 0 read as ``None`` (every frame)."""
    if period_s is not None:
        period_s = number(period_s, "period_s")
        if period_s < 0:
            raise ValueError(f"period_s must be >= 0, not {period_s:g}")
    return period_s or None


def check_params(policy) -> None:
    """The parameter checks the forecasting built-ins share (raise ValueError, which
    resolve_policy reports in one line): ``source`` and ``discount`` become their
    Enums, ``period_s`` a number >= 0 (0: ``None``, every frame), ``k`` (where the
    policy has one) a whole number from 1 to
    :data:`~adaptsim.simulator.params.MAX_SAMPLES`."""
    policy.source = choice(policy.source, Source, "source")
    policy.discount = choice(policy.discount, Discount, "discount")
    policy.period_s = check_period(policy.period_s)
    if hasattr(policy, "service_feedback"):
        policy.service_feedback = flag(policy.service_feedback, "service_feedback")
    if hasattr(policy, "k"):
        policy.k = whole(policy.k, "k", 1, MAX_SAMPLES, "bandwidth samples")


class Outlook:
    """A policy's outlook: the bandwidth it plans for and the service times that follow.

    Feeds the samples of ``source`` into a :class:`BandwidthForecast` at each
    decision and predicts mean service times (:func:`expected`) at the forecast
    bandwidth and the monitor's latest stress reading; with ``service_feedback``,
    scaled by what the policy's own finished frames say of the next frame's
    service (:class:`RecentService`: a no-op unless the calibration's spread
    persists in time).
    """

    def __init__(self, source: Source, k: int, discount: Discount, service_feedback: bool = False):
        self.feed = SampleFeed(source)
        self.forecast = BandwidthForecast(int(k), Discount(discount))
        self.recent = RecentService() if service_feedback else None
        self.uses_finished = (
            Source(source) is Source.transfers
            or self.forecast.discount is Discount.planned
            or self.recent is not None
        )
        self._factors: np.ndarray | None = None

    def bandwidth_mbps(self, view: View) -> float | None:
        """The bandwidth to plan for after this decision's new samples (None: none yet)."""
        if self.recent is not None:
            self.recent.observe(view)
        for x in self.feed.new(view):
            self.forecast.add(x)
        if self.forecast.discount is Discount.planned:
            self.forecast.planned_rates(transfer_samples(view, PLANNED_PER_DECISION))
            self.forecast.stamp(view.now_s)
        return self.forecast.forecast()

    @property
    def live(self) -> bool:
        """Service feedback is on and has something to say (estimates move with time)."""
        return self.recent is not None and bool(self.recent.last)

    def estimate(self, view: View, cond: Conditions) -> Estimate:
        """Mean edge, link and cloud seconds per point under ``cond`` (for the next frame)."""
        if self._factors is None:
            self._factors = mean_factors(view)
        factors = self._factors
        if self.live:
            gap_s = 1.0 / view.arrival_rate_hz if view.arrival_rate_hz > 0 else 0.0
            factors = self.recent.factors(view, factors, next_arrival_s(view, gap_s))
        return expected(view, cond, factors)


def next_arrival_s(view: View, gap_s: float) -> float:
    """When the next frame is expected: now if one is arriving now, else one mean gap
    after the latest (exact for periodic frames; never before now)."""
    last = view.last_arrival_s
    if last >= view.now_s:
        return view.now_s
    return max(view.now_s, last + gap_s)


def queue_done_s(
    view: View,
    est: Estimate,
    frames: int = 1,
    gap_s: float | None = None,
    pause_s: float | None = None,
    uplink_backlog_s: float = 0.0,
) -> np.ndarray:
    """Predicted end-to-end latency of each of the next ``frames`` frames, per point.

    The first frame arrives at :func:`next_arrival_s` (now, for a decision made as a
    frame arrives), the others every ``gap_s`` (default: the mean inter-arrival
    time). Each point is held for all of them; a point other than the current one
    first pays ``pause_s`` (default ``view.pause_s``) on the edge, from now: a
    decision between frames can hide the pause in idle time.
    Stages are the engine's: the edge CPU behind its current backlog
    (``view.edge_free_s``), the uplink a single FIFO server busy for
    ``uplink_backlog_s`` from now (the caller's estimate, e.g. the edge's unacknowledged
    bytes at its forecast bandwidth), the cloud ``c`` of them, free (the edge cannot
    see the cloud's queue); the frames planned here queue behind each other. Service
    times come from ``est``.

    Returns:
        (frames, points) array of predicted end-to-end latencies.
    """
    plan = Horizon(view, frames, gap_s, pause_s, uplink_backlog_s)
    per_point = [plan.latencies(*p) for p in ServiceLists.of(est, view.ordinals).points()]
    return np.ascontiguousarray(np.array(per_point, dtype=float).T)


class ServiceLists(NamedTuple):
    """An :data:`Estimate` as lists of floats, with the points' ordinals: what
    :class:`Horizon` reads (a policy that plans from one estimate many times converts
    it once)."""

    ordinals: list[int]
    edge_s: list[float]
    comm_s: list[float]
    cloud_s: list[float]

    @classmethod
    def of(cls, est: Estimate, ordinals: np.ndarray) -> ServiceLists:
        lists = (est.edge_s.tolist(), est.comm_s.tolist(), est.cloud_s.tolist())
        return cls(ordinals.tolist(), *lists)

    def points(self):
        """(ordinal, edge s, link s, cloud s) per point."""
        return zip(self.ordinals, self.edge_s, self.comm_s, self.cloud_s, strict=True)


class Horizon:
    """The next ``frames`` frames as a decision plans them (see :func:`queue_done_s`).

    Every stage is a FIFO queue with one service time ``s`` per point, so a frame's
    end is the Lindley recursion unrolled, ``end[j] = (j+1) s + max(free,
    max_{i<=j} (x[i] - i s))`` for frames entering at ``x``, the server free from
    ``free``; the cloud's ``c`` servers are ``c`` interleaved single servers (frame j
    takes the server frame j - c used). One point at a time, in plain floats: for
    the few frames of a decision numpy's cost per call was most of the work, and a
    point that cannot win need not be planned at all (:meth:`best`).
    """

    def __init__(
        self,
        view: View,
        frames: int,
        gap_s: float | None = None,
        pause_s: float | None = None,
        uplink_backlog_s: float = 0.0,
    ):
        if gap_s is None:
            gap_s = 1.0 / view.arrival_rate_hz if view.arrival_rate_hz > 0 else 0.0
        now = view.now_s
        arrival = next_arrival_s(view, gap_s)
        pause_s = view.pause_s if pause_s is None else pause_s
        self.frames = frames
        self.arrivals_s = [arrival + j * gap_s for j in range(frames)]
        self.current = view.current_point
        self.stay_free = view.edge_free_s
        self.move_free = max(now, self.stay_free) + pause_s
        self.link_free = now + uplink_backlog_s if uplink_backlog_s > 0 else -math.inf
        self.owl = view.one_way_latency_s
        self.servers = max(view.cloud_servers, 1)

    def latencies(self, point: int, edge_s: float, comm_s: float, cloud_s: float) -> list[float]:
        """The planned frames' end-to-end latencies at ``point`` (these service times)."""
        a, owl, servers, frames = self.arrivals_s, self.owl, self.servers, self.frames
        free = self.stay_free if point == self.current else self.move_free
        arrive = [t + owl for t in _fifo_ends(_fifo_ends(a, free, edge_s), self.link_free, comm_s)]
        if cloud_s <= 0:
            end = arrive
        elif servers >= frames:  # every planned frame finds a free server (they start free)
            end = [t + cloud_s for t in arrive]
        else:
            end = [0.0] * frames
            for r in range(servers):
                end[r::servers] = _fifo_ends(arrive[r::servers], -math.inf, cloud_s)
        return [t + owl - x for t, x in zip(end, a, strict=True)]

    def cost(self, point: int, edge_s: float, comm_s: float, cloud_s: float) -> float:
        """The planned frames' summed latency, added frame by frame in order (as numpy
        sums a (frames, points) array over its frames: the same float)."""
        latencies = self.latencies(point, edge_s, comm_s, cloud_s)
        total = latencies[0]
        for x in latencies[1:]:
            total += x
        return total

    def best(self, est: ServiceLists) -> int:
        """The point of least :meth:`cost` (the first on ties, as ``np.argmin``).

        Every frame takes at least its service times and the two one-way latencies,
        so ``frames * (edge + link + cloud + 2 owl)`` bounds a point's cost from below;
        points are planned in the order of that bound, and once it exceeds the best
        cost found (by far more than any rounding) no later point can win.
        """
        owl2 = 2.0 * self.owl
        bound = [
            self.frames * (e + c + max(cl, 0.0) + owl2)
            for e, c, cl in zip(est.edge_s, est.comm_s, est.cloud_s, strict=True)
        ]
        if not all(math.isfinite(b) for b in bound):  # nothing to prune by: plan them all
            return self._best_of_all(est)
        slack = self.frames * 1e-9 * (1.0 + abs(self.arrivals_s[-1]) + abs(self.move_free))
        best_k, best = -1, math.inf
        for k in sorted(range(len(bound)), key=bound.__getitem__):
            if bound[k] - slack > best:
                break
            c = self.cost(est.ordinals[k], est.edge_s[k], est.comm_s[k], est.cloud_s[k])
            if c != c:  # NaN: np.argmin's answer is the first NaN; plan them all
                return self._best_of_all(est)
            if c < best or (c == best and k < best_k):
                best_k, best = k, c
        return est.ordinals[best_k]

    def _best_of_all(self, est: ServiceLists) -> int:
        return est.ordinals[first_min([self.cost(*p) for p in est.points()])]


def first_min(values: list[float]) -> int:
    """The index of the least value, the first on ties (a NaN first, as ``np.argmin``)."""
    best_i, best = 0, values[0]
    for i, v in enumerate(values):
        if v != v:
            return i
        if v < best:
            best_i, best = i, v
    return best_i


def _fifo_ends(x: list[float], free: float, service_s: float) -> list[float]:
    """End times at a FIFO single server of frames entering at ``x``, in order, each
    taking ``service_s``, the server free from ``free``: ``(j+1) s + max(free,
    max_{i<=j} (x[i] - i s))`` (see :class:`Horizon`)."""
    out = []
    lead = -math.inf
    for j, t in enumerate(x):
        v = t - j * service_s
        if v > lead:
            lead = v
        out.append((j + 1) * service_s + (free if free > lead else lead))
    return out


def condition(bandwidth_mbps: float, m: Conditions | None) -> Conditions:
    """``bandwidth_mbps`` with the stress of reading ``m`` (none: unstressed)."""
    if m is None:
        return Conditions(bandwidth_mbps)
    return Conditions(bandwidth_mbps, m.edge_cpu_pct, m.edge_mem_pct)


# Gauss-Hermite nodes (probabilists') for the expected factor given a latent's
# conditional normal (32 nodes: the quantiles are piecewise linear, so kinked).
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(32)
_GH_W = _GH_W / _GH_W.sum()
# A latent correlation below this tells nothing worth a recomputation.
_MIN_RHO = 1e-3
# The uniforms nearest 0 and 1 a latent is read from (the draws clip theirs the same,
# adaptsim.simulator.draws): ndtri(1e-12) is -7.03, the inverse normal of 0 or 1 infinite.
_U_EDGE = 1e-12
# The parts a policy can time on its own frames: the head on the edge and, where the
# cloud reports it, the tail (the link's time is the bandwidth's too: the
# ``planned`` discount and the ``transfers`` source already learn from it).
_RECENT_PARTS = ((0, "edge"), (2, "cloud"))


class RecentService:
    """The service time a policy should expect next, from its own recently finished frames.

    The simulator draws each part's service factor through a latent normal that
    may persist in time (``persistence_s`` and ``persistence_share`` of the
    calibration's spread, :mod:`adaptsim.simulator.draws`), as slow spells on real
    hosts do. A real application sees its own frames' times once they finish:
    the latest finished frame's edge time (and cloud time, where reported) over
    the calibration's typical time at that point and the monitor's stress gives
    its factor, hence its latent ``z`` (through that point's spread quantiles).
    The next frame's latent is then normal with mean ``rho z`` and variance
    ``1 - rho^2``, ``rho = share * exp(-gap / persistence_s)``, ``gap`` from the
    finished frame's arrival to the next frame's, and the expected factor of every
    point is that normal pushed through the point's quantiles (Gauss-Hermite).

    Only frames in ``view.finished`` are read (the engine hands a policy a frame
    only once its result is back), so no frame's draw is seen before it finishes.
    Without persistence in the calibration (or before a frame finished) the
    factors are the spread's plain means (:func:`mean_factors`): nothing changes.
    """

    def __init__(self):
        self._set = False
        self.params: dict[int, tuple[float, float]] = {}
        self.last: dict[int, tuple[float, float]] = {}  # part -> (arrival_s, latent z)
        self.version = 0  # bumped by every observation that moved a latent

    @property
    def active(self) -> bool:
        """The calibration persists some part that a policy can time itself."""
        return bool(self.params)

    def _setup(self, view: View) -> None:
        from adaptsim.simulator.draws import persistence

        self._set = True
        spread = view.model.spread
        ordinals = [str(int(o)) for o in view.ordinals]
        self._col = {int(o): i for i, o in enumerate(view.ordinals)}
        self._probs: dict[int, np.ndarray] = {}
        self._lr: dict[int, np.ndarray] = {}
        for j, part in _RECENT_PARTS:
            tau_s, share = persistence(spread, part)
            q = spread.get(part)
            if tau_s <= 0 or not q:
                continue
            self.params[j] = (tau_s, share)
            self._probs[j] = np.asarray(q["probs"], dtype=float)
            own = q.get("by_point", {})
            self._lr[j] = np.array([own.get(o, q["log_ratio"]) for o in ordinals], dtype=float)

    def observe(self, view: View) -> None:
        """Take the latest informative finished frame of this decision, per part."""
        if not self._set:
            self._setup(view)
        if not self.params or not view.finished:
            return
        from statistics import NormalDist

        m = view.monitor
        pred = view.predict(condition(1.0, m))  # edge and cloud do not depend on bandwidth
        for j in self.params:
            typical = pred.edge_s if j == 0 else pred.cloud_s
            for obs in reversed(view.finished):
                took = obs.edge_s if j == 0 else obs.cloud_s
                k = self._col.get(int(obs.point))
                if k is None or took <= 0 or typical[k] <= 0:
                    continue
                lr = math.log(took / float(typical[k]))
                probs = self._probs[j]
                u = float(np.interp(lr, self._lr[j][k], probs))
                # beyond the spread's ends a frame reads as the end itself; quantiles that
                # reach 0 or 1 would make that latent infinite: held where the draws hold theirs
                u = min(max(u, probs[0], _U_EDGE), probs[-1], 1.0 - _U_EDGE)
                self.last[j] = (obs.time_s - obs.latency_s, NormalDist().inv_cdf(u))
                self.version += 1
                break

    def factors(self, view: View, base: np.ndarray, at_s: float) -> np.ndarray:
        """``base`` (:func:`mean_factors`) with each persistent part's row replaced by
        the expected factor of a frame arriving at ``at_s``, given the latest finished
        frame (see the class docstring)."""
        if not self.last:
            return base
        from scipy.special import ndtr

        out = base
        for j, (arrival_s, z) in self.last.items():
            tau_s, share = self.params[j]
            rho = share * math.exp(-max(at_s - arrival_s, 0.0) / tau_s)
            if rho < _MIN_RHO:
                continue
            u = ndtr(rho * z + math.sqrt(1.0 - rho * rho) * _GH_X)
            lr = self._lr[j]
            # every point's quantiles at the same 16 probabilities: one interpolation
            probs = self._probs[j]
            idx = np.clip(np.searchsorted(probs, u, side="right") - 1, 0, len(probs) - 2)
            frac = np.clip((u - probs[idx]) / (probs[idx + 1] - probs[idx]), 0.0, 1.0)
            at = lr[:, idx] * (1.0 - frac) + lr[:, idx + 1] * frac
            if out is base:
                out = base.copy()
            out[j] = np.exp(at) @ _GH_W
        return out
