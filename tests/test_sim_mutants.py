"""Tests written for mutmut's surviving simulator mutants (docs/testing.md, "Mutation testing").

Each test pins a behaviour a surviving mutant changed, on a scenario built so
that the right answer is known by hand (the toy calibration of ``simkit``). Each
docstring names the mutant it kills (``scripts/mutation.sh --sample 40 --seed 20
simulator``); every kill was checked by applying the mutant's edit by hand to
``src/``, seeing the test fail, and reverting.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import simpy

from adaptsim.calibration import load_calibration
from adaptsim.errors import UserError
from adaptsim.simulator import End, Trace, load_scenario, read_trace, run_policy, run_scenario
from adaptsim.simulator.changepoint import Cusum
from adaptsim.simulator.engine import Tables
from adaptsim.simulator.forecast import BandwidthForecast, transfer_rates_mbps
from adaptsim.simulator.policies import Conditions, Observation, View
from adaptsim.simulator.results import results_folder
from adaptsim.simulator.risk import RiskAware
from adaptsim.simulator.saturation import Saturation, saturation
from adaptsim.simulator.scenario import PolicySpec
from simkit import HERE, toy_calibration, toy_scenario

SIM_DATA = HERE / "data" / "sim"


def _view(sc, **fields) -> View:
    v = View(model=sc.model, tables=Tables(sc), cloud_cpu_pct=0.0, cloud_mem_pct=0.0)
    for k, x in fields.items():
        setattr(v, k, x)
    return v


def _first_point(sc, spec: PolicySpec) -> int:
    cols, _, _ = run_policy(sc, spec, 0)
    return int(cols["point"][0])


def test_neurosurgeon_plans_with_the_mean_of_a_skewed_edge_spread(tmp_path):
    """Kills ``forecast.mean_factors_12`` (the edge's spread not looked up: factor 1).

    At 8 Mbit/s, 0 % stress: all-cloud takes 150,528 B on the wire (about 0.12-0.15 s)
    + 0.6 s cloud, about 0.75 s; all-edge 0.4 s + 4 kB. With an edge spread of
    log ratios rising evenly from 0 to ln 4, the mean edge factor is the integral of
    4^u over [0, 1] = 3 / ln 4 = 2.164, so all-edge is expected to take 0.866 s and
    the least mean latency is all-cloud; without the spread (the control) all-edge
    (0.40 s) wins. Service noise is off: only the policy's prediction differs.
    """
    spread = {"edge": {"probs": [0.0, 1.0], "log_ratio": [0.0, math.log(4.0)]}}
    spec = PolicySpec(policy="neurosurgeon")
    observe = {"period_s": 1.0, "delay_s": 0.0, "noise": 0.0}
    plain = toy_calibration(tmp_path / "plain.json", edge_all_s=(0.4, 0.8))
    skewed = toy_calibration(tmp_path / "skewed.json", edge_all_s=(0.4, 0.8), spread=spread)
    assert _first_point(toy_scenario(plain, observe=observe), spec) == 3
    assert _first_point(toy_scenario(skewed, observe=observe), spec) == 1


def _one_memory_level(path):
    """Rewrite a toy calibration as if profiled at one memory level only (0 %)."""
    doc = json.loads(path.read_text())
    model = doc["models"]["toy"]
    for name in ("edge_block_s", "cloud_block_s", "edge_extra_s", "cloud_extra_s"):
        grid = model[name]
        grid["mem_levels"] = [0.0]
        grid["values"] = [row[:1] for row in grid["values"]]
    path.write_text(json.dumps(doc))
    return path


def test_upload_rates_on_a_calibration_with_one_memory_level(tmp_path):
    """Kills ``forecast.transfer_samples_45`` (memory clamped to ``mem_levels[1]``: an
    IndexError on a calibration profiled without memory stress).

    All-cloud's 150,528 B took 0.150528 s on the wire with no overhead and no host
    time: 150,528 x 8 / 0.150528 s = 8 Mbit/s exactly.
    """
    cal = _one_memory_level(toy_calibration(tmp_path / "toy.json"))
    sc = toy_scenario(cal)
    assert sc.model.edge_blocks.mem_levels.tolist() == [0.0]  # the premise
    v = _view(sc, now_s=2.0)
    v.finished = [Observation(1.2, 1, 1.2, 0.0, 0.150528, 150_528.0)]
    assert transfer_rates_mbps(v) == [pytest.approx(8.0)]


@pytest.mark.parametrize("bad", [{"k": 0}, {"lag": 0}, {"history": 1}])
def test_bandwidth_forecast_refuses_each_bad_size_alone(bad):
    """Kills ``forecast.BandwidthForecast.__init___5`` (``k < 1 and lag < 1``: k = 0 or
    lag = 0 alone let through). A forecast over no samples has no harmonic mean."""
    with pytest.raises(ValueError, match="k and lag must be >= 1, history >= 2"):
        BandwidthForecast(**bad)
    BandwidthForecast(k=1, lag=1, history=2)  # the smallest valid sizes are fine


def _run_log(sc, spec, engine_name):
    """Run ``spec`` in one engine and return its policy's log (as the existing engine
    tests do: the engines' run objects, so the policy object can be read after)."""
    from adaptsim.simulator import engine, naive

    env = simpy.Environment()
    if engine_name == "fast":
        run = engine._Run(sc, spec, 0, None)
        env.process(engine.arrivals(env, run))
    else:
        run = naive._Naive(sc, spec, 0, env)
        env.process(run.source())
    env.run()
    return run.policy.log


@pytest.mark.parametrize("engine_name", ["fast", "naive"])
def test_a_result_back_at_the_instant_of_a_decision_is_handed_to_it(tmp_path, engine_name):
    """Kills ``naive._Naive.decide_23`` (``done_s < now``: a result back exactly at a
    decision was dropped, never shown to the policy).

    Dyadic times, so every sum is exact: edge 0.25 s, 250,000 B at 8 Mbit/s = 0.25 s,
    one-way latency 1.125 s each way, cloud 0.25 s: each frame is back 3.0 s after it
    arrived, exactly when frame i + 3 arrives and the policy decides. So decision i
    (i >= 3) is handed frame i - 3, and nothing else; frames 7-9 come back after the
    last decision.
    """
    cal = toy_calibration(
        tmp_path / "toy.json",
        edge_s=(0.25, 0.5),
        cloud_s=0.25,
        wire_bytes=(150_528.0, 250_000.0, 4_000.0),
    )
    sc = toy_scenario(cal, one_way_latency_s=1.125)
    spec = PolicySpec(policy="mutant_probes.py:FinishedLog", params={"point": 2})
    log = _run_log(sc, spec, engine_name)
    expected = [(float(i), [float(i - 3)] if i >= 3 else []) for i in range(10)]
    assert log == expected


def test_stable_has_one_entry_per_point_without_an_arrival_rate(tmp_path):
    """Kills ``policies.View.stable_3`` (``np.ones(None)``: one 0-d True, so
    ``ordinals[stable]`` became a (1, 3) array instead of the three points).

    Control, at 1 frame/s and 0.1 Mbit/s: all-cloud (150,528 B: 12 s) and the cut
    (300,000 B: 24 s) cannot keep up, all-edge (0.3 s + 4 kB: 0.32 s) can.
    """
    sc = toy_scenario(toy_calibration(tmp_path / "toy.json"))
    v = _view(sc, arrival_rate_hz=0.0)
    free = v.stable(Conditions(0.1))
    assert free.shape == (3,)
    assert v.model.ordinals[free].tolist() == [1, 2, 3]
    v.arrival_rate_hz = 1.0
    assert v.model.ordinals[v.stable(Conditions(0.1))].tolist() == [3]


def test_a_policy_peeking_at_the_truth_is_named_and_told_why(tmp_path):
    """Kills ``policies.View.truth_3`` (the refusal's text): a user policy that asks for
    the true conditions without declaring itself clairvoyant stops its run with a line
    that says why. Declared clairvoyant, it sees the true 8 Mbit/s (> 4: point 1)."""
    cal = toy_calibration(tmp_path / "toy.json")
    peek = {"policy": "mutant_probes.py:PeeksTruth", "params": {"mbps": 4.0}}
    seer = {
        "policy": "mutant_probes.py:PeeksTruth",
        "label": "seer",
        "params": {"mbps": 4.0, "clairvoyant": True},
    }
    res = run_scenario(toy_scenario(cal, policies=[peek, seer]))
    assert len(res.errors) == 1
    assert "peeks-truth" in res.errors[0]
    assert (
        "PermissionError: only clairvoyant policies may see the true conditions" in (res.errors[0])
    )
    assert set(res.records["policy"]) == {"seer"}
    assert set(res.records["point"]) == {1}


def test_saturation_needs_a_run_of_positive_length():
    """Kills ``saturation.saturation_15`` (``duration_s < 0``: a zero-length run, where
    the mean gap is 0, was called saturated). Control: the same waits, rising by half
    a second per second over 100 s at a frame a second, are saturation."""
    arrival = np.arange(100.0)
    wait = 0.5 * arrival
    sat = saturation(arrival, wait, 100.0)
    # the last frame that waited at most one gap (1 s): t = 2; the last tenth's mean
    # wait: 0.5 x mean(90..99) = 47.25 s
    assert sat is not None and (sat.at_s, sat.final_wait_s) == (2.0, 47.25)
    assert saturation(arrival, wait, 0.0) is None
    assert saturation(arrival, wait, -1.0) is None


def test_a_missing_calibration_is_named_with_its_field(tmp_path):
    """Kills ``scenario._calibration_5`` (``kind_of(path, None)``: the line began
    "None ..." instead of naming the scenario and its field)."""
    missing = tmp_path / "nowhere.json"
    with pytest.raises(UserError) as e:
        toy_scenario(missing)
    assert str(e.value) == f"toy scenario: field calibration: {missing} does not exist"


def test_a_cached_calibration_without_spread_probs_is_one_line(tmp_path):
    """Kills ``scenario._check_model_32`` (``q.get("probs", None)``: a TypeError).

    The loader refuses such a file itself; a calibration handed to the scenario in
    ``calibration_cache`` (built in the same process, as a sweep shares one) is not
    re-read, so the scenario's own check is what stands between it and the engine.
    """
    path = toy_calibration(tmp_path / "toy.json")
    cal = load_calibration(str(path))
    del cal.models["toy"].spread["edge"]["probs"]
    with pytest.raises(UserError, match=r"model toy: spread\.edge is not a finite quantile table"):
        toy_scenario(path, calibration_cache={str(path): cal})


@pytest.mark.parametrize("scale, uplink_s", [(1.0, 0.6), (2.0, 0.3), (0.5, 1.2)])
def test_a_trace_scale_multiplies_the_bandwidth(tmp_path, scale, uplink_s):
    """Kills ``scenario._trace_43`` (``scale != 2.0``: a scale of exactly 2 ignored).

    The cut sends 300,000 B: at 4 Mbit/s x ``scale`` that is 2.4 Mbit / (4 x scale)
    Mbit/s = 0.6 / scale seconds on the wire (no overhead, no noise).
    """
    cal = toy_calibration(tmp_path / "toy.json")
    bw = {"constant": 4.0, "scale": scale}
    sc = toy_scenario(cal, traces={"bandwidth_mbps": bw})
    cols, _, _ = run_policy(sc, PolicySpec(policy="static", params={"point": 2}), 0)
    assert len(cols["uplink_s"]) == 10
    assert np.allclose(cols["uplink_s"], uplink_s, rtol=1e-9)


def test_a_looping_trace_that_is_always_zero_is_zero_from_the_start(tmp_path):
    """Kills ``traces.Trace.zero_from_4`` (a looping all-zero trace "zero from t = 1 s").

    ``zero_from`` is when a trace is 0 for good: from its start for a looping trace
    of zeros (a scenario refuses such a bandwidth trace, the control here; an edge
    stress trace may be all zero), never for a looping trace with a positive step,
    from the end of the last positive step for a held one.
    """
    assert Trace.steps([[0, 0.0], [4, 0.0]], End.loop).zero_from() == 0.0
    assert Trace.steps([[0, 0.0], [4, 3.0]], End.loop).zero_from() is None
    assert Trace.steps([[0, 5.0], [4, 0.0], [6, 2.0], [7, 0.0]], End.hold).zero_from() == 7.0
    cal = toy_calibration(tmp_path / "toy.json")
    down = {"steps": [[0, 0.0], [4, 0.0]], "end": "loop"}
    with pytest.raises(UserError, match="the trace is zero throughout"):
        toy_scenario(cal, traces={"bandwidth_mbps": down})


@pytest.mark.parametrize("switch_cost, points", [(False, {1, 3}), (True, {1})])
def test_neurosurgeon_counts_the_switch_pause_only_when_asked(tmp_path, switch_cost, points):
    """Kills ``neurosurgeon.Neurosurgeon.decide_24`` (the pause counted whatever
    ``switch_cost`` says).

    Toy, edge idle, a frame every 4 s decided at its arrival (``period_s: 0``), a 1.5 s
    switch pause. After the drop from 50 to 0.5 Mbit/s at t = 10 s, all-cloud takes
    0.6 + 150,528 x 8 / 0.5e6 = 3.008 s, all-edge 2.0 + 4,000 x 8 / 0.5e6 = 2.064 s:
    0.944 s better, less than the pause. Not counting the pause (the default) it moves
    to all-edge; counting it, the one frame it looks at cannot repay 1.5 s, so it stays.
    """
    cal = toy_calibration(tmp_path / "toy.json", edge_all_s=(2.0, 4.0))
    sc = toy_scenario(
        cal,
        duration_s=40.0,
        arrivals={"kind": "periodic", "rate_hz": 0.25},
        traces={"bandwidth_mbps": {"steps": [[0, 50], [10, 0.5]], "end": "hold"}},
        observe={"period_s": 1.0, "delay_s": 0.0, "noise": 0.0},
        repartition={"pause_s": 1.5},
    )
    params = {"period_s": 0, "discount": "none", "switch_cost": switch_cost}
    cols, stats, _ = run_policy(sc, PolicySpec(policy="neurosurgeon", params=params), 0)
    assert set(cols["point"][:3]) == {1}  # t = 0, 4, 8: all-cloud at 50 Mbit/s
    assert set(cols["point"]) == points
    assert stats.repartitions == len(points) - 1


@pytest.mark.parametrize(
    "final_wait_s, text", [(3.456, "(final wait 3.46 s)"), (12_345.6, "(final wait 12,346 s)")]
)
def test_a_saturation_sentence_gives_short_waits_in_hundredths(final_wait_s, text):
    """Kills ``saturation.Saturation.sentence_3`` (every wait rounded to whole seconds:
    "final wait 3 s" for 3.456 s)."""
    line = Saturation(412.0, final_wait_s).sentence("all-cloud")
    assert line.startswith("all-cloud saturated at t=412 s: its backlog grew until the end ")
    assert text in line


def test_the_frame_limit_counts_every_seed(tmp_path):
    """Kills ``scenario._check_limits_3`` (runs = policies / seeds).

    10 s at 1 frame/s, one policy: 10 frames a seed. Three seeds are 30 frames, at
    the limit of 30; four are 40, over it, refused up front with the estimate.
    """
    cal = toy_calibration(tmp_path / "toy.json")
    limits = {"max_frames": 30}
    assert toy_scenario(cal, seeds=[0, 1, 2], limits=limits).seeds == (0, 1, 2)
    with pytest.raises(UserError, match=r"x 4 runs is about 40 frames .*limit 30\)"):
        toy_scenario(cal, seeds=[0, 1, 2, 3], limits=limits)


def test_a_trace_file_with_too_many_rows_is_refused_before_parsing(tmp_path):
    """Kills ``traces._rows_within_29`` (the refusal's message replaced by ``None``).

    Twelve rows against a limit of 5 steps: refused, with the count, the limit and
    what to do; at a limit of 11 steps (12 rows: the steps and a header's worth) read.
    """
    p = tmp_path / "bw.txt"
    p.write_text("".join(f"{i} 5.0\n" for i in range(12)))
    with pytest.raises(UserError) as e:
        read_trace(p, max_steps=5)
    assert str(e.value) == (
        f"{p}: 12 rows (about 1.2e-06 GB once read; limit 5 steps): thin the trace or "
        "raise limits.max_trace_steps"
    )
    assert len(read_trace(p, max_steps=11).values) == 12


@pytest.mark.parametrize(
    "rate_hz, edge_all_s, point",
    [(1.75, 0.7, 2), (10.0, 0.3, 3)],
    ids=["one-point-keeps-up", "none-keeps-up"],
)
def test_changepoint_prefers_a_point_that_keeps_up(tmp_path, rate_hz, edge_all_s, point):
    """Kills ``changepoint.ChangePoint._lookup_40`` (the stability filter never applied)
    and ``_lookup_41`` (applied when no point is stable: all infinite, so point 1).

    At 50 Mbit/s, edge idle: all-cloud 150,528 B (0.024 s) + 0.6 s cloud = 0.624 s;
    the cut 0.2 + 0.048 + 0.5 = 0.748 s; all-edge ``edge_all_s`` + 4 kB.
    At 1.75 frames/s (a frame every 0.571 s) all-cloud's 0.6 s in the cloud and
    all-edge's 0.7 s on the edge cannot keep up, the cut's stages (0.2, 0.048, 0.5 s)
    can: the cut, though all-cloud is quicker per frame. At 10 frames/s none keeps
    up: then simply the quickest, all-edge (0.3 s).
    """
    cal = toy_calibration(tmp_path / "toy.json", edge_all_s=(edge_all_s, 2 * edge_all_s))
    sc = toy_scenario(
        cal,
        duration_s=3.0,
        arrivals={"kind": "periodic", "rate_hz": rate_hz},
        traces={"bandwidth_mbps": {"constant": 50.0}},
        observe={"period_s": 1.0, "delay_s": 0.0, "noise": 0.0},
    )
    spec = PolicySpec(policy="changepoint", params={"discount": "none"})
    assert _first_point(sc, spec) == point


def test_a_missing_scenario_file_is_named_as_the_scenario(tmp_path):
    """Kills ``scenario.load_scenario_3`` (``input_file(path, None)``: "None ... does not
    exist")."""
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(UserError) as e:
        load_scenario(missing)
    assert str(e.value) == f"scenario {missing} does not exist"


def test_a_cached_calibration_with_one_negative_value_names_it(tmp_path):
    """Kills ``scenario._check_model_22`` (the message read the second bad value: an
    IndexError when there is one). As above, only a calibration handed in through
    ``calibration_cache`` reaches this check with a bad value."""
    path = toy_calibration(tmp_path / "toy.json")
    cal = load_calibration(str(path))
    cal.models["toy"].output_bytes[1] = -300_000.0
    with pytest.raises(UserError, match=r"model toy: output_bytes holds -300000; times and"):
        toy_scenario(path, calibration_cache={str(path): cal})


def _bandwidth_step(cal, duration_s: float, before_mbps: float, after_mbps: float):
    """A frame a second, an exact monitor, the bandwidth stepping at t = 10 s."""
    steps = [[0, before_mbps], [10, after_mbps]]
    return toy_scenario(
        cal,
        duration_s=duration_s,
        traces={"bandwidth_mbps": {"steps": steps, "end": "hold"}},
        observe={"period_s": 1.0, "delay_s": 0.0, "noise": 0.0},
    )


@pytest.mark.parametrize("drift, points", [(1.0, {1, 3}), (1000.0, {1})])
def test_changepoint_ignores_a_shift_smaller_than_its_drift(tmp_path, drift, points):
    """Kills ``changepoint.ChangePoint.__post_init___9`` (the bandwidth detector built
    without ``drift``: the default 1 whatever the policy was given).

    Toy, edge idle: all-cloud is quicker above 0.837 Mbit/s (0.6 + 1.204224 / bw =
    2.0 + 0.032 / bw), all-edge below. The exact monitor reads 50 Mbit/s, then 0.5 from
    t = 10 s: a shift of ln 100 = 4.6 in log bandwidth, 92 noise sds at the 0.05 floor.
    With drift 1 it is a change at once: all-edge. With drift 1000 it is never one; the
    regime's mean then falls so slowly (10 samples at 50, m at 0.5: below 0.837 Mbit/s
    only once m > 79) that all-cloud stays for the 40 s run.
    """
    cal = toy_calibration(tmp_path / "toy.json", edge_all_s=(2.0, 4.0))
    sc = _bandwidth_step(cal, 40.0, 50.0, 0.5)
    spec = PolicySpec(policy="changepoint", params={"discount": "none", "drift": drift})
    cols, _, _ = run_policy(sc, spec, 0)
    assert set(cols["point"][:10]) == {1}
    assert set(cols["point"]) == points


def test_a_control_character_in_a_scenario_is_one_line_naming_its_line(tmp_path):
    """A YAML reader error (here a BEL, U+0007, on line 2) has no ``problem`` and a
    two-line text: the scenario's error is still one line, with the file's line.
    (Reviewing ``scenario.load_scenario_45``, ``getattr(exc, 'problem')`` without its
    default, found that the message ran over two lines; fixed in load_scenario.)"""
    path = tmp_path / "s.yaml"
    path.write_text("name: a\nmodel: b\x07\n")
    with pytest.raises(UserError) as e:
        load_scenario(path)
    assert str(e.value) == (
        f"{path}:2: not valid YAML (unacceptable character #x0007: special characters "
        "are not allowed)"
    )


def test_a_results_folder_needs_its_parent_unless_told(tmp_path):
    """Kills ``results.results_folder_1`` (``make_parent=True`` by default: a typo in
    ``--out``'s parent silently made a new tree)."""
    target = tmp_path / "no" / "res"
    with pytest.raises(UserError, match=r"folder .*no does not exist; create it first"):
        results_folder(target)
    assert not (tmp_path / "no").exists()


def test_a_trace_mean_is_weighted_by_time():
    """Kills ``traces.Trace.mean_6`` (no test reached it). 10 Mbit/s for 4 s, then 20
    for 6 s: (40 + 120) / 10 = 16."""
    assert Trace((0.0, 4.0), (10.0, 20.0), 10.0, End.loop, "").mean() == pytest.approx(16.0)


@pytest.mark.parametrize("threshold, changed", [(5.0, False), (1.0, True)])
def test_changepoint_alarms_at_its_threshold(tmp_path, threshold, changed):
    """Kills ``changepoint.ChangePoint.__post_init___8`` (the bandwidth detector built
    with the drift, 1, as its threshold: the default 5 was never used).

    An exact monitor reads 10 Mbit/s, then 11 from t = 10 s: ln 1.1 = 0.095 in log
    bandwidth, 1.9 noise sds at the 0.05 floor against a level that is the mean of
    10 readings. With drift 1 the upper sum grows by 0.9 at the first new reading,
    then less (the level follows: 1.9 x 10 / (10 + m) - 1 at the m-th): past 1 at
    the second, never past 5 (it stops growing after the ninth).
    """
    sc = _bandwidth_step(toy_calibration(tmp_path / "toy.json"), 30.0, 10.0, 11.0)
    spec = PolicySpec(policy="changepoint", params={"discount": "none", "threshold": threshold})
    policy = _run_policy_object(sc, spec)
    assert (policy.changes > 0) is changed


def _run_policy_object(sc, spec):
    """The policy object after a fast-engine run (to read what it counted)."""
    from adaptsim.simulator import engine

    env = simpy.Environment()
    run = engine._Run(sc, spec, 0, None)
    env.process(engine.controller(env, run))
    env.process(engine.arrivals(env, run))
    env.run()
    return run.policy


@pytest.mark.parametrize("engine_name", ["fast", "naive"])
def test_an_edge_queue_limit_of_two_drops_the_third_waiting_frame(tmp_path, engine_name):
    """Kills ``naive._Naive.edge_queue_16`` (``waiting = t > now``: the naive engine's
    count of waiting frames never passed 1, so a limit of 2 never dropped).

    All-edge at 0.9 s a frame, a frame every 0.4 s for 3 s (frames 0-7), at most 2
    waiting: frame 0 runs 0-0.9, 1 0.9-1.8, 2 1.8-2.7; frame 3 (t = 1.2) finds only
    frame 2 waiting and runs 2.7-3.6; frame 4 (t = 1.6) finds 2 and 3 waiting:
    dropped; frame 5 (2.0) finds 3 waiting: runs 3.6-4.5; frame 6 (2.4) finds 3 and 5:
    dropped; frame 7 (2.8) finds 5 waiting: runs 4.5-5.4.
    """
    from adaptsim.simulator.naive import run_policy_naive

    cal = toy_calibration(tmp_path / "toy.json", edge_all_s=(0.9, 1.8))
    sc = toy_scenario(
        cal,
        duration_s=3.0,
        arrivals={"kind": "periodic", "rate_hz": 2.5},
        admission={"queue_limit": {"edge": 2}},
    )
    run = run_policy if engine_name == "fast" else run_policy_naive
    cols, _, _ = run(sc, PolicySpec(policy="static", params={"point": 3}), 0)
    dropped = [i for i, d in zip(cols["request"], cols["dropped"], strict=True) if d]
    assert dropped == [4, 6]
    starts = [
        a + w
        for a, w, d in zip(cols["arrival_s"], cols["edge_wait_s"], cols["dropped"], strict=True)
        if not d
    ]
    assert starts == pytest.approx([0.0, 0.9, 1.8, 2.7, 3.6, 4.5])


# -- mutants the runs' time caps left unchecked (seed 21), checked by hand ----------


@pytest.mark.parametrize(
    "content, says",
    [
        (b"\x00\x01binary", "is a binary file, not text"),
        (b"\xe9t\xe9 latin-1, not utf-8", "is not UTF-8 text (byte 0); save it as UTF-8"),
        (
            b"model,point\ntoy,1\n",
            "is not a JSON calibration (it does not start with '{'); build one with "
            "`adaptsim calibrate`",
        ),
    ],
)
def test_a_calibration_that_is_not_json_is_one_line(tmp_path, content, says):
    """Kills ``scenario._calibration_14`` (``read_text(path, )``: the check for binary
    or non-UTF-8 text called without its label, a TypeError instead of the line)."""
    cal = tmp_path / "cal.txt"
    cal.write_bytes(content)
    with pytest.raises(UserError) as e:
        toy_scenario(cal)
    assert str(e.value) == f"toy scenario: field calibration: {cal} {says}"


def test_a_model_the_calibration_lacks_lists_every_model_it_has(tmp_path):
    """Kills ``scenario.scenario_from_dict_38`` (the models joined by ``"XX, XX"``):
    a calibration of two models names both, comma-separated and sorted."""
    doc = json.loads(toy_calibration(tmp_path / "one.json").read_text())
    doc["models"]["beta"] = doc["models"]["toy"]
    two = tmp_path / "two.json"
    two.write_text(json.dumps(doc))
    with pytest.raises(UserError) as e:
        toy_scenario(two, model="vgg16")
    assert str(e.value) == (
        f"toy scenario: field model: 'vgg16' is not in calibration {two}; it calibrates beta, toy"
    )


# -- survivors of the seed-23 four-area run ------------------------------------------


def test_a_trace_whose_times_go_back_says_how_to_fix_it(tmp_path):
    """Kills ``traces._check_40`` (the fix in the line upper-cased): row 3's time 1
    comes after 2, and the line says to sort the trace or remove duplicates."""
    path = tmp_path / "x.txt"
    path.write_text("0 1\n2 3\n1 4\n")
    with pytest.raises(UserError) as e:
        read_trace(path)
    assert str(e.value).endswith(
        "x.txt:3: time 1 does not increase (previous 2); sort the trace or remove duplicate times"
    )


@pytest.mark.parametrize("kwargs", [{"threshold": 0.0}, {"drift": -1.0}, {"min_sigma": 0.0}])
def test_a_cusum_refuses_each_bad_setting_in_words(kwargs):
    """Kills ``changepoint.Cusum.__init___15`` (the message wrapped in "XX"): each bad
    setting alone is refused with the rule it breaks."""
    with pytest.raises(ValueError) as e:
        Cusum(**kwargs)
    assert str(e.value) == "threshold and min_sigma must be > 0, drift >= 0"


def test_risk_reads_the_change_at_the_middle_of_each_points_transfer(tmp_path):
    """Kills ``risk.RiskAware._lags_23`` (each point's lead taken to the edge time
    plus 1.5 x its transfer instead of to the transfer's middle, 0.5 x).

    The link alternates 8 and 0.2 Mbit/s a reading a second, ending on 8: over one
    reading it changes x40 or /40 (the two quantiles: 0.2 and 320 Mbit/s next),
    over two not at all (8 and 8). On the toy model with a 2 s all-edge point, at 8
    Mbit/s: point 2 (0.2 s edge, then 300,000 B: 0.3 s) leads by 0.2 + 0.15 = 0.35 s,
    one reading (lag 1), and expects 0.7 + 2.4 x (1/0.2 + 1/320) / 2 = 6.70375 s;
    with 1.5 x its transfer it would lead by 0.65 s, lag 2, and expect 0.7 + 2.4 / 8
    = 1.0 s. Point 1 (0.15 s transfer) leads by 0.075 s (lag 1); point 3 (2 s edge)
    by two readings, the longest lag kept (2).
    """
    cal = toy_calibration(tmp_path / "cal.json", edge_all_s=(2.0, 3.0))
    sc = toy_scenario(cal)
    policy = RiskAware(horizon=1, quantiles=2, max_lag=2, anchored=False)
    v = View(model=sc.model, tables=Tables(sc), cloud_cpu_pct=0.0, cloud_mem_pct=0.0)
    v.current_point = 1
    for t, bw in enumerate([8.0, 0.2] * 20 + [8.0]):
        v.now_s = float(t)
        v.monitor = Conditions(bw)  # a new object: a new reading
        policy.decide(v)
    mean_inverse = (1 / 0.2 + 1 / 320) / 2
    by_hand = [0.6 + 1.204224 * mean_inverse, 0.7 + 2.4 * mean_inverse, 2.0 + 0.032 / 8]
    got = policy.expected_cost(v, policy._estimate_at(v, 8.0), 8.0, v.monitor)
    np.testing.assert_allclose(got, by_hand, rtol=1e-9)
