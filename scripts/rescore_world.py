"""Re-score saved validation folders with another calibration as the twin's world.

The twin is simulated again with CALIBRATION's times for the model (its world),
while its policies still predict with the calibration the real run gave them (as
the real run's policies did: :class:`~adaptsim.simulator.scenario.Belief`), and
compared with the folder's saved real run: no new real run, the folders only
read. Used to ask "would a profile of this host have predicted this run better
than the shipped one?" (docs/validation.md, docs/own_profiles/README.md).

Usage: .venv/bin/python scripts/rescore_world.py CALIBRATION FOLDER...
Prints a Markdown table per folder: per policy, measured and simulated mean and
p95, their errors in percent (median over the twin's noise draws).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

from adaptsim.errors import UserError
from adaptsim.simulator.scenario import Belief
from adaptsim.testbed.folder import scored_source
from adaptsim.testbed.rescore import real_summary
from adaptsim.testbed.scenario import scenario_for_testbed, twin_scenario
from adaptsim.testbed.twin import compare_draws, twin_draws


def rescore_world(calibration: Path, folder: Path) -> pd.DataFrame:
    """The folder's real run against its twin whose world is ``calibration``'s."""
    facts = scored_source(folder)  # checked before the simulation
    sc = twin_scenario(folder)
    other = scenario_for_testbed(facts["scenario"], calibration, facts["duration_s"],
                                 facts.get("time_scale", 1.0), tuple(facts["seeds"]),
                                 facts.get("rate_hz"), None)  # fmt: skip
    if other.model.model != sc.model.model:
        raise UserError(f"{calibration}: gave {other.model.model}, the run ran {sc.model.model}")
    belief = sc.belief or Belief(model=sc.model, pause_s=sc.pause_s)
    world = replace(sc, model=other.model, belief=belief)
    real = real_summary(folder)
    return compare_draws(real, twin_draws(world))


def _table(t: pd.DataFrame) -> list[str]:
    head = ("| policy | measured mean s | simulated mean s | mean error | measured p95 s "
            "| simulated p95 s | p95 error |")  # fmt: skip
    rows = [head, "| --- " * 7 + "|"]
    for r in t.itertuples():
        rows.append(f"| {r.policy} | {r.measured_mean_s:.3f} | {r.simulated_mean_s:.3f} | "
                    f"{r.mean_error_pct:+.1f} % | {r.measured_p95_s:.3f} | "
                    f"{r.simulated_p95_s:.3f} | {r.p95_error_pct:+.1f} % |")  # fmt: skip
    return rows


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: rescore_world.py CALIBRATION FOLDER...", file=sys.stderr)
        return 2
    cal = Path(argv[0])
    try:
        for folder in map(Path, argv[1:]):
            t = rescore_world(cal, folder)
            print("\n".join([f"## {folder}: the twin's world from {cal}", "", *_table(t), ""]))
    except UserError as exc:
        print(f"rescore_world: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
