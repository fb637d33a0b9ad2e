"""Re-score seed 2 of a `scripts/validate_shipped.sh` run with the current fold-back.

The fold-back is fitted on the seed-1 folder and the seed-2 twin re-simulated with
it, beside seed 2's saved real run: no new real run. Used when the fold-back's
model changes after the real runs were made (docs/validation.md).

Usage: .venv/bin/python scripts/rescore_foldback.py VALIDATION_OUT [SCENARIO ...]
(VALIDATION_OUT holds SCENARIO-seed1 and SCENARIO-seed2; default scenarios:
vehicle_trace busy_edge.) Prints a Markdown table per scenario.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from adaptsim.simulator import run_scenario
from adaptsim.testbed import scenario_for_testbed
from adaptsim.testbed.compare import compare_policies, ranking
from adaptsim.testbed.foldback import apply_foldback, fit_foldback

MEAN_PCT, P95_PCT = 10.0, 15.0


def rescore(out: Path, name: str) -> str:
    s1, s2 = out / f"{name}-seed1", out / f"{name}-seed2"
    facts = json.loads((s2 / "validation.json").read_text())
    real = pd.read_csv(s2 / "real" / "summary.csv")
    sc = scenario_for_testbed(
        facts["scenario"], facts["calibration"], facts["duration_s"], facts["time_scale"],
        tuple(facts["seeds"]), facts["rate_hz"], ["all", "neurosurgeon", "mpc", "changepoint"],
    )  # fmt: skip
    sc = replace(sc, policies=tuple(p for p in sc.policies if p.policy != "oracle"))
    fb = fit_foldback(s1)
    t = compare_policies(real, run_scenario(apply_foldback(sc, fb)).summary)
    met = (t["mean_error_pct"].abs() <= MEAN_PCT) & (t["p95_error_pct"].abs() <= P95_PCT)
    lines = [
        f"## {name}: seed 2 after the fold-back fitted on seed 1 (current code)",
        "",
        f"fold-back: {asdict(fb)}",
        "",
        "| policy | mean error | p95 error | targets met |",
        "| --- | --- | --- | --- |",
    ]
    for (_, r), ok in zip(t.iterrows(), met, strict=True):
        lines.append(f"| {r['policy']} | {r['mean_error_pct']:+.1f} % | "
                     f"{r['p95_error_pct']:+.1f} % | {'yes' if ok else 'no'} |")  # fmt: skip
    rk = ranking(t)
    lines += [
        "",
        f"targets met by {int(met.sum())} of {len(t)} policies; Kendall's tau "
        f"{rk['kendall_tau']:.2f}; {rk['discordant_pairs']} pairs ordered oppositely",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    for scenario in sys.argv[2:] or ["vehicle_trace", "busy_edge"]:
        print(rescore(folder, scenario))
