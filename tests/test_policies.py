"""The adaptive built-ins (neurosurgeon, mpc, changepoint) and what they share.

Designed scenarios whose right answer is known from the calibration: a 10x
bandwidth drop, a queue that only a queue-aware policy sees, a forecast checked
against a harmonic mean worked out by hand, a change detector on series with a
known shift and known noise.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from adaptsim.errors import UserError
from adaptsim.simulator import load_scenario, run_scenario, scenario_from_dict
from adaptsim.simulator.changepoint import Cusum
from adaptsim.simulator.engine import Tables, run_policy
from adaptsim.simulator.forecast import (
    BandwidthForecast,
    Discount,
    Source,
    queue_done_s,
    transfer_rates_mbps,
)
from adaptsim.simulator.mpc import MPC
from adaptsim.simulator.policies import Conditions, Observation, View
from adaptsim.simulator.scenario import PolicySpec

REPO = Path(__file__).resolve().parent.parent
CAL_CACHE: dict = {}
ADAPTIVE = ("neurosurgeon", "mpc", "changepoint")


def scenario(**overrides):
    """ResNet50, a frame a second, exact monitor, deterministic service."""
    doc = {
        "name": "t",
        "model": "resnet50",
        "duration_s": 20.0,
        "arrivals": {"kind": "periodic", "rate_hz": 1.0},
        "deadline_s": 5.0,
        "traces": {"bandwidth_mbps": {"steps": [[0, 40.0], [5, 4.0]], "end": "hold"}},
        "observe": {"period_s": 1.0, "delay_s": 0.0, "noise": 0.0},
        "service": {"noise": False},
        "policies": [{"policy": "static-best"}],
    }
    doc.update(overrides)
    return scenario_from_dict(doc, "test scenario", REPO / "scenarios", CAL_CACHE)


def view_of(sc, **fields) -> View:
    v = View(model=sc.model, tables=Tables(sc), cloud_cpu_pct=0.0, cloud_mem_pct=0.0)
    for k, x in fields.items():
        setattr(v, k, x)
    return v


@pytest.mark.parametrize("policy", ADAPTIVE)
def test_a_tenfold_drop_moves_the_split_within_one_frame(policy):
    sc = scenario()
    v = view_of(sc)
    # The premise, from the calibration: all-cloud at 40 Mbit/s, all-edge at 4.
    assert v.best_point(Conditions(40.0)) == 1
    assert v.best_point(Conditions(4.0)) == 25
    cols, stats, _ = run_policy(sc, PolicySpec(policy=policy), 0)
    points = dict(zip(cols["arrival_s"], cols["point"], strict=True))
    assert all(points[t] == 1 for t in (0.0, 1.0, 2.0, 3.0, 4.0))
    # The reading at t = 5 shows the drop; neurosurgeon acts on the frame arriving
    # with it, changepoint by the next frame; mpc's harmonic mean of 5 readings
    # first falls below the ~11 Mbit/s crossover with the second low one
    # (40, 40, 40, 4, 4: 8.7 Mbit/s), by the frame after.
    first_edge = min(t for t, p in points.items() if p == 25)
    assert first_edge <= {"neurosurgeon": 5.0, "changepoint": 6.0, "mpc": 7.0}[policy]
    assert all(p == 25 for t, p in points.items() if t >= first_edge)
    assert stats.repartitions == 1


def test_a_backlog_moves_the_best_point():
    """Same conditions, same predicted service times: only the uplink backlog differs
    (three seconds of the edge's own unacknowledged bytes at the planned rate)."""
    sc = scenario()
    v = view_of(sc, now_s=10.0, current_point=1, arrival_rate_hz=1.0)
    est = v.predict(Conditions(40.0))
    idle = queue_done_s(v, est)[0]
    assert int(v.ordinals[np.argmin(idle)]) == 1
    busy = queue_done_s(v, est, uplink_backlog_s=3.0)[0]
    # all-cloud waits for the uplink; all-edge (tiny payload) waits too, but runs its
    # compute meanwhile: the wait hides behind the edge time.
    k_cloud, k_edge = 0, len(v.ordinals) - 1
    assert busy[k_cloud] == pytest.approx(3.0 + est.comm_s[k_cloud] + est.cloud_s[k_cloud])
    assert busy[k_edge] == pytest.approx(max(est.edge_s[k_edge], 3.0) + est.comm_s[k_edge])
    assert int(v.ordinals[np.argmin(busy)]) != 1


def test_the_switch_pause_is_paid_by_other_points_only():
    sc = scenario(repartition={"pause_s": 0.5})
    v = view_of(sc, now_s=3.0, current_point=1, pause_s=0.5, edge_free_s=2.0)
    est = v.predict(Conditions(40.0))
    free = queue_done_s(v, est, pause_s=0.0)[0]
    paid = queue_done_s(v, est)[0]
    assert paid[0] == pytest.approx(free[0])  # the current point: no pause
    np.testing.assert_allclose(paid[1:], free[1:] + 0.5)


def test_a_pause_between_frames_is_hidden_in_idle_time():
    """Deciding 2 s after a frame, 3 s before the next, with an idle edge: the 0.5 s
    pause ends before the frame arrives; 4.8 s after it, it would delay the frame."""
    sc = scenario(repartition={"pause_s": 0.5})
    est = view_of(sc).predict(Conditions(40.0))
    fields = {"current_point": 1, "pause_s": 0.5, "arrival_rate_hz": 0.2, "last_arrival_s": 0.0}
    early = queue_done_s(view_of(sc, now_s=2.0, **fields), est)[0]
    late = queue_done_s(view_of(sc, now_s=4.8, **fields), est)[0]
    free = queue_done_s(view_of(sc, now_s=2.0, **fields), est, pause_s=0.0)[0]
    np.testing.assert_allclose(early, free)
    np.testing.assert_allclose(late[1:], free[1:] + 0.3)  # pause ends at 5.3, frame at 5


def test_horizon_charges_the_queue_a_point_leaves_behind():
    """At 4 frames/s all-cloud's 1.2 s transfer at 4 Mbit/s can't keep up: each frame
    waits longer. Over a horizon the predicted total grows faster than linearly."""
    sc = scenario()
    v = view_of(sc, now_s=0.0, current_point=1, arrival_rate_hz=4.0)
    est = v.predict(Conditions(4.0))
    lat = queue_done_s(v, est, frames=4)
    gap = 0.25
    # frame j waits j * (comm - gap) on the uplink beyond the first frame's latency
    expected = lat[0, 0] + np.arange(4) * (est.comm_s[0] - gap)
    np.testing.assert_allclose(lat[:, 0], expected)


def _queues_frame_by_frame(v, est, frames, gap_s):
    """The horizon the slow way: each frame through edge, uplink and c cloud servers
    (the earliest free one), in order; the current point (1) pays no pause."""
    out = np.empty((frames, len(v.ordinals)))
    for k, point in enumerate(v.ordinals):
        edge = v.edge_free_s + (v.pause_s if point != v.current_point else 0.0)
        link, cloud = -np.inf, [-np.inf] * v.cloud_servers
        for j in range(frames):
            a = v.now_s + j * gap_s
            edge = max(a, edge) + est.edge_s[k]
            link = max(edge, link) + est.comm_s[k]
            at = link + v.one_way_latency_s
            end = at
            if est.cloud_s[k] > 0:
                s = int(np.argmin(cloud))
                end = cloud[s] = max(at, cloud[s]) + est.cloud_s[k]
            out[j, k] = end + v.one_way_latency_s - a
    return out


@pytest.mark.parametrize("servers", [1, 2, 3, 8])
def test_the_closed_form_horizon_is_the_frame_by_frame_queue(servers):
    """Frames faster than the link and the cloud (0.1 s apart; at 1000 Mbit/s all-cloud
    sends for 0.26 s and computes 0.68 s in the cloud; one to eight cloud servers), a
    backlog and a pause: the closed form equals a frame-by-frame walk through the
    queues, for every point and frame."""
    sc = scenario()
    v = view_of(
        sc, now_s=2.0, current_point=1, arrival_rate_hz=10.0, cloud_servers=servers,
        edge_free_s=2.3, pause_s=0.2, one_way_latency_s=0.01, last_arrival_s=2.0,
    )  # fmt: skip
    est = v.predict(Conditions(1000.0))
    got = queue_done_s(v, est, frames=7)
    want = _queues_frame_by_frame(v, est, 7, 0.1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert (np.diff(got[:, 0]) > 0).all()  # the queue grows: the check is made where it binds
    if servers < 3:  # ... and where the cloud's servers bind, not only the uplink
        v.cloud_servers = 8
        assert got[-1, 0] > queue_done_s(v, est, frames=7)[-1, 0] + 0.1


def test_forecast_is_the_harmonic_mean_of_the_last_k():
    f = BandwidthForecast(k=3, discount=Discount.none)
    for x in (100.0, 10.0, 20.0, 40.0):
        f.add(x)
    assert f.forecast() == pytest.approx(3 / (1 / 10 + 1 / 20 + 1 / 40))


def test_robust_forecast_divides_by_one_plus_the_max_error():
    f = BandwidthForecast(k=2, discount=Discount.max_error)
    f.add(10.0)  # forecast then: 10
    f.add(5.0)  # error |10 - 5| / 5 = 1; forecast: hm(10, 5) = 20/3
    f.add(10.0)  # error |20/3 - 10| / 10 = 1/3; forecast: hm(5, 10) = 20/3
    assert f.forecast() == pytest.approx((20 / 3) / (1 + 1.0))


def test_spread_discount_only_for_a_link_that_moves():
    steady = BandwidthForecast(k=3, discount=Discount.spread, lag=1)
    moving = BandwidthForecast(k=3, discount=Discount.spread, lag=1)
    for _ in range(10):
        steady.add(10.0)
    for x in (10.0, 1.0) * 5:
        moving.add(x)
    assert steady.forecast() == pytest.approx(10.0)
    # last three samples 1, 10, 1; the nine ratios x[t-1]/x[t]: 10, 0.1, ..., 10
    hm = 3 / (1 / 1 + 1 / 10 + 1 / 1)
    assert moving.forecast() == pytest.approx(hm / ((5 * 10 + 4 * 0.1) / 9))


def test_planned_discount_is_the_mean_error_on_planned_uploads():
    f = BandwidthForecast(k=1, discount=Discount.planned)
    f.add(10.0)
    f.stamp(0.0)  # frames arriving from t = 0 were planned at 10 Mbit/s
    f.add(20.0)
    f.stamp(5.0)  # ... and from t = 5 at 20
    assert f.forecast() == pytest.approx(20.0)  # no uploads scored yet
    f.planned_rates([(1.0, 5.0), (6.0, 10.0), (7.0, 40.0)])  # ratios 2, 2, 0.5
    assert f.forecast() == pytest.approx(20.0 / 1.5)


def test_mpc_plans_with_the_harmonic_mean_of_its_samples():
    """In a run: mpc's forecast after the monitor's readings 40, 40, 4 is their harmonic mean."""
    sc = scenario()
    mpc = MPC(k=3, discount=Discount.none)
    v = view_of(sc, arrival_rate_hz=1.0)
    for t, bw in ((0.0, 40.0), (1.0, 40.0), (2.0, 4.0)):
        v.now_s, v.monitor = t, Conditions(bw)
        v.current_point = mpc.decide(v)
    assert mpc._outlook.forecast.forecast() == pytest.approx(3 / (2 / 40 + 1 / 4))


def test_transfers_give_the_wire_rate_of_informative_uploads():
    sc = scenario()
    v = view_of(sc, monitor=Conditions(40.0))
    _, over, wire_bytes, _ = v.tables.at(0.0, 0.0)
    # all-cloud's raw input sent at exactly 8 Mbit/s; all-edge's result (overhead only)
    t_cloud = over[0] + wire_bytes[0] * 8 / 8e6
    v.finished = [
        Observation(1.0, 1, 2.0, 0.0, t_cloud, 0.0),
        Observation(2.0, 25, 1.2, 1.1, over[-1] * 1.01, 0.0),
    ]
    assert transfer_rates_mbps(v) == [pytest.approx(8.0)]


@pytest.mark.parametrize("policy", ADAPTIVE)
def test_transfers_source_follows_its_own_uploads(policy):
    """With a blind monitor (a constant 40 Mbit/s reading) only the uploads tell of
    the drop to 4: the transfers source must leave all-cloud, the monitor one not."""
    sc = scenario(
        duration_s=40.0,
        arrivals={"kind": "periodic", "rate_hz": 0.5},
        traces={"bandwidth_mbps": {"steps": [[0, 40.0], [10, 4.0]], "end": "hold"}},
    )
    blind = dataclasses.replace(sc, observe_delay_s=1e9)  # reads t = 0 forever
    # the default discount learns from the uploads too: not here
    extra = {"discount": "none"}
    by_source = {}
    for source in Source:
        spec = PolicySpec(policy=policy, params={"source": source, **extra})
        by_source[source] = run_policy(blind, spec, 0)[0]["point"]
    assert set(by_source[Source.monitor]) == {1}
    assert any(p != 1 for p in by_source[Source.transfers])


@pytest.mark.parametrize("policy", [*ADAPTIVE, "reactive"])
def test_planned_discount_learns_the_drop_the_monitor_misses(policy):
    """The default discount: the monitor's 40 Mbit/s, scored against the uploads' 4,
    is discounted ~10x, so even on monitor readings the split leaves all-cloud."""
    sc = scenario(
        duration_s=40.0,
        arrivals={"kind": "periodic", "rate_hz": 0.5},
        traces={"bandwidth_mbps": {"steps": [[0, 40.0], [10, 4.0]], "end": "hold"}},
    )
    blind = dataclasses.replace(sc, observe_delay_s=1e9)
    cols = run_policy(blind, PolicySpec(policy=policy), 0)[0]
    points = dict(zip(cols["arrival_s"], cols["point"], strict=True))
    assert all(p == 1 for t, p in points.items() if t < 10.0)
    assert all(p == 25 for t, p in points.items() if t >= 16.0)


def test_cusum_fires_once_per_real_shift_not_on_noise():
    rng = np.random.default_rng(5)
    noise_sd = 0.1
    quiet = Cusum()
    for x in rng.normal(math.log(20), noise_sd, 300):
        quiet.add(x)
    assert quiet.changes == 0
    shifted = Cusum()
    fired = []
    levels = [math.log(20), math.log(2), math.log(8)]  # 10x down, then 4x up
    series = np.concatenate([rng.normal(m, noise_sd, 100) for m in levels])
    for i, x in enumerate(series):
        if shifted.add(x):
            fired.append(i)
    assert len(fired) == 2
    assert 100 <= fired[0] <= 103 and 200 <= fired[1] <= 203
    assert shifted.level == pytest.approx(math.log(8), abs=3 * noise_sd / math.sqrt(20))


def test_changepoint_switches_only_at_shifts_on_a_noisy_monitor():
    sc = scenario(
        duration_s=300.0,
        arrivals={"kind": "periodic", "rate_hz": 0.5},
        traces={"bandwidth_mbps": {"steps": [[0, 40.0], [150, 4.0]], "end": "hold"}},
        observe={"period_s": 1.0, "delay_s": 1.0, "noise": 0.1},
    )
    _, stats, _ = run_policy(sc, PolicySpec(policy="changepoint"), 3)
    _, reactive, _ = run_policy(
        sc, PolicySpec(policy="reactive", params={"alpha": 1.0, "hysteresis": 1}), 3
    )
    assert stats.repartitions == 1
    assert reactive.repartitions >= stats.repartitions


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"source": "radio"}, "'radio' is not a valid Source"),
        ({"horizon": 0}, "horizon must be"),
        ({"discount": "pessimism"}, "not a valid Discount"),
    ],
)
def test_bad_policy_params_are_one_line_errors(params, message):
    spec = PolicySpec(policy="mpc", params=params)
    with pytest.raises(UserError, match=message):
        run_policy(scenario(), spec, 0)


def test_changepoint_takes_only_the_discounts_it_has():
    spec = PolicySpec(policy="changepoint", params={"discount": "spread"})
    with pytest.raises(UserError, match="discount is none or planned"):
        run_policy(scenario(), spec, 0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["norway_train_1", "fcc_amazon_797466"])
def test_adaptive_policies_never_beat_the_oracle_on_real_traces(name):
    """The oracle stays an upper bound for the new policies (they see the queues)."""
    sc = load_scenario(REPO / f"scenarios/{name}.yaml").shortened(300.0, (1, 2))
    means = run_scenario(sc).records.groupby("policy")["latency_s"].mean()
    assert set(ADAPTIVE) <= set(means.index)
    for policy in ("reactive", *ADAPTIVE):
        assert means["oracle"] <= means[policy]
