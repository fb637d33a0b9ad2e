"""Policy and forecast behaviour that mutation testing found unguarded (1 Dec).

Each test pins one documented behaviour of the built-ins, their shared forecast code
or the policy protocol that a plausible slip would break silently: a detector built
with the wrong threshold, a parameter's lower bound lost, a tie that picks the
second point, neurosurgeon planning from a mean of samples instead of the latest,
a user's policy file executed again for every policy built from it, a stage that
exactly fills the gap between frames counted as keeping up, a regime looked up at the
wrong stress, every upload of a decision scored where the latest eight are meant, a
frame's latent read against the unstressed time. Each was run against its planted
slip and went red (docs/testing.md, "The policies area").
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.special import ndtri

from adaptsim.errors import UserError
from adaptsim.simulator.changepoint import ChangePoint
from adaptsim.simulator.engine import run_policy
from adaptsim.simulator.forecast import (
    BandwidthForecast,
    Discount,
    Horizon,
    Outlook,
    RecentService,
    SampleFeed,
    ServiceLists,
    Source,
    expected,
    first_min,
    mean_factors,
    transfer_rates_mbps,
)
from adaptsim.simulator.neurosurgeon import Neurosurgeon
from adaptsim.simulator.policies import Conditions, Observation, _builtin, resolve_policy
from adaptsim.simulator.scenario import PolicySpec
from simkit import toy_calibration, toy_scenario
from test_persistence_mutants import SKEWED
from test_persistent_noise import _view as persistence_view
from test_persistent_noise import persistent, with_spread
from test_persistent_noise import scenario as persistence_scenario
from test_policies import scenario, view_of


def test_changepoint_builds_each_detector_with_its_threshold_and_drift():
    # log bandwidth, edge CPU %, edge memory %: the policy's threshold and drift each,
    # the noise floor per series (log units; percent)
    cp = ChangePoint(threshold=4.0, drift=0.5)
    got = [(d.h, d.k, d.min_sigma) for d in cp._detectors]
    assert got == [(4.0, 0.5, 0.05), (4.0, 0.5, 2.0), (4.0, 0.5, 2.0)]


def test_changepoint_sees_no_change_in_a_noisy_but_steady_cpu_reading():
    """Edge CPU read with 10 % noise around a steady 50 % (bandwidth and memory steady):
    200 readings, no change detected; a 20-point step is detected within a few."""
    rng = np.random.default_rng(11)
    sc = scenario()
    cp = ChangePoint(discount="none", service_feedback=False)
    view = view_of(sc, current_point=int(sc.model.ordinals[0]), arrival_rate_hz=1.0)
    for t in range(200):
        view.now_s = float(t)
        view.monitor = Conditions(20.0, 50.0 * rng.lognormal(0.0, 0.1), 10.0)
        cp.decide(view)
    assert cp.changes == 0
    for t in range(200, 205):
        view.now_s = float(t)
        view.monitor = Conditions(20.0, 70.0 * rng.lognormal(0.0, 0.1), 10.0)
        cp.decide(view)
    assert cp.changes == 1


@pytest.mark.parametrize("k", [0, -3])
def test_mpc_refuses_fewer_than_one_bandwidth_sample(k):
    with pytest.raises(UserError, match=r"k must be a whole number from 1 to 10000"):
        run_policy(scenario(), PolicySpec(policy="mpc", params={"k": k}), 0)


def test_first_min_is_the_first_least_value_and_a_nan_wins():
    assert first_min([1.0, 2.0, 3.0]) == 0
    assert first_min([3.0, 1.0, 1.0]) == 1
    assert first_min([2.0, math.nan, 1.0]) == 1  # as np.argmin
    assert first_min([5.0]) == 0


def test_neurosurgeon_plans_with_the_latest_sample_alone():
    """The paper's policy: the latest bandwidth sample, not a mean of the recent ones."""
    sc = scenario()
    ns = Neurosurgeon(discount="none", period_s=0, service_feedback=False)
    view = view_of(sc, current_point=int(sc.model.ordinals[0]), arrival_rate_hz=1.0)
    for t, bw in enumerate((40.0, 4.0)):
        view.now_s = float(t)
        view.monitor = Conditions(bw)
        ns.decide(view)
    assert ns._outlook.forecast.forecast() == pytest.approx(4.0)
    fresh = Neurosurgeon(discount="none", period_s=0, service_feedback=False)
    assert ns.decide(view) == fresh.decide(view)  # as if 4 Mbit/s were all it had read


def _user_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "imports.log"
    path = folder / "mine.py"
    path.write_text(
        "from pathlib import Path\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write('imported\\n')\n"
        "def decide(view):\n"
        "    return view.current_point\n"
    )
    return log


def test_a_policy_file_is_imported_once_however_many_policies_use_it(tmp_path):
    log = _user_file(tmp_path / "pol")
    model = scenario().model
    spec = PolicySpec(policy="mine.py:decide")
    first = resolve_policy(spec, model, base_dir=tmp_path / "pol")
    second = resolve_policy(spec, model, base_dir=tmp_path / "pol")
    assert log.read_text() == "imported\n"
    assert first.fn is second.fn


def test_a_policy_file_in_a_folder_is_named_by_the_file_and_the_callable(tmp_path):
    _user_file(tmp_path / "sub" / "dir")
    policy = resolve_policy(
        PolicySpec(policy="sub/dir/mine.py:decide"), scenario().model, base_dir=tmp_path
    )
    assert policy.name == "mine.py:decide"


def test_an_unknown_policy_is_reported_as_the_policy_by_default():
    with pytest.raises(UserError) as err:
        resolve_policy(PolicySpec(policy="no-such-policy"), scenario().model)
    assert str(err.value).startswith("policy: policy 'no-such-policy' is neither a built-in")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"hysteresis": 0},
            r"hysteresis must be a whole number from 1 to 1000 \(decisions in a row\), not 0",
        ),
        ({"hysteresis": 2.5}, r"hysteresis must be a whole number, not 2.5"),
        ({"alpha": 0}, r"alpha must be a number above 0 and at most 1 \(EWMA weight\), not 0"),
        ({"alpha": 1.5}, r"alpha must be a number above 0 and at most 1 \(EWMA weight\), not 1.5"),
        (
            {"threshold": 1},
            r"threshold must be a number from 0 and below 1 \(relative gain\), not 1",
        ),
        ({"threshold": -0.1}, r"threshold must be a number from 0 and below 1 \(relative gain\)"),
        ({"discount": "spread"}, r"reactive's discount is none or planned"),
        ({"period_s": -1}, r"period_s must be >= 0"),
    ],
)
def test_reactive_refuses_each_bad_parameter_in_words(params, message):
    with pytest.raises(UserError, match=message):
        run_policy(scenario(), PolicySpec(policy="reactive", params=params), 0)


def test_a_stage_that_exactly_fills_the_gap_between_frames_does_not_keep_up(tmp_path):
    """At 2 frames/s (0.5 s apart): point 2's cloud takes exactly 0.5 s and the
    all-edge point's edge exactly 0.5 s, so neither keeps up (its queue would never
    drain); just below 2 frames/s both do."""
    cal = toy_calibration(tmp_path / "cal.json", edge_all_s=(0.5, 0.6), cloud_s=0.5)
    sc = toy_scenario(cal)
    view = view_of(sc, arrival_rate_hz=2.0)
    cond = Conditions(8.0)
    assert view.stable(cond).tolist() == [False, False, False]  # all-cloud: 0.6 s cloud
    view.arrival_rate_hz = 1.99
    assert view.stable(cond).tolist() == [False, True, True]
    np.testing.assert_array_equal(view.stable(cond, view.predict(cond)), view.stable(cond))


@pytest.mark.parametrize("name", ["neurosurgeon", "mpc", "changepoint"])
def test_a_period_of_zero_means_every_frame_and_a_negative_one_is_refused(name):
    model = scenario().model
    policy = resolve_policy(PolicySpec(policy=name, params={"period_s": 0}), model)
    assert policy.period_s is None
    with pytest.raises(UserError, match=r"period_s must be >= 0, not -1"):
        resolve_policy(PolicySpec(policy=name, params={"period_s": -1}), model)


def test_the_planned_discount_scores_uploads_against_the_latest_256_forecasts():
    """Forecasts 10, 11, ... in force from t = 0, 1, ...: after 300 only those from
    t = 44 on are kept, so an upload of a frame that arrived at 44 s is scored against
    the forecast of 54 (at half that rate: divide by 2), one that arrived at 43.5 s
    against none (no discount)."""
    for arrival_s, factor in ((44.0, 2.0), (43.5, 1.0)):
        f = BandwidthForecast(k=1, discount=Discount.planned)
        for t in range(300):
            f.add(10.0 + t)
            f.stamp(float(t))
        f.planned_rates([(arrival_s, 27.0)])
        assert f.forecast() == pytest.approx(309.0 / factor)


def test_the_monitor_feed_hands_each_reading_over_once():
    """A policy deciding more often than the monitor reads must not count one reading
    as several samples (mpc's harmonic mean of the last k would weigh it more)."""
    sc = scenario()
    view = view_of(sc, arrival_rate_hz=1.0)
    feed = SampleFeed(Source.monitor)
    assert feed.new(view) == []  # nothing read yet
    view.monitor = Conditions(40.0)
    assert feed.new(view) == [40.0]
    view.now_s = 0.5
    assert feed.new(view) == []  # the same reading, half a second on
    view.monitor = Conditions(4.0)
    assert feed.new(view) == [4.0]


def test_changepoint_looks_its_point_up_at_the_regimes_cpu_stress(tmp_path):
    """The toy model under 100 % edge CPU: all-edge takes 1.2 s, all-cloud 0.62 s at
    50 Mbit/s (at no stress all-edge would take 0.3 s and win). Memory stays at 0."""
    cal = toy_calibration(tmp_path / "cal.json", edge_all_s=(0.3, 1.2))
    sc = toy_scenario(
        cal,
        duration_s=20.0,
        arrivals={"kind": "periodic", "rate_hz": 0.5},
        traces={"bandwidth_mbps": {"constant": 50.0}, "edge_cpu_pct": {"constant": 100.0}},
    )
    spec = PolicySpec(policy="changepoint", params={"discount": "none", "service_feedback": False})
    cols, _, _ = run_policy(sc, spec, 0)
    late = [p for t, p in zip(cols["arrival_s"], cols["point"], strict=True) if t >= 4.0]
    assert len(late) >= 7 and set(late) == {1}


def test_the_horizon_plans_every_point_when_a_time_is_infinite(tmp_path):
    """An infinite service time leaves nothing to prune by: every point is planned and
    the least finite cost wins (all-edge, 0.4 s, over point 2's 0.8 s)."""
    sc = toy_scenario(toy_calibration(tmp_path / "cal.json"))
    view = view_of(sc, arrival_rate_hz=1.0, current_point=1)
    est = ServiceLists([1, 2, 3], [0.0, 0.2, 0.3], [0.1, 0.1, 0.1], [math.inf, 0.5, 0.0])
    assert Horizon(view, 1).best(est) == 3


def test_the_planned_discount_scores_the_latest_eight_uploads_of_a_decision():
    """Twenty uploads finished since the last decision, planned at 40 Mbit/s: the first
    twelve got 8, the last eight 4. Only the latest eight are scored (they were all
    planned with the same forecast): the forecast is divided by 10, not by 7."""
    sc = scenario()
    view = view_of(sc, monitor=Conditions(40.0), arrival_rate_hz=1.0)
    outlook = Outlook(Source.monitor, 1, Discount.planned, False)
    assert outlook.bandwidth_mbps(view) == pytest.approx(40.0)
    _, over, wire_bytes, _ = view.tables.at(0.0, 0.0)

    def upload(i: int, mbps: float) -> Observation:
        uplink_s = over[0] + wire_bytes[0] * 8 / (mbps * 1e6)
        return Observation(1.0 + i, 1, 1.0, 0.0, uplink_s, wire_bytes[0])

    view.finished = [upload(i, 8.0 if i < 12 else 4.0) for i in range(20)]
    view.now_s = 21.0
    assert outlook.bandwidth_mbps(view) == pytest.approx(4.0, rel=1e-6)


def test_recent_service_reads_a_frame_against_the_typical_time_at_its_stress():
    """Edge CPU at 100 %: a frame whose edge took its 20th percentile of the typical
    time *under that stress* reads as the latent of 0.2, whatever the unstressed time."""
    sc = with_spread(persistence_scenario(), edge=persistent(SKEWED, 4.0))
    view = persistence_view(sc, [])
    view.monitor = Conditions(20.0, 100.0, 0.0)
    stressed = view.predict(view.monitor).edge_s
    k = int(np.flatnonzero(stressed > 0)[0])
    assert stressed[k] > view.predict(Conditions(20.0)).edge_s[k] * 1.05  # stress matters
    lr = float(np.interp(0.2, SKEWED["probs"], SKEWED["log_ratio"]))
    took = float(stressed[k]) * math.exp(lr)
    view.finished = [Observation(9.0, int(sc.model.ordinals[k]), 1.0, took, 0.1, 1000.0)]
    recent = RecentService()
    recent.observe(view)
    assert recent.last[0][1] == pytest.approx(float(ndtri(0.2)), abs=1e-6)


def test_a_registry_factory_builds_its_class_on_first_use_with_the_params_given():
    mpc = _builtin("mpc", "MPC")(None, horizon=3)
    assert type(mpc).__name__ == "MPC" and mpc.horizon == 3


def test_a_class_that_builds_no_decide_is_one_line_naming_it(tmp_path):
    (tmp_path / "thing.py").write_text("class Thing:\n    pass\n")
    with pytest.raises(UserError) as err:
        resolve_policy(PolicySpec(policy="thing.py:Thing"), scenario().model, base_dir=tmp_path)
    assert str(err.value) == "policy: thing.py:Thing does not build an object with decide(view)"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"threshold": 0},
            "threshold must be a number above 0 and at most 1000 (noise sds), not 0",
        ),
        (
            {"threshold": 1001},
            "threshold must be a number above 0 and at most 1000 (noise sds), not 1001",
        ),
        ({"drift": -1}, "drift must be a number from 0 to 1000 (noise sds), not -1"),
    ],
)
def test_changepoint_refuses_each_bad_setting_naming_its_range(params, message):
    with pytest.raises(UserError) as err:
        resolve_policy(PolicySpec(policy="changepoint", params=params), scenario().model)
    assert str(err.value) == f"policy: bad params for 'changepoint': {message}"


def test_reactive_names_the_discounts_it_takes_in_words():
    spec = PolicySpec(policy="reactive", params={"discount": "spread"})
    with pytest.raises(UserError) as err:
        resolve_policy(spec, scenario().model)
    assert (
        str(err.value)
        == "policy: bad params for 'reactive': reactive's discount is none or planned"
    )


def test_a_static_point_the_model_lacks_names_the_models_range():
    model = scenario().model
    with pytest.raises(UserError) as err:
        resolve_policy(PolicySpec(policy="static", params={"point": 99}), model)
    first, last = int(model.ordinals[0]), int(model.ordinals[-1])
    assert str(err.value) == f"policy: point 99 is not a point of resnet50 ({first}..{last})"


def test_the_planned_discount_is_no_discount_until_an_upload_is_scored():
    """Samples falling 80, 40, 20, 10: without a scored upload the forecast is the
    latest sample as it is (the spread discount's ratios are not the planned one's)."""
    f = BandwidthForecast(k=1, discount=Discount.planned)
    for t, x in enumerate((80.0, 40.0, 20.0, 10.0)):
        f.add(x)
        f.stamp(float(t))
    assert f.forecast() == pytest.approx(10.0)


def test_the_planned_discount_scores_a_slow_upload_at_its_own_rate():
    """An upload at 0.5 Mbit/s planned at 10: the ratio is 20 (rates are floored only
    at 1 kbit/s, where a stalled upload would divide by zero)."""
    f = BandwidthForecast(k=1, discount=Discount.planned)
    f.add(10.0)
    f.stamp(0.0)
    f.planned_rates([(1.0, 0.5)])
    assert f.forecast() == pytest.approx(0.5)


def test_a_forecast_stamped_again_keeps_the_time_it_came_into_force():
    """One forecast, stamped at every decision for 300 s: it stays in force from t = 0,
    so an upload of a frame that arrived at 0.5 s is scored against it."""
    f = BandwidthForecast(k=1, discount=Discount.planned)
    f.add(10.0)
    for t in range(300):
        f.stamp(float(t))
    f.planned_rates([(0.5, 5.0)])
    assert f.forecast() == pytest.approx(5.0)


def test_expected_times_scale_each_part_by_its_own_factor_row():
    sc = scenario()
    view = view_of(sc)
    cond = Conditions(20.0, 30.0, 0.0)
    n = len(sc.model.ordinals)
    factors = np.vstack([np.full(n, 2.0), np.full(n, 3.0), np.full(n, 5.0)])
    got = expected(view, cond, factors)
    plain = view.predict(cond)
    np.testing.assert_allclose(got.edge_s, plain.edge_s * 2.0)
    np.testing.assert_allclose(got.comm_s, plain.comm_s * 3.0)
    np.testing.assert_allclose(got.cloud_s, plain.cloud_s * 5.0)


def test_changepoint_moves_on_a_change_of_cpu_stress_alone(tmp_path):
    """Bandwidth steady at 50 Mbit/s; the edge CPU steps from 0 to 100 % at 30 s. At no
    stress all-edge wins (0.3 s), at full stress all-cloud (0.62 s against 1.2 s): the
    CPU detector's change alone must move the split."""
    cal = toy_calibration(tmp_path / "cal.json", edge_all_s=(0.3, 1.2))
    sc = toy_scenario(
        cal,
        duration_s=60.0,
        arrivals={"kind": "periodic", "rate_hz": 0.5},
        traces={
            "bandwidth_mbps": {"constant": 50.0},
            "edge_cpu_pct": {"steps": [[0, 0.0], [30, 100.0]], "end": "hold"},
        },
    )
    spec = PolicySpec(policy="changepoint", params={"discount": "none", "service_feedback": False})
    cols, _, _ = run_policy(sc, spec, 0)
    by_time = dict(zip(cols["arrival_s"], cols["point"], strict=True))
    assert {p for t, p in by_time.items() if 10.0 <= t < 30.0} == {3}
    assert {p for t, p in by_time.items() if t >= 40.0} == {1}


def test_changepoint_plans_a_new_regime_at_its_level_at_once():
    """Exact readings of 40 Mbit/s, then one of 4: the change is detected at once and
    the regime is planned at 4 (not at a mean with the old level), as a policy that
    only ever read 4 would plan it."""
    sc = scenario()
    cp = ChangePoint(discount="none", service_feedback=False)
    view = view_of(sc, current_point=int(sc.model.ordinals[0]), arrival_rate_hz=1.0)
    for t in range(10):
        view.now_s, view.monitor = float(t), Conditions(40.0)
        cp.decide(view)
    view.now_s, view.monitor = 10.0, Conditions(4.0)
    point = cp.decide(view)
    assert cp.changes == 1
    assert cp._plan.forecast() == pytest.approx(4.0)
    fresh = ChangePoint(discount="none", service_feedback=False)
    assert point == fresh.decide(view)


def test_an_upload_is_read_through_the_link_law_at_the_monitors_stress():
    """Under 100 % edge CPU the link law's overhead differs from the unstressed one: an
    upload that took that overhead plus its bytes at 8 Mbit/s reads as 8 Mbit/s."""
    sc = scenario()
    view = view_of(sc, monitor=Conditions(40.0, 100.0, 0.0))
    _, over0, _, _ = view.tables.at(0.0, 0.0)
    _, over, wire_bytes, host = view.tables.at(100.0, 0.0)
    k = next(i for i in range(len(over)) if abs(over[i] - over0[i]) > 0.05 and wire_bytes[i] > 1e5)
    uplink_s = over[k] + wire_bytes[k] * 8 / 8e6
    assert uplink_s > 1.05 * host[k]
    view.finished = [Observation(3.0, int(sc.model.ordinals[k]), 2.0, 0.5, uplink_s, 0.0)]
    assert transfer_rates_mbps(view) == [pytest.approx(8.0)]


@pytest.mark.parametrize(
    ("params", "wants"),
    [
        ({"discount": "none", "service_feedback": False}, False),
        ({"discount": "none", "service_feedback": True}, True),
        ({"discount": "planned", "service_feedback": False}, True),
        ({"discount": "none", "service_feedback": False, "source": "transfers"}, True),
    ],
)
def test_changepoint_asks_for_finished_frames_only_when_it_reads_them(params, wants):
    assert ChangePoint(**params).uses_finished is wants


def test_changepoint_looks_its_point_up_at_the_regimes_memory_stress():
    """ResNet50 at a bandwidth where the edge's memory stress moves the best point: the
    regime's point is the one for the memory stress read, not for none."""
    sc = scenario()
    view = view_of(sc, current_point=int(sc.model.ordinals[0]), arrival_rate_hz=0.1)
    factors = mean_factors(view)

    def best(cond: Conditions) -> int:
        return int(view.ordinals[int(np.argmin(expected(view, cond, factors).total_s))])

    bw = next(
        b for b in np.geomspace(0.5, 200.0, 200)
        if best(Conditions(b, 0.0, 100.0)) != best(Conditions(b, 0.0, 0.0))
    )  # fmt: skip
    cp = ChangePoint(discount="none", service_feedback=False)
    view.monitor = Conditions(float(bw), 0.0, 100.0)
    assert cp.decide(view) == best(
        Conditions(math.exp(round(math.log(bw) / math.log(1.02)) * math.log(1.02)), 0.0, 100.0)
    )


def test_mean_factors_go_on_past_a_part_without_a_spread():
    """No edge spread, a skewed cloud spread: the cloud's row is still its mean factor."""
    sc = with_spread(persistence_scenario(), edge={}, cloud=SKEWED)
    view = persistence_view(sc, [])
    u = (np.arange(200_000) + 0.5) / 200_000
    want = float(np.mean(np.exp(np.interp(u, SKEWED["probs"], SKEWED["log_ratio"]))))
    got = mean_factors(view)
    np.testing.assert_allclose(got[0], 1.0)
    np.testing.assert_allclose(got[2], want, rtol=1e-3)


def test_the_transfers_feed_falls_back_to_the_monitor_without_an_arrival_rate():
    sc = scenario()
    view = view_of(sc, arrival_rate_hz=0.0, monitor=Conditions(12.0), now_s=5.0)
    assert SampleFeed(Source.transfers).new(view) == [12.0]


def test_static_best_decides_for_the_conditions_at_the_start(tmp_path):
    """Poisson frames; the link falls from 50 to 0.5 Mbit/s at 0.5 s. In a seed whose
    first frame comes after the fall, static-best still keeps the point for t = 0 (the
    paper's baseline), all-cloud here, not the point for the conditions it first sees
    (all-edge, 1.2 s, against all-cloud's 3.0 s at 0.5 Mbit/s)."""
    cal = toy_calibration(tmp_path / "cal.json", edge_all_s=(1.2, 2.4))
    sc = toy_scenario(
        cal,
        duration_s=6.0,
        arrivals={"kind": "poisson", "rate_hz": 0.5},
        traces={"bandwidth_mbps": {"steps": [[0, 50.0], [0.5, 0.5]], "end": "hold"}},
    )
    view = view_of(sc)
    assert view.best_point(Conditions(50.0)) == 1 and view.best_point(Conditions(0.5)) != 1
    for seed in range(20):
        cols, _, _ = run_policy(sc, PolicySpec(policy="static-best"), seed)
        if cols["arrival_s"] and cols["arrival_s"][0] > 0.6:
            break
    assert cols["arrival_s"][0] > 0.6
    assert set(cols["point"]) == {1}


def test_a_policy_looking_ahead_without_being_clairvoyant_is_told_why():
    with pytest.raises(PermissionError, match=r"^only clairvoyant policies may look ahead$"):
        view_of(scenario()).lookahead()
