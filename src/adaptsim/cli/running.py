"""``adaptsim run``, ``report`` and ``bench``: simulate scenarios and report on them."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from adaptsim.cli.app import OutputFormat, app, emit, err, guard, progress_bar
from adaptsim.errors import UserError


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
    """Simulate the scenario's policies over its traces and compare them.

    Everything checkable is checked before simulating (the scenario, the
    overrides, --out). The results folder is built beside its target and
    swapped in whole at the end: it is the previous one or the new one, never a
    mix. A policy that fails stops its own runs; the others are kept and written,
    and the command exits with 2.
    """
    from adaptsim.simulator import load_scenario, run_scenario, write_results
    from adaptsim.simulator.results import results_folder

    sc = load_scenario(scenario, calibration).overridden(duration, tuple(seeds) if seeds else None)
    target = out or Path("results") / sc.name
    where = "--out" if out else "results folder"
    with results_folder(target, make_parent=out is None, what=where) as staged:
        with progress_bar() as bar:
            task = bar.add_task(f"simulating {sc.name}", total=len(sc.policies) * len(sc.seeds))
            results = run_scenario(
                sc,
                progress=lambda name, done, total: bar.update(
                    task, completed=done, description=f"{sc.name}: {name}"
                ),
            )
        if results.runs.empty:
            for line in results.errors[:-1]:
                err.print(f"adaptsim: error: {line}", markup=False, highlight=False)
            if results.errors:
                raise UserError(results.errors[-1])
            err.print(
                "adaptsim: interrupted before any run finished; nothing written", markup=False
            )
            raise typer.Exit(130)
        write_results(results, staged.path)
        report_error = verdict = None
        if report:
            from adaptsim.report import run_report

            try:
                verdict = run_report(staged.path, final_dir=target)[1]
            except UserError as exc:  # the runs are kept; the report is what failed
                report_error = f"no report: {exc}"
            except Exception as exc:  # a bug in the report must not cost the simulation
                why = " ".join(str(exc).split())[:200]
                report_error = (
                    f"no report: it failed ({type(exc).__name__}: {why}); this is a bug in "
                    "adaptsim, please report it with the results folder"
                )
        staged.commit()
    _summary_table(results.summary)
    if verdict is not None:
        err.print(verdict.sentence, markup=False)
    _hedge_notes(results)
    _censored_notes(results)
    n = len(results.records)
    err.print(f"{n} requests simulated in {results.wall_s:.2f} s; wrote {target}", markup=False)
    if report and report_error is None:
        err.print(f"report: {target / 'report.html'}", markup=False)
    if results.interrupted:
        err.print("adaptsim: interrupted; the runs that finished were written", markup=False)
        raise typer.Exit(130)
    problems = [*results.errors, *([report_error] if report_error else [])]
    for line in problems[:-1]:
        err.print(f"adaptsim: error: {line}", markup=False, highlight=False)
    if problems:
        raise UserError(f"{problems[-1]} (the runs that finished are in {target})")


def _hedge_notes(results) -> None:
    """In a scenario that hedges, per hedged policy: what it raced, what the losers cost, and
    its gap closed against both oracles (the paying one is no bound for a racer)."""
    s = results.summary
    if results.scenario.hedge is None or s.empty or "raced_share" not in s:
        return
    err.print(
        f"hedge ({results.scenario.hedge.describe()}): gap closed in mean latency against the "
        "paying oracle, which is no bound for a hedged policy (its second path pays no switch "
        "pause), and against oracle-free (one point per frame, moving free) beside it:",
        markup=False,
    )
    race = "gap_closed_vs_oracle_race_mean_s" in s

    def gap(v: float) -> str:
        return f"{v:.2f}" if math.isfinite(v) else "- (no gap)"

    for row in s[~s["hedge"].str.startswith("none")].itertuples(index=False):
        if row.policy == "oracle-race":
            continue
        vs_race = f", {gap(row.gap_closed_vs_oracle_race_mean_s)} vs oracle-race" if race else ""
        err.print(
            f"  {row.policy}: {gap(row.gap_closed_vs_oracle_mean_s)} vs oracle, "
            f"{gap(row.gap_closed_vs_oracle_free_mean_s)} vs oracle-free{vs_race}; raced "
            f"{100 * row.raced_share:.0f} % of frames, +{1e3 * row.extra_edge_s_per_frame:.0f} "
            f"ms edge CPU and +{row.extra_uplink_bytes_per_frame / 1e3:.1f} kB uplink a frame",
            markup=False,
        )


def _censored_notes(results) -> None:
    """Say, per policy, how many frames never finished and that its statistics are censored."""
    s = results.summary
    if s.empty or "unfinished" not in s:
        return
    stall = results.scenario.bandwidth.zero_from()
    why = (
        f" (the uplink's bandwidth is 0 from t = {stall:g} s on)"
        if stall is not None and stall < results.scenario.duration_s
        else ""
    )
    from adaptsim.simulator.results import saturation_warnings

    for line in saturation_warnings(s):
        err.print(f"adaptsim: warning: {line}", markup=False, highlight=False)
    for row in s[s["unfinished"] > 0].itertuples(index=False):
        err.print(
            f"adaptsim: warning: {row.policy}: {row.unfinished} of {row.requests} frames "
            f"({100 * row.unfinished_share:.1f} %) never finished{why}; they count as "
            "deadline misses and its latency statistics cover finished frames only (censored)",
            markup=False,
            highlight=False,
        )


@app.command("report")
@guard
def report_cmd(
    results: Annotated[
        Path,
        typer.Argument(help="A results folder from `adaptsim run` (or `adaptsim validate`'s)."),
    ],
) -> None:
    """Build report.html and report.md (verdict, CDF, timeline, stages) from a results folder."""
    import pandas as pd

    from adaptsim.report import run_report

    if (results / "validation.json").is_file():  # a validation folder: its own report
        from adaptsim.testbed.report import write_validation_report

        html, md = write_validation_report(results)
        err.print(f"wrote {html} and {md}", markup=False)
        return
    paths, verdict = run_report(results)
    _summary_table(pd.read_csv(results / "summary.csv"))
    err.print(verdict.sentence, markup=False)
    for w in verdict.warnings:
        err.print(f"warning: {w}", markup=False)
    err.print(f"wrote {paths[0]} and {paths[1]}", markup=False)


@app.command()
@guard
def bench(
    repeats: Annotated[int, typer.Option(min=1, max=100, help="Runs of each engine.")] = 3,
) -> None:
    """Simulated requests per second: the fast engine vs a naive SimPy one, side by side.

    And the fast engine with each adaptive built-in (per wall- and per CPU-second).
    """
    from adaptsim.simulator.bench import bench as run_bench

    result = run_bench(repeats, progress=lambda r, n: err.print(f"  repeat {r}/{n}", markup=False))
    sys.stdout.write(json.dumps(result, indent=1) + "\n")
