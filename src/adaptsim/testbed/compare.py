"""Holding the simulator to a real run: per policy, per stage, and the ranking.

The error of a statistic is ``(simulated - measured) / measured`` in percent:
positive when the simulator is pessimistic. Policies rank by mean latency; the
rankings agree when Kendall's tau is 1. Per stage (the waits and services of
edge, uplink and cloud) the mean seconds of both say where an error sits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, wilcoxon

from adaptsim.report.figures import STAGES as _RUN_STAGES

__all__ = [
    "SEPARATED_ALPHA",
    "STAGES",
    "compare_policies",
    "compare_stages",
    "err_pct",
    "ranking",
    "separated",
]

# the record columns of the run report's stages, in the order a frame meets them
STAGES = tuple(column for column, _ in _RUN_STAGES)
_STATS = (("mean_s", "mean"), ("p50_s", "p50"), ("p95_s", "p95"))


def err_pct(sim: float, real: float) -> float:
    """(simulated - measured) / measured in %; NaN where measured is 0 or not finite."""
    return float((sim - real) / real * 100.0) if real and np.isfinite(real) else np.nan


def compare_policies(real: pd.DataFrame, sim: pd.DataFrame) -> pd.DataFrame:
    """One row per policy: measured and simulated mean, p50, p95, miss rate, errors in %."""
    s = sim.set_index("policy")
    rows = []
    for _, r in real.iterrows():
        if r["policy"] not in s.index:
            continue
        t = s.loc[r["policy"]]
        row = {"policy": r["policy"], "frames": int(r["requests"])}
        for col, short in _STATS:
            row[f"measured_{short}_s"] = r[col]
            row[f"simulated_{short}_s"] = t[col]
            row[f"{short}_error_pct"] = err_pct(t[col], r[col])
        row["measured_miss_rate"] = r["deadline_miss_rate"]
        row["simulated_miss_rate"] = t["deadline_miss_rate"]
        row["miss_rate_diff"] = t["deadline_miss_rate"] - r["deadline_miss_rate"]
        row["measured_repartitions"] = r["repartitions"]
        row["simulated_repartitions"] = t["repartitions"]
        rows.append(row)
    return pd.DataFrame(rows)


def ranking(table: pd.DataFrame, real_records: pd.DataFrame | None = None) -> dict:
    """Both rankings by mean latency, whether they agree, and Kendall's tau.

    ``discordant_pairs``: pairs of policies the two order oppositely. Pairs the
    twin ties (policies that run the same split there) are not counted: tau is
    below 1 for them however good the model, since the real run orders them by
    its noise; ``same_but_ties`` is true when no pair is discordant.

    With the real run's records, ``separated_discordant_pairs`` counts only the
    discordant pairs whose measured order the run itself can tell: every policy
    serves the same frames, so a pair is separated when the paired per-frame
    latency differences (frames both finished) differ from zero by a Wilcoxon
    signed-rank test at :data:`SEPARATED_ALPHA`. Two policies 3 % apart over 30
    frames usually are not: a second real run could order them either way.
    """
    measured = table.sort_values("measured_mean_s")["policy"].tolist()
    simulated = table.sort_values("simulated_mean_s")["policy"].tolist()
    tau = np.nan
    if len(table) >= 2:
        tau = float(kendalltau(table["measured_mean_s"], table["simulated_mean_s"]).statistic)
    m = table["measured_mean_s"].to_numpy(dtype=float)
    t = table["simulated_mean_s"].to_numpy(dtype=float)
    names = table["policy"].tolist()
    pairs = [(i, j) for i in range(len(m)) for j in range(i + 1, len(m))
             if (m[i] - m[j]) * (t[i] - t[j]) < 0]  # fmt: skip
    out = {"measured": measured, "simulated": simulated, "same": measured == simulated,
           "kendall_tau": tau, "discordant_pairs": len(pairs),
           "same_but_ties": not pairs}  # fmt: skip
    if real_records is not None:
        out["separated_discordant_pairs"] = sum(
            separated(real_records, names[i], names[j]) for i, j in pairs
        )
    return out


SEPARATED_ALPHA = 0.05  # two-sided level of the paired test in :func:`separated`


def separated(records: pd.DataFrame, a: str, b: str) -> bool:
    """Whether the real run tells policies ``a`` and ``b`` apart: a Wilcoxon signed-rank
    test of their per-frame latency differences (the same seed and request, both
    finished) at :data:`SEPARATED_ALPHA`; fewer than 10 common frames cannot."""
    key = ["seed", "request"]
    one = records[records["policy"] == a].set_index(key)["latency_s"]
    two = records[records["policy"] == b].set_index(key)["latency_s"]
    diff = (one - two).dropna()
    diff = diff[np.isfinite(diff) & (diff != 0)]
    if len(diff) < 10:
        return False
    return bool(wilcoxon(diff.to_numpy(dtype=float)).pvalue < SEPARATED_ALPHA)


def compare_stages(real: pd.DataFrame, sim: pd.DataFrame) -> pd.DataFrame:
    """Mean seconds per policy and stage, measured vs simulated (finished frames only)."""
    rows = []
    for policy, r in real.groupby("policy", sort=False):
        t = sim[sim["policy"] == policy]
        if t.empty:
            continue
        r = r[np.isfinite(r["latency_s"])]  # finished frames only, on both sides
        t = t[np.isfinite(t["latency_s"])]
        for stage in (*STAGES, "latency_s"):
            m, s = float(r[stage].mean()), float(t[stage].mean())
            rows.append({"policy": policy, "stage": stage, "measured_s": m, "simulated_s": s,
                         "diff_s": s - m, "error_pct": err_pct(s, m)})  # fmt: skip
        if "return_s" in r:
            rows.append({"policy": policy, "stage": "return_s (real only)",
                         "measured_s": float(r["return_s"].mean()), "simulated_s": 0.0,
                         "diff_s": -float(r["return_s"].mean()), "error_pct": -100.0})  # fmt: skip
    return pd.DataFrame(rows)
