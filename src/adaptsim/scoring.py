"""Scoring policies against the baselines, paired across seeds, with 95 % intervals.

Every policy of a run sees the same seeds (common random numbers), so policies are
compared seed by seed: the difference to static-best per seed, and the share of
the static-best -> oracle gap a policy closes. Intervals are over seeds, so they
say how much the verdict would move with other seeds: a paired t interval for
differences, and a paired percentile bootstrap (seeds resampled, the same draw for
every policy) for the gap closed, a ratio whose t interval would be wrong. With
fewer than two seeds there is no interval (NaN, and ``n_seeds`` says why).

Used by the run report, the validation report and sweeps, so all three print the
same numbers for the same records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "METRICS",
    "ORACLE",
    "ORACLE_FREE",
    "ORACLE_RACE",
    "STATIC_BEST",
    "Interval",
    "gap_closed",
    "paired_difference",
    "per_seed_metrics",
    "score_policies",
]

STATIC_BEST = "static-best"
ORACLE = "oracle"  # pays the switch pause: the gap closed is against it
ORACLE_FREE = "oracle-free"  # switches free: a looser bound, never a policy to pick
ORACLE_RACE = "oracle-race"  # in a scenario that hedges, the oracle racing too
METRICS = ("mean_s", "p95_s", "deadline_miss_rate")
_BOOTSTRAP_DRAWS = 2000


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95 % interval (NaN bounds when it has none)."""

    estimate: float
    lo: float
    hi: float


def per_seed_metrics(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (policy, seed): mean and p95 latency of the finished frames, miss rate.

    A frame that never finished (infinite or missing latency) counts as a deadline
    miss and is left out of the latency statistics.
    """
    lat = records["latency_s"].astype(float)
    finished = np.isfinite(lat)
    met = records["deadline_met"].astype(bool) & finished
    frame = pd.DataFrame(
        {
            "policy": records["policy"],
            "seed": records["seed"],
            "latency_s": lat.where(finished),
            "missed": ~met,
        }
    )
    g = frame.groupby(["policy", "seed"], sort=False)
    return pd.DataFrame(
        {
            "mean_s": g["latency_s"].mean(),
            "p95_s": g["latency_s"].quantile(0.95),
            "deadline_miss_rate": g["missed"].mean(),
        }
    ).reset_index()


def _wide(per_seed: pd.DataFrame, metric: str) -> pd.DataFrame:
    """seeds x policies, only seeds every policy ran (so comparisons stay paired)."""
    return per_seed.pivot(index="seed", columns="policy", values=metric).dropna()


def paired_difference(per_seed: pd.DataFrame, policy: str, baseline: str, metric: str) -> Interval:
    """Mean over seeds of ``policy - baseline`` in ``metric``, with a paired t interval."""
    w = _wide(per_seed, metric)
    if policy not in w or baseline not in w or w.empty:
        return Interval(np.nan, np.nan, np.nan)
    d = (w[policy] - w[baseline]).to_numpy()
    est = float(d.mean())
    if len(d) < 2:
        return Interval(est, np.nan, np.nan)
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return Interval(est, est - half, est + half)


def _gap(sb: np.ndarray, o: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The gap closed of seed means along the last axis (NaN where there is no gap)."""
    sb, o, p = sb.mean(axis=-1), o.mean(axis=-1), p.mean(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sb != o, (sb - p) / (sb - o), np.nan)


def gap_closed(
    per_seed: pd.DataFrame,
    policy: str,
    metric: str,
    rng: np.random.Generator | None = None,
    oracle: str = ORACLE,
) -> Interval:
    """(static-best - policy) / (static-best - oracle) of the seed means, bootstrap interval.

    1 means the policy did as well as the oracle, 0 as well as static-best, below 0
    worse than static-best. NaN where the oracle does not beat static-best at all
    (there is no gap to close). ``oracle``: the paying oracle, or ``oracle-free`` (the
    yardstick of a hedged policy, whose second path pays no switch pause either).
    Without ``rng`` only the estimate (no bootstrap).
    """
    w = _wide(per_seed, metric)
    if w.empty or not {policy, STATIC_BEST, oracle} <= set(w.columns):
        return Interval(np.nan, np.nan, np.nan)
    sb, o, p = (w[c].to_numpy() for c in (STATIC_BEST, oracle, policy))
    est = float(_gap(sb, o, p))
    if rng is None or len(w) < 2 or not np.isfinite(est):
        return Interval(est, np.nan, np.nan)
    idx = rng.integers(0, len(w), size=(_BOOTSTRAP_DRAWS, len(w)))
    boot = _gap(sb[idx], o[idx], p[idx])
    boot = boot[np.isfinite(boot)]
    if len(boot) < _BOOTSTRAP_DRAWS // 2:
        return Interval(est, np.nan, np.nan)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return Interval(est, float(lo), float(hi))


def score_policies(records: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per policy and metric: its value, the paired difference to static-best (absolute
    and in % of static-best), the gap closed and the regret against the oracle
    (absolute and in % of the oracle's value).

    ``seed`` seeds the bootstrap, so the same records always give the same table.
    """
    per_seed = per_seed_metrics(records)
    rng = np.random.default_rng(seed)
    n_seeds = per_seed["seed"].nunique()
    rows = []
    for policy in per_seed["policy"].unique():
        for metric in METRICS:
            value = per_seed.loc[per_seed["policy"] == policy, metric].mean()
            base = per_seed.loc[per_seed["policy"] == STATIC_BEST, metric].mean()
            top = per_seed.loc[per_seed["policy"] == ORACLE, metric].mean()
            diff = paired_difference(per_seed, policy, STATIC_BEST, metric)
            regret = paired_difference(per_seed, policy, ORACLE, metric)
            gap = gap_closed(per_seed, policy, metric, rng)
            pct = 100.0 / base if base and np.isfinite(base) else np.nan
            opct = 100.0 / top if top and np.isfinite(top) else np.nan
            rows.append(
                {
                    "policy": policy,
                    "metric": metric,
                    "value": float(value),
                    "n_seeds": int(n_seeds),
                    "vs_static_best": diff.estimate,
                    "vs_static_best_lo": diff.lo,
                    "vs_static_best_hi": diff.hi,
                    "vs_static_best_pct": diff.estimate * pct,
                    "vs_static_best_pct_lo": diff.lo * pct,
                    "vs_static_best_pct_hi": diff.hi * pct,
                    "gap_closed": gap.estimate,
                    "gap_closed_lo": gap.lo,
                    "gap_closed_hi": gap.hi,
                    "regret_vs_oracle": regret.estimate,
                    "regret_vs_oracle_lo": regret.lo,
                    "regret_vs_oracle_hi": regret.hi,
                    "regret_vs_oracle_pct": regret.estimate * opct,
                    "regret_vs_oracle_pct_lo": regret.lo * opct,
                    "regret_vs_oracle_pct_hi": regret.hi * opct,
                }
            )
    return pd.DataFrame(rows)
