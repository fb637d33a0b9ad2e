"""The one record: its fields are the results' columns, and a policy's view of a
finished frame takes each value from the field of the same meaning."""

from __future__ import annotations

from adaptsim.simulator.engine import RECORD_COLUMNS as ENGINE_COLUMNS
from adaptsim.simulator.policies import Observation
from adaptsim.simulator.record import RECORD_COLUMNS, Record, columns, observation


def _record(i: int) -> Record:
    # Every field a different value, so a field read from the wrong place shows.
    return Record(i, 1.5, 7, True, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 2.1, 3.6, 4096.0)


def test_observation_takes_each_value_from_its_own_field():
    assert observation(_record(0)) == Observation(
        time_s=3.6,
        point=7,
        latency_s=2.1,
        edge_s=0.2,
        uplink_s=0.4,
        payload_bytes=4096.0,
        cloud_s=0.6,
    )


def test_columns_are_the_fields_in_order():
    assert ENGINE_COLUMNS == RECORD_COLUMNS == Record._fields
    cols = columns([_record(0), _record(1)])
    assert list(cols) == list(RECORD_COLUMNS)
    assert cols["request"] == [0, 1] and cols["payload_bytes"] == [4096.0, 4096.0]
    assert cols["uplink_wait_s"] == [0.3, 0.3] and cols["done_s"] == [3.6, 3.6]
    assert columns([]) == {name: [] for name in RECORD_COLUMNS}
