"""The checks a policy's parameters and name go through, with the bounds they must keep.

A policy's parameters come from a scenario or sweep file written by hand, so a
typo reaches them: ``horizon: 1e9`` (a decision of ``mpc`` plans that many frames
at every point: the first decision never ends), ``history: 1e12`` (memory for a
trillion readings), ``switch_cost: "no"`` (a non-empty string is true), ``k: .nan``.
Each check raises :class:`ValueError` naming the parameter, the value and the
allowed range; :func:`adaptsim.simulator.policies.resolve_policy` turns it into one
line naming the file and the policy's field (exit 2).

The size bounds are far beyond any sensible setting and far below what would hang
or exhaust memory. Measured here (ResNet50's 24 points, a shared 2-core machine,
median of 3 runs): a decision of ``mpc`` takes about 0.2 ms at the default horizon
of 5 and 1.1 ms at 1000; of ``risk`` about 4 ms by default and 200 ms at horizon
1000, 16 quantiles and a full history of 10,000 readings over 1000 lags. At 256
quantiles and horizon 1000 it took 3.2 s, so ``risk`` also bounds ``horizon x
quantiles`` (:data:`MAX_FRAME_PLANS`).

A policy's name (its label, or the name it gives itself) labels its rows in
every table, CSV, Parquet file, report and the ``validate --policies`` list:
:func:`name_problem` refuses what would break one of those (control characters,
path separators, blanks at the ends, more than :data:`MAX_NAME_CHARS` characters).
"""

from __future__ import annotations

import math
import unicodedata
from enum import Enum

import numpy as np

__all__ = [
    "MAX_COUNT",
    "MAX_FRAME_PLANS",
    "MAX_HORIZON_FRAMES",
    "MAX_LAG_READINGS",
    "MAX_NAME_CHARS",
    "MAX_QUANTILES",
    "MAX_SAMPLES",
    "MAX_SDS",
    "bounded",
    "choice",
    "flag",
    "name_problem",
    "number",
    "shown",
    "whole",
]

MAX_HORIZON_FRAMES = 1000  # frames a decision plans ahead (mpc, risk)
MAX_SAMPLES = 10_000  # samples or readings a policy keeps (k, history)
MAX_LAG_READINGS = 1000  # the longest lead (risk's max_lag), in monitor readings
MAX_QUANTILES = 256  # quantiles of a distribution a decision averages over (risk)
MAX_FRAME_PLANS = 16_000  # risk: horizon x quantiles, the frames one decision plans per point
MAX_COUNT = 1000  # decisions in a row (reactive's hysteresis)
MAX_SDS = 1000.0  # a detection threshold or slack in noise standard deviations (changepoint)
MAX_NAME_CHARS = 100


def shown(value: object, width: int = 40) -> str:
    """``repr(value)``, cut to ``width`` characters (a 400-digit number stays one line)."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def number(value: object, name: str) -> float:
    """A finite real parameter (YAML 1.2 numbers such as ``5e-1`` included; not true/false)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, str, np.number)):
        raise ValueError(f"{name} must be a number, not {shown(value)}")
    try:
        x = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {shown(value)}") from None
    except OverflowError:  # an integer beyond any float
        raise ValueError(f"{name} must be a finite number, not {shown(value)}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, not {shown(value)}")
    return x


def _range(lo: float | None, hi: float | None, lo_open: bool = False, hi_open: bool = False) -> str:
    below = "below" if hi_open else "at most"
    if lo is not None and hi is not None:
        if not lo_open and not hi_open:
            return f"from {lo:g} to {hi:g}"
        return f"{'above' if lo_open else 'from'} {lo:g} and {below} {hi:g}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    return f"{'<' if hi_open else '<='} {hi:g}"


def bounded(
    value: object,
    name: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    what: str = "",
) -> float:
    """A finite number in ``[lo, hi]`` (an end left out with ``lo_open``/``hi_open``);
    ``what`` says what it counts, for the message."""
    x = number(value, name)
    low = lo is not None and (x < lo or (lo_open and x == lo))
    high = hi is not None and (x > hi or (hi_open and x == hi))
    if low or high:
        unit = f" ({what})" if what else ""
        span = _range(lo, hi, lo_open, hi_open)
        raise ValueError(f"{name} must be a number {span}{unit}, not {shown(value)}")
    return x


def whole(
    value: object, name: str, lo: int | None = None, hi: int | None = None, what: str = ""
) -> int:
    """An integral parameter (4 or 4.0, never 4.7 truncated) in ``[lo, hi]`` when given."""
    x = number(value, name)
    if not x.is_integer():
        raise ValueError(f"{name} must be a whole number, not {shown(value)}")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        unit = f" ({what})" if what else ""
        raise ValueError(
            f"{name} must be a whole number {_range(lo, hi)}{unit}, not {shown(value)}"
        )
    return int(x)


def choice(value: object, kind: type[Enum], name: str) -> Enum:
    """One of the values of the Enum ``kind``, named in the message when not."""
    try:
        return kind(value)
    except (ValueError, TypeError):
        names = ", ".join(str(m.value) for m in kind)
        raise ValueError(
            f"{name}: {shown(value)} is not a valid {kind.__name__}; give one of {names}"
        ) from None


def flag(value: object, name: str) -> bool:
    """true or false, nothing else (a non-empty string such as "no" would be true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be true or false, not {shown(value)}")
    return bool(value)


def name_problem(name: object) -> str | None:
    """What is wrong with ``name`` as a policy's name, or None.

    A name is a row label everywhere results go: one line of a table, a CSV cell, a
    Parquet string, a report's checkbox, an entry of ``validate --policies``. It may
    hold any printable text (spaces, brackets, commas, non-ASCII letters); it may not
    hold control or invisible format characters (NUL, a line break, a tab, a
    right-to-left override), a path separator, or blanks at its ends, be only dots,
    or be longer than :data:`MAX_NAME_CHARS` characters.
    """
    if not isinstance(name, str):
        return f"is not text ({type(name).__name__})"
    if not name.strip():
        return "is empty"
    if len(name) > MAX_NAME_CHARS:
        return f"is {len(name)} characters long (at most {MAX_NAME_CHARS})"
    bad = next((c for c in name if unicodedata.category(c).startswith("C")), None)
    if bad is not None:
        return f"holds the control character {bad!r}"
    if name != name.strip():
        return "has blanks at its start or end"
    if "/" in name or "\\" in name:
        return "holds a path separator ('/' or '\\')"
    if set(name) == {"."}:
        return "is only dots"
    return None
