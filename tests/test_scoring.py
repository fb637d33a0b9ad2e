"""Scoring against the baselines: hand-made records whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adaptsim.scoring import gap_closed, paired_difference, per_seed_metrics, score_policies


def _records(latencies: dict[str, list[list[float]]], deadline_s: float = 1.0) -> pd.DataFrame:
    rows = []
    for policy, per_seed in latencies.items():
        for seed, lats in enumerate(per_seed):
            for lat in lats:
                rows.append({"policy": policy, "seed": seed, "latency_s": lat,
                             "deadline_met": lat <= deadline_s})  # fmt: skip
    return pd.DataFrame(rows)


# Seed means: static-best 2, 3, 4, 5; oracle 1, 2, 2, 3; half-way 1.5, 2.5, 3, 4.
RECORDS = _records(
    {
        "static-best": [[1.0, 3.0], [2.0, 4.0], [4.0, 4.0], [5.0, 5.0]],
        "oracle": [[0.5, 1.5], [2.0, 2.0], [1.0, 3.0], [3.0, 3.0]],
        "half": [[1.0, 2.0], [2.5, 2.5], [3.0, 3.0], [4.0, 4.0]],
        "unfinished": [[1.0, np.inf], [2.0, 4.0], [4.0, 4.0], [5.0, 5.0]],
    }
)


def test_per_seed_metrics_leave_unfinished_frames_out_of_latency_but_count_them_as_misses():
    m = per_seed_metrics(RECORDS).set_index(["policy", "seed"])
    assert m.loc[("static-best", 0), "mean_s"] == 2.0
    assert m.loc[("unfinished", 0), "mean_s"] == 1.0
    assert m.loc[("unfinished", 0), "deadline_miss_rate"] == 0.5
    assert m.loc[("static-best", 0), "deadline_miss_rate"] == 0.5  # 3.0 > 1.0
    assert m.loc[("oracle", 0), "p95_s"] == pytest.approx(0.5 + 0.95 * 1.0)


def test_gap_closed_is_the_share_of_the_mean_gap_with_a_bootstrap_interval():
    per_seed = per_seed_metrics(RECORDS)
    g = gap_closed(per_seed, "half", "mean_s", np.random.default_rng(1))
    # (3.5 - 2.75) / (3.5 - 2.0) = 0.5
    assert g.estimate == pytest.approx(0.5)
    # every seed closes exactly half of its own gap, so every resample does too
    assert (g.lo, g.hi) == pytest.approx((0.5, 0.5))
    noisy = per_seed.copy()
    noisy.loc[(noisy.policy == "half") & (noisy.seed == 3), "mean_s"] = 4.5
    g = gap_closed(noisy, "half", "mean_s", np.random.default_rng(1))
    assert g.estimate == pytest.approx((3.5 - 2.875) / 1.5)
    assert g.lo < g.estimate < g.hi
    assert gap_closed(per_seed, "oracle", "mean_s", np.random.default_rng(1)).estimate == 1.0
    assert gap_closed(per_seed, "static-best", "mean_s", np.random.default_rng(1)).estimate == 0


def test_paired_difference_is_a_paired_t_interval():
    from scipy import stats

    per_seed = per_seed_metrics(RECORDS)
    d = paired_difference(per_seed, "half", "static-best", "mean_s")
    diffs = np.array([1.5 - 2, 2.5 - 3, 3 - 4, 4 - 5])
    lo, hi = stats.t.interval(0.95, 3, loc=diffs.mean(), scale=stats.sem(diffs))
    assert (d.estimate, d.lo, d.hi) == pytest.approx((diffs.mean(), lo, hi))


def test_one_seed_gives_no_interval_and_the_table_is_reproducible():
    one = RECORDS[RECORDS["seed"] == 0]
    d = paired_difference(per_seed_metrics(one), "half", "static-best", "mean_s")
    assert d.estimate == pytest.approx(-0.5) and np.isnan(d.lo) and np.isnan(d.hi)
    a, b = score_policies(RECORDS, seed=3), score_policies(RECORDS, seed=3)
    pd.testing.assert_frame_equal(a, b)
    row = a[(a["policy"] == "half") & (a["metric"] == "mean_s")].iloc[0]
    assert row["vs_static_best_pct"] == pytest.approx(-0.75 / 3.5 * 100)
    assert row["regret_vs_oracle"] == pytest.approx(0.75)
