"""The ``risk`` policy: expected latency under the link's own recent changes.

Scenarios built so that the right answer is known: the toy calibration
(tests/simkit.py, every number chosen here) on an on/off link whose expected
latencies are worked out by hand below, where the expectation and the point
forecast disagree; a steady link, where there is nothing to expect and the choice
must be the point forecast's (neurosurgeon's, undiscounted); change quantiles on
series whose changes are known.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from adaptsim.errors import UserError
from adaptsim.simulator.engine import Tables, run_policy
from adaptsim.simulator.policies import REGISTRY, Conditions, View, resolve_policy
from adaptsim.simulator.risk import RiskAware, base_level, lag_quantiles
from adaptsim.simulator.scenario import PolicySpec
from simkit import toy_calibration, toy_scenario
from test_policies import scenario

# Not a built-in (docs/policies.md): a user names it as module:callable.
RISK = "adaptsim.simulator.risk:RiskAware"

# The toy model with a slow all-edge point: one frame, empty queues, b Mbit/s:
#   point 1 (all-cloud): 150,528 B on the wire, 0.6 s cloud  -> 0.6 + 1.204224 / b
#   point 2 (cut):       0.2 s edge, 300,000 B, 0.5 s cloud  -> 0.7 + 2.4 / b
#   point 3 (all-edge):  2.0 s edge, 4,000 B (the result)    -> 2.0 + 0.032 / b
S_PER_MBPS = {1: (0.6, 1.204224), 2: (0.7, 2.4), 3: (2.0, 0.032)}


def toy(tmp_path, **overrides):
    cal = toy_calibration(tmp_path / "cal.json", edge_all_s=(2.0, 3.0))
    return toy_scenario(cal, **overrides)


def feed(policy: RiskAware, sc, readings_mbps) -> View:
    """Hand the policy one monitor reading a second; returns the view of the last."""
    v = View(model=sc.model, tables=Tables(sc), cloud_cpu_pct=0.0, cloud_mem_pct=0.0)
    v.current_point = 1
    for t, bw in enumerate(readings_mbps):
        v.now_s = float(t)
        v.monitor = Conditions(bw)  # a new object: a new reading
        chosen = policy.decide(v)
    v.chosen = chosen
    return v


def test_on_off_link_expected_latency_is_the_hand_computed_one_and_picks_the_edge(tmp_path):
    sc = toy(tmp_path)
    # 8, 8, 0.2, 0.2, ... ending on 8: the changes from one reading to the next are
    # 0 half the time, x40 and /40 a quarter each; 4 quantiles give exactly
    # bandwidths 8/40, 8, 8, 8*40 for the next transfer.
    readings = [8.0, 8.0, 0.2, 0.2] * 10 + [8.0]
    policy = RiskAware(horizon=1, quantiles=4, max_lag=1, anchored=False)
    v = feed(policy, sc, readings)
    mean_inverse = (1 / 0.2 + 1 / 8 + 1 / 8 + 1 / 320) / 4
    by_hand = np.array([S_PER_MBPS[k][0] + S_PER_MBPS[k][1] * mean_inverse for k in (1, 2, 3)])
    est = policy._estimate_at(v, 8.0)
    got = policy.expected_cost(v, est, 8.0, v.monitor)
    np.testing.assert_allclose(got, by_hand, rtol=1e-9)
    # The premise: at the point forecast (8 Mbit/s) all-cloud is best (0.75 s against
    # 2.004 s), in expectation all-edge (2.042 s against 2.18 s).
    assert v.best_point(Conditions(8.0)) == 1
    assert v.chosen == 3


def test_steady_link_gives_the_point_forecasts_choice(tmp_path):
    """Nothing changes, so the expectation is the point forecast: the same split as
    neurosurgeon's (undiscounted) at every frame, at a bandwidth where each point wins."""
    for bw, best in ((0.5, 3), (20.0, 1)):
        sc = toy(
            tmp_path,
            duration_s=30.0,
            arrivals={"kind": "periodic", "rate_hz": 0.5},
            traces={"bandwidth_mbps": {"constant": bw}},
            observe={"period_s": 1.0, "delay_s": 1.0, "noise": 0.0},
        )
        risk, _, _ = run_policy(sc, PolicySpec(policy=RISK), 0)
        ns, _, _ = run_policy(sc, PolicySpec(policy="neurosurgeon", params={"discount": "none"}), 0)
        assert list(risk["point"]) == list(ns["point"])
        assert set(risk["point"]) == {best}


def test_steady_resnet50_link_matches_neurosurgeon_on_the_real_calibration():
    # The premise (test_policies): all-edge (25) at 4 Mbit/s, all-cloud (1) at 40.
    for bw, best in ((4.0, 25), (40.0, 1)):
        sc = scenario(
            traces={"bandwidth_mbps": {"constant": bw}},
            arrivals={"kind": "periodic", "rate_hz": 0.5},
        )
        risk, _, _ = run_policy(sc, PolicySpec(policy=RISK), 0)
        ns, _, _ = run_policy(sc, PolicySpec(policy="neurosurgeon", params={"discount": "none"}), 0)
        assert list(risk["point"]) == list(ns["point"])
        assert {int(p) for p in risk["point"]} == {best}


def test_change_quantiles_per_lag_on_a_known_trend():
    # log bandwidth rising by 0.1 a reading: every change over L readings is 0.1 L.
    q = lag_quantiles(np.arange(30) * 0.1, max_lag=3, quantiles=5)
    np.testing.assert_allclose(q, np.array([[0.1], [0.2], [0.3]]) * np.ones((1, 5)))
    # Too short a history for a lag: the longest it has; none at all: no change.
    short = lag_quantiles(np.array([0.0, 0.5, 1.0]), max_lag=3, quantiles=2)
    np.testing.assert_allclose(short, [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(lag_quantiles(np.array([1.0]), 2, 3), np.zeros((2, 3)))


def test_changes_from_a_smoothed_level():
    """With k readings in the base, a change is measured from their mean: on readings
    alternating 0, 1 the base of 2 is always 0.5, so every change is +-0.5."""
    log_bw = np.tile([0.0, 1.0], 20)
    q = lag_quantiles(log_bw, max_lag=1, quantiles=4, k=2)[0]
    np.testing.assert_allclose(q, [-0.5, -0.5, 0.5, 0.5])
    assert base_level(log_bw, 2) == 0.5 and base_level(log_bw, 1) == 1.0
    # k = 1: from the reading itself, +-1.
    np.testing.assert_allclose(np.abs(lag_quantiles(log_bw, 1, 4)[0]), 1.0)


def test_anchored_changes_are_those_at_the_frames_phase():
    """A link that steps every 5 readings, frames arriving just before each step: from
    any reading the next one is mostly the same, from the frames' readings never."""
    levels = np.repeat(np.tile([0.0, 1.0], 8), 5)  # 80 readings, a step every 5
    anchors = np.arange(4, 70, 5)  # the reading in force as 14 frames arrive (7 up, 7 down)
    anywhere = lag_quantiles(levels, 1, 8)[0]
    at_frames = lag_quantiles(levels, 1, 8, anchors)[0]
    assert np.count_nonzero(anywhere) <= 2  # 15 steps among 79 changes
    np.testing.assert_allclose(np.abs(at_frames), 1.0)


def test_policy_anchors_frames_to_the_reading_they_were_served_with(tmp_path):
    sc = toy(tmp_path)
    policy = RiskAware()
    v = View(model=sc.model, tables=Tables(sc), cloud_cpu_pct=0.0, cloud_mem_pct=0.0)
    for t in range(12):
        v.now_s = float(t)
        v.monitor = Conditions(8.0)
        v.last_arrival_s = float(t - t % 5)  # frames at 0, 5, 10
        policy.decide(v)
    # The frame at 5 was served before the reading of t = 5 was seen: reading 4.
    assert list(policy._anchors) == [4, 9]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"horizon": 0}, "horizon"),
        ({"quantiles": 2.5}, "quantiles"),
        ({"history": 5}, "history"),
        ({"k": 0}, "k must"),
        ({"anchored": "yes"}, "anchored"),
        ({"period_s": -1}, "period_s"),
        ({"source": "oracle"}, "oracle"),
    ],
)
def test_bad_params_are_one_line_errors(params, field):
    sc = scenario()
    with pytest.raises(UserError) as err:
        resolve_policy(PolicySpec(policy=RISK, params=params), sc.model, where="t.yaml")
    assert field in str(err.value) and "\n" not in str(err.value)


def test_risk_is_a_practical_opt_in_policy():
    sc = scenario()
    policy = resolve_policy(PolicySpec(policy=RISK), sc.model)
    assert "risk" not in REGISTRY and isinstance(policy, RiskAware)
    assert policy.name == "risk" and not policy.clairvoyant
    assert math.isclose(policy.period_s, 1.0)
