"""The simulator's per-request record, spelled once.

Both engines (the fast analytic one and the naive SimPy one) produce one
:class:`Record` per frame; the results table's columns are its field names
(:data:`RECORD_COLUMNS`), and what a policy sees of a finished frame (an
:class:`~adaptsim.simulator.policies.Observation`) is derived from it by
:func:`observation`, so the four places that used to spell the record (a column
tuple, thirteen appends, a positional tuple and a six-tuple) cannot drift apart.

A frame dropped by admission control (:mod:`adaptsim.simulator.admission`) is
recorded too: ``dropped`` is true, ``drop_stage`` names the stage, ``latency_s``
and ``done_s`` are infinite (it never comes back), the parts it went through
hold their times (a wait up to the drop included) and the parts it never
reached are zero.

It is a ``NamedTuple``: typed and named, yet as cheap to build as a tuple, which
matters in the fast engine's inner loop (hundreds of thousands per second).
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter
from typing import NamedTuple

from adaptsim.simulator.policies import Observation

__all__ = ["RECORD_COLUMNS", "Record", "columns", "observation"]


class Record(NamedTuple):
    """One frame's passage through edge CPU, uplink and cloud (times in seconds)."""

    request: int  # index of the frame in arrival order
    arrival_s: float  # when it reached the edge
    point: int  # the split it was served at (ordinal)
    switched: bool  # the split changed just before this frame
    edge_wait_s: float  # queued for the edge CPU (behind frames or a re-partition pause)
    edge_s: float  # head blocks on the edge (zero all-cloud)
    uplink_wait_s: float  # queued for the uplink
    uplink_s: float  # the transfer: overhead, bytes through the bandwidth trace, hosts
    cloud_wait_s: float  # queued for a cloud server
    cloud_s: float  # tail blocks in the cloud (zero all-edge)
    latency_s: float  # arrival to result back at the edge
    done_s: float  # when the result was back
    payload_bytes: float  # the tensor sent at this split (0 if dropped before the uplink)
    # Admission (at the end, with defaults, so code that builds a Record without them works):
    dropped: bool = False  # refused by a stage (latency_s and done_s are then inf)
    drop_stage: str = ""  # "" or the Stage it was dropped at: "edge", "uplink", "cloud"


RECORD_COLUMNS: tuple[str, ...] = Record._fields


def columns(records: Iterable[Record]) -> dict[str, list]:
    """Records as one list per field (the results table's columns), in the given order."""
    rows = list(records)
    if not rows:
        return {name: [] for name in RECORD_COLUMNS}
    cols = zip(*rows, strict=True)
    return {name: list(col) for name, col in zip(RECORD_COLUMNS, cols, strict=True)}


# Each Observation field and the Record field it is read from, in Observation's order.
_OBSERVED_FROM = {"time_s": "done_s"}
_observed = itemgetter(
    *(RECORD_COLUMNS.index(_OBSERVED_FROM.get(f, f)) for f in Observation._fields)
)


def observation(record: Record) -> Observation:
    """What the edge learns of a finished frame once its result is back.

    Built from the record's fields by position (one C call) and ``tuple.__new__``:
    the engine makes one per finished frame for a policy that reads them.
    """
    return tuple.__new__(Observation, _observed(record))
