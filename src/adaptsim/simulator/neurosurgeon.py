"""``neurosurgeon``: per frame, the point predicted to finish this frame first.

Neurosurgeon (Kang et al., ASPLOS 2017) picks, for every query, the partition
with the least predicted end-to-end latency from per-layer latency predictions
and the current bandwidth. Here the prediction is the calibration's (the same
tables the simulator serves with) at the latest bandwidth sample and the
monitor's latest stress reading, as mean service times (the calibration's spread
included), and, unlike the paper, it also counts the edge CPU's backlog, which a
real edge application knows. (Not the uplink's or the cloud's backlog as the
engine schedules them: those hold the true future rate of the transfers in
flight.) It looks one frame ahead only, myopic by design
(:mod:`adaptsim.simulator.mpc` plans a horizon). Counting the switch cost is a
parameter, off by default: charged to the one frame it looks at, a pause longer
than the per-frame gain keeps it on a point for good (docs/policies.md has the
numbers); the engine charges the pause either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adaptsim.simulator.forecast import (
    Discount,
    Outlook,
    Source,
    check_params,
    condition,
    queue_done_s,
)
from adaptsim.simulator.policies import BasePolicy, View

__all__ = ["Neurosurgeon"]


@dataclass
class Neurosurgeon(BasePolicy):
    """The least predicted latency for this frame, queues and switch cost included.

    Args:
        source: bandwidth from the ``monitor`` (default) or the frames' own
            ``transfers``.
        discount: the latest sample as it is (``none``, default, as the paper) or
            discounted to the expected 1/bandwidth given the recent changes
            (``spread``; see :class:`~adaptsim.simulator.forecast.BandwidthForecast`).
        switch_cost: count the switch pause against a point other than the current
            one (default ``False``: one frame cannot repay it, so a myopic policy that
            counts it stays where it is for good; measured in docs/policies.md).
        period_s: ``None`` (default): decide at every frame, as the paper does.
    """

    source: Source = Source.monitor
    discount: Discount = Discount.none
    switch_cost: bool = False
    period_s: float | None = None
    name: str = "neurosurgeon"
    clairvoyant: bool = False
    uses_finished: bool = False
    _outlook: Outlook = field(init=False, repr=False)

    def __post_init__(self):
        check_params(self)
        self._outlook = Outlook(self.source, 1, self.discount)
        self.uses_finished = self._outlook.uses_finished

    def decide(self, view: View) -> int:
        bw = self._outlook.bandwidth_mbps(view)
        if bw is None:
            return view.current_point
        est = self._outlook.estimate(view, condition(bw, view.monitor))
        done = queue_done_s(view, est, frames=1, pause_s=None if self.switch_cost else 0.0)[0]
        return int(view.ordinals[int(np.argmin(done))])
