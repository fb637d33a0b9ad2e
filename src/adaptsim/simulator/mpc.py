"""``mpc``: model-predictive control of the split, in the manner of robustMPC.

robustMPC (Yin et al., SIGCOMM 2015) forecasts throughput as the harmonic mean
of the last ``k`` observed throughputs, divides it by one plus the largest
relative error of its recent forecasts, and picks the action that minimises a
cost predicted over a short horizon. Here the action is the split point, held
over the next ``horizon`` frames; the cost is their summed predicted latency
through the queues (the edge CPU's backlog as it stands, then the uplink and the
cloud servers, each frame behind the ones planned before it), the switch pause
paid once by a point other than the current one. So a switch is made when it
pays off within the horizon, and a point that builds a queue is charged for the
queue it leaves to the frames after it.

robustMPC's discount is a parameter; the default divides by the forecast's mean
error on the uploads it planned (forecast / achieved rate, each upload against
the forecast in force when its frame arrived): a worst case over five samples
plans for too little bandwidth on a link that is merely noisy, while the mean
error at the real lead time (reading delay, waiting for the frame, the transfer)
is what an expected latency needs.

It decides every second by default, between frames: the plan starts at the next
expected frame, so a switch whose pause ends before that frame costs nothing, as
when a real edge application swaps sub-models while idle. A decision whose inputs
(forecast, stress reading, current point, and the edge backlog to 5 % of the mean
frame gap) equal the previous one's returns the previous answer without
recomputing, which keeps per-frame decisions cheap at high frame rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from adaptsim.simulator.forecast import (
    Discount,
    Horizon,
    Outlook,
    ServiceLists,
    Source,
    check_params,
    condition,
)
from adaptsim.simulator.params import MAX_HORIZON_FRAMES, whole
from adaptsim.simulator.policies import BasePolicy, View

__all__ = ["MPC"]

# Queue backlogs that differ by less than this share of the mean frame gap count as
# the same state (the previous decision is reused).
_QUEUE_RESOLUTION = 0.05


@dataclass
class MPC(BasePolicy):
    """The point with the least predicted latency over the next ``horizon`` frames.

    Args:
        horizon: frames planned ahead (>= 1).
        k: bandwidth samples in the harmonic mean (and forecast errors in the discount).
        discount: ``planned`` (default: by the forecast's mean error on the uploads
            it planned), ``max_error`` (robustMPC's: by the recent maximum forecast
            error), ``spread`` (to the expected 1/bandwidth given the recent
            changes) or ``none`` (see :class:`~adaptsim.simulator.forecast.BandwidthForecast`).
        source: bandwidth from the ``monitor`` (default) or the frames' own ``transfers``.
        period_s: decide every this many seconds (default 1: between frames, so
            that a switch's pause falls in the edge's idle time when there is
            some, and the plan starts at the next expected frame); ``None`` or 0:
            at every frame.
        service_feedback: scale the predicted service times by what its own finished
            frames say of the next one (see
            :class:`~adaptsim.simulator.forecast.RecentService`; the same for every
            planned frame; default true: a no-op without persistence).
    """

    horizon: int = 5
    k: int = 5
    discount: Discount = Discount.planned
    source: Source = Source.monitor
    period_s: float | None = 1.0
    service_feedback: bool = True
    name: str = "mpc"
    uses_finished: bool = False
    _outlook: Outlook = field(init=False, repr=False)
    _memo: tuple | None = field(default=None, init=False, repr=False)
    _quantum_s: float | None = field(default=None, init=False, repr=False)
    _cond: tuple | None = field(default=None, init=False, repr=False)
    _est: ServiceLists | None = field(default=None, init=False, repr=False)
    _answer: int = field(default=0, init=False, repr=False)

    def __post_init__(self):
        check_params(self)
        self.horizon = whole(
            self.horizon, "horizon", 1, MAX_HORIZON_FRAMES, "frames planned at every point"
        )
        self._outlook = Outlook(self.source, self.k, self.discount, self.service_feedback)
        self.uses_finished = self._outlook.uses_finished

    def decide(self, view: View) -> int:
        bw = self._outlook.bandwidth_mbps(view)
        if bw is None:
            return view.current_point
        now = view.now_s
        m = view.monitor
        stress = (m.edge_cpu_pct, m.edge_mem_pct) if m is not None else (0.0, 0.0)
        if self._quantum_s is None:
            rate = view.arrival_rate_hz
            self._quantum_s = _QUEUE_RESOLUTION / rate if rate > 0 else 1e-3
        q = self._quantum_s
        key = (
            bw,
            stress,
            view.current_point,
            round(max(view.edge_free_s - now, 0.0) / q),
        )
        live = self._outlook.live  # service feedback: the estimate moves with time
        if key == self._memo and not live:
            return self._answer
        if (bw, stress) != self._cond or live:
            self._cond = (bw, stress)
            est = self._outlook.estimate(view, condition(bw, m))
            self._est = ServiceLists.of(est, view.ordinals)
        self._memo = key
        self._answer = Horizon(view, self.horizon).best(self._est)
        return self._answer
