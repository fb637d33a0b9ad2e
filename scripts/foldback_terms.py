"""The held-out run's twin error with each fold-back term on and off (no real run).

Usage: .venv/bin/python scripts/foldback_terms.py SEED1_DIR SEED2_DIR [DRAWS]

Fits the fold-back on SEED1 (against its twin simulated now, as
``adaptsim.testbed.rescore`` does) and scores the SEED2 twin against SEED2's saved
real run: before any fold-back, with the terms older than the conditions' lag and
the cloud's per-edge-CPU scale (fitted as before them: no lag known, so the scales
against the twin on time), with each of the two added alone, and with both.
Prints per variant and policy the mean and p95 errors (median over DRAWS noise
draws, 9 by default) and, from draw 0, the per-stage mean errors of edge compute,
uplink transfer and cloud compute, and the cloud's error per edge CPU stress level.

Where the folders probed their host's speed (adaptsim.testbed.host_speed), the fold-back
is fitted relative to seed 1's host speed and applied at each seed-2 policy run's own
(every variant above); two more rows: the twin at seed 2's probed host speed (no
fold-back) and both terms fitted without the probes (as before them).
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd

from adaptsim.errors import UserError, script_main
from adaptsim.simulator import run_scenario
from adaptsim.testbed import rescore
from adaptsim.testbed.compare import err_pct
from adaptsim.testbed.foldback import fit_foldback, folded_twin
from adaptsim.testbed.folder import fold_back_source, validation_records
from adaptsim.testbed.host_speed import probed_twin
from adaptsim.testbed.rescore import folder_speeds, twin_scenario
from adaptsim.testbed.twin import NOISE_DRAWS, compare_draws, twin_draws

STAGES = ("edge_s", "uplink_s", "cloud_s")


LAGS = [f"{k}_{w}_lag_s" for k in ("link", "cpu", "mem") for w in ("up", "down")]


def fit_as_before(seed1: Path, fresh: pd.DataFrame, sc) -> object:
    """The fold-back as fitted before the lag was known: the folder without its
    ``applied`` log (a copy: the folder is only read)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "seed1"
        copy.mkdir()
        (copy / "real").symlink_to((seed1 / "real").resolve())
        facts = json.loads((seed1 / "validation.json").read_text())
        (copy / "validation.json").write_text(json.dumps({**facts, "applied": {}}))
        return fit_foldback(copy, simulated=fresh, scenario=sc)


def variants(fb, old):
    return {
        "older terms only": replace(old, cloud_scale_by_cpu=()),
        "+ lag": replace(fb, cloud_scale_by_cpu=()),
        "+ cloud per edge CPU": replace(old, cloud_scale_by_cpu=fb.cloud_scale_by_cpu),
        "+ both": fb,
    }


def main(seed1: Path, seed2: Path, draws: int) -> None:
    fold_back_source(seed1, "SEED1_DIR")  # both folders checked before any simulation
    real_summary = rescore.real_summary(seed2)
    real = validation_records(seed2, "real", ("return_s", "edge_cpu_pct"))
    fit_sc = twin_scenario(seed1)
    fresh = run_scenario(fit_sc).records
    fb = fit_foldback(seed1, simulated=fresh, scenario=fit_sc)
    old = fit_as_before(seed1, fresh, fit_sc)
    lags = ", ".join(f"{k[:-6]} {getattr(fb, k):.3f}" for k in LAGS)
    print(f"fitted on {seed1}: lags (s) {lags}; cloud x{fb.cloud_scale:.3f}, per edge CPU "
          f"level {[(c, round(s, 3)) for c, s in fb.cloud_scale_by_cpu]}; edge per level "
          f"{[(c, round(s, 3)) for c, s in fb.edge_scale_by_cpu]} (without the lag: "
          f"{[(c, round(s, 3)) for c, s in old.edge_scale_by_cpu]})")  # fmt: skip
    sc = twin_scenario(seed2)
    speeds = folder_speeds(seed2, sc)
    rows, levels = [], []
    makers = {"no fold-back": lambda: twin_draws(sc, draws)}
    if speeds:
        print(f"seed 2's host speed per run (edge, cloud): "
              f"{ {k: tuple(round(x, 3) for x in v.factors()) for k, v in speeds.items()} }; "
              f"the fold-back is relative to it: {fb.host_relative}")  # fmt: skip
        makers["probed host speed"] = lambda: probed_twin(sc, speeds, draws)
    for k, v in variants(fb, old).items():
        makers[k] = lambda v=v: folded_twin(sc, v, speeds, draws)
    if fb.host_relative:
        plain = fit_foldback(seed1, simulated=fresh, scenario=fit_sc, host_speed=False)
        makers["+ both, without the probes"] = lambda: folded_twin(sc, plain, {}, draws)
    for name, make in makers.items():
        twins = make()
        comp = compare_draws(real_summary, twins)
        both = real.merge(twins[0].records, on=["policy", "seed", "request"], suffixes=("", "_sim"))
        for _, r in comp.iterrows():
            d = both[both["policy"] == r["policy"]]
            d = d[d["latency_s"] < float("inf")]
            row = {"variant": name, "policy": r["policy"], "mean_err_pct": r["mean_error_pct"],
                   "p95_err_pct": r["p95_error_pct"]}  # fmt: skip
            for s in STAGES:
                row[f"{s}_err_pct"] = err_pct(d[f"{s}_sim"].mean(), d[s].mean())
            rows.append(row)
        cloud = both[(both["cloud_s_sim"] > 0) & (both["latency_s"] < float("inf"))]
        for cpu, g in cloud.groupby("edge_cpu_pct"):
            err = err_pct(g["cloud_s_sim"].mean(), g["cloud_s"].mean())
            levels.append({"variant": name, "edge_cpu_pct_at_arrival": cpu, "frames": len(g),
                           "cloud_s_err_pct": err})  # fmt: skip
    out = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(out.round(1).to_string(index=False))
        print()
        print("median |error| over policies, per variant:")
        errors = out.drop(columns=["variant", "policy"]).abs()
        print(errors.groupby(out["variant"], sort=False).median().round(1).to_string())
        print()
        print("cloud compute error per edge CPU level (all policies' cloud frames, draw 0):")
        print(pd.DataFrame(levels).round(1).to_string(index=False))


def _draws(arg: str) -> int:
    try:
        draws = int(arg)
    except ValueError:
        draws = 0
    if draws < 1:
        raise UserError(f"DRAWS {arg}: give a positive whole number of noise draws, e.g. 9")
    return draws


def _main(argv: list[str]) -> None:
    if len(argv) not in (2, 3):
        raise UserError(__doc__.split("\n\n")[1])
    draws = _draws(argv[2]) if len(argv) == 3 else NOISE_DRAWS
    main(Path(argv[0]), Path(argv[1]), draws)


if __name__ == "__main__":
    script_main("foldback_terms", lambda: _main(sys.argv[1:]))
