"""The policy parameter checks (adaptsim.simulator.params) at their edges.

``tests/test_odd_cli.py`` drives them through the CLI with the odd values an audit
found; these pin each check's bounds (open and closed ends, whole numbers, sizes)
and each refusal's wording, one function at a time (found open by mutation testing).
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np
import pytest

from adaptsim.simulator.params import (
    MAX_NAME_CHARS,
    bounded,
    choice,
    flag,
    name_problem,
    number,
    shown,
    whole,
)


class Kind(Enum):
    fast = "fast"
    slow = "slow"


def _refusal(fn, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as err:
        fn(*args, **kwargs)
    return str(err.value)


def test_number_takes_real_numbers_and_yaml_words_for_them_only():
    assert number("5e-1", "x") == 0.5 and number(3, "x") == 3.0
    assert number(np.float32(0.25), "x") == 0.25 and number(np.int64(7), "x") == 7.0
    for bad in (True, np.bool_(False), None, [1], "abc"):
        assert _refusal(number, bad, "k") == f"k must be a number, not {bad!r}"
    for bad in (math.nan, math.inf, -math.inf, "inf"):
        assert _refusal(number, bad, "k") == f"k must be a finite number, not {bad!r}"
    assert _refusal(number, 10**400, "k") == f"k must be a finite number, not {shown(10**400)}"


@pytest.mark.parametrize(
    ("kwargs", "inside", "outside", "says"),
    [
        ({"lo": 1, "hi": 5}, [1, 3, 5], [0.999, 5.001], "from 1 to 5"),
        ({"lo": 0, "hi": 1, "lo_open": True}, [1e-9, 1], [0, 1.0001], "above 0 and at most 1"),
        ({"lo": 0, "hi": 1, "hi_open": True}, [0, 0.999], [-1e-9, 1], "from 0 and below 1"),
        (
            {"lo": 0, "hi": 1, "lo_open": True, "hi_open": True},
            [0.5],
            [0, 1],
            "above 0 and below 1",
        ),
        ({"lo": 2}, [2, 1e300], [1.999], ">= 2"),
        ({"lo": 2, "lo_open": True}, [2.001], [2], "> 2"),
        ({"hi": 5}, [-1e300, 5], [5.001], "<= 5"),
        ({"hi": 5, "hi_open": True}, [4.999], [5], "< 5"),
    ],
)
def test_bounded_keeps_each_end_open_or_closed_as_asked(kwargs, inside, outside, says):
    for x in inside:
        assert bounded(x, "t", **kwargs) == x
    for x in outside:
        line = _refusal(bounded, x, "t", what="sds", **kwargs)
        assert line == f"t must be a number {says} (sds), not {x!r}"
    assert _refusal(bounded, 7, "t", 0, 5) == "t must be a number from 0 to 5, not 7"  # no unit


def test_whole_takes_integral_values_in_range_never_truncating():
    assert whole(4.0, "h", 1, 1000) == 4 and isinstance(whole(4.0, "h", 1, 1000), int)
    assert whole(1, "h", 1, 1000) == 1 and whole(1000, "h", 1, 1000) == 1000
    assert whole(10**6, "h") == 10**6  # no bounds: any whole number
    assert _refusal(whole, 4.7, "h", 1, 1000) == "h must be a whole number, not 4.7"
    line = _refusal(whole, 1001, "h", 1, 1000, "frames")
    assert line == "h must be a whole number from 1 to 1000 (frames), not 1001"
    assert _refusal(whole, 0, "h", 1) == "h must be a whole number >= 1, not 0"
    assert _refusal(whole, 9, "h", None, 8) == "h must be a whole number <= 8, not 9"


def test_shown_cuts_a_long_value_to_one_short_line():
    assert shown("ab") == "'ab'"
    long = shown(10**400)
    assert len(long) == 40 and long.endswith("...") and long.startswith("1000")
    assert shown(10**400, width=10) == "1000000..."
    assert shown("x" * 38) == "'" + "x" * 38 + "'"  # exactly 40: kept whole


def test_choice_and_flag_name_what_they_take():
    assert choice("slow", Kind, "speed") is Kind.slow
    for bad in ("medium", ["fast"]):
        line = _refusal(choice, bad, Kind, "speed")
        assert line == f"speed: {bad!r} is not a valid Kind; give one of fast, slow"
    assert flag(np.bool_(True), "f") is True and flag(False, "f") is False
    for bad in ("no", 1, 0, None):
        assert _refusal(flag, bad, "f") == f"f must be true or false, not {bad!r}"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Reactive (fast), é 2", None),
        ("a.b", None),
        ("x" * MAX_NAME_CHARS, None),
        (5, "is not text (int)"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("x" * (MAX_NAME_CHARS + 1), f"is {MAX_NAME_CHARS + 1} characters long (at most 100)"),
        ("a\tb", "holds the control character '\\t'"),
        ("a\u200bb", "holds the control character '\\u200b'"),  # zero-width space (Cf)
        (" edge", "has blanks at its start or end"),
        ("a/b", "holds a path separator ('/' or '\\')"),
        ("a\\b", "holds a path separator ('/' or '\\')"),
        ("...", "is only dots"),
    ],
)
def test_name_problem_says_what_breaks_a_row_label(name, problem):
    assert name_problem(name) == problem
