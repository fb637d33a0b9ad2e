"""Where a validation's uplink misses: each real transfer against the link law, beside the twin's.

For a saved validation folder (read only, no real run): each frame's uplink service
divided by the calibration's link law for its payload, integrated through the
bandwidth trace from the moment it started sending, noise-free (``law``). The
same ratio for the twin's frames over its noise draws, so the two spreads are
compared directly; per stage (uplink wait, uplink service, cloud, end to end) the
mean and p95 measured and simulated (the median over the draws); the ratio per
bandwidth at the transfer's start and per number of rate changes it crossed (are
rate changes modelled as tc applies them?); and, over every policy, the ratio per
point and payload beside the calibration's link quantiles for that point.

``python benchmarks/uplink_spread.py FOLDER [POLICY] [DRAWS]`` (default all-cloud,
9). Results: docs/validation.md, "The twin's uplink spread".
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.simulator.engine import Tables
from adaptsim.simulator.link import Link
from adaptsim.testbed.scenario import twin_scenario
from adaptsim.testbed.twin import twin_draws

STAGES = ("uplink_wait_s", "uplink_s", "cloud_wait_s", "cloud_s", "latency_s")
QUANTILES = (0.05, 0.5, 0.95, 1.0)


def with_law(sc, records: pd.DataFrame) -> pd.DataFrame:
    """``records`` (frames that sent something) with ``start_s``, ``law_s``, ``ratio``
    (uplink_s / law_s), ``bw_mbps`` at the start and ``changes`` (rate changes crossed)."""
    tables, link = Tables(sc), Link(sc.bandwidth)
    ordinals = sc.model.ordinals.tolist()
    steps = np.asarray(sc.bandwidth.times)
    d = records[(records["payload_bytes"] > 0) & np.isfinite(records["latency_s"])].copy()
    start = d["arrival_s"] + d["edge_wait_s"] + d["edge_s"] + d["uplink_wait_s"]
    law = []
    for ls, point in zip(start, d["point"], strict=True):
        k = ordinals.index(int(point))
        _, over, wire, host = tables.lists(sc.edge_cpu.at(ls), sc.edge_mem.at(ls))
        law.append(max(link.finish(ls + over[k], wire[k]), ls + host[k]) - ls)
    d["start_s"], d["law_s"] = start, law
    d["ratio"] = d["uplink_s"] / d["law_s"]
    d["bw_mbps"] = [sc.bandwidth.at(t) for t in start]
    d["changes"] = [int(((steps > s) & (steps < s + u)).sum())
                    for s, u in zip(start, d["uplink_s"], strict=True)]  # fmt: skip
    return d


def _q(x) -> str:
    return " / ".join(f"{v:.3f}" for v in np.quantile(np.asarray(x, dtype=float), QUANTILES))


def main(folder: Path, policy: str, draws: int) -> None:
    sc = twin_scenario(folder)
    real = pd.read_parquet(folder / "real" / "records.parquet")
    twins = [t.records.assign(draw=k) for k, t in enumerate(twin_draws(sc, draws))]
    mine = with_law(sc, real[real["policy"] == policy])
    sim = pd.concat(with_law(sc, t[t["policy"] == policy]) for t in twins)
    print(f"{folder} {policy}: {len(mine)} real frames, {draws} twin draws")
    print(f"uplink / law, p05 / p50 / p95 / max: real {_q(mine['ratio'])}; twin {_q(sim['ratio'])}")
    rows = []
    for s in STAGES:
        per_draw = sim.groupby("draw")[s]
        rows.append({"stage": s, "real_mean_ms": 1e3 * mine[s].mean(),
                     "twin_mean_ms": 1e3 * per_draw.mean().median(),
                     "real_p95_ms": 1e3 * mine[s].quantile(0.95),
                     "twin_p95_ms": 1e3 * per_draw.quantile(0.95).median()})  # fmt: skip
    print(pd.DataFrame(rows).round(1).to_string(index=False))
    for key in ("bw_mbps", "changes"):
        by = mine.groupby(pd.cut(mine[key], [-1, 0, 1, 2, 5, 10, 20, 50, 1e9]), observed=True)
        print(by["ratio"].describe()[["count", "50%", "max"]].round(3).to_string())
    cal = sc.model.spread.get("comm") or {"probs": [0, 1], "log_ratio": [0, 0]}
    rows = []
    for (point, payload), g in with_law(sc, real).groupby(["point", "payload_bytes"]):
        lr = cal.get("by_point", {}).get(str(int(point)), cal["log_ratio"])
        law_q = np.exp(np.interp([0.05, 0.5, 0.95], cal["probs"], lr))
        rows.append({"point": int(point), "payload_kB": payload / 1e3, "frames": len(g),
                     "real p05/p50/p95/max": _q(g["ratio"]),
                     "calibration p05/p50/p95": " / ".join(f"{v:.3f}" for v in law_q)})  # fmt: skip
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    if not 2 <= len(sys.argv) <= 4:
        sys.exit("usage: python benchmarks/uplink_spread.py FOLDER [POLICY] [DRAWS]")
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "all-cloud",
         int(sys.argv[3]) if len(sys.argv) > 3 else 9)  # fmt: skip
