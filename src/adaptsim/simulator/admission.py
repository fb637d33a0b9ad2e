"""Admission control: which frames a stage refuses, as a real edge application does.

A real edge application does not queue frames forever. A scenario's ``admission``
block says what each stage (the edge CPU, the uplink, the cloud servers) refuses:

- ``drop: never`` (the default) keeps every frame, however late;
- ``drop: stale`` drops a frame whose deadline (arrival + ``deadline_s``) has
  already passed when a stage would *start* it: it is counted, recorded, and
  occupies neither that stage nor any later one;
- ``queue_limit: {edge: N, uplink: N, cloud: N}`` bounds the frames *waiting* at
  a stage (not counting those in service); a frame that reaches a stage whose
  queue is full and would have to wait is dropped there (tail drop). A stage
  left out is unbounded.

Ties are settled one way in both engines: a frame that starts at the very
instant another reaches the stage is no longer waiting. A stage that would start
a frame only at t = infinity (behind a transfer that never ends) never starts it:
that frame is *unfinished*, not dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["UNBOUNDED", "Admission", "Drop", "Stage"]


class Drop(StrEnum):
    """Which late frames a stage drops."""

    never = "never"
    stale = "stale"


class Stage(StrEnum):
    """A queueing stage of the pipeline, in the order a frame passes them."""

    edge = "edge"
    uplink = "uplink"
    cloud = "cloud"


@dataclass(frozen=True)
class Admission:
    """A scenario's admission rules (validated; see the module docstring).

    Attributes:
        drop: whether stale frames are dropped when a stage would start them.
        edge_limit, uplink_limit, cloud_limit: the most frames that may wait at the
            stage (``None``: unbounded).
    """

    drop: Drop = Drop.never
    edge_limit: int | None = None
    uplink_limit: int | None = None
    cloud_limit: int | None = None

    @property
    def active(self) -> bool:
        """False for today's behaviour (keep every frame, unbounded queues)."""
        return self.drop is not Drop.never or any(
            x is not None for x in (self.edge_limit, self.uplink_limit, self.cloud_limit)
        )

    def limit(self, stage: Stage) -> int | None:
        return {
            Stage.edge: self.edge_limit,
            Stage.uplink: self.uplink_limit,
            Stage.cloud: self.cloud_limit,
        }[stage]

    def stale_after(self, arrival_s: float, deadline_s: float) -> float:
        """The time after which a stage drops this frame instead of starting it (inf: never)."""
        return arrival_s + deadline_s if self.drop is Drop.stale else math.inf

    def describe(self) -> str:
        """``drop stale, queue limit edge 2`` (for reports and run.json)."""
        limits = [f"{s.value} {self.limit(s)}" for s in Stage if self.limit(s) is not None]
        text = f"drop {self.drop.value}"
        return text + (f", queue limit {', '.join(limits)}" if limits else ", unbounded queues")


UNBOUNDED = Admission()
