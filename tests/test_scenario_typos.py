"""A misspelt scenario field is named, not only the required field it left missing."""

from __future__ import annotations

import pytest

from adaptsim.errors import UserError
from adaptsim.simulator.scenario import scenario_from_dict

DOC = {
    "name": "t",
    "model": "alexnet",
    "duration_s": 10,
    "arrivals": {"rate_hz": 1},
    "deadline_s": 1,
    "traces": {"bandwidth_mbps": {"constant": 5}},
    "policies": [{"policy": "all-edge"}],
}


def test_a_misspelt_field_is_named_before_the_field_it_left_missing():
    doc = {k: v for k, v in DOC.items() if k != "deadline_s"} | {"deadlin_s": 1}
    with pytest.raises(UserError) as err:
        scenario_from_dict(doc, "s.yaml")
    assert str(err.value) == (
        "s.yaml: field deadlin_s: Extra inputs are not permitted (no such field: misspelt?) "
        "(and 1 more)"
    )


def test_a_misspelt_nested_field_is_named_too():
    doc = DOC | {"arrivals": {"rate_hz": 1, "knd": "poisson"}}
    with pytest.raises(UserError) as err:
        scenario_from_dict(doc, "s.yaml")
    assert str(err.value).startswith("s.yaml: field arrivals.knd: Extra inputs are not permitted")
