"""Score the adaptive built-ins on every shipped scenario: the table of issue 17.

For each scenario under ``scenarios/`` (its own policy list replaced by the
baselines and the adaptive built-ins with their defaults, plus the reactive
entry the scenario itself ships, if any), every policy runs on the scenario's
seeds, and :func:`adaptsim.scoring.score_policies` gives mean and p95 latency and
the share of the static-best -> oracle gap in mean latency each policy closes,
with its paired bootstrap 95 % interval over seeds.

Run: ``.venv/bin/python benchmarks/policy_scores.py [SCENARIO.yaml ...] [--seeds N]
[--calibration CAL.json]``
(prints a Markdown table, and the mean gap closed per policy over the scenarios).

Measured 2026-11-30 (shared 2-core machine, seeds 1..5, both in one session):
mean latency and gap closed, each cell "shipped calibration (residual spread,
pooled) / near-repeat spread per point, file-shared to one inference"
(``--calibration`` of the scratch file ``benchmarks/near_repeat_spread.py`` writes):

| scenario | static-best s | oracle s | neurosurg. | changept. | mpc | reactive |
| --- | --- | --- | --- | --- | --- | --- |
| busy_edge | 1.12/1.18 | 1.01/1.01 | 0.88/0.30 | 0.94/0.25 | 0.90/0.32 | 0.75/0.03 |
| combined | 1.83/2.28 | 1.82/1.81 | 0.00/0.00 | 0.00/0.00 | 0.00/0.00 | 0.00/0.00 |
| fcc_amazon | 3.65/3.67 | 3.26/3.34 | -0.08/0.05 | -0.08/0.05 | -0.08/0.05 | -0.08/-0.12 |
| norway_bus_1 | 1.02/1.11 | 0.98/0.98 | 0.97/0.71 | 0.96/0.70 | 0.85/0.69 | 0.67/0.32 |
| norway_car_3 | 3.72/3.67 | 3.15/3.27 | 0.26/0.14 | 0.30/0.14 | 0.21/0.14 | 0.26/-0.20 |
| norway_ferry_20 | 1.24/1.28 | 1.17/1.17 | 0.49/0.61 | 0.51/0.58 | 0.58/0.55 | 0.41/0.45 |
| norway_metro_2 | 0.68/0.43 | 0.31/0.32 | 1.00/1.01 | 1.00/1.02 | 1.00/1.01 | 0.99/0.82 |
| norway_train_1 | 1.24/1.30 | 1.14/1.14 | 0.41/0.65 | 0.35/0.56 | 0.35/0.55 | 0.14/0.42 |
| user_policy | 1.68/1.90 | 1.68/1.67 | 0.00/0.00 | 0.00/0.00 | 0.00/0.00 | 0.00/0.00 |
| vehicle_trace | 1.17/1.12 | 1.08/1.07 | 0.36/0.53 | 0.47/0.48 | 0.38/0.38 | 0.49/0.15 |

Six trace scenarios, mean gap closed (neurosurgeon / changepoint / mpc / reactive):
shipped 0.51 / 0.51 / 0.48 / 0.40; file-shared 0.53 / 0.51 / 0.50 / 0.28. Worst vs
static-best on the ten: shipped +0.88 % (FCC, all four); file-shared reactive
+2.27 % (norway_car_3) and +1.09 % (FCC), the other three never behind.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pandas as pd

from adaptsim.scoring import score_policies
from adaptsim.simulator import load_scenario, run_scenario
from adaptsim.simulator.scenario import PolicySpec

__all__ = [
    "ADAPTIVE",
    "BOUNDS",
    "EXPERIMENTAL",
    "policy_table",
    "score_scenario",
    "shipped_scenarios",
]

ROOT = Path(__file__).resolve().parent.parent
ADAPTIVE = ("reactive", "neurosurgeon", "mpc", "changepoint")
# Opt-in policies that are not built-ins (docs/policies.md says why), scored beside them.
EXPERIMENTAL = {"risk (experimental)": "adaptsim.simulator.risk:RiskAware"}
# The baseline, the oracle (pays the switch pause: the gap is against it) and the
# looser bound that switches free, for reference.
BOUNDS = ("static-best", "oracle", "oracle-free")


def shipped_scenarios() -> list[Path]:
    """Every scenario under scenarios/ (their own policy lists are replaced)."""
    return sorted((ROOT / "scenarios").glob("*.yaml"))


def score_scenario(
    path: Path, seeds: tuple[int, ...] | None = None, calibration: Path | None = None
) -> pd.DataFrame:
    """Mean, p95 and gap closed (mean latency) per policy of one scenario
    (``calibration`` replaces the scenario's own)."""
    sc = load_scenario(path, calibration)
    own = [s for s in sc.policies if s.policy == "reactive" and s.params]
    specs = [PolicySpec(policy=p) for p in (*BOUNDS, *ADAPTIVE)]
    specs += [PolicySpec(policy=p, label=label) for label, p in EXPERIMENTAL.items()]
    specs += [s.model_copy(update={"label": "reactive (scenario's params)"}) for s in own]
    sc = dataclasses.replace(sc, policies=tuple(specs), seeds=seeds or sc.seeds)
    out = policy_table(run_scenario(sc).records)
    out.insert(0, "scenario", sc.name)
    return out


def policy_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per policy: mean and p95 latency, the difference to static-best (%) and the gap
    closed in mean latency with its paired bootstrap 95 % interval."""
    wide = score_policies(records).pivot(index="policy", columns="metric")
    out = pd.DataFrame(
        {
            "mean_s": wide[("value", "mean_s")],
            "p95_s": wide[("value", "p95_s")],
            "vs_static_best_pct": wide[("vs_static_best_pct", "mean_s")],
            "gap_closed": wide[("gap_closed", "mean_s")],
            "gap_lo": wide[("gap_closed_lo", "mean_s")],
            "gap_hi": wide[("gap_closed_hi", "mean_s")],
        }
    )
    return out.reset_index()


def markdown(frame: pd.DataFrame) -> str:
    """A Markdown table (floats to 3 decimals), without optional dependencies."""
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in frame.values]
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + " --- |" * frame.shape[1]]
    return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", type=Path)
    ap.add_argument("--seeds", type=int, default=0, help="seeds 1..N instead of the scenario's")
    ap.add_argument(
        "--calibration", type=Path, default=None, help="a calibration instead of the scenarios'"
    )
    args = ap.parse_args()
    seeds = tuple(range(1, args.seeds + 1)) if args.seeds else None
    paths = args.scenarios or shipped_scenarios()
    table = pd.concat([score_scenario(p, seeds, args.calibration) for p in paths])
    print(markdown(table))
    adaptive = table[~table["policy"].isin(BOUNDS)]
    print()
    overall = adaptive.groupby("policy").agg(
        mean_gap_closed=("gap_closed", "mean"),
        worst_vs_static_best_pct=("vs_static_best_pct", "max"),
    )
    print(markdown(overall.reset_index()))


if __name__ == "__main__":
    main()
