"""What a worker does: run a batch of runs and return small tables.

A task carries only JSON text (the cell's scenario document, the policy, the
seed) and coordinates; the worker reads the traces and the calibration itself, by
path, once per process: validated cell scenarios are kept in a small LRU cache
and calibrations in a per-process dict, so a calibration or trace is read once
per worker, never per run, and nothing read from a file crosses the wire.

Each run is :func:`adaptsim.simulator.run_scenario` of the cell's scenario with
that one policy and seed: the same code ``adaptsim run`` runs, so the records and
the summary row are the ones ``adaptsim run`` of the run's scenario gives. A run
that raises is returned as a row with its error; the batch goes on.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from adaptsim.simulator import Scenario, run_scenario, scenario_from_dict
from adaptsim.simulator.scenario import PolicySpec

__all__ = ["SUMMARY_COLUMNS", "RunTask", "run_batch"]

# Per-run summary columns (the same as ``adaptsim run``'s summary.csv per policy).
SUMMARY_COLUMNS = (
    "requests",
    "mean_s",
    "p50_s",
    "p95_s",
    "p99_s",
    "deadline_miss_rate",
    "throughput_rps",
    "bytes_sent",
    "repartitions",
    "switching_s",
)

_CALIBRATIONS: dict = {}  # per worker process: calibration path -> Calibration


@dataclass(frozen=True)
class RunTask:
    """One run as a task carries it: JSON text and numbers, nothing read from a file."""

    coordinates: dict[str, Any]
    cell_doc_json: str
    policy: dict[str, Any]
    seed: int


@lru_cache(maxsize=32)
def _cell_scenario(cell_doc_json: str) -> Scenario:
    """The cell's validated scenario, read (traces, calibration) once per worker process."""
    doc = json.loads(cell_doc_json)
    doc["policies"] = [{"policy": "static-best"}]  # each run puts its own in
    return scenario_from_dict(doc, "sweep cell", Path("/"), _CALIBRATIONS)


def _one(task: RunTask, keep_records: bool) -> tuple[dict[str, Any], pd.DataFrame | None]:
    row = dict(task.coordinates)
    t0 = time.perf_counter()
    try:
        sc = _cell_scenario(task.cell_doc_json)
        run_sc = replace(sc, policies=(PolicySpec.model_validate(task.policy),), seeds=(task.seed,))
        res = run_scenario(run_sc)
        s = res.summary.iloc[0]
        row.update({c: s[c] for c in SUMMARY_COLUMNS})
        row["error"] = None
        records = None
        if keep_records:
            records = res.records
            records.insert(0, "run_id", row["run_id"])
    except Exception as exc:  # a run that raises is recorded; the sweep goes on
        last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" (at {Path(last.filename).name}:{last.lineno})" if last else ""
        row["error"] = f"{type(exc).__name__}: {exc}{at}"
        records = None
    row["wall_s"] = time.perf_counter() - t0
    return row, records


def run_batch(
    tasks: list[RunTask], keep_records: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Run every task in order; one summary row per run (and the records if asked)."""
    rows, recs = [], []
    for task in tasks:
        row, records = _one(task, keep_records)
        rows.append(row)
        if records is not None:
            recs.append(records)
    frame = pd.DataFrame(rows)
    records = pd.concat(recs, ignore_index=True) if recs else None
    return frame, records
