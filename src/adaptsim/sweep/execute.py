"""What a worker does: run a batch of runs and return small tables.

A task carries only JSON text (the cell's scenario document, the policy, the
seed) and coordinates; the worker reads the traces and the calibration itself, by
path, once per process: validated cell scenarios are kept in a small LRU cache
and calibrations in a per-process dict, so a calibration or trace is read once
per worker, never per run, and nothing read from a file crosses the wire.

Each run is :func:`adaptsim.simulator.run_policy` of the cell's scenario with
that one policy and seed, as ``adaptsim run`` runs it, and its summary row is
``adaptsim run``'s summary for it; with records kept it is
:func:`adaptsim.simulator.run_scenario` itself. Either way the records and the row
are the ones ``adaptsim run`` of the run's scenario gives (tested). A run that
raises is returned as a row with its error; the batch goes on.
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

from adaptsim.simulator import Scenario, run_policy, run_scenario, scenario_from_dict
from adaptsim.simulator.engine import Tables
from adaptsim.simulator.results import frame_stats
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
    "dropped",
    "drop_rate",
    "goodput_rps",
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
def _cell(cell_doc_json: str) -> tuple[Scenario, Tables]:
    """The cell's validated scenario and its calibration lookups, read (traces,
    calibration) once per worker process and shared by every run of the cell, as
    ``run_scenario`` shares them across a scenario's policies."""
    doc = json.loads(cell_doc_json)
    doc["policies"] = [{"policy": "static-best"}]  # each run puts its own in
    sc = scenario_from_dict(doc, "sweep cell", Path("/"), _CALIBRATIONS)
    return sc, Tables(sc)


def _summary_row(cols: dict, stats, sc: Scenario) -> dict[str, Any]:
    """The run's row of ``adaptsim run``'s summary, from the record columns
    (:func:`~adaptsim.simulator.results.frame_stats`: building a DataFrame per run
    would cost more than many runs themselves)."""
    row = frame_stats(
        cols["latency_s"],
        cols["done_s"],
        cols["payload_bytes"],
        sc.deadline_s,
        sc.duration_s,
        dropped=cols["dropped"],
    )
    row["repartitions"] = int(stats.repartitions)
    row["switching_s"] = float(stats.switching_s)
    return {k: row[k] for k in SUMMARY_COLUMNS}


def _one(task: RunTask, keep_records: bool) -> tuple[dict[str, Any], pd.DataFrame | None]:
    row = dict(task.coordinates)
    records = None
    t0 = time.perf_counter()
    try:
        sc, tables = _cell(task.cell_doc_json)
        spec = PolicySpec.model_validate(task.policy)
        if keep_records:  # exactly what ``adaptsim run`` does, records and all
            res = run_scenario(replace(sc, policies=(spec,), seeds=(task.seed,)))
            if res.errors:  # run_scenario keeps a failed run's error instead of raising
                raise RuntimeError("; ".join(res.errors))
            row.update(res.summary.iloc[0][list(SUMMARY_COLUMNS)].to_dict())
            records = res.records
            records.insert(0, "run_id", row["run_id"])
        else:
            cols, stats, _ = run_policy(sc, spec, task.seed, tables)
            row.update(_summary_row(cols, stats, sc))
        row["error"] = None
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
