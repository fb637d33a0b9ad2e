"""``adaptsim sweep``: many runs on a Dask cluster (local by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adaptsim.cli.app import OutputFormat, app, emit, err, guard, progress_bar


def _sample(plan, n: int = 8):
    import numpy as np
    import pandas as pd

    pick = np.random.default_rng(0).choice(len(plan.runs), min(n, len(plan.runs)), replace=False)
    return pd.DataFrame([plan.coordinates(plan.runs[i]) for i in sorted(pick)])


def _dry_run(plan, out: Path) -> None:
    from adaptsim.sweep import read_runs

    traces = len({c.trace for c in plan.cells})
    models = len({c.model for c in plan.cells})
    reps = len({r.replicate for r in plan.runs})
    combos = len(plan.cells) // max(traces * models, 1)
    written = read_runs(out)
    have = set(written["run_id"]) if not written.empty else set()
    todo = sum(r.run_id not in have for r in plan.runs)
    print(
        f"{len(plan.runs)} runs in {len(plan.cells)} cells: {traces} traces x {models} models"
        f" x {combos} field combinations x {len(plan.variants)} policies x {reps} seeds;"
        f" {todo} still to run into {out}"
    )
    for note in plan.notes:
        print(f"note: {note}")
    emit(_sample(plan), OutputFormat.table, "a sample of the runs")


def _check_scheduler(address: str) -> None:
    """``--scheduler`` as PROTOCOL://HOST:PORT, checked before the plan is expanded."""
    from adaptsim.errors import UserError

    _, sep, rest = address.partition("://")
    host, colon, port = rest.rpartition(":")
    if not sep or not host or not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(
            f"--scheduler {address!r}: give the Dask scheduler's address as tcp://HOST:PORT, "
            "e.g. tcp://10.0.0.5:8786"
        )


@app.command()
@guard
def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="A sweep YAML file (see docs/sweep.md).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Results folder (default sweeps-out/NAME).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Local worker processes (default: one per core)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="An existing Dask scheduler, tcp://HOST:PORT, instead of a local one."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the number of runs and a sample; run none.")
    ] = False,
    records: Annotated[
        bool, typer.Option("--records", help="Also keep every run's per-request records.")
    ] = False,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Runs per Dask task (default: chosen, see docs).")
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Run again the runs that raised last time.")
    ] = False,
    show_run: Annotated[
        str | None,
        typer.Option(help="Print the scenario YAML of this run id (for `adaptsim run`)."),
    ] = None,
    report: Annotated[bool, typer.Option(help="Write report.md and report.html.")] = True,
) -> None:
    """Run a scenario over many traces, models, policies, parameters and seeds on Dask."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from adaptsim.errors import UserError
    from adaptsim.sweep import load_plan, run_sweep, write_outputs

    if scheduler is not None:
        _check_scheduler(scheduler)
    plan = load_plan(sweep_file)
    target = out or Path("sweeps-out") / plan.name
    if show_run is not None:
        import yaml

        run = next((r for r in plan.runs if r.run_id == show_run), None)
        if run is None:
            raise UserError(
                f"{sweep_file}: no run {show_run!r}; run ids are in runs/ and --dry-run"
            )
        doc = plan.run_doc(run)
        doc["name"] = f"{plan.name}-{run.run_id}"
        print(yaml.safe_dump(doc, sort_keys=False), end="")
        return
    if dry_run:
        _dry_run(plan, target)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with progress_bar(*columns) as bar:
        task = bar.add_task(f"sweep {plan.name}", total=None)
        outcome = run_sweep(
            plan,
            target,
            workers=workers,
            scheduler=scheduler,
            keep_records=records,
            batch_size=batch_size,
            retry_failed=retry_failed,
            progress=lambda done, todo: bar.update(task, completed=done, total=todo),
        )
    paths = write_outputs(plan, target, outcome, report=report)
    err.print(
        f"{outcome.done} runs done ({outcome.failed} failed), {outcome.skipped} already there, "
        f"of {outcome.total}; {outcome.wall_s:.1f} s on {outcome.workers} workers; wrote {target}",
        markup=False,
    )
    if paths[2:]:
        err.print(f"report: {paths[-1]}", markup=False)
    if outcome.interrupted:
        err.print("adaptsim: interrupted; the runs that finished were written", markup=False)
        raise typer.Exit(130)
