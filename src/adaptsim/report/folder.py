"""Reading a results folder written by ``adaptsim run``, or saying in one line why not.

A results folder holds ``records.parquet`` (one row per frame), ``summary.csv``
(one row per policy) and ``run.json`` (the scenario's facts). Folders from older
versions (no ``finished`` column, no ``errors`` in run.json) are read as they are;
a missing, truncated or foreign folder is a :class:`~adaptsim.errors.UserError`,
and so is one whose files are there but hold what ``adaptsim run`` never writes
(a column of the wrong type, a negative time, a duration that is not a number):
the report would otherwise fail half-way through its files or draw a wrong figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api import types

from adaptsim.errors import UserError
from adaptsim.files import load_json
from adaptsim.report.figures import STAGES

__all__ = [
    "RECORD_NEEDS",
    "SUMMARY_LABELS",
    "RunFolder",
    "check_records",
    "read_csv_file",
    "read_parquet_file",
    "read_run",
]

# What the report needs of the records; other columns are welcome and ignored.
RECORD_NEEDS = (
    "policy",
    "seed",
    "arrival_s",
    "point",
    "latency_s",
    "done_s",
    "deadline_met",
    *(column for column, _ in STAGES),
)
_META_NEEDS = ("scenario", "model", "duration_s", "deadline_s", "seeds")
_HOW = "re-create it with `adaptsim run SCENARIO --out DIR`"
# Seconds a frame spent (inf or NaN: it never got there); never negative.
_TIMES = ("latency_s", "done_s", *(column for column, _ in STAGES))
# summary.csv columns a report shows, by their headers (all but the policy hold numbers).
SUMMARY_LABELS = {
    "policy": "policy",
    "seeds": "seeds",
    "requests": "requests",
    "unfinished": "unfinished",
    "dropped": "dropped",
    "drop_rate": "drop rate",
    "mean_s": "mean (s)",
    "p50_s": "p50 (s)",
    "p95_s": "p95 (s)",
    "p99_s": "p99 (s)",
    "deadline_miss_rate": "deadline miss",
    "throughput_rps": "throughput (req/s)",
    "goodput_rps": "goodput (req/s)",
    "bytes_sent": "MB sent",
    "repartitions": "re-partitions",
    "switching_s": "switching (s)",
}


def _check_meta(meta: dict, path: Path) -> None:
    """run.json's facts the report computes with: of the types ``adaptsim run`` writes."""

    def bad(key: str, want: str) -> UserError:
        return UserError(f"{path}: {key} is {meta[key]!r}, not {want}; {_HOW}")

    for key in ("scenario", "model"):
        if not isinstance(meta[key], str):
            raise bad(key, "a name")
    for key in ("duration_s", "deadline_s"):
        v = meta[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise bad(key, "a positive number of seconds")
    seeds = meta["seeds"]
    if (
        not isinstance(seeds, list)
        or not seeds
        or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in seeds)
    ):
        raise bad("seeds", "a list of whole numbers >= 0")


def check_records(records: pd.DataFrame, path: Path, how: str = _HOW) -> None:
    """Per-frame records (``adaptsim run``'s, or a real run's in the same schema): the
    columns a report uses, present and of the types and ranges the runs write."""
    lacking = [c for c in RECORD_NEEDS if c not in records.columns]
    if lacking:
        raise UserError(f"{path}: not adaptsim run records (no column {', '.join(lacking)}); {how}")
    if records.empty:
        raise UserError(f"{path}: the run recorded no requests; {how}")

    def bad(column: str, want: str) -> UserError:
        return UserError(f"{path}: column {column} {want}; {how}")

    policy = records["policy"]
    if not (types.is_string_dtype(policy) or types.is_object_dtype(policy)) or not all(
        isinstance(p, str) and p for p in policy
    ):
        raise bad("policy", "must hold policy names")
    for column in ("seed", "point"):
        c = records[column]
        # a real run's frames that never reached the edge have no point: NaN, so float
        v = c.to_numpy(dtype=float) if types.is_float_dtype(c) and column == "point" else None
        whole = v is not None and bool(np.all(v[np.isfinite(v)] == np.round(v[np.isfinite(v)])))
        if not types.is_integer_dtype(c) and not whole:
            raise bad(column, f"must hold whole numbers, not {c.dtype}")
    if (records["seed"] < 0).any():
        raise bad("seed", "holds a negative seed")
    if not types.is_bool_dtype(records["deadline_met"]):
        raise bad("deadline_met", f"must hold true/false, not {records['deadline_met'].dtype}")
    for column in ("arrival_s", *_TIMES):
        c = records[column]
        if not types.is_numeric_dtype(c) or types.is_bool_dtype(c):
            raise bad(column, f"must hold seconds, not {c.dtype}")
        v = c.to_numpy(dtype=float)
        if (v < 0).any():
            raise bad(column, f"holds a negative time ({v[v < 0][0]:g} s)")
    arrival = records["arrival_s"].to_numpy(dtype=float)
    if not np.isfinite(arrival).all():
        raise bad("arrival_s", "holds a missing or infinite arrival time")


def read_parquet_file(path: Path, how: str = _HOW) -> pd.DataFrame:
    """A Parquet file adaptsim wrote, or one line saying it is missing or damaged."""
    if not path.is_file():
        raise UserError(f"{path}: missing or not a file; {how}")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: truncated or not Parquet ({first}); {how}") from None


def read_csv_file(path: Path, how: str = _HOW, needs: tuple[str, ...] = ("policy",)):
    """A CSV table adaptsim wrote (one row per policy), or one line saying why not."""
    if not path.is_file():
        raise UserError(f"{path}: missing or not a file; {how}")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise UserError(f"{path}: unreadable ({first}); {how}") from None
    lacking = [c for c in needs if c not in table.columns]
    if lacking:
        raise UserError(f"{path}: no {', '.join(lacking)} column; {how}")
    return table


def _check_summary(summary: pd.DataFrame, path: Path) -> None:
    for column in list(SUMMARY_LABELS)[1:]:
        if column in summary.columns:
            c = summary[column]
            as_number = pd.to_numeric(c, errors="coerce")
            if types.is_bool_dtype(c) or (as_number.isna() & c.notna()).any():
                raise UserError(f"{path}: column {column} must hold numbers; {_HOW}")


@dataclass(frozen=True)
class RunFolder:
    """A results folder's contents, checked."""

    path: Path
    records: pd.DataFrame
    summary: pd.DataFrame
    meta: dict


def read_run(folder: str | Path) -> RunFolder:
    """Read and check a results folder (see the module docstring)."""
    d = Path(folder)
    if not d.exists():
        raise UserError(f"{d}: no such results folder; {_HOW}")
    if not d.is_dir():
        raise UserError(f"{d}: is a file, not a results folder; {_HOW}")
    need = ["records.parquet", "summary.csv", "run.json"]
    missing = [n for n in need if not (d / n).is_file()]
    if missing:
        raise UserError(
            f"{d}: not an adaptsim results folder (missing {', '.join(missing)}); {_HOW}"
        )
    try:
        meta = load_json(d / "run.json", "run facts")
    except UserError as exc:
        raise UserError(f"{exc}; {_HOW}") from None
    if not isinstance(meta, dict) or any(k not in meta for k in _META_NEEDS):
        raise UserError(
            f"{d / 'run.json'}: not written by `adaptsim run` (needs "
            f"{', '.join(_META_NEEDS)}); {_HOW}"
        )
    _check_meta(meta, d / "run.json")
    records = read_parquet_file(d / "records.parquet")
    check_records(records, d / "records.parquet")
    summary = read_csv_file(d / "summary.csv")
    _check_summary(summary, d / "summary.csv")
    return RunFolder(d, records, summary, meta)
