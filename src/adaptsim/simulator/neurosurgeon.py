"""``neurosurgeon``: per frame, the point predicted to finish this frame first.

Neurosurgeon (Kang et al., ASPLOS 2017) picks, for every query, the partition
with the least predicted end-to-end latency from per-layer latency predictions
and the current bandwidth. Here the prediction is the calibration's (the same
tables the simulator serves with) at the latest bandwidth sample and the
monitor's latest stress reading, and, unlike the paper, it also counts the
queues as they stand (the edge CPU's backlog, the uplink's, the cloud servers'
free times) and the switch cost of leaving the current point: a real edge
application knows all three. It looks one frame ahead only (myopic by design;
:mod:`adaptsim.simulator.mpc` plans a horizon).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adaptsim.simulator.forecast import (
    BandwidthForecast,
    Discount,
    SampleFeed,
    Source,
    condition,
    expected,
    mean_factors,
    queue_done_s,
)
from adaptsim.simulator.policies import View

__all__ = ["Neurosurgeon"]


@dataclass
class Neurosurgeon:
    """The least predicted latency for this frame, queues and switch cost included.

    Args:
        source: bandwidth from the ``monitor`` (default) or the frames' own
            ``transfers``.
        discount: the latest sample as it is (``none``) or discounted to the expected
            1/bandwidth given the recent changes (``spread``, default; see
            :class:`~adaptsim.simulator.forecast.BandwidthForecast`).
        period_s: ``None`` (default): decide at every frame, as the paper does.
    """

    source: Source = Source.monitor
    discount: Discount = Discount.none
    switch_cost: bool = False
    period_s: float | None = None
    name: str = "neurosurgeon"
    clairvoyant: bool = False
    uses_finished: bool = False
    _feed: SampleFeed = field(init=False, repr=False)
    _factors: np.ndarray | None = field(default=None, init=False, repr=False)
    _forecast: BandwidthForecast = field(init=False, repr=False)

    def __post_init__(self):
        self.source = Source(self.source)
        self._feed = SampleFeed(self.source)
        self._forecast = BandwidthForecast(k=1, discount=Discount(self.discount))
        self.uses_finished = self.source is Source.transfers
        self.period_s = self.period_s or None

    def decide(self, view: View) -> int:
        if self._factors is None:
            self._factors = mean_factors(view)
        for x in self._feed.new(view):
            self._forecast.add(x)
        bw = self._forecast.forecast()
        if bw is None:
            return view.current_point
        est = expected(view, condition(bw, view.monitor), self._factors)
        done = queue_done_s(view, est, frames=1, pause_s=None if self.switch_cost else 0.0)[0]
        return int(view.ordinals[int(np.argmin(done))])
