"""The sweep's results on disk: a Parquet dataset partitioned by model, one file per batch.

Layout of a sweep folder::

    runs/model=<model>/part-<batch>.parquet     one row per run (summary, or its error)
    records/model=<model>/part-<batch>.parquet  per-request records (only with --records)
    sweep.json                                  what was swept, counts, wall time
    sweep_summary.csv, report.md, report.html   written at the end

A batch's files are written atomically when the batch comes back, so the folder
only ever holds whole batches: an interrupt loses only the runs in flight, and a
re-run reads the run ids already there and skips them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from adaptsim.atomic import write_atomic

__all__ = ["batch_id", "read_records", "read_runs", "write_batch"]

RUNS = "runs"
RECORDS = "records"


def batch_id(run_ids: list[str]) -> str:
    """A name for a batch's files that depends only on the runs it holds."""
    return hashlib.blake2b("\n".join(run_ids).encode(), digest_size=8).hexdigest()


def _write_partitioned(root: Path, frame: pd.DataFrame, name: str) -> None:
    for model, part in frame.groupby("model", sort=False):
        path = root / f"model={model}" / f"part-{name}.parquet"
        body = part.drop(columns="model")
        write_atomic(path, lambda p, body=body: body.to_parquet(p, index=False))


def write_batch(out: Path, runs: pd.DataFrame, records: pd.DataFrame | None, name: str) -> None:
    """Write one finished batch: its records first, then its runs (which mark it done)."""
    if records is not None and not records.empty:
        model_of = runs.set_index("run_id")["model"]
        records = records.assign(model=records["run_id"].map(model_of))
        _write_partitioned(out / RECORDS, records, name)
    _write_partitioned(out / RUNS, runs, name)


def _read(root: Path) -> pd.DataFrame:
    """Every part file under ``root``, with ``model`` from its folder name (files are
    read one by one, so batches whose columns differ in type still come together)."""
    frames = []
    for f in sorted(root.glob("model=*/part-*.parquet")) if root.is_dir() else []:
        part = pd.read_parquet(f)
        part.insert(0, "model", f.parent.name.removeprefix("model="))
        frames.append(part)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_runs(out: Path) -> pd.DataFrame:
    """Every run row written so far; where a run was written twice (a retried failure),
    its last successful row."""
    frame = _read(out / RUNS)
    if frame.empty:
        return frame
    ok = frame["error"].isna()
    frame = frame.assign(_ok=ok).sort_values("_ok", kind="stable")
    return frame.drop_duplicates("run_id", keep="last").drop(columns="_ok").sort_index()


def read_records(out: Path) -> pd.DataFrame:
    """Every per-request record written so far (with ``--records``)."""
    return _read(out / RECORDS)
