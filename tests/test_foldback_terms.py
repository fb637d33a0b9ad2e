"""Two fold-back terms a real run teaches: the conditions' lag and the cloud slowed by the
edge's stress.

No real run here: the "measured" side is the LeNet testbed scenario simulated in a
world made with known terms (a stand-in fold-back), its ``applied`` log written as the
real run's follower would have logged that world, and the validation folder written
as ``adaptsim validate`` writes it. The fit must give the terms back, and the twin
folded with them must reproduce the stand-in's records; with a term removed it must
not (each term is needed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from adaptsim.simulator import run_scenario
from adaptsim.simulator.draws import draw
from adaptsim.simulator.monitor import Monitor, true_conditions
from adaptsim.simulator.scenario import PolicySpec
from adaptsim.simulator.traces import End, Trace
from adaptsim.testbed import scenario_for_testbed
from adaptsim.testbed.foldback import (
    FoldBack,
    apply_foldback,
    fit_foldback,
    fit_lags,
    step_lags,
)
from adaptsim.testbed.validate import write_validation

DATA = Path(__file__).parent / "data"
SCENARIO = DATA / "testbed_lenet.yaml"  # 20 -> 1 -> 20 Mbit/s at 3 and 6 s, CPU 0 -> 50 % at 4.5 s
CALIBRATION = Path(__file__).parents[1] / "src" / "adaptsim" / "data" / "calibration_own_2core.json"
NEUTRAL = FoldBack(edge_scale=1.0, cloud_scale=1.0, uplink_extra_s=0.0, return_s=0.0,
                   pause_s=0.0, frames=90)  # fmt: skip


def _scenario(*policies: str):
    sc = scenario_for_testbed(SCENARIO, CALIBRATION)
    return replace(sc, policies=tuple(PolicySpec(policy=p) for p in policies))


def _applied_log(world) -> list[list]:
    """What the follower logs for a world: the t = 0 levels, then an entry whenever a
    level changes (its time: when the world's trace steps)."""
    traces = (world.bandwidth, world.edge_cpu, world.edge_mem)
    times = sorted({t for tr in traces for t in tr.breakpoints(world.duration_s + 5) if t > 0})
    log = [[0.0, *(tr.at(0.0) for tr in traces)]]
    for t in times:
        entry = [round(t, 4), *(tr.at(t) for tr in traces)]
        if entry[1:] != log[-1][1:]:
            log.append(entry)
    return log


def _folder(
    tmp_path: Path,
    sc,
    world,
    name: str = "v",
    lost: int = 0,
    return_s: float = 0.0,
    clock: bool = True,
) -> Path:
    """A validation folder whose real run is ``world`` simulated (``sc``'s twin beside it);
    ``lost``: the first frames of each run never came back (so the fit's frames are
    not the records' first rows); ``return_s``: each result's way back, measured;
    ``clock``: False for a folder from before validation.json had it (30 Nov)."""
    real, twin = run_scenario(world), run_scenario(sc)
    real.records["return_s"] = return_s  # a real run's own column (the result's way back)
    gone = real.records["request"] < lost
    real.records.loc[gone, ["latency_s", "done_s"]] = np.inf
    log = _applied_log(world)
    facts = {"scenario": str(SCENARIO), "calibration": str(CALIBRATION), "time_scale": 1.0,
             "duration_s": sc.duration_s, "seeds": list(sc.seeds), "notes": [],
             "applied": {f"{p}/{s}": log for p in real.summary["policy"] for s in sc.seeds},
             # the outward latency the (local) cloud held each frame before it queued
             "clock": {f"{p}/{s}": {"cloud_latency_s": sc.one_way_latency_s}
                       for p in real.summary["policy"] for s in sc.seeds},
             "placement": {"edge_cpus": [0], "cloud_cpus": [1], "cloud_workers": 1,
                           "memory_stress_cpus": [1]},
             "one_way_latency": "added in the application", "zero_rate": "tbf",
             "load_average": [1.0, 1.0, 1.0], "interrupted": False}  # fmt: skip
    if not clock:
        del facts["clock"]
    return write_validation(tmp_path / name, real, twin, facts)


# -- the world's conditions late, the monitor's as written ----------------------------


def test_a_delayed_trace_steps_late_and_holds_after_the_run():
    hold = Trace.steps([[0, 20], [3, 1], [6, 20]])
    late = hold.delayed(0.5, 0.5, until_s=9.0)
    assert late.times == (0.0, 3.5, 6.5) and late.values == hold.values
    assert [late.at(t) for t in (3.4, 3.5, 6.4, 6.5, 100.0)] == [20, 1, 1, 20, 20]
    # a step up (6 s) and a step down (3 s) each by its own lag
    assert hold.delayed(0.2, 1.0, until_s=9.0).times == (0.0, 4.0, 6.2)
    assert hold.delayed(0.0, 0.0, 9.0) is hold
    # the value before the first step is the trace's at t = 0, also for a step before 1 s
    early = Trace.steps([[0, 20], [0.5, 1], [4, 20]]).delayed(0.25, 0.25, until_s=9.0)
    assert early.times == (0.0, 0.75, 4.25) and early.at(0.5) == 20 and early.at(1.0) == 1
    assert Trace.constant(5).delayed(2.0, 2.0, 9.0).at(1) == 5
    # a looped trace is followed over the run only (the follower's steps), then held
    loop = Trace.steps([[0, 10], [2, 30]], end=End.loop)  # period 4 s
    late = loop.delayed(1.0, 1.0, until_s=9.0)
    assert late.end is End.hold
    seen = [late.at(t) for t in (0.5, 2.5, 3.5, 5.5, 7.5, 9.5, 11.0, 50.0)]
    assert seen == [10, 10, 30, 10, 30, 10, 10, 10]  # the last step, at 8 s, held
    # steps taken one after the other: a level overtaken by the next is never in place
    stress = Trace.steps([[0, 0], [2, 50], [3, 0], [8, 50]])
    late = stress.delayed(1.5, 0.1, until_s=9.0)  # 50 % in place at 3.5 s, after the 0 % step
    assert late.times == (0.0, 3.5, 9.5) and late.values == (0.0, 0.0, 50.0)
    with pytest.raises(ValueError, match="lag"):
        hold.delayed(-1.0, 0.0, 9.0)


def test_step_lags_match_each_step_to_its_level_really_in_place():
    """The follower's log: each kind's level once in place; while the CPU stressor
    restarts another kind's entry shows it at 0 (none in place), which is not the
    step's level; a step never in place before the run ended counts as in place at
    its end (else the median would keep only the steps that came in time)."""
    cpu = Trace.steps([[0, 0], [4, 50], [6, 0], [8, 100]])
    applied = [
        [0.0, 20, 0, 0],
        [4.2, 1, 0.0, 0],  # the link stepped while the CPU stressor was starting
        [4.3, 1, 50, 0],  # 50 % in place: 0.3 s late
        [6.1, 1, 0.0, 0],  # 0 % in place: 0.1 s late
        # the 100 % step at 8 s never logged: the run (9 s) ended first
    ]
    assert _lags(step_lags(cpu, applied, 2, 9.0)) == [("up", 0.3), ("down", 0.1), ("up", 1.0)]
    # the link's steps at 4 s (20 -> 1) with its column; None: not applied (remote)
    bw = Trace.steps([[0, 20], [4, 1]])
    assert _lags(step_lags(bw, applied, 1, 9.0)) == [("down", 0.2)]
    assert step_lags(bw, [[0.0, None, 0, 0], [4.2, None, 0, 0]], 1, 9.0) == []
    # a level the trace returns to (0 -> 50 -> 0) is matched after the previous step's
    # entry, not at an earlier entry with the same value
    got = step_lags(cpu, [[0.0, 20, 0, 0], [5.0, 20, 50, 0], [7.5, 20, 0, 0]], 2, 9.0)
    assert _lags(got) == [("up", 1.0), ("down", 1.5), ("up", 1.0)]
    # the follower takes a kind's steps in order: the 0 % step (6 s) waits for the 50 %
    # one (in place at 6.5 s), so the link's entry at 6.2 s, which still shows the old
    # 0 %, is not the 0 % step in place
    late = [[0.0, 20, 0, 0], [6.2, 1, 0, 0], [6.5, 1, 50, 0], [6.6, 1, 0, 0]]
    assert _lags(step_lags(cpu, late, 2, 9.0)) == [("up", 2.5), ("down", 0.6), ("up", 1.0)]


def _lags(got: list) -> list:
    return [(way, round(s, 9)) for way, s in got]


def test_the_monitor_reads_the_traces_as_written_while_the_world_is_late():
    """The real run's monitor reads the trace (the testbed's Monitor over the scenario),
    not the applied state; a lagged twin's monitor must read the same, its world not."""
    sc = _scenario("all-cloud")
    fb = replace(NEUTRAL, link_down_lag_s=1.0, cpu_up_lag_s=0.7)
    world = apply_foldback(sc, fb)
    noise = draw(sc, 1).monitor_noise
    for t in np.arange(0.0, sc.duration_s, 0.25):
        assert Monitor(world, noise).read(t) == Monitor(sc, noise).read(t)
    # a kind without a lag keeps its trace as written
    from adaptsim.testbed.foldback import _late

    cpu_only = _late(sc, cpu_up_lag_s=0.7)
    assert cpu_only.bandwidth is sc.bandwidth and cpu_only.edge_mem is sc.edge_mem
    assert cpu_only.edge_cpu.times == (0.0, pytest.approx(5.2))
    assert true_conditions(world, 3.5).bandwidth_mbps == 20  # the world: 1 Mbit/s at 4 s
    assert true_conditions(sc, 3.5).bandwidth_mbps == 1
    assert true_conditions(world, 5.0).edge_cpu_pct == 0 and world.edge_cpu.at(5.3) == 50
    # the records' conditions at arrival are the traces as written, as the real run's
    recs, plain = run_scenario(world).records, run_scenario(sc).records
    np.testing.assert_array_equal(recs["bandwidth_mbps"], plain["bandwidth_mbps"])


def test_the_records_hold_every_condition_as_written_while_the_world_is_late():
    """Each of the three condition columns at arrival is the trace as written (a real
    run's records hold those), not the late world's: with every kind late, frames of
    each lag window tell the two apart."""
    sc = replace(_scenario("all-cloud"), edge_mem=Trace.steps([[0, 0], [2, 50], [7, 0]]))
    lags = {f"{k}_{w}_lag_s": 0.9 for k in ("link", "cpu", "mem") for w in ("up", "down")}
    world = apply_foldback(sc, replace(NEUTRAL, **lags))
    recs = run_scenario(world).records
    t = recs["arrival_s"].to_numpy()
    for col, trace, late in (("bandwidth_mbps", sc.bandwidth, world.bandwidth),
                             ("edge_cpu_pct", sc.edge_cpu, world.edge_cpu),
                             ("edge_mem_pct", sc.edge_mem, world.edge_mem)):  # fmt: skip
        np.testing.assert_array_equal(recs[col].to_numpy(dtype=float), trace.at_many(t), col)
        assert (trace.at_many(t) != late.at_many(t)).sum() >= 3, col  # the windows are seen


def test_the_lag_is_fitted_and_folded_back_and_needed(tmp_path):
    """A world whose link steps down 0.8 s and up 0.3 s late, and its CPU stress up
    1.2 s late: the fit gives each lag back from the applied log, the twin folded with
    them reproduces the run frame by frame, and the twin without the lag does not."""
    sc = _scenario("all-cloud", "all-edge", "reactive")
    stand_in = replace(NEUTRAL, link_down_lag_s=0.8, link_up_lag_s=0.3, cpu_up_lag_s=1.2)
    folder = _folder(tmp_path, sc, apply_foldback(sc, stand_in))
    fb = fit_foldback(folder, scenario=sc)  # the twin's own (default params of reactive)
    assert fb.link_down_lag_s == pytest.approx(0.8, abs=1e-3)
    assert fb.link_up_lag_s == pytest.approx(0.3, abs=1e-3)
    assert fb.cpu_up_lag_s == pytest.approx(1.2, abs=1e-3)
    assert fb.cpu_down_lag_s == fb.mem_up_lag_s == fb.mem_down_lag_s == 0.0  # no such step
    # the scales fitted against the twin late as the run was: the stand-in's edge is the
    # profile's (x1) at every level, the frames of the lag window included
    assert fb.edge_scale == pytest.approx(1.0, rel=1e-6)
    assert all(x == pytest.approx(1.0, rel=1e-6) for _, x in fb.edge_scale_by_cpu)
    real = run_scenario(apply_foldback(sc, stand_in)).records
    folded = run_scenario(apply_foldback(sc, fb)).records
    np.testing.assert_allclose(folded["latency_s"], real["latency_s"], atol=2e-3)
    no_lag = dict(link_up_lag_s=0.0, link_down_lag_s=0.0, cpu_up_lag_s=0.0)
    without = run_scenario(apply_foldback(sc, replace(fb, **no_lag)))
    assert np.abs(without.records["latency_s"] - real["latency_s"]).max() > 0.01
    # and the real run's monitor saw what the folded twin's did: the same decisions
    np.testing.assert_array_equal(folded["point"], real["point"])


def test_fit_lags_takes_the_median_over_runs():
    sc = _scenario("all-cloud")
    logs = {
        f"p{i}/1": [
            [0.0, 20, 0, 0],
            [3.0 + d, 1, 0, 0],
            [4.5 + 2 * d, 1, 50, 0],
            [6.0 + d, 20, 50, 0],
        ]
        for i, d in enumerate((0.01, 0.02, 0.09))
    }
    lags = fit_lags(sc, logs)
    assert lags["link_down_lag_s"] == pytest.approx(0.02)  # of 0.01, 0.02, 0.09
    assert lags["link_up_lag_s"] == pytest.approx(0.02)
    assert lags["cpu_up_lag_s"] == pytest.approx(0.04)  # of 0.02, 0.04, 0.18
    assert lags["cpu_down_lag_s"] == lags["mem_up_lag_s"] == lags["mem_down_lag_s"] == 0.0


# -- the cloud slowed by the edge's CPU stress -----------------------------------------


def test_the_cloud_scale_per_edge_cpu_level_is_fitted_and_applied_and_needed(tmp_path):
    """A cloud x1.1 with the edge idle and x1.4 under its 50 % CPU stress (the shared
    2-core testbed): fitted per level from the frames whose cloud stage started there,
    applied by the level in force at the cloud stage's start; one scale for the run
    does not reproduce it."""
    sc = _scenario("all-cloud", "static-best")
    stand_in = replace(NEUTRAL, cloud_scale=1.25, cloud_scale_by_cpu=((0.0, 1.1), (50.0, 1.4)))
    world = apply_foldback(sc, stand_in)
    base, slowed = run_scenario(sc).records, run_scenario(world).records
    cloud = base["cloud_s"] > 0
    # each frame's cloud start in the slowed world (done = start + cloud + the way back)
    at = slowed["arrival_s"] + slowed["latency_s"] - slowed["cloud_s"] - sc.one_way_latency_s
    ratio = slowed["cloud_s"][cloud] / base["cloud_s"][cloud]
    stressed = sc.edge_cpu.at_many(at[cloud].to_numpy()) == 50
    assert stressed.sum() >= 5 and (~stressed).sum() >= 5
    np.testing.assert_allclose(ratio[stressed], 1.4, rtol=1e-9)
    np.testing.assert_allclose(ratio[~stressed], 1.1, rtol=1e-9)
    fb = fit_foldback(_folder(tmp_path, sc, world))
    levels = dict(fb.cloud_scale_by_cpu)
    assert sorted(levels) == [0.0, 50.0]
    assert levels[0.0] == pytest.approx(1.1, rel=1e-6)
    assert levels[50.0] == pytest.approx(1.4, rel=1e-6)
    assert 1.1 < fb.cloud_scale < 1.4  # the one scale mixes them
    folded = run_scenario(apply_foldback(sc, fb)).records
    np.testing.assert_allclose(folded["cloud_s"], slowed["cloud_s"], rtol=1e-6)
    one = run_scenario(apply_foldback(sc, replace(fb, cloud_scale_by_cpu=()))).records
    assert np.abs(one["cloud_s"] - slowed["cloud_s"]).max() > 0.05 * slowed["cloud_s"].max()


def test_the_cloud_level_is_the_applied_one_at_the_cloud_stage_start(tmp_path):
    """With the CPU stress late, a frame whose cloud stage starts between the trace's step
    and the stress really in place ran beside no stress: the fit reads the level from
    the applied log at the cloud start, as the folded twin applies it (its world late)."""
    sc = _scenario("all-cloud")
    stand_in = replace(NEUTRAL, cpu_up_lag_s=1.5, cloud_scale_by_cpu=((0.0, 1.0), (50.0, 2.0)))
    world = apply_foldback(sc, stand_in)
    fb = fit_foldback(_folder(tmp_path, sc, world, lost=3))
    assert fb.cpu_up_lag_s == pytest.approx(1.5, abs=1e-3)
    assert fb.pause_s == 0.0  # all-cloud never switched: no pause to fit
    levels = dict(fb.cloud_scale_by_cpu)
    # by the trace's level at arrival the late frames would count at 50 % with x1: mixed
    assert levels[0.0] == pytest.approx(1.0, rel=1e-6)
    assert levels[50.0] == pytest.approx(2.0, rel=1e-6)


def test_the_cloud_level_counts_the_outward_latency_and_the_way_back_is_fitted(tmp_path):
    """A frame reaches the cloud's queue the outward latency after its upload ends (the
    cloud holds it that long: ``clock.cloud_latency_s``): with 0.4 s of it, frames whose
    cloud stage started just after the stress came in place count at the new level only
    if the fit adds it. The measured way back (``return_s``) is fitted too."""
    sc = replace(_scenario("all-cloud"), one_way_latency_s=0.4)
    stand_in = replace(NEUTRAL, cpu_up_lag_s=0.5, cloud_scale_by_cpu=((0.0, 1.0), (50.0, 2.0)))
    fb = fit_foldback(_folder(tmp_path, sc, apply_foldback(sc, stand_in), return_s=0.003))
    levels = dict(fb.cloud_scale_by_cpu)
    assert levels[0.0] == pytest.approx(1.0, rel=1e-6)
    assert levels[50.0] == pytest.approx(2.0, rel=1e-6)
    assert fb.return_s == pytest.approx(0.003)


def test_the_edge_scale_per_level_scales_each_points_extra_too():
    """The per-level edge scale multiplies a point's whole edge time at that level: its
    blocks and its extra (the calibration's per-point overhead; zero in the testbed's
    LeNet calibration, so given one here)."""
    from adaptsim.simulator.engine import Tables

    sc = _scenario("all-edge")
    m = sc.model
    sc = replace(sc, model=replace(m, edge_extra=replace(
        m.edge_extra, values=np.full_like(m.edge_extra.values, 0.002))))  # fmt: skip
    after = apply_foldback(sc, replace(NEUTRAL, edge_scale_by_cpu=((0.0, 1.3), (50.0, 0.6))))
    for cpu, k in ((0.0, 1.3), (50.0, 0.6), (25.0, 0.95)):  # 25 %: between the two
        before_s, after_s = Tables(sc).at(cpu, 0.0)[0], Tables(after).at(cpu, 0.0)[0]
        assert before_s[0] >= 0.002  # the first point: its extra, and a block or none
        np.testing.assert_allclose(after_s, k * before_s, rtol=1e-9)


def test_the_engines_slow_the_cloud_by_the_edge_level_when_the_cloud_stage_starts():
    """Frames queue for seconds on a slow link, so many reach the cloud after the edge's
    CPU step although they arrived before it: their cloud time is scaled by the level
    when the cloud stage starts (not at arrival), in both engines alike."""
    from adaptsim.simulator.engine import run_policy
    from adaptsim.simulator.naive import run_policy_naive

    sc = replace(_scenario("all-cloud"), bandwidth=Trace.constant(0.05))  # ~0.5 s a frame
    world = apply_foldback(sc, replace(NEUTRAL, cloud_scale_by_cpu=((0.0, 1.0), (50.0, 3.0))))
    fast, stats, _ = run_policy(world, world.policies[0], 1)
    naive, naive_stats, _ = run_policy_naive(world, world.policies[0], 1)
    assert stats == naive_stats
    for col in ("cloud_s", "latency_s", "cloud_wait_s"):
        np.testing.assert_allclose(fast[col], naive[col], rtol=1e-9, atol=1e-9, err_msg=col)
    base, _, _ = run_policy(sc, sc.policies[0], 1)
    a = np.asarray(fast["arrival_s"])
    start = a + sum(np.asarray(fast[c]) for c in ("edge_wait_s", "edge_s", "uplink_wait_s",
                                                  "uplink_s", "cloud_wait_s"))  # fmt: skip
    start += sc.one_way_latency_s
    done = np.isfinite(start)
    level = sc.edge_cpu.at_many(start[done])
    expected = np.where(level == 50, 3.0, 1.0) * np.asarray(base["cloud_s"])[done]
    np.testing.assert_allclose(np.asarray(fast["cloud_s"])[done], expected, rtol=1e-9)
    # the test tells the two choices apart: frames that arrived before the step
    assert ((sc.edge_cpu.at_many(a[done]) == 0) & (level == 50)).sum() >= 5


# -- the fold-back's file stays readable ---------------------------------------------


def test_a_fold_back_written_before_the_new_terms_reads_with_their_defaults():
    old = {"from": "results/x-seed1", "edge_scale": 1.03, "cloud_scale": 1.58,
           "uplink_extra_s": 0.0002, "return_s": 0.0005, "pause_s": 0.22, "frames": 114,
           "edge_scale_by_cpu": [[0.0, 1.1], [100.0, 0.9]]}  # fmt: skip
    fb = FoldBack.from_dict(old)
    lags = [getattr(fb, f"{k}_{w}_lag_s") for k in ("link", "cpu", "mem") for w in ("up", "down")]
    assert lags == [0.0] * 6
    assert fb.cloud_scale_by_cpu == () and fb.edge_scale_by_cpu == ((0.0, 1.1), (100.0, 0.9))
    sc = _scenario("all-cloud")
    after = apply_foldback(sc, fb)
    assert after.bandwidth is sc.bandwidth and after.edge_cpu is sc.edge_cpu
    assert after.cloud_scale_by_edge_cpu == () and after.belief.traces is None
    new = replace(fb, mem_up_lag_s=2.5, cloud_scale_by_cpu=((0.0, 1.2),))
    assert FoldBack.from_dict(json.loads(new.to_json())) == new
    assert FoldBack.from_dict({"from": "y", **asdict(new)}) == new


def test_the_report_names_the_new_terms(tmp_path):
    """The validation report's fold-back paragraph gives the lags per kind and direction
    and the cloud per edge CPU level, from the folder's validation.json."""
    sc = _scenario("all-cloud")
    fb = replace(NEUTRAL, mem_up_lag_s=11.0, mem_down_lag_s=0.527, cpu_up_lag_s=0.048,
                 cloud_scale_by_cpu=((0.0, 2.13), (100.0, 3.47)))  # fmt: skip
    real, twin = run_scenario(apply_foldback(sc, fb)), run_scenario(sc)
    real.records["return_s"] = 0.0
    facts = {"scenario": str(SCENARIO), "calibration": str(CALIBRATION), "time_scale": 1.0,
             "duration_s": sc.duration_s, "seeds": list(sc.seeds), "notes": [], "applied": {},
             "placement": {"edge_cpus": [0], "cloud_cpus": [1], "cloud_workers": 1,
                           "memory_stress_cpus": [1]},
             "one_way_latency": "added in the application", "zero_rate": "tbf",
             "load_average": [1.0, 1.0, 1.0], "interrupted": False,
             "fold_back": {"from": "seed1", **asdict(fb)}}  # fmt: skip
    out = write_validation(tmp_path / "v", real, twin, facts, run_scenario(apply_foldback(sc, fb)))
    md = (out / "report.md").read_text()
    assert "edge memory stress 11 / 0.527 s" in md and "edge CPU stress 0.048 / 0 s" in md
    assert "Cloud (by the edge CPU stress in place when its stage started) per edge CPU" in md
    assert "0 % x2.13, 100 % x3.47" in md


def test_the_edge_level_is_the_applied_one_at_the_edge_stage_start(tmp_path):
    """The edge's per-level scale, like the cloud's, is fitted by the CPU stress really in
    place when the frame's edge stage started (the applied log), as the folded twin
    applies it (by its late world's level at the stage's start): a frame of the lag
    window (the trace already at 50 %, the stress not yet) ran as at 0 %, and by the
    trace's level at arrival would pull the 50 % scale towards the 0 % one."""
    sc = _scenario("all-edge")
    stand_in = replace(NEUTRAL, cpu_up_lag_s=1.5, edge_scale_by_cpu=((0.0, 1.0), (50.0, 2.0)))
    world = apply_foldback(sc, stand_in)
    # (a folder from before validation.json had its "clock": the fit reads without it)
    fb = fit_foldback(_folder(tmp_path, sc, world, lost=3, clock=False))
    assert fb.cpu_up_lag_s == pytest.approx(1.5, abs=1e-3)
    levels = dict(fb.edge_scale_by_cpu)
    assert sorted(levels) == [0.0, 50.0]
    assert levels[0.0] == pytest.approx(1.0, rel=1e-3)
    assert levels[50.0] == pytest.approx(2.0, rel=1e-3)


@pytest.mark.parametrize(
    "facts, said",
    [
        ("{not json", ("validation.json", "not valid JSON")),
        ("[]", ("validation.json", "not an object")),
        (
            {"applied": {"reactive/1": [[None, 20, 0, 0]]}},
            ("validation.json", "applied.reactive/1"),
        ),
        ({"applied": {"reactive/1": [[0.0, 20]]}}, ("validation.json", "applied.reactive/1")),
        ({"applied": [[0.0, 20, 0, 0]]}, ("validation.json", "applied is not an object")),
        ({"scenario": "/nonexistent/x.yaml"}, ("--fold-back", "/nonexistent/x.yaml", "lag")),
    ],
    ids=[
        "not JSON",
        "not an object",
        "a time not a number",
        "an entry short",
        "not per run",
        "its scenario gone",
    ],
)
def test_a_fold_back_folder_with_bad_facts_is_one_line_and_exit_2(
    tmp_path, monkeypatch, facts, said
):
    """`validate --fold-back FOLDER` fits before the real run, and the fit now reads the
    folder's validation.json (the applied log, the scenario the lags are timed against):
    a file that is not what validate wrote is refused in one line naming it, exit 2,
    before anything runs (it was a traceback)."""
    import importlib

    from typer.testing import CliRunner

    from adaptsim.cli import app

    tv = importlib.import_module("adaptsim.testbed.validate")  # the package exports validate()

    sc = _scenario("all-cloud")
    folder = _folder(tmp_path, sc, apply_foldback(sc, replace(NEUTRAL, cpu_up_lag_s=0.5)))
    path = folder / "validation.json"
    if isinstance(facts, dict):
        facts = json.dumps({**json.loads(path.read_text()), **facts})
    path.write_text(facts)

    def started(*_a, **_k):
        raise AssertionError("the real run started before the fold-back folder was refused")

    monkeypatch.setattr(tv, "real_run", started)
    res = CliRunner().invoke(app, ["validate", str(SCENARIO), "--fold-back", str(folder),
                                   "--out", str(tmp_path / "v2")])  # fmt: skip
    assert res.exit_code == 2, (res.output, res.exception)
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("adaptsim: error:"), res.output
    assert all(s in lines[0] for s in said), lines[0]
    assert not (tmp_path / "v2").exists()


@pytest.mark.parametrize(
    "args, said",
    [
        (["{w}/none", "{w}/none2"], "not a validation folder"),
        (["{w}/a", "{w}/b", "many"], "DRAWS many"),
        (["{w}/a", "{w}/b", "0"], "DRAWS 0"),
        (["{w}/a"], "Usage"),
    ],
    ids=["no such folder", "draws not a number", "no draw", "one folder"],
)
def test_the_foldback_terms_script_refuses_bad_input_in_one_line(tmp_path, args, said):
    """scripts/foldback_terms.py: a folder that is not a validation's, draws that are not
    a positive count, or a folder missing: one line, exit 2 (they were tracebacks, or a
    usage with exit 1)."""
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "scripts" / "foldback_terms.py"
    argv = [a.format(w=tmp_path) for a in args]
    out = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], out.stderr
    assert out.stdout == ""


def test_a_link_overhead_fitted_below_the_laws_is_held_at_zero():
    """The fitted per-message overhead is added to the link law's; a median difference
    more negative than the law's own overhead leaves it at 0, never a negative time."""
    sc = _scenario("all-cloud")
    law = sc.model.link.values[..., 0]
    after = apply_foldback(sc, replace(NEUTRAL, uplink_extra_s=-1.0))
    got = after.model.link.values[..., 0]
    assert got.min() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(got, law - law.min(), atol=1e-12)
    small = apply_foldback(sc, replace(NEUTRAL, uplink_extra_s=0.002)).model.link.values[..., 0]
    np.testing.assert_allclose(small, law + 0.002, atol=1e-12)
