"""Does the split matter on a slower edge? The twin alone, before any real run.

Scales the edge of a calibration (every edge block and per-point extra) by
``--factor`` (an edge under a CPU quota of 1/factor cores, as a first guess) and
simulates each named scenario as ``validate`` would run it (compressed traces,
shortened, the plan's rate, the protocol's policies, seed 1), printing per
policy: mean and p95 latency, the points it used, re-partitions, and how busy
each stage was (service seconds / run seconds; the validation protocol keeps
every stage below ~70 %). No TensorFlow, no root: seconds of CPU.

    .venv/bin/python scripts/slowedge_twin.py --factor 4 \
        norway_train_1:5:36:0.8 fcc_amazon_797466:5:36:0.3

(each scenario as NAME:TIME_SCALE:SECONDS_PER_POLICY:FRAMES_PER_SECOND).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from adaptsim.simulator import run_scenario
from adaptsim.testbed import scenario_for_testbed, select_policies

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ["all", "neurosurgeon", "mpc", "changepoint", "all-edge", "all-cloud"]


def scaled_calibration(src: Path, factor: float, out: Path, quota: float | None) -> Path:
    """A copy of ``src`` whose edge blocks and extras take ``factor`` times as long."""
    doc = json.loads(src.read_text())
    for m in doc["models"].values():
        for key in ("edge_block_s", "edge_extra_s"):
            m[key]["values"] = (np.asarray(m[key]["values"]) * factor).tolist()
    if quota is not None:
        doc["provenance"]["edge_cpu_quota"] = quota
    out.write_text(json.dumps(doc))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="+", help="NAME:TIME_SCALE:SECONDS:FRAMES_PER_S")
    ap.add_argument("--factor", type=float, default=4.0)
    ap.add_argument(
        "--calibration", type=Path, default=ROOT / "src/adaptsim/data/calibration_own_2core.json"
    )
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cal = args.calibration
        if args.factor != 1:
            cal = scaled_calibration(cal, args.factor, Path(tmp) / "scaled.json", None)
        for spec in args.scenarios:
            name, scale, seconds, rate = spec.split(":")
            path = ROOT / "scenarios" / f"{name}.yaml"
            sc = scenario_for_testbed(path, cal, float(seconds), float(scale), (args.seed,),
                                      float(rate), POLICIES)  # fmt: skip
            keep, _ = select_policies(sc, POLICIES)
            res = run_scenario(sc)
            rec, runs = res.records, res.runs
            real = {sc.policies[i].policy for i in keep}
            print(f"== {name} ({sc.model.model}) x{args.factor:g} edge: traces x{scale}, "
                  f"{seconds} s, {rate}/s, {len(rec) // max(1, rec['policy'].nunique())} "
                  "frames a policy")  # fmt: skip
            print(f"{'policy':14} {'mean_s':>7} {'p95_s':>7} {'edge%':>6} {'up%':>6} "
                  f"{'cloud%':>6} {'rep':>4}  points (share)")  # fmt: skip
            for pol, g in rec.groupby("policy", sort=False):
                busy = [g[c].fillna(0).sum() / float(seconds) * 100
                        for c in ("edge_s", "uplink_s", "cloud_s")]  # fmt: skip
                pts = g["point"].value_counts(normalize=True).head(4)
                rep = runs.loc[runs["policy"] == pol, "repartitions"].sum()
                mark = "" if any(pol == p or pol.startswith(p) for p in real) else " (twin only)"
                lat = g["latency_s"]
                used = ", ".join(f"{int(p)} ({s:.0%})" for p, s in pts.items())
                print(f"{pol:14} {lat.mean():7.3f} {lat.quantile(0.95):7.3f} {busy[0]:6.1f} "
                      f"{busy[1]:6.1f} {busy[2]:6.1f} {rep:4d}  {used}{mark}")  # fmt: skip


if __name__ == "__main__":
    main()
