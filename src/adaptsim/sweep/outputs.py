"""The end of a sweep: sweep_summary.csv, sweep.json and the report, from what is written.

Only the plan's own runs count (a folder may still hold runs of an earlier
version of the sweep file; their ids differ, so they are left out, not mixed in).
Written after an interrupt too, from the runs that finished, and marked so.
"""

from __future__ import annotations

import json
from pathlib import Path

from adaptsim.atomic import write_together
from adaptsim.sweep.plan import Plan
from adaptsim.sweep.report import build_sweep_report
from adaptsim.sweep.runner import SweepOutcome
from adaptsim.sweep.store import read_runs
from adaptsim.sweep.summary import per_run_gains, summarise_sweep

__all__ = ["write_outputs"]


def write_outputs(
    plan: Plan, out: Path, outcome: SweepOutcome | None = None, report: bool = True
) -> list[Path]:
    """sweep_summary.csv, sweep.json and (``report``) report.md and report.html into ``out``."""
    runs = read_runs(out)
    if not runs.empty:
        runs = runs[runs["run_id"].isin({r.run_id for r in plan.runs})]
    summary = summarise_sweep(
        runs, plan.field_names, plan.sweep_seed, [v.label for v in plan.variants]
    )
    gains = per_run_gains(runs, plan.field_names) if not runs.empty else runs
    failed = int(runs["error"].notna().sum()) if not runs.empty else 0
    facts = {
        "name": plan.name,
        "source": plan.source,
        "sweep_seed": plan.sweep_seed,
        "runs_total": len(plan.runs),
        "runs_ok": len(runs) - failed,
        "runs_failed": failed,
        "cells": len(plan.cells),
        "policies": [v.label for v in plan.variants],
        "fields": plan.field_names,
        "replicates": len({r.replicate for r in plan.runs}),
        "notes": plan.notes,
    }
    if outcome is not None:
        facts.update(
            {
                "interrupted": outcome.interrupted,
                "wall_s": round(outcome.wall_s, 3),
                "workers": outcome.workers,
                "this_call": {
                    "done": outcome.done,
                    "failed": outcome.failed,
                    "skipped": outcome.skipped,
                },
            }
        )
    paths = write_together(  # the summary and its facts: both of this call, or both older
        {
            out / "sweep_summary.csv": lambda p: summary.to_csv(p, index=False),
            out / "sweep.json": lambda p: p.write_text(json.dumps(facts, indent=1, default=str)),
        }
    )
    if report and not summary.empty:
        paths.extend(build_sweep_report(out, summary, gains, facts))
    return paths
