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
    return out
