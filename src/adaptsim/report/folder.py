"""Reading a results folder written by ``adaptsim run``, or saying in one line why not.

A results folder holds ``records.parquet`` (one row per frame), ``summary.csv``
(one row per policy) and ``run.json`` (the scenario's facts). Folders from older
versions (no ``finished`` column, no ``errors`` in run.json) are read as they are;
a missing, truncated or foreign folder is a :class:`~adaptsim.errors.UserError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from adaptsim.errors import UserError
from adaptsim.report.figures import STAGES

__all__ = ["RECORD_NEEDS", "RunFolder", "read_run"]

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
        meta = json.loads((d / "run.json").read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{d / 'run.json'}: not valid JSON ({exc}); {_HOW}") from None
    if not isinstance(meta, dict) or any(k not in meta for k in _META_NEEDS):
        raise UserError(
            f"{d / 'run.json'}: not written by `adaptsim run` (needs "
            f"{', '.join(_META_NEEDS)}); {_HOW}"
        )
    try:
        records = pd.read_parquet(d / "records.parquet")
    except Exception as exc:  # pyarrow raises several types for a damaged file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"{d / 'records.parquet'}: truncated or not Parquet ({first}); {_HOW}"
        ) from None
    lacking = [c for c in RECORD_NEEDS if c not in records.columns]
    if lacking:
        raise UserError(
            f"{d / 'records.parquet'}: not adaptsim run records (no column "
            f"{', '.join(lacking)}); {_HOW}"
        )
    if records.empty:
        raise UserError(f"{d}: the run recorded no requests; {_HOW}")
    try:
        summary = pd.read_csv(d / "summary.csv")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{d / 'summary.csv'}: unreadable ({exc}); {_HOW}") from None
    if "policy" not in summary.columns:
        raise UserError(f"{d / 'summary.csv'}: no policy column; {_HOW}")
    return RunFolder(d, records, summary, meta)
