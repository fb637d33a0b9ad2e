"""Running a plan on dask.distributed: batching, resuming, progress, Ctrl-C.

By default a ``LocalCluster`` with one single-threaded worker process per core
(the simulator is pure Python: threads would share one GIL); ``workers`` sets
how many; ``scheduler`` (``tcp://HOST:PORT``) uses an existing cluster instead.
Scheduling, retries and lost workers are Dask's: every task may be retried once.

Batch size: a Dask task costs about a millisecond of scheduler and transport
time, and a run of a shipped scenario costs tens of milliseconds, so a batch of
a few runs already makes the per-task cost negligible; but few big batches
balance badly across workers and lose more on Ctrl-C. The default aims at about
eight batches per worker (so the last ones even out the load), at most 50 runs a
batch (so progress moves and an interrupt loses little), and batches never mix
models (one Parquet partition per batch file). ``batch_size`` overrides it.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from adaptsim.atomic import check_writable_place
from adaptsim.errors import UserError
from adaptsim.sweep.execute import RunTask, run_batch
from adaptsim.sweep.plan import Plan, Run
from adaptsim.sweep.store import RUNS, batch_id, read_runs, write_batch

__all__ = [
    "SweepOutcome",
    "check_out",
    "check_workers",
    "choose_batch_size",
    "is_sweep_folder",
    "open_client",
    "pending_runs",
    "run_sweep",
]

MAX_BATCH = 50
BATCHES_PER_WORKER = 8


@dataclass
class SweepOutcome:
    total: int  # runs in the plan
    skipped: int  # already written before this call
    done: int  # written by this call (failed ones included)
    failed: int  # of those, runs that raised
    interrupted: bool
    wall_s: float
    workers: int


def choose_batch_size(n_runs: int, n_workers: int) -> int:
    """About ``BATCHES_PER_WORKER`` batches per worker, at most ``MAX_BATCH`` runs each."""
    if n_runs <= 0:
        return 1
    return max(1, min(MAX_BATCH, math.ceil(n_runs / (max(n_workers, 1) * BATCHES_PER_WORKER))))


MAX_WORKERS_PER_CORE = 4  # the simulator is single-threaded: more only takes memory


def check_workers(workers: int | None, scheduler: str | None) -> int | None:
    """``--workers`` checked before anything is made: with a scheduler, none; else 1 to
    :data:`MAX_WORKERS_PER_CORE` per core (each is a Python process of its own: a
    million would fork until the machine stops)."""
    if workers is None:
        return None
    if scheduler:
        raise UserError("--workers applies to the local cluster; with --scheduler leave it out")
    most = MAX_WORKERS_PER_CORE * (os.cpu_count() or 1)
    if not 1 <= workers <= most:
        raise UserError(
            f"--workers {workers}: give 1 to {most} ({MAX_WORKERS_PER_CORE} per core of this "
            "machine; a run is single-threaded, so more workers than cores only take memory)"
        )
    return workers


def is_sweep_folder(path: Path) -> bool:
    """An empty folder, or one a sweep wrote (its runs/ or sweep.json): the folders a
    sweep writes into (it resumes there) rather than scatter its files among others."""
    return not any(path.iterdir()) or (path / RUNS).is_dir() or (path / "sweep.json").is_file()


def check_out(out: Path, what: str = "--out") -> None:
    """The sweep folder checked before any run: a folder, not one of something else's, in a
    place that exists and can take it (the check makes nothing)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{what} {out} is a file; give a folder for the sweep")
    if out.is_dir() and not is_sweep_folder(out):
        raise UserError(
            f"{what} {out} is a folder that does not hold a sweep; give a new folder name "
            "(a sweep writes, and resumes, only in its own folder)"
        )
    check_writable_place(out, what)


def open_client(workers: int | None = None, scheduler: str | None = None):
    """A dask.distributed Client: on ``scheduler``, or on a new LocalCluster."""
    from distributed import Client, LocalCluster

    check_workers(workers, scheduler)
    if scheduler:
        try:
            return Client(scheduler, timeout="5s")
        except (OSError, TimeoutError) as exc:
            raise UserError(
                f"cannot reach the Dask scheduler at {scheduler} ({type(exc).__name__}); "
                "start one (`dask scheduler`) or leave --scheduler out for a local cluster"
            ) from None
    n = workers or os.cpu_count() or 1
    # Worker processes start with Ctrl-C ignored (inherited): Ctrl-C reaches the whole
    # foreground process group, and it is the driver's to handle (keep what finished,
    # close the cluster); workers would only print tracebacks as they die.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # No dashboard, but the scheduler still serves HTTP (health, metrics), by
            # default on port 8787: where another Dask already holds it, distributed
            # printed a 4-line "Port 8787 is already in use" UserWarning. Any free
            # port on loopback: nothing of ours reads it, and nothing outside sees it.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.ERROR,
        )
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    return Client(cluster)


def pending_runs(plan: Plan, out: Path, retry_failed: bool = False) -> list[Run]:
    """The plan's runs not yet written in ``out`` (failed ones too, if ``retry_failed``)."""
    done = read_runs(out)
    if done.empty:
        return list(plan.runs)
    keep = done[done["error"].isna()] if retry_failed else done
    written = set(keep["run_id"])
    return [r for r in plan.runs if r.run_id not in written]


def _batches(plan: Plan, runs: list[Run], size: int) -> list[list[Run]]:
    """Runs in plan order, cut into batches of ``size`` that never mix models."""
    by_model: dict[str, list[Run]] = {}
    for r in runs:
        by_model.setdefault(plan.cells[r.cell].model, []).append(r)
    return [g[i : i + size] for g in by_model.values() for i in range(0, len(g), size)]


def _tasks(plan: Plan, batch: list[Run]) -> list[RunTask]:
    return [
        RunTask(
            plan.coordinates(r),
            plan.cells[r.cell].doc_json,
            plan.variants[r.variant].spec(),
            r.seed,
        )
        for r in batch
    ]


def _lost(plan: Plan, batch: list[Run], exc: BaseException) -> pd.DataFrame:
    """Rows for a batch whose task failed as a whole (after Dask's retry)."""
    rows = []
    for r in batch:
        row = plan.coordinates(r)
        row["error"] = f"task failed: {type(exc).__name__}: {exc}"
        rows.append(row)
    return pd.DataFrame(rows)


def run_sweep(
    plan: Plan,
    out: Path,
    *,
    client=None,
    workers: int | None = None,
    scheduler: str | None = None,
    keep_records: bool = False,
    batch_size: int | None = None,
    retry_failed: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SweepOutcome:
    """Run every run of ``plan`` not yet in ``out``; each batch is written as it returns.

    ``progress(done, todo)`` is called as batches come back. Ctrl-C cancels what is
    in flight, keeps what was written and returns with ``interrupted`` set.
    """
    from distributed import as_completed

    t0 = time.perf_counter()
    check_workers(workers, scheduler)  # before the folder is made
    check_out(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create it ({exc.strerror})") from None
    todo = pending_runs(plan, out, retry_failed)
    skipped = len(plan.runs) - len(todo)
    own_client = client is None
    done = failed = 0
    interrupted = False
    n_workers = 0
    if not todo:
        return SweepOutcome(len(plan.runs), skipped, 0, 0, False, time.perf_counter() - t0, 0)
    if own_client:
        client = open_client(workers, scheduler)
    futures = []
    try:
        n_workers = len(client.scheduler_info().get("workers", {})) or (workers or 1)
        size = batch_size or choose_batch_size(len(todo), n_workers)
        batches = {}
        for batch in _batches(plan, todo, size):
            name = batch_id([r.run_id for r in batch])
            fut = client.submit(
                run_batch,
                _tasks(plan, batch),
                keep_records,
                key=f"adaptsim-sweep-{name}",
                retries=1,
                pure=False,
            )
            batches[fut.key] = (name, batch)
            futures.append(fut)
        if progress:
            progress(0, len(todo))
        for fut in as_completed(futures):
            name, batch = batches[fut.key]
            try:
                runs, records = fut.result()
            except Exception as exc:  # the task itself died (e.g. its worker, twice)
                runs, records = _lost(plan, batch, exc), None
            write_batch(out, runs, records, name)
            done += len(runs)
            failed += int(runs["error"].notna().sum())
            if progress:
                progress(done, len(todo))
    except KeyboardInterrupt:
        interrupted = True
        client.cancel(futures)
    finally:
        if own_client:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
    return SweepOutcome(
        len(plan.runs), skipped, done, failed, interrupted, time.perf_counter() - t0, n_workers
    )
