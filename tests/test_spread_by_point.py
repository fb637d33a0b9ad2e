"""Each point's own spread: from the profile's repeats to the simulator's draws.

Relative noise shrinks with the length of a service (docs/validation.md: the pooled
spread made the twin's p95 of a whole ResNet50 20-30 % too high). These tests plant
points whose noise is known and check that each point keeps its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from adaptsim.calibration.profiles import profile_spread
from adaptsim.calibration.spread import MIN_POINT_SAMPLES, by_point, quantiles
from adaptsim.simulator.engine import Tables, run_policy
from adaptsim.simulator.forecast import mean_factors
from adaptsim.simulator.naive import run_policy_naive
from adaptsim.simulator.policies import View
from simkit import toy_calibration, toy_scenario

ALPHA = 0.01
WIDE = {"probs": [0.0, 0.5, 1.0], "log_ratio": [-0.7, 0.0, 0.7]}  # pooled: +-2x
NARROW = [-0.05, 0.0, 0.05]  # one point's own: +-5 %


def _cdf(probs, log_ratio):
    return lambda x: np.interp(x, log_ratio, probs)


def _ratios(tmp_path, point: int, engine=run_policy, seed: int = 4) -> np.ndarray:
    spread = {"edge": {**WIDE, "by_point": {"3": NARROW}}}
    cal = toy_calibration(tmp_path / "toy.json", spread=spread)
    sc = toy_scenario(
        cal,
        duration_s=1500.0,
        service={"noise": True},
        policies=[{"policy": "static", "params": {"point": point}}],
    )
    cols, _, _ = engine(sc, sc.policies[0], seed)
    clean = {2: 0.2, 3: 0.3}[point]  # the toy's edge seconds at no stress
    return np.log(np.asarray(cols["edge_s"]) / clean)


def test_a_point_with_its_own_spread_replays_it_and_the_others_the_pooled(tmp_path):
    """Point 3 carries a +-5 % spread of its own, point 2 none: point 3's edge times
    follow the narrow one, point 2's the pooled +-2x. Fails if the per-point spread
    is ignored (point 3 gets +-2x), applied to every point, or keyed to the wrong
    point (an index instead of the ordinal: column 2 is ordinal 3)."""
    own = _ratios(tmp_path, 3)
    pooled = _ratios(tmp_path, 2)
    assert stats.kstest(own, _cdf(WIDE["probs"], NARROW)).pvalue > ALPHA
    assert np.abs(own).max() <= 0.05 + 1e-12
    assert stats.kstest(pooled, _cdf(WIDE["probs"], WIDE["log_ratio"])).pvalue > ALPHA
    assert np.abs(pooled).max() > 0.5


def test_one_uniform_per_frame_drives_every_point(tmp_path):
    """The same frame is slow at every point (one draw, each point's quantile of it):
    a frame above its point's median at point 3 is above it at point 2 too, so
    switching the split never re-rolls a frame's luck."""
    own, pooled = _ratios(tmp_path, 3), _ratios(tmp_path, 2)
    assert np.array_equal(np.sign(own), np.sign(pooled))
    assert stats.spearmanr(own, pooled).statistic > 0.999


def test_the_naive_engine_replays_each_points_spread_too(tmp_path):
    """The independent SimPy engine reads the same per-point draws: a fast engine
    that used them and a naive one that did not would differ here."""
    for point in (2, 3):
        fast = _ratios(tmp_path, point)
        naive = _ratios(tmp_path, point, engine=run_policy_naive)
        np.testing.assert_allclose(naive, fast, rtol=0, atol=1e-9)


def _profile(rng) -> pd.DataFrame:
    """A hand-made own profile: model m, a long point (0.2 s, +-2 %), a short one
    (5 ms, lognormal sigma 0.5) and a point with too few samples; 60 repeats each,
    one condition; a link probe and one cloud point."""
    rows = []
    cond = dict.fromkeys(("edge_cpu_pct", "edge_mem_pct", "cloud_cpu_pct", "cloud_mem_pct"), 0.0)
    base = {**cond, "bandwidth_mbps": np.nan, "stat": "sample", "model": "m", "output_bytes": 1e3}
    n = 60
    for point, times in (
        (5, 0.2 * rng.uniform(0.98, 1.02, n)),
        (2, 0.005 * np.exp(rng.normal(0.0, 0.5, n))),
        (3, 0.05 * np.exp(rng.normal(0.0, 0.5, MIN_POINT_SAMPLES - 1))),
    ):
        rows += [{**base, "host_role": "edge", "point": point, "edge_s": t, "cloud_s": 0.0,
                  "comm_s": 0.0} for t in times]  # fmt: skip
    rows += [{**base, "host_role": "cloud", "point": 2, "edge_s": 0.0, "cloud_s": t,
              "comm_s": 0.0} for t in 0.1 * rng.uniform(0.9, 1.1, n)]  # fmt: skip
    link = {**base, "host_role": "link", "point": 0, "model": "", "bandwidth_mbps": 10.0}
    rows += [{**link, "edge_s": 0.0, "cloud_s": 0.0, "comm_s": t} for t in rng.uniform(0.1, 0.2, n)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("summary", ["median", "trimmed-mean"])
def test_profile_spread_keeps_each_points_own_quantiles(summary):
    """From the repeats: the long point's own p95 is within its +-2 %, the short
    point's is ~exp(1.645 x 0.5) = 2.3x, the pooled one is wide, and the point
    with fewer than MIN_POINT_SAMPLES samples keeps the pooled quantiles. Fails if
    the spread is pooled only, keyed by row instead of point, or taken from another
    part's samples."""
    frame = _profile(np.random.default_rng(7))
    spread = profile_spread(frame, ["m"], summary)["m"]
    edge = spread["edge"]
    probs = np.asarray(edge["probs"])
    p50, p95 = probs.tolist().index(0.5), probs.tolist().index(0.95)
    own = edge["by_point"]
    assert set(own) == {"5", "2", "3"}

    # point 3 has too few samples: it borrows those of the point nearest in time
    # (point 5, 0.2 s), not those of point 2 (5 ms)
    def log_ratio(point):
        t = frame.loc[(frame["host_role"] == "edge") & (frame["point"] == point), "edge_s"]
        return np.log(t / (t.median() if summary == "median" else t.mean()))

    borrowed = quantiles(np.concatenate([log_ratio(3), log_ratio(5)]))["log_ratio"]
    if summary == "median":
        np.testing.assert_allclose(own["3"], borrowed, atol=1e-6)
    assert own["3"][p95] < quantiles(np.concatenate([log_ratio(3), log_ratio(2)]))["log_ratio"][p95]
    assert abs(own["5"][p95]) < np.log(1.025)
    # p95 - p50 of log N(0, 0.5) is 1.645 x 0.5, whatever the centre; 0.35 is ~2.5
    # standard errors of a sample p95 of 60 draws (sqrt(.95 x .05 / 60) / pdf(1.645) x 0.5).
    assert own["2"][p95] - own["2"][p50] == pytest.approx(1.645 * 0.5, abs=0.35)
    assert edge["log_ratio"][p95] > 0.3  # pooled: two of three points are wide
    assert set(spread["cloud"]["by_point"]) == {"2"}
    assert abs(spread["cloud"]["by_point"]["2"][p95]) < np.log(1.12)
    # the link is profiled once for all models: one probe size here, every point takes it
    assert set(spread["comm"]["by_point"]) == {"5", "2", "3"}
    for lr in spread["comm"]["by_point"].values():
        assert lr == spread["comm"]["log_ratio"]


def test_policies_predict_with_each_points_own_mean_factor(tmp_path):
    """A policy's mean-latency estimate uses the point's own spread: the mean of
    exp(U) for U uniform on [-a, a] is sinh(a) / a, so 1.0839 for the pooled +-0.7
    and 1.0004 for point 3's own +-0.05; the all-cloud point (no edge work) and the
    link keep the pooled means (the link here has no spread: 1)."""
    spread = {"edge": {**WIDE, "by_point": {"3": NARROW}}}
    sc = toy_scenario(toy_calibration(tmp_path / "toy.json", spread=spread))
    view = View(model=sc.model, tables=Tables(sc), cloud_cpu_pct=0.0, cloud_mem_pct=0.0)
    f = mean_factors(view)
    assert f.shape == (3, 3)
    pooled, own = np.sinh(0.7) / 0.7, np.sinh(0.05) / 0.05
    np.testing.assert_allclose(f[0], [pooled, pooled, own], rtol=1e-4)
    np.testing.assert_allclose(f[1:], 1.0)


def _quota_like_profile(rng) -> pd.DataFrame:
    """An own profile with 10 repeats a point, as a short profile under a CPU quota
    has: six long points (0.5-0.65 s, +-2 %) and four millisecond points (lognormal
    sigma 0.8, as a quota's period quantises them), one condition."""
    cond = dict.fromkeys(("edge_cpu_pct", "edge_mem_pct", "cloud_cpu_pct", "cloud_mem_pct"), 0.0)
    base = {**cond, "bandwidth_mbps": np.nan, "stat": "sample", "model": "m", "output_bytes": 1e3,
            "host_role": "edge", "cloud_s": 0.0, "comm_s": 0.0}  # fmt: skip
    rows = []
    for point in range(1, 11):
        if point <= 4:
            times = 0.002 * point * np.exp(rng.normal(0.0, 0.8, 10))
        else:
            times = (0.5 + 0.03 * (point - 5)) * rng.uniform(0.98, 1.02, 10)
        rows += [{**base, "point": point, "edge_s": t} for t in times]
    return pd.DataFrame(rows)


def test_points_with_few_repeats_borrow_from_their_neighbours_in_time():
    """Every point has 10 samples, under MIN_POINT_SAMPLES: each long point takes the
    spread of the other long points (+-2 %), not the pool that the millisecond points
    widen, so a whole model's replayed p95 stays where its repeats put it (the slower
    edge's twin had a p95 1.46x its mean from the pooled spread; the real frames 1.04x).
    Fails if such points keep the pooled quantiles, borrow farthest-first, or borrow by
    point ordinal instead of by time."""
    assert 10 * 6 >= MIN_POINT_SAMPLES > 10 * 4
    frame = _quota_like_profile(np.random.default_rng(3))
    # scramble the ordinals' order in time: neighbours by ordinal are not by time
    frame["point"] = frame["point"].map(
        {1: 1, 2: 6, 3: 3, 4: 8, 5: 2, 6: 4, 7: 5, 8: 7, 9: 9, 10: 10}
    )
    edge = profile_spread(frame, ["m"])["m"]["edge"]
    probs = edge["probs"]
    p5, p95 = probs.index(0.05), probs.index(0.95)
    long_points = {"2", "4", "5", "7", "9", "10"}
    assert set(edge["by_point"]) == {str(p) for p in range(1, 11)}
    for point in long_points:
        lr = edge["by_point"][point]
        assert np.log(0.97) < lr[p5] and lr[p95] < np.log(1.03), point
    assert edge["log_ratio"][p95] > 0.3  # the pool is wide
    for point in {"1", "3", "6", "8"}:  # the short ones borrow short ones first
        assert edge["by_point"][point][p95] > 0.3, point


def test_without_sample_times_a_point_with_few_samples_keeps_the_pool():
    """The near-repeat path passes no times: a point under MIN_POINT_SAMPLES gets none."""
    lr = np.log(np.random.default_rng(1).uniform(0.9, 1.1, 60))
    points = np.repeat([1, 2], [MIN_POINT_SAMPLES, 60 - MIN_POINT_SAMPLES])
    assert set(by_point(lr, points)) == {"1"}
    assert set(by_point(lr, points, np.where(points == 1, 0.1, 0.12))) == {"1", "2"}
