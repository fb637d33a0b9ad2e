"""``adaptsim run``, ``report`` and ``bench``: simulate scenarios and report on them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from adaptsim.cli.app import OutputFormat, app, emit, err, guard


def _summary_table(summary) -> None:
    from adaptsim.report.build import pretty_summary

    emit(pretty_summary(summary), OutputFormat.table, "policy comparison (all seeds pooled)")


@app.command()
@guard
def run(
    scenario: Annotated[Path, typer.Argument(help="A scenario YAML file.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Results folder (default results/NAME).")
    ] = None,
    report: Annotated[bool, typer.Option(help="Also write report.html and report.md.")] = False,
    duration: Annotated[
        float | None, typer.Option(help="Simulate only this many seconds (a quick look).")
    ] = None,
    seeds: Annotated[
        list[int] | None, typer.Option("--seed", help="Override the scenario's seeds.")
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option(help="A calibration that replaces the scenario's.")
    ] = None,
) -> None:
    """Simulate the scenario's policies over its traces and compare them."""
    from rich.progress import Progress

    from adaptsim.simulator import load_scenario, run_scenario, write_results

    if calibration is not None:
        from adaptsim.testbed.scenario import load_with_calibration

        sc = load_with_calibration(scenario, calibration)
    else:
        sc = load_scenario(scenario)
    if duration is not None or seeds:
        sc = sc.shortened(duration or sc.duration_s, tuple(seeds) if seeds else None)
    target = out or Path("results") / sc.name
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(f"simulating {sc.name}", total=len(sc.policies) * len(sc.seeds))
        results = run_scenario(
            sc,
            progress=lambda name, done, total: bar.update(
                task, completed=done, description=f"{sc.name}: {name}"
            ),
        )
    if results.records.empty:
        err.print("adaptsim: interrupted before any run finished; nothing written", markup=False)
        raise typer.Exit(130)
    write_results(results, target)
    _summary_table(results.summary)
    n = len(results.records)
    err.print(f"{n} requests simulated in {results.wall_s:.2f} s; wrote {target}", markup=False)
    if report:
        from adaptsim.report import build_report

        paths = build_report(target)
        err.print(f"report: {paths[0]}", markup=False)
    if results.interrupted:
        err.print("adaptsim: interrupted; the runs that finished were written", markup=False)
        raise typer.Exit(130)


@app.command("report")
@guard
def report_cmd(
    results: Annotated[Path, typer.Argument(help="A results folder from `adaptsim run`.")],
) -> None:
    """Build report.html and report.md (CDF, timeline, summary) from a results folder."""
    import pandas as pd

    from adaptsim.report import build_report

    paths = build_report(results)
    _summary_table(pd.read_csv(results / "summary.csv"))
    err.print(f"wrote {paths[0]} and {paths[1]}", markup=False)


@app.command()
@guard
def bench(
    repeats: Annotated[int, typer.Option(min=1, help="Runs of each engine.")] = 3,
) -> None:
    """Simulated requests per second: the fast engine vs a naive SimPy one, side by side."""
    from adaptsim.simulator.bench import bench as run_bench

    result = run_bench(repeats, progress=lambda r, n: err.print(f"  repeat {r}/{n}", markup=False))
    sys.stdout.write(json.dumps(result, indent=1) + "\n")
