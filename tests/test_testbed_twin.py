"""The twin's noise draws and their median (adaptsim.testbed.twin), and re-scoring saved runs.

No real run: the "measured" side is a stand-in (hand-made summaries whose medians are
known, or another simulation), since what is tested is how the twin is drawn and
compared, not the testbed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adaptsim.simulator import run_scenario
from adaptsim.simulator.draws import draw
from adaptsim.testbed import scenario_for_testbed
from adaptsim.testbed.twin import compare_draws, noise_draw, twin_draws
from adaptsim.testbed.validate import write_validation

DATA = Path(__file__).parent / "data"
SCENARIO = DATA / "testbed_lenet.yaml"
CALIBRATION = Path(__file__).parents[1] / "src" / "adaptsim" / "data" / "calibration_own_2core.json"


def _lenet(duration_s: float = 4.0, names=("static-best", "all-cloud")):
    sc = scenario_for_testbed(SCENARIO, CALIBRATION, duration_s=duration_s, policies=list(names))
    return replace(sc, policies=tuple(p for p in sc.policies if p.policy in names))


def test_a_noise_draw_changes_the_service_noise_only():
    """Draw k redraws the per-frame service noise and nothing else: the same k gives
    the same noise again, another k other noise, and the arrivals and monitor
    readings stay the seed's (the real run's frames and conditions)."""
    sc = _lenet()
    own = draw(sc, 1)
    seen = [draw(noise_draw(sc, 3), 1), draw(noise_draw(sc, 3), 1)]
    other = draw(noise_draw(sc, 4), 1)
    for d in (*seen, other):
        np.testing.assert_array_equal(d.arrivals_s, own.arrivals_s)
        np.testing.assert_array_equal(d.monitor_noise, own.monitor_noise)
        assert len(d.noise) == len(own.noise)
        assert not np.array_equal(d.noise[0], own.noise[0])
    np.testing.assert_array_equal(seen[0].noise[0], seen[1].noise[0])
    assert not np.array_equal(seen[0].noise[0], other.noise[0])
    np.testing.assert_array_equal(draw(noise_draw(sc, 0), 1).noise[0], own.noise[0])


def test_twin_draws_keep_the_frames_and_draw_0_is_the_single_twin():
    sc = _lenet()
    draws = twin_draws(sc, 3)
    single = run_scenario(sc)
    pd.testing.assert_frame_equal(draws[0].summary, single.summary)
    a, b = draws[0].records, draws[1].records
    np.testing.assert_array_equal(a["arrival_s"], b["arrival_s"])  # the same frames
    assert not np.allclose(a["edge_s"].fillna(0) + a["cloud_s"].fillna(0),
                           b["edge_s"].fillna(0) + b["cloud_s"].fillna(0))  # fmt: skip


def _facts(sc) -> dict:
    """What validation.json says of a run of ``sc`` (enough to rebuild its twin)."""
    return {"scenario": str(SCENARIO), "calibration": str(CALIBRATION), "time_scale": 1.0,
            "duration_s": sc.duration_s, "rate_hz": sc.rate_hz, "seeds": list(sc.seeds),
            "frames_per_run": len(draw(sc, sc.seeds[0]).arrivals_s), "applied": {}, "notes": [],
            "placement": {"edge_cpus": [0], "cloud_cpus": [1], "cloud_workers": 1,
                          "memory_stress_cpus": [1]}, "one_way_latency": "app", "zero_rate": "tbf",
            "load_average": [1.0, 1.0, 1.0], "interrupted": False}  # fmt: skip


def _summary(values: dict[str, float], miss: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame([{"policy": "p", "requests": 40, "mean_s": values["mean"],
                          "p50_s": values["p50"], "p95_s": values["p95"],
                          "deadline_miss_rate": miss, "repartitions": 0}])  # fmt: skip


def test_the_median_over_draws_ignores_one_wild_draw_and_the_spread_says_so():
    """Nine draws whose p95s are 1.1 ... 1.8 s and draw 0 a wild 3.0 s: the
    median is 1.5 s whatever draw 0 says (1.4 s had it been 1.0); the single draw is 3.0 s."""
    p95s = [3.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8]
    draws = [_summary({"mean": 1.0 + k / 100, "p50": 0.9, "p95": v}, miss=k / 10)
             for k, v in enumerate(p95s)]  # fmt: skip
    real = _summary({"mean": 1.04, "p50": 0.9, "p95": 1.4}, miss=0.95)
    t = compare_draws(real, draws).iloc[0]
    assert t["simulated_p95_s"] == pytest.approx(1.5)  # median of 1.1 .. 1.8 and 3.0
    assert t["p95_error_pct"] == pytest.approx((1.5 - 1.4) / 1.4 * 100)
    assert t["single_simulated_p95_s"] == 3.0
    assert t["single_p95_error_pct"] == pytest.approx((3.0 - 1.4) / 1.4 * 100)
    # numpy's linear 10th and 90th percentiles of the nine values, by hand
    assert t["simulated_p95_s_p10"] == pytest.approx(1.18)
    # the 90th: position 7.2 of 0..8
    assert t["simulated_p95_s_p90"] == pytest.approx(1.8 + 0.2 * (3.0 - 1.8))
    assert t["p95_inside"] and t["mean_inside"]
    assert t["simulated_mean_s"] == pytest.approx(1.04) and t["mean_error_pct"] == 0.0
    # miss rates 0.0 .. 0.8: median 0.4, measured 0.95 lies outside the draws
    assert t["simulated_miss_rate"] == pytest.approx(0.4) and not t["miss_rate_inside"]
    assert t["miss_rate_diff"] == pytest.approx(0.4 - 0.95)
    assert t["noise_draws"] == 9


def test_a_run_of_the_same_model_lies_inside_the_draws_more_often_than_one_draw_says(tmp_path):
    """A stand-in real run that is the model itself (another noise stream of the same
    scenario): its statistics are samples of the same distribution as the draws', so the
    median over 9 draws is nearer to it on average than a single draw is, and it lies inside
    the draws' 10-90 % for most statistics. Over 4 stand-ins x 2 policies x 3 statistics."""
    sc = _lenet(duration_s=6.0, names=("static-best", "all-cloud", "reactive"))
    draws = twin_draws(sc, 9)
    err_med, err_one, inside = [], [], []
    for k in (101, 102, 103, 104):  # stand-ins: noise streams the twin never uses
        real = run_scenario(noise_draw(sc, k))
        t = compare_draws(real.summary, draws)
        for s in ("mean", "p50", "p95"):
            err_med += list(t[f"{s}_error_pct"].abs())
            err_one += list(t[f"single_{s}_error_pct"].abs())
            inside += list(t[f"{s}_inside"])
    assert np.mean(err_med) < np.mean(err_one), (np.mean(err_med), np.mean(err_one))
    assert np.mean(inside) >= 0.6, np.mean(inside)


def test_scorecard_resimulates_a_saved_folder_with_the_median_of_draws(tmp_path):
    """A folder written before the draws existed (its CSVs have one draw) is scored by
    simulating its twin again from validation.json: the median over 9 draws."""
    from adaptsim.testbed.foldback import FoldBack, apply_foldback
    from adaptsim.testbed.scorecard import scorecard

    sc = _lenet()
    stand_in = FoldBack(edge_scale=1.3, cloud_scale=1.2, uplink_extra_s=0.001, return_s=0.0,
                        pause_s=0.0, frames=40)  # fmt: skip
    real, twin = run_scenario(apply_foldback(sc, stand_in)), run_scenario(sc)
    real.records["return_s"] = 0.001  # a real run's way back, which the simulator lacks
    facts = _facts(sc)
    one = write_validation(tmp_path / "seed1", real, twin, facts)
    two = write_validation(tmp_path / "seed2", real, twin,
                           {**facts, "fold_back": {"from": str(one), **asdict(stand_in)}},
                           twin)  # fmt: skip
    for folder in (one, two):  # make them look like folders of the single-draw code
        for name in ("comparison.csv", "comparison_folded.csv"):
            if (folder / name).exists():
                t = pd.read_csv(folder / name)
                t = t[[c for c in t if "_p10" not in c and "_p90" not in c]]
                t.to_csv(folder / name, index=False)
    text = scorecard(one, two)
    assert "simulated again now from the saved facts, 9 noise draws" in text
    medians = pd.concat([d.summary for d in twin_draws(sc, 9)]).groupby("policy")["p95_s"]
    before = text.split("### seed 2 before")[1].split("###")[0]
    for policy, p95 in medians.median().items():
        row = next(line for line in before.splitlines() if line.startswith(f"| {policy} |"))
        assert f"| {p95 * 1e3:.1f} |" in row, (policy, p95, row)
    assert "inside the draws' 10-90 %" in text
    json.loads((two / "validation.json").read_text())  # the folders only read, still whole


def test_a_discordant_pair_counts_as_separated_only_when_the_real_run_tells_it_apart():
    """Three policies on the same 30 frames: "slow" is 20 ms behind "fast" on every
    frame (give or take 5 ms); "near" is 0.4 ms behind "fast" on average with 5 ms of
    per-frame noise (seeded: a Wilcoxon p of 0.58, no order the run can tell). The
    twin orders every pair oppositely: three discordant pairs, two of them (those
    with "slow") separated. Fails if the test is unpaired (the frames' own spread,
    50 ms, would hide the 20 ms), run on concordant pairs, or counts every pair."""
    from adaptsim.testbed.compare import ranking, separated

    base = 0.2 + 0.05 * np.sin(np.arange(30))  # frames of different cost, shared
    wobble = 0.005 * (-1.0) ** np.arange(30)
    near = np.random.default_rng(0).normal(0.001, 0.005, 30)  # mean +0.39 ms
    lat = {"fast": base, "slow": base + 0.02 + wobble, "near": base + near}
    records = pd.concat(
        pd.DataFrame({"policy": p, "seed": 1, "request": np.arange(30), "latency_s": v})
        for p, v in lat.items()
    )
    assert separated(records, "fast", "slow") and separated(records, "near", "slow")
    assert not separated(records, "fast", "near")
    simulated = {"fast": 0.30, "slow": 0.20, "near": 0.25}  # measured: fast < near < slow
    table = pd.DataFrame({"policy": list(lat), "measured_mean_s": [v.mean() for v in lat.values()],
                          "simulated_mean_s": [simulated[p] for p in lat]})  # fmt: skip
    r = ranking(table, records)
    assert r["discordant_pairs"] == 3
    assert r["separated_discordant_pairs"] == 2
    assert "separated_discordant_pairs" not in ranking(table)  # only with the records


def test_a_folded_twins_policies_decide_with_what_the_real_run_was_given():
    """The fold-back changes the world the twin simulates, not what its policies know:
    the real run's policies predicted with the shipped calibration and the scenario's
    switch cost, so the twin's must too. Here the fold-back makes the cloud 20x slower
    and the edge 20x faster, which moves the best point at the start; static-best
    keeps the real run's point, and the engine charges the slower cloud."""
    from adaptsim.simulator.engine import Tables, policy_view
    from adaptsim.simulator.monitor import true_conditions
    from adaptsim.simulator.policies import Oracle
    from adaptsim.testbed.foldback import FoldBack, apply_foldback

    sc = _lenet(names=("static-best",))
    fb = FoldBack(edge_scale=0.05, cloud_scale=20.0, uplink_extra_s=0.0, return_s=0.0,
                  pause_s=sc.pause_s + 0.3, frames=10)  # fmt: skip
    folded = apply_foldback(sc, fb)
    start = true_conditions(sc, 0.0)
    world = policy_view(replace(folded, belief=None), Tables(folded))
    given = policy_view(sc, Tables(sc))
    assert world.best_point(start) != given.best_point(start)  # the folded world's best moved
    for policy in (None, Oracle()):  # a practical policy and a clairvoyant one
        view = policy_view(folded, Tables(folded), policy)
        np.testing.assert_allclose(view.tables.at(0.0, 0.0)[0], Tables(sc).at(0.0, 0.0)[0])
        assert view.pause_s == sc.pause_s and view.model is sc.model
    before, after = (run_scenario(s).records for s in (sc, folded))
    np.testing.assert_array_equal(after["point"], before["point"])  # the same decisions
    cloud = before["cloud_s"] > 0
    assert cloud.any()
    np.testing.assert_allclose(after["cloud_s"][cloud], 20.0 * before["cloud_s"][cloud], rtol=1e-9)
