"""The measurement store's schema (version 2).

One row is one timing of one model split on a pair of hosts under one condition:

- ``record`` = ``partition``: the edge ran points 1..k, the cloud the rest;
  ``edge_s``, ``cloud_s``, ``comm_s`` (serialise + transfer + reply) and
  ``total_s`` are filled. ``point`` is the 1-based ordinal of the valid cut.
  A profiler times the two halves on their own hosts: ``host_role`` = ``edge``
  rows hold the head's time in ``edge_s`` under edge conditions, ``cloud`` rows
  the tail's time in ``cloud_s`` under cloud conditions; the other columns are NaN.
- ``record`` = ``block``: one block (the layers between two consecutive points)
  timed alone on one host; its time is in ``edge_s`` when ``host_role`` is
  ``edge`` and in ``cloud_s`` when it is ``cloud``. ``point`` is the ordinal of
  the point that ends the block.
- ``record`` = ``link`` (``host_role`` = ``link``, no model, point 0): one
  payload of ``output_bytes`` sent over a link shaped to ``bandwidth_mbps``, its
  seconds (send to reply) in ``comm_s``.

Conditions are in the units their names say; stress is a percentage of what the
stress tool was asked for (stress-ng ``-l`` for CPU, ``--vm-bytes`` for memory),
``edge_cpu_quota`` the cgroup CPU quota as a fraction of one core (1.0 = not
throttled, NaN = unknown). ``repeats`` is how many inferences stand behind the
row and ``stat`` what the row is of them (``mean``, ``median`` or ``sample``).
``flags`` lists, comma-separated, what an importer found suspicious (rows are
never dropped; calibrations leave out the rows an importer's ``UNUSABLE_FLAGS``
mark as not measuring what they are labelled). Hosts are described on both
sides; unknown values are empty/NaN.

Every store read or written is checked by :func:`validate_frame`: the columns and
their types, and their values: no infinity anywhere, no negative time unless an
importer flagged it (``negative_time``, ``negative_comm``), no negative size,
stress, bandwidth or core count, at least one repeat, a model named on every
split, and the time a row is of present (an edge row's ``edge_s``, a link row's
``comm_s``, bytes and bandwidth). A store edited by hand or written by another
tool is refused in one line naming the row, before a calibration is built on it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from adaptsim.errors import UserError

__all__ = [
    "COLUMNS",
    "CONDITION_COLUMNS",
    "FACTORS",
    "READABLE_VERSIONS",
    "SCHEMA_VERSION",
    "Record",
    "empty_frame",
    "validate_frame",
]

SCHEMA_VERSION = 2
# Versions this adaptsim reads: 2 added link rows and per-host partition halves.
READABLE_VERSIONS = (1, 2)

# The five varied factors of a condition, by short name -> column.
FACTORS = {
    "edge_cpu": "edge_cpu_pct",
    "edge_mem": "edge_mem_pct",
    "bandwidth": "bandwidth_mbps",
    "cloud_cpu": "cloud_cpu_pct",
    "cloud_mem": "cloud_mem_pct",
}

CONDITION_COLUMNS = (
    "edge_cpu_pct",
    "edge_mem_pct",
    "cloud_cpu_pct",
    "cloud_mem_pct",
    "bandwidth_mbps",
    "edge_cpu_quota",
)


@dataclass
class Record:
    """One row of the store; field order is the column order."""

    source: str
    provenance: str
    record: str
    host_role: str
    edge_host: str
    edge_arch: str
    edge_cpu: str
    edge_cores: float
    edge_memory_bytes: float
    cloud_host: str
    cloud_arch: str
    cloud_cpu: str
    cloud_cores: float
    cloud_memory_bytes: float
    model: str
    point: int
    layer_index: float
    layer_name: str
    output_bytes: float
    edge_cpu_pct: float
    edge_mem_pct: float
    cloud_cpu_pct: float
    cloud_mem_pct: float
    bandwidth_mbps: float
    edge_cpu_quota: float
    repeats: int
    stat: str
    edge_s: float
    cloud_s: float
    comm_s: float
    total_s: float
    flags: str


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Record))

_STRINGS = {f.name for f in fields(Record) if f.type == "str"}
_INTS = {"point", "repeats"}
_CHOICES = {
    "record": {"partition", "block", "link"},
    "host_role": {"edge+cloud", "edge", "cloud", "link"},
    "stat": {"mean", "median", "sample"},
}


def empty_frame() -> pd.DataFrame:
    """A store frame with no rows and the right dtypes."""
    return _coerce(pd.DataFrame({c: [] for c in COLUMNS}))


def _coerce(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.loc[:, list(COLUMNS)].copy()
    for col in COLUMNS:
        if col in _STRINGS:
            out[col] = out[col].fillna("").astype(str)
        elif col in _INTS:
            out[col] = out[col].astype(np.int64)
        else:
            out[col] = out[col].astype(np.float64)
    return out


def validate_frame(frame: pd.DataFrame, where: str = "store") -> pd.DataFrame:
    """Check columns, types and allowed values; return the frame in schema order.

    Raises:
        UserError: naming the first problem found and the store it is in.
    """
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(
            f"{where}: not an adaptsim measurement store (missing columns {missing[:4]}); "
            "build one with `adaptsim import`"
        )
    try:
        out = _coerce(frame)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{where}: a column has the wrong type ({exc})") from None
    for col, allowed in _CHOICES.items():
        bad = sorted(set(out[col]) - allowed)
        if bad:
            raise UserError(
                f"{where}: column {col} has unknown values {bad}; allowed {sorted(allowed)}"
            )
    if (out["point"] < 0).any():
        raise UserError(f"{where}: negative point ordinals; the store is corrupt")
    _check_values(out, where)
    return out


# Seconds an importer may find negative in its source (a clock glitch): kept, flagged.
_TIMES = ("edge_s", "cloud_s", "comm_s", "total_s")
_GLITCH_FLAGS = ("negative_time", "negative_comm")
# Columns that are never negative (NaN: unknown or not applicable to the row).
_NON_NEGATIVE = (
    "edge_cores",
    "edge_memory_bytes",
    "cloud_cores",
    "cloud_memory_bytes",
    "output_bytes",
    *CONDITION_COLUMNS,
)
# What a row of each kind measured: NaN there is a row that measured nothing.
_MEASURED = {
    ("partition", "edge+cloud"): ("edge_s", "cloud_s", "comm_s"),
    ("partition", "edge"): ("edge_s",),
    ("partition", "cloud"): ("cloud_s",),
    ("block", "edge"): ("edge_s",),
    ("block", "cloud"): ("cloud_s",),
    ("link", "link"): ("comm_s", "output_bytes", "bandwidth_mbps"),
}


def _check_values(out: pd.DataFrame, where: str) -> None:
    """Refuse values no importer or profiler writes: an infinity, a negative time an
    importer did not flag, a negative size or stress, a row without the time it is of.

    Row numbers count from 1 in the store's order; the first bad row is named.
    """

    def fail(mask, column: str, problem: str, fix: str = "") -> None:
        rows = np.flatnonzero(np.asarray(mask))
        if len(rows):
            i = rows[0]
            value = out[column].iat[i]  # a numpy scalar: shown as -5.0, not np.float64(-5.0)
            value = value.item() if isinstance(value, np.generic) else value
            raise UserError(
                f"{where}: row {i + 1} ({out['model'].iat[i] or out['record'].iat[i]}, point "
                f"{out['point'].iat[i]}): {column} is {value!r}; {problem}"
                f"{fix or '; re-import or re-profile the data'}"
            )

    numeric = [c for c in COLUMNS if c not in _STRINGS and c not in _INTS]
    for col in numeric:
        fail(np.isinf(out[col]), col, "a measurement is never infinite")
    glitch = out["flags"].str.contains("|".join(_GLITCH_FLAGS), regex=True)
    for col in _TIMES:
        fail(
            (out[col] < 0) & ~glitch,
            col,
            "a time is never negative",
            " (an importer keeps one from its source only flagged negative_time or "
            "negative_comm); re-import or re-profile the data",
        )
    for col in _NON_NEGATIVE:
        fail(out[col] < 0, col, "it is never negative")
    fail(out["repeats"] < 1, "repeats", "a row stands for at least one timing")
    unnamed = (out["record"] != "link") & (out["model"].str.strip() == "")
    fail(unnamed, "model", "a timing of a split names its model")
    for (record, role), columns in _MEASURED.items():
        kind = (out["record"] == record) & (out["host_role"] == role)
        for col in columns:
            fail(kind & out[col].isna(), col, f"a {record} row of the {role} measures it")
