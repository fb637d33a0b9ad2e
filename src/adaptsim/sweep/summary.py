"""sweep_summary.csv: one row per (trace, model, swept fields, policy and parameters).

For each metric (mean latency, p95 latency, deadline-miss rate): the mean over
seeds with a 95 % t interval, the paired difference to static-best in % of
static-best (paired t interval), and the gap closed between static-best and the
oracle (paired bootstrap), both from :mod:`adaptsim.scoring`, so the sweep prints
the same numbers a run report would for the same runs. Pairing is by seed within
a cell: every policy of a cell ran on the same seeds. Failed runs are counted
(``n_failed``) and left out; a seed where any policy of the cell failed is left
out of the paired numbers (``scoring`` pairs only seeds every policy ran).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from adaptsim.scoring import METRICS, STATIC_BEST, gap_closed, paired_difference

__all__ = ["cell_columns", "per_run_gains", "summarise_sweep"]

_POLICY_COLUMNS = ["policy", "policy_name", "params", "adaptive"]


def cell_columns(field_names: list[str]) -> list[str]:
    """The columns that name a cell: trace, model and the swept fields."""
    return ["trace", "model", *field_names]


def _mean_interval(x: np.ndarray) -> tuple[float, float, float]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return np.nan, np.nan, np.nan
    m = float(x.mean())
    if len(x) < 2:
        return m, np.nan, np.nan
    half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return m, m - half, m + half


def summarise_sweep(
    runs: pd.DataFrame,
    field_names: list[str],
    seed: int = 0,
    policy_order: list[str] | None = None,
) -> pd.DataFrame:
    """The sweep summary from the per-run rows (``seed`` seeds the bootstrap), cells
    sorted, policies in ``policy_order`` (the sweep file's) within each."""
    if runs.empty:
        return pd.DataFrame()
    keys = cell_columns(field_names)
    rng = np.random.default_rng(seed)
    rows = []
    for cell_key, cell in runs.groupby(keys, sort=True, dropna=False):
        ok = cell[cell["error"].isna()]
        per_seed = ok[["policy", "seed", *METRICS]].astype({m: float for m in METRICS})
        order = {p: i for i, p in enumerate(policy_order or [])}
        groups = sorted(cell.groupby("policy", sort=False), key=lambda kv: order.get(kv[0], 1e9))
        for policy, g in groups:
            good = g[g["error"].isna()]
            row = dict(zip(keys, cell_key, strict=True))
            row.update({c: g[c].iloc[0] for c in _POLICY_COLUMNS})
            row["n_seeds"] = int(good["seed"].nunique())
            row["n_failed"] = int(len(g) - len(good))
            for m in METRICS:
                est, lo, hi = _mean_interval(good[m].to_numpy(dtype=float))
                row.update({m: est, f"{m}_lo": lo, f"{m}_hi": hi})
            for m in METRICS:
                base = per_seed.loc[per_seed["policy"] == STATIC_BEST, m].mean()
                diff = paired_difference(per_seed, policy, STATIC_BEST, m)
                pct = 100.0 / base if base and np.isfinite(base) else np.nan
                row[f"{m}_vs_static_best_pct"] = diff.estimate * pct
                row[f"{m}_vs_static_best_pct_lo"] = diff.lo * pct
                row[f"{m}_vs_static_best_pct_hi"] = diff.hi * pct
                gap = gap_closed(per_seed, policy, m, rng)
                row[f"gap_closed_{m}"] = gap.estimate
                row[f"gap_closed_{m}_lo"] = gap.lo
                row[f"gap_closed_{m}_hi"] = gap.hi
            rows.append(row)
    return pd.DataFrame(rows)


def per_run_gains(runs: pd.DataFrame, field_names: list[str]) -> pd.DataFrame:
    """Every successful run with its gain over static-best of the same cell and seed:
    ``gain_pct`` = (static-best mean - run mean) / static-best mean x 100."""
    keys = [*cell_columns(field_names), "seed"]
    ok = runs[runs["error"].isna()]
    base = ok[ok["policy"] == STATIC_BEST][[*keys, "mean_s"]].rename(columns={"mean_s": "sb"})
    merged = ok.merge(base, on=keys, how="inner")
    merged["gain_pct"] = (merged["sb"] - merged["mean_s"]) / merged["sb"] * 100.0
    return merged.drop(columns="sb")
