"""Persistent service noise: the cases the first tests left open, found by mutation testing.

Each test holds the code to what the design says (docs in :mod:`adaptsim.simulator.draws`,
:class:`adaptsim.simulator.forecast.RecentService` and
:mod:`adaptsim.calibration.persistence`), with the expected numbers worked out here:
the conditional mean of the next factor by quadrature, correlations of a few values
by hand, an exponential fitted to points drawn from a known one.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtri

from adaptsim.calibration.persistence import Lagged, fit_tau, lagged, measured_persistence
from adaptsim.simulator import run_scenario
from adaptsim.simulator.draws import draw
from adaptsim.simulator.forecast import Discount, Outlook, RecentService, Source, mean_factors
from adaptsim.simulator.policies import Conditions, Observation
from test_persistent_noise import LINEAR, _expected_factor, _view, persistent, scenario, with_spread

SKEWED = {"probs": [0.0, 0.5, 1.0], "log_ratio": [-0.5, 0.0, 1.5]}


def _lr(q: dict, p: float) -> float:
    return float(np.interp(p, q["probs"], q["log_ratio"]))


def _timed_point(sc) -> tuple[int, int, object]:
    """A point with both edge and cloud work: (column, ordinal, typical times at no stress)."""
    pred = _view(sc, []).predict(Conditions(1.0, 0.0, 0.0))
    k = next(i for i in range(len(sc.model.ordinals)) if pred.edge_s[i] > 0 and pred.cloud_s[i] > 0)
    return k, int(sc.model.ordinals[k]), pred


def _factors(sc, finished, at_s=10.0):
    view = _view(sc, finished)
    recent = RecentService()
    recent.observe(view)
    base = mean_factors(view)
    return recent.factors(view, base, at_s=at_s), base


def test_the_cloud_is_read_from_the_frames_cloud_time_and_weighed_by_the_share():
    """Only the cloud persists (share 0.5, 4 s): a frame whose cloud took its 90th
    percentile and whose edge took 3x its typical time moves the cloud's expected factor
    to the conditional mean at rho = 0.5 exp(-2/4), and nothing else."""
    sc = with_spread(scenario(), cloud=persistent(SKEWED, 4.0, share=0.5))
    k, point, pred = _timed_point(sc)
    cloud_s = float(pred.cloud_s[k]) * math.exp(_lr(SKEWED, 0.9))
    obs = Observation(9.0, point, 1.0, 3 * float(pred.edge_s[k]), 0.1, 1000.0, cloud_s)
    got, base = _factors(sc, [obs])
    want = _expected_factor(SKEWED, float(ndtri(0.9)), 0.5 * math.exp(-2.0 / 4.0))
    assert got[2][k] == pytest.approx(want, rel=2e-3)
    np.testing.assert_array_equal(got[:2], base[:2])


def test_the_latest_frame_that_timed_the_part_is_the_one_read():
    """Three finished frames: a slow one, then a fast one (its 20th percentile), then
    one without an edge time and one at a point the model does not have: the fast one
    is the latest that says something of the edge."""
    sc = with_spread(scenario(), edge=persistent(SKEWED, 4.0))
    k, point, pred = _timed_point(sc)
    typical = float(pred.edge_s[k])
    slow = Observation(8.0, point, 1.0, typical * math.exp(_lr(SKEWED, 0.9)), 0.1, 1000.0)
    fast = Observation(8.6, point, 0.6, typical * math.exp(_lr(SKEWED, 0.2)), 0.1, 1000.0)
    untimed = Observation(9.0, point, 0.5, 0.0, 0.1, 1000.0)
    foreign = Observation(9.5, 999, 0.5, 50 * typical, 0.1, 1000.0)
    got, base = _factors(sc, [slow, fast, untimed, foreign])
    want = _expected_factor(SKEWED, float(ndtri(0.2)), math.exp(-2.0 / 4.0))  # arrived at 8
    assert got[0][k] == pytest.approx(want, rel=2e-3)
    assert got[0][k] < base[0][k]


def test_a_point_with_its_own_quantiles_is_read_and_predicted_through_them():
    """The edge's spread has its own quantiles at one point: a frame there at its own
    90th percentile is a latent of ndtri(0.9) (through the pooled ones it would be
    about the 63rd), and each point's expected factor goes through its own quantiles."""
    own = [-1.0, 0.0, 0.5]
    sc0 = scenario()
    k, point, pred = _timed_point(sc0)
    q = {**SKEWED, "by_point": {str(point): own}}
    sc = with_spread(sc0, edge=persistent(q, 4.0))
    edge_s = float(pred.edge_s[k]) * math.exp(np.interp(0.9, SKEWED["probs"], own))
    got, _ = _factors(sc, [Observation(9.0, point, 1.0, edge_s, 0.1, 1000.0)])
    rho = math.exp(-2.0 / 4.0)
    z = float(ndtri(0.9))
    assert got[0][k] == pytest.approx(
        _expected_factor({**SKEWED, "log_ratio": own}, z, rho), rel=2e-3
    )
    other = next(i for i in range(len(sc.model.ordinals)) if i != k and pred.edge_s[i] > 0)
    assert got[0][other] == pytest.approx(_expected_factor(SKEWED, z, rho), rel=2e-3)


@pytest.mark.parametrize("scale", [math.exp(2.0), math.exp(-2.0)])
def test_a_frame_beyond_the_spreads_ends_is_read_as_its_end_not_a_crash(scale):
    """Quantiles from 0 to 1 (a calibration may give them) and a frame 7x slower (or
    faster) than typical, beyond the spread's last quantile: read as a latent at the
    end of the range (the draws' own bound), a slow (fast) spell expected to go on,
    its factor within the spread's range; the inverse normal of 1 (or 0) was an
    error that stopped the run."""
    q = {"probs": [0.0, 0.5, 1.0], "log_ratio": [-0.5, 0.0, 0.5]}
    sc = with_spread(scenario(), edge=persistent(q, 4.0))
    k, point, pred = _timed_point(sc)
    obs = Observation(9.0, point, 1.0, float(pred.edge_s[k]) * scale, 0.1, 1000.0)
    got, base = _factors(sc, [obs])
    assert math.exp(-0.5) <= got[0][k] <= math.exp(0.5)
    assert (got[0][k] > base[0][k] * 1.2) if scale > 1 else (got[0][k] < base[0][k] / 1.2)


def test_a_run_whose_monitor_lags_the_stress_reads_frames_beyond_the_spread():
    """The same in a whole run: the edge's stress steps while the monitor reads it 3 s
    late, so a policy's typical time is often at the wrong stress and a finished frame
    lies far beyond a narrow spread from 0 to 1; the feedback policies run to the end."""
    q = {"probs": [0.0, 0.5, 1.0], "log_ratio": [-0.2, 0.0, 0.2]}
    base = scenario(
        duration_s=60.0,
        arrivals={"kind": "periodic", "rate_hz": 2.0},
        traces={
            "bandwidth_mbps": {"constant": 20.0},
            "edge_cpu_pct": {"steps": [[0, 0.0], [10, 100.0], [20, 0.0]], "end": "loop"},
        },
        observe={"period_s": 1.0, "delay_s": 3.0},
        policies=[{"policy": "neurosurgeon"}, {"policy": "mpc"}, {"policy": "changepoint"}],
    )
    sc = with_spread(base, edge=persistent(q, 5.0), cloud=persistent(q, 5.0))
    res = run_scenario(sc)
    assert not res.errors, res.errors  # each was "StatisticsError: p must be in ... 0 < p < 1"
    assert res.records.groupby("policy").size().to_dict() == dict.fromkeys(
        ("neurosurgeon", "mpc", "changepoint"), 120 * len(sc.seeds)
    )


def test_no_frame_at_all_draws_no_persistent_noise():
    """A Poisson run short enough that no frame arrives (the first seed that gives none):
    persistent parts draw nothing and the run's draws are empty, not an error."""
    sc = scenario(arrivals={"kind": "poisson", "rate_hz": 0.05}, duration_s=1.0)
    sc = with_spread(sc, edge=persistent(LINEAR, 4.0), cloud=persistent(LINEAR, 2.0, 0.5))
    seed = next(s for s in range(200) if not len(draw(sc, s).arrivals_s))
    d = draw(sc, seed)
    assert all(n.shape == (0, 3) for n in d.noise)


def test_a_share_of_zero_is_the_iid_draws_bit_for_bit():
    """persistence_share 0 leaves nothing to persist: the draws are the i.i.d. ones
    exactly, as for persistence_s 0 (not a copula round trip that moves the last bits)."""
    sc = with_spread(scenario(arrivals={"kind": "poisson", "rate_hz": 3.0}), edge=LINEAR)
    zero = with_spread(sc, edge=persistent(LINEAR, 5.0, share=0.0))
    for seed in (1, 2):
        a, b = draw(sc, seed), draw(zero, seed)
        for x, y in zip(a.noise, b.noise, strict=True):
            np.testing.assert_array_equal(x, y)


# -- the estimator (adaptsim.calibration.persistence) ------------------------------------


def _hand_lagged() -> Lagged:
    """Two sequences; sequence 1 has a gap (NaN). Values are already centred scores."""
    x = np.array([1.0, -1.0, 2.0, 2.0, np.nan, -2.0, 1.0])
    t = np.array([0.0, 1.0, 3.0, 0.0, 1.0, 2.0, 4.0])
    seq = np.array([0, 0, 0, 1, 1, 1, 1])
    return Lagged(x, t, seq, seq.copy())


def test_lagged_correlations_by_lag_worked_out_by_hand():
    """Lag 1: pairs (1,-1), (-1,2) in sequence 0 and (-2,1) in sequence 1 (none across the
    sequences, none with the missing value): r = -5 / sqrt(6 x 6); their gaps 1, 2, 2.
    Lag 2: (1,2) and (2,-2): r = -2 / sqrt(5 x 8); gaps 3 and 2."""
    table, _ = lagged(_hand_lagged(), max_lag=2, by="lag", rng=np.random.default_rng(0),
                      null_reps=5, boot_reps=0)  # fmt: skip
    assert table["bin"].tolist() == ["1", "2"]
    assert table["pairs"].tolist() == [3, 2]
    np.testing.assert_allclose(table["r"], [-5 / 6, -2 / math.sqrt(40)], rtol=1e-12)
    np.testing.assert_allclose(table["gap_s"], [2.0, 2.5])
    np.testing.assert_allclose(table["excess"], table["r"] - table["null"])


def test_lagged_correlations_by_gap_bin_worked_out_by_hand():
    """The same pairs binned by their gap in seconds: [0, 1.5): (1,-1) r = -1;
    [1.5, 2.5): (-1,2), (-2,1), (2,-2): -8 / sqrt(9 x 9); [2.5, 5): (1,2): 1."""
    table, _ = lagged(_hand_lagged(), max_lag=2, by="gap", gap_edges_s=np.array([0, 1.5, 2.5, 5]),
                      rng=np.random.default_rng(0), null_reps=5, boot_reps=0)  # fmt: skip
    assert table["bin"].tolist() == ["0-1.5", "1.5-2.5", "2.5-5"]
    assert table["pairs"].tolist() == [1, 3, 1]
    np.testing.assert_allclose(table["r"], [-1.0, -8 / 9, 1.0], rtol=1e-12)


def test_the_null_permutes_values_only_within_their_centring_group():
    """One group holds only 1s and the other only -1s, each in its own sequence: every
    permutation within groups leaves the values where they are, so the null equals r."""
    x = np.array([1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
    seq = np.array([0, 0, 0, 1, 1, 1])
    lg = Lagged(x, np.arange(6.0), seq, seq.copy())
    table, _ = lagged(lg, max_lag=1, by="lag", rng=np.random.default_rng(3), null_reps=20,
                      boot_reps=0)  # fmt: skip
    np.testing.assert_allclose(table["null"], table["r"])
    np.testing.assert_allclose(table[["null_lo", "null_hi"]].to_numpy(), [[1.0, 1.0]])


def test_lagged_of_sorts_centres_and_drops_values_alone_in_their_group():
    """Rows out of order: sorted by sequence, then time; a value alone in its centring
    group tells nothing (NaN); of the pair left, the larger gets the normal score of
    rank 2 of 2, ndtri(0.75), the smaller its negative (centred, they stay)."""
    lg = Lagged.of(np.log([0.3, 0.1, 0.2, 5.0]), [2.0, 1.0, 0.0, 0.0], ["b", "a", "a", "c"],
                   ["b", "a", "a", "c"])  # fmt: skip
    np.testing.assert_array_equal(lg.seq, [0, 1, 1, 2])
    np.testing.assert_array_equal(lg.t_s, [2.0, 0.0, 1.0, 0.0])
    z = float(ndtri(0.75))
    np.testing.assert_allclose(lg.x, [np.nan, z, -z, np.nan], atol=1e-12)


def test_fit_tau_recovers_a_known_exponential_and_refuses_none():
    """excess = 0.4 exp(-gap / 2 s) at five gaps: share 0.4 and tau 2 s (within the
    grid's spacing); bins with no pairs or no value count for nothing; an excess
    below zero everywhere is no persistence (0, 0); no usable bin is NaN."""
    gap = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 3.0, 6.0])
    excess = 0.4 * np.exp(-gap / 2.0)
    excess[5], excess[6] = 5.0, np.nan  # a bin without pairs, a bin without a value
    pairs = np.array([10, 10, 10, 10, 10, 0, 10])
    fit = fit_tau(gap, excess, pairs)
    assert fit["share"] == pytest.approx(0.4, rel=0.02)
    assert abs(math.log(fit["tau_s"] / 2.0)) < 0.04
    assert fit_tau(gap[:5], -excess[:5], pairs[:5]) == {"share": 0.0, "tau_s": 0.0}
    nan = fit_tau(gap[5:6], excess[5:6], pairs[5:6])
    assert math.isnan(nan["share"]) and math.isnan(nan["tau_s"])


def _series(share: float, tau_s: float, seed: int = 0) -> pd.DataFrame:
    """80 sequences of 60 frames 0.5 s apart: sqrt(share) AR + sqrt(1 - share) noise;
    ``tau_s`` 0: a moving difference instead, (e_i - e_(i-1)) / sqrt(2), correlated -0.5
    with the next frame and 0 beyond (no spell: below the null, not above it)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(80):
        e = rng.standard_normal(61)
        if tau_s:
            rho = math.exp(-0.5 / tau_s)
            a = np.empty(60)
            a[0] = e[0]
            for i in range(1, 60):
                a[i] = rho * a[i - 1] + math.sqrt(1 - rho * rho) * e[i]
            z = math.sqrt(share) * a + math.sqrt(1 - share) * rng.standard_normal(60)
        else:
            z = (e[1:] - e[:-1]) / math.sqrt(2)
        rows += [(f"s{s}", 0.5 * i, float(v)) for i, v in enumerate(z)]
    d = pd.DataFrame(rows, columns=["seq", "t_s", "log_ratio"])
    return d.assign(centre=d["seq"])


def test_measured_persistence_finds_a_planted_spell_and_none_below_the_null():
    out = measured_persistence({"edge": _series(0.6, 2.0), "cloud": _series(0.0, 0.0)})
    assert 0.4 <= out["edge"]["persistence_share"] <= 0.8
    assert 1.0 <= out["edge"]["persistence_s"] <= 4.0
    assert out["cloud"] == {"persistence_s": 0.0, "persistence_share": 0.0}


def test_an_outlook_with_feedback_predicts_the_next_frame_from_the_latest_finished_one():
    """Frames at 1 Hz, the latest arrived at 9.5 s, now 10 s: the next arrives at 10.5 s,
    2.5 s after the finished frame (arrived at 8 s, its edge at the 90th percentile).
    The outlook's edge time is the typical time times the conditional mean factor at
    rho = exp(-2.5 / 4); without feedback, times the spread's plain mean."""
    sc = with_spread(scenario(), edge=persistent(SKEWED, 4.0))
    k, point, pred = _timed_point(sc)
    edge_s = float(pred.edge_s[k]) * math.exp(_lr(SKEWED, 0.9))
    obs = Observation(9.0, point, 1.0, edge_s, 0.1, 1000.0)
    cond = Conditions(20.0, 0.0, 0.0)
    est = {}
    for feedback in (True, False):
        view = _view(sc, [obs])
        view.last_arrival_s = 9.5
        outlook = Outlook(Source.monitor, 1, Discount.none, feedback)
        outlook.bandwidth_mbps(view)
        assert outlook.live is feedback
        est[feedback] = outlook.estimate(view, cond)
    typical = view.predict(cond).edge_s
    want = _expected_factor(SKEWED, float(ndtri(0.9)), math.exp(-2.5 / 4.0))
    assert est[True].edge_s[k] == pytest.approx(typical[k] * want, rel=2e-3)
    assert est[False].edge_s[k] == pytest.approx(typical[k] * mean_factors(view)[0][k], rel=1e-9)
    np.testing.assert_allclose(est[True].cloud_s, est[False].cloud_s, rtol=1e-12)


def test_beyond_the_spreads_last_quantile_a_factor_holds_at_it():
    """Quantiles from 0.1 to 0.9 only: a latent beyond them reads the end quantile (the
    quantile function is flat outside its table, as the draws' np.interp is), never an
    extrapolation (a frame at its 90th percentile 1 s before the next, tau 4 s: of
    the next latent's law, a third of it, lies beyond the table)."""
    q = {"probs": [0.1, 0.5, 0.9], "log_ratio": [-0.5, 0.0, 0.5]}
    sc = with_spread(scenario(), edge=persistent(q, 4.0))
    k, point, pred = _timed_point(sc)
    obs = Observation(10.0, point, 0.05, float(pred.edge_s[k]) * math.exp(0.5), 0.01, 1000.0)
    got, _ = _factors(sc, [obs], at_s=10.95)
    rho = math.exp(-1.0 / 4.0)
    assert got[0][k] == pytest.approx(_expected_factor(q, float(ndtri(0.9)), rho), rel=2e-3)
    assert got[0][k] <= math.exp(0.5)


def test_another_noise_stream_redraws_only_the_noise_and_keeps_it_persistent():
    """``noise_stream`` k > 0 (the validation twin's k-th draw): the same arrivals and
    monitor noise, other service noise, still persistent (periodic frames 1 s apart,
    tau 5 s: lag-1 correlation of the latents exp(-1/5) = 0.82 within 3 standard errors)."""
    from dataclasses import replace

    sc = with_spread(scenario(duration_s=2000.0), edge=persistent(LINEAR, 5.0), comm=LINEAR)
    a, b = draw(sc, 9), draw(replace(sc, noise_stream=2), 9)
    np.testing.assert_array_equal(a.arrivals_s, b.arrivals_s)
    np.testing.assert_array_equal(a.monitor_noise, b.monitor_noise)
    assert not np.array_equal(a.noise[0], b.noise[0])
    z = ndtri((np.log(b.noise[0][:, 0]) + 1.0) / 2.0)
    r = float(np.corrcoef(z[:-1], z[1:])[0, 1])
    assert abs(r - math.exp(-1 / 5)) < 3 * math.sqrt(1 / len(z))


def test_within_file_series_orders_each_files_lines_and_dates_them_by_their_totals():
    """Two AdaptiveDNN files (one bandwidth each) of seven points, rows shuffled: each
    file is one sequence in point order, a line dated at the middle of its own three
    inferences after the lines before it (line i's total 0.1 i s, 3 x that long), its
    value the line's within-file rest, in that order (near-repeats across the files
    make it finite)."""
    from adaptsim.calibration.persistence import within_file_series
    from adaptsim.calibration.spread import file_decomposition

    rng = np.random.default_rng(4)
    rows = []
    for bw in (20.0, 10.0):
        for point in rng.permutation(np.arange(1, 8)):
            total = 0.1 * point
            edge, cloud = total * rng.uniform(0.3, 0.5), total * rng.uniform(0.2, 0.3)
            rows.append({"model": "m", "point": int(point), "edge_cpu_pct": 0.0,
                         "edge_mem_pct": 0.0, "bandwidth_mbps": bw, "cloud_cpu_pct": 0.0,
                         "cloud_mem_pct": 0.0, "edge_s": edge, "cloud_s": cloud,
                         "comm_s": total - edge - cloud})  # fmt: skip
    frame = pd.DataFrame(rows)
    out = within_file_series(frame)
    tot = 3 * 0.1 * np.arange(1, 8)
    assert set(out) == {"edge", "cloud", "comm"}
    for part, d in out.items():
        assert d["seq"].nunique() == 2 and (d.groupby("seq").size() == 7).all()
        assert (d["seq"] == d["centre"]).all()
        for _, f in d.groupby("seq", sort=False):
            np.testing.assert_allclose(f["t_s"], np.cumsum(tot) - tot / 2)
        order = frame.sort_values(["bandwidth_mbps", "point"]).index
        want = file_decomposition(frame, part)["within"].loc[order].to_numpy()
        if part == "edge":  # bandwidth is free for the edge: near-repeats, finite values
            assert np.isfinite(want).all()
        np.testing.assert_array_equal(d["log_ratio"].to_numpy(), want)
