"""Probes during the run, in the edge's idle gaps, and a host speed that follows time.

The arithmetic runs on validation folders written here with the real twin: the
"measured" side is the LeNet testbed scenario simulated with each policy run's edge
and cloud at a known speed that changes during the run (``Scenario.host_speed``), its
probes planted as that host would have timed them (before at t = 0, during the run
under the conditions then in place, after at the run's end). The real test (root)
runs a short LeNet validation with probes during the run and checks them against its
own records.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adaptsim.cli import app
from adaptsim.errors import UserError
from adaptsim.simulator import run_scenario
from adaptsim.simulator.traces import Trace
from adaptsim.testbed import validate
from adaptsim.testbed.foldback import fit_foldback, folded_twin
from adaptsim.testbed.host_speed import (
    HostSpeed,
    at_host_speed,
    host_speeds,
    predicted_probe_s,
    probed_twin,
    record_speeds,
    run_keys,
    twin_per_run,
)
from adaptsim.testbed.rescore import folder_speeds, rescore_folder, rescore_probed
from adaptsim.testbed.speed_track import (
    ProbeGate,
    check_probe_every,
    check_probe_pool,
    edge_whole_s,
    speed_at,
    speed_steps,
)
from adaptsim.testbed.twin import twin_draws
from adaptsim.testbed.validate import write_validation
from test_testbed_probe import CALIBRATION, SCENARIO, _applied_log, _scenario, needs_testbed

runner = CliRunner()
KEY = ["policy", "seed", "request"]
DURING = [round(0.5 * k, 1) for k in range(1, 18)]  # probe times during the 9 s run
# per run: (edge steps, cloud steps) of the host's speed; each switches halfway between
# two probe times (where a running median of 5 over the probes switches)
SEED1 = {
    "all-cloud/1": (((0.0, 1.30), (4.25, 1.60)), ((0.0, 1.10), (6.25, 1.50))),
    "all-edge/1": (((0.0, 1.20), (2.25, 0.90)), ((0.0, 1.45), (5.25, 1.05))),
    "static-best/1": (((0.0, 1.00), (6.75, 1.40)), ((0.0, 1.40), (3.25, 1.70))),
}
SEED2 = {
    "all-cloud/2": (((0.0, 0.90), (5.25, 1.30)), ((0.0, 1.60), (2.75, 1.10))),
    "all-edge/2": (((0.0, 1.05), (3.75, 1.50)), ((0.0, 0.95), (7.25, 1.35))),
    "static-best/2": (((0.0, 1.50), (4.75, 1.00)), ((0.0, 1.20), (4.25, 0.80))),
}
PIPELINE = (1.08, 1.15)  # what the real pipeline adds beyond the host's speed


def _trace(steps) -> Trace:
    return Trace.steps([list(s) for s in steps], label="host speed")


def _truth(sc, steps_by_run: dict, pipeline=(1.0, 1.0)) -> pd.DataFrame:
    """The 'real' run: each policy run's frames with the engine's own time-varying host
    speed (``Scenario.host_speed``) times the pipeline's factor."""

    def world(key):
        (edge, cloud) = steps_by_run[key]
        e = [(t, v * pipeline[0]) for t, v in edge]
        c = [(t, v * pipeline[1]) for t, v in cloud]
        return replace(sc, host_speed=(_trace(e), _trace(c)))

    return twin_per_run(sc, world, 1)[0]


def _planted(sc, edge_steps, cloud_steps, n: int = 5) -> dict:
    """What a host at these speeds times: ``n`` probes before (t = 0, no stress; one an
    outlier), one every 0.5 s during the run under the trace's CPU and memory levels
    then, ``n`` after (the run's end, no stress)."""
    d = sc.duration_s
    _, cloud_pred = predicted_probe_s(sc.model)
    times = [0.0] * n + DURING + [d] * n
    cpu = [0.0] * n + [sc.edge_cpu.at(t) for t in DURING] + [0.0] * n
    mem = [0.0] * n + [sc.edge_mem.at(t) for t in DURING] + [0.0] * n
    edge = [float(speed_at(edge_steps, t)[0]) * edge_whole_s(sc.model, c, m)
            for t, c, m in zip(times, cpu, mem, strict=True)]  # fmt: skip
    cloud = [float(speed_at(cloud_steps, t)[0]) * cloud_pred for t in times]
    edge[n - 1] *= 4.0  # a slow outlier before the run: a median ignores it
    at = ["before"] * n + ["during"] * len(DURING) + ["after"] * n
    return {"edge_s": edge, "cloud_s": cloud, "at": at, "cloud_at": list(at), "t_s": times,
            "cloud_t_s": list(times), "edge_cpu": cpu, "edge_mem": mem,
            "probe_every_s": 0.5, "skipped": 0, "mixed": 0}  # fmt: skip


def _folder(tmp_path: Path, name: str, sc, steps_by_run: dict, pipeline=(1.0, 1.0), pool=None):
    real = _truth(sc, steps_by_run, pipeline)
    real.records["return_s"] = 0.0
    twin = twin_draws(sc, 1)
    keys = [k for _, k in run_keys(sc)]
    facts = {"scenario": str(SCENARIO), "calibration": str(CALIBRATION), "time_scale": 1.0,
             "duration_s": sc.duration_s, "seeds": list(sc.seeds), "notes": [],
             "applied": {k: _applied_log(sc) for k in keys},
             "clock": {k: {"cloud_latency_s": sc.one_way_latency_s} for k in keys},
             "placement": {"edge_cpus": [0], "cloud_cpus": [1], "cloud_workers": 1,
                           "memory_stress_cpus": [1]},
             "one_way_latency": "added in the application", "zero_rate": "tbf",
             "load_average": [1.0, 1.0, 1.0], "interrupted": False, "probe_frames": 5,
             "probe_every_s": 0.5,
             "host_speed": {k: _planted(sc, *steps_by_run[k]) for k in keys}}  # fmt: skip
    if pool is not None:
        facts["probe_pool"] = pool
    found = host_speeds(facts["host_speed"], sc.model, pool or "run")
    record_speeds(facts["host_speed"], found)
    probed = probed_twin(sc, found, 1)
    return write_validation(tmp_path / name, real, twin, facts, twin_probed=probed), real


def _same_frames(a: pd.DataFrame, b: pd.DataFrame, cols=("edge_s", "cloud_s", "latency_s"),
                 rtol=1e-9) -> None:  # fmt: skip
    both = a.merge(b, on=KEY, suffixes=("", "_twin"))
    assert len(both) == len(a) == len(b)
    for col in cols:
        np.testing.assert_allclose(both[f"{col}_twin"], both[col], rtol=rtol, atol=1e-12)


# -- the speed over time --------------------------------------------------------------


def test_a_running_median_of_the_nearest_probes_held_until_halfway_to_the_next():
    samples = [(0.0, 1.0), (0.0, 1.0), (0.0, 9.0), (2.0, 1.0), (4.0, 3.0), (6.0, 3.0),
               (8.0, 3.0)]  # fmt: skip
    # at 0: the three at 0 and 2 (and 4) -> median of (1, 1, 9, 1, 3) = 1
    # at 4: 4, 2, 6, then 0s / 8 by order -> (3, 1, 3, 1, 1) = 1; at 6: (3, 3, 3, 1, 3) = 3
    steps = speed_steps(samples, window=5)
    assert [s for s, _ in steps] == [0.0, 1.0, 3.0, 5.0, 7.0]
    assert [v for _, v in steps] == [1.0, 1.0, 1.0, 3.0, 3.0]
    np.testing.assert_allclose(speed_at(steps, [0.0, 4.9, 5.0, 100.0]), [1.0, 1.0, 3.0, 3.0])
    assert speed_steps([]) == ()
    assert speed_steps([(3.0, 2.0)]) == ((0.0, 2.0),)  # one probe: held from t = 0


def test_the_engines_host_speed_scales_each_frame_at_its_arrival():
    """``Scenario.host_speed`` scales each frame's edge and cloud seconds at its arrival:
    a constant speed gives the frames of the calibration scaled by it (the probed twin
    of a run without probes during it), the link untouched."""
    sc = _scenario()
    traced = run_scenario(replace(sc, host_speed=(Trace.constant(1.3), Trace.constant(0.8))))
    scaled = run_scenario(at_host_speed(sc, HostSpeed(edge=1.3, cloud=0.8)))
    _same_frames(scaled.records, traced.records, ("edge_s", "cloud_s", "uplink_s", "latency_s"))
    plain = run_scenario(sc).records
    both = plain.merge(traced.records, on=KEY, suffixes=("", "_twin"))
    edge = both[both["edge_s"] > 0]
    np.testing.assert_allclose(edge["edge_s_twin"] / edge["edge_s"], 1.3, rtol=1e-9)
    np.testing.assert_allclose(both["uplink_s_twin"], both["uplink_s"], rtol=1e-9)
    # a speed that steps: each frame at the value in force at its arrival, by hand
    stepped = run_scenario(replace(sc, host_speed=(_trace(((0.0, 1.0), (4.55, 2.0))),
                                                   _trace(((0.0, 0.5), (2.05, 1.0))))))  # fmt: skip
    both = plain.merge(stepped.records, on=KEY, suffixes=("", "_twin"))
    edge, cloud = both[both["edge_s"] > 0], both[both["cloud_s"] > 0]
    edge_by_hand = np.where(edge["arrival_s"] < 4.55, 1.0, 2.0)
    cloud_by_hand = np.where(cloud["arrival_s"] < 2.05, 0.5, 1.0)
    np.testing.assert_allclose(edge["edge_s_twin"] / edge["edge_s"], edge_by_hand, rtol=1e-9)
    np.testing.assert_allclose(cloud["cloud_s_twin"] / cloud["cloud_s"], cloud_by_hand, rtol=1e-9)


def test_the_probed_twin_follows_each_runs_speed_over_time(tmp_path):
    """Each run's host speed changes during it (edge and cloud apart, edge probes under the
    run's CPU stress): the twin at the speed its probes give over time reproduces the
    run frame by frame; one speed per run (the median of its probes) does not."""
    sc = _scenario()
    folder, real = _folder(tmp_path, "v", sc, SEED1)
    probes = json.loads((folder / "validation.json").read_text())["host_speed"]
    speeds = host_speeds(probes, sc.model)
    for key, (edge, cloud) in SEED1.items():
        assert speeds[key].edge_steps and speeds[key].varies
        # the speed at every frame's arrival is the run's own then
        t = real.records.loc[real.records["policy"] == key.split("/")[0], "arrival_s"]
        np.testing.assert_allclose(speeds[key].at(t)[0], speed_at(edge, t), rtol=1e-12)
        np.testing.assert_allclose(speeds[key].at(t)[1], speed_at(cloud, t), rtol=1e-12)
    _same_frames(real.records, probed_twin(sc, speeds, 1)[0].records)
    comp = pd.read_csv(folder / "comparison_probed.csv")
    assert comp["mean_error_pct"].abs().max() < 1e-6
    assert probes["all-edge/1"]["edge_speed_steps"][0] == [0.0, pytest.approx(1.2)]
    # one number per run, as before the probes during it: the frames do not come back
    flat = {k: replace(v, edge_steps=(), cloud_steps=()) for k, v in speeds.items()}
    off = real.records.merge(probed_twin(sc, flat, 1)[0].records, on=KEY, suffixes=("", "_t"))
    edge = off[off["edge_s"] > 0]
    assert (edge["edge_s_t"] / edge["edge_s"]).sub(1).abs().max() > 0.1


def test_a_probe_during_stress_is_priced_at_the_levels_in_place():
    """A probe under 50 % CPU stress takes the calibration's time at 50 %: its speed is
    the host's, not the stress's."""
    sc = _scenario()
    edge = ((0.0, 1.2),)
    p = _planted(sc, edge, ((0.0, 1.0),))
    assert max(p["edge_cpu"]) == 50.0  # some probes ran under the trace's stress
    speeds = host_speeds({"all-edge/1": p}, sc.model)["all-edge/1"]
    assert speeds.edge == pytest.approx(1.2)
    assert [v for _, v in speeds.edge_steps] == pytest.approx([1.2] * len(speeds.edge_steps))
    # the same probes said to have run without stress: the stress reads as a slower host
    bare = host_speeds({"all-edge/1": {**p, "edge_cpu": [0.0] * len(p["edge_cpu"])}},
                       sc.model)["all-edge/1"]  # fmt: skip
    assert max(v for _, v in bare.edge_steps) > 1.2 * 1.1


def test_a_fold_back_relative_to_a_speed_over_time_transfers_to_another_run(tmp_path):
    """Fitted on seed 1 (each frame divided by its run's speed at its arrival), the
    fold-back is the pipeline's factor alone; applied to seed 2 at its runs' speeds
    over time it gives seed 2 back frame by frame."""
    sc1, sc2 = _scenario(1), _scenario(2)
    seed1, _ = _folder(tmp_path, "s1", sc1, SEED1, PIPELINE)
    seed2, real2 = _folder(tmp_path, "s2", sc2, SEED2, PIPELINE)
    fb = fit_foldback(seed1, scenario=sc1)
    assert fb.host_relative
    assert fb.edge_scale == pytest.approx(PIPELINE[0], rel=1e-6)
    assert fb.cloud_scale == pytest.approx(PIPELINE[1], rel=1e-6)
    assert [s for _, s in fb.edge_scale_by_cpu] == pytest.approx([PIPELINE[0]] * 2, rel=1e-6)
    speeds2 = folder_speeds(seed2, sc2)
    _same_frames(real2.records, folded_twin(sc2, fb, speeds2, 1)[0].records, rtol=1e-6)
    after, _ = rescore_folder(seed2, fold_back_from=seed1, draws=1)
    assert after["mean_error_pct"].abs().max() < 1e-3


def test_the_seed_pool_gives_every_run_of_a_seed_the_median_of_all_its_probes(tmp_path):
    sc = _scenario()
    folder, real = _folder(tmp_path, "v", sc, SEED1, pool="seed")
    probes = json.loads((folder / "validation.json").read_text())["host_speed"]
    ratios = {"edge": [], "cloud": []}
    _, cloud_pred = predicted_probe_s(sc.model)
    for p in probes.values():
        ratios["edge"] += [s / edge_whole_s(sc.model, c, m)
                           for s, c, m in zip(p["edge_s"], p["edge_cpu"], p["edge_mem"],
                                              strict=True)]  # fmt: skip
        ratios["cloud"] += [s / cloud_pred for s in p["cloud_s"]]
    pooled = folder_speeds(folder, sc)  # the folder's own pool: seed
    for v in pooled.values():
        assert not v.varies
        assert v.edge == pytest.approx(float(np.median(ratios["edge"])))
        assert v.cloud == pytest.approx(float(np.median(ratios["cloud"])))
    own = folder_speeds(folder, sc, "run")
    assert all(v.varies for v in own.values())
    off = real.records.merge(probed_twin(sc, pooled, 1)[0].records, on=KEY, suffixes=("", "_t"))
    edge = off[off["edge_s"] > 0]
    assert (edge["edge_s_t"] / edge["edge_s"]).sub(1).abs().max() > 0.1
    by_seed = rescore_probed(folder, draws=1)
    by_run = rescore_probed(folder, draws=1, pool="run")
    assert by_run["mean_error_pct"].abs().max() < 1e-6
    assert (by_seed["mean_error_pct"] - by_run["mean_error_pct"]).abs().max() > 1e-3
    with pytest.raises(UserError, match="--probe-pool"):
        host_speeds(probes, sc.model, "x")


# -- the gate: when the edge may probe during a run -----------------------------------


def test_the_gate_probes_only_in_gaps_the_next_frame_leaves_and_counts_the_rest():
    arrivals = [0.0, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 5.0, 5.05, 9.0]
    gate = ProbeGate(1.0, 10.0, arrivals, [3.0], lambda t: 0.1, margin=2.0, settle_s=1.0)
    assert not gate.may_probe(0.5, 1, idle=True)  # not due yet (every 1 s from t = 1)
    assert gate.wait_s(0.5) == pytest.approx(0.5)
    assert not gate.may_probe(1.05, 2, idle=True)  # frame 2 due at 1.1: 0.05 s < 2 x 0.1
    assert not gate.may_probe(1.65, 7, idle=False)  # a frame still in flight
    assert gate.may_probe(1.65, 7, idle=True)  # 5.0 is far: probe
    gate.took()
    # due at 2; at 2.85 the CPU step at 3 is within 2 x 0.1: no; nor until 3 + 1 s settle
    assert not gate.may_probe(2.85, 7, idle=True)
    assert not gate.may_probe(3.9, 7, idle=True)
    assert gate.wait_s(3.9) == pytest.approx(0.1)
    assert gate.skipped == 1  # the period from 2 ended at 3 without a probe
    assert gate.may_probe(4.1, 7, idle=True)
    assert gate.skipped == 2  # and the one from 3 at 4
    gate.took()
    assert not gate.may_probe(5.0, 8, idle=True)  # frame 8 at 5.05
    assert not gate.may_probe(9.5, 10, idle=True)  # the last frame is in: the run ends
    assert gate.skipped == 2 + 4  # due at 5, 6, 7 and 8: none taken
    gate.finish(9.0)  # the one due at 9 is not before the last arrival: not counted
    assert gate.skipped == 6
    late = ProbeGate(1.0, 10.0, arrivals, [], lambda t: 0.1)
    late.finish(9.0)  # a run whose edge never idled: every period by the last arrival
    assert late.skipped == 8


def test_a_host_slower_than_predicted_widens_the_gap_a_probe_needs():
    """The last calls ran 3x their prediction: a gap of 2x the prediction is not enough,
    1.5 x 3 x is; one slow call among five does not count (the median), and a faster
    host never narrows the gap below the margin."""
    arrivals = [0.0, 1.5, 3.0]
    gate = ProbeGate(1.0, 10.0, arrivals, [], lambda t: 0.1, margin=2.0)
    assert gate.need_s(1.0) == pytest.approx(0.2)
    assert gate.may_probe(1.25, 1, idle=True)  # 0.25 s to frame 1: enough at 0.2
    gate.observed(9.0)  # one slow call: the median of one
    for r in (3.0, 3.0):
        gate.observed(r)
    assert gate.slowdown == 3.0 and gate.need_s(1.25) == pytest.approx(0.45)
    assert not gate.may_probe(1.25, 1, idle=True)  # a probe of ~0.3 s would delay it
    assert gate.may_probe(1.0, 1, idle=True)  # 0.5 s to frame 1
    for r in (0.5, 0.5, 0.5):
        gate.observed(r)
    assert gate.slowdown == 1.0 and gate.need_s(1.25) == pytest.approx(0.2)
    for r in (0.5, 0.5, 9.0):  # the five last: 0.5 x 5 (the 3.0s gone), then one slow
        gate.observed(r)
    assert gate.slowdown == 1.0
    # a run's gate starts from the host's slowdown before it (its before-probes)
    warned = ProbeGate(1.0, 10.0, arrivals, [], lambda t: 0.1, margin=2.0, recent=[5.0, 4.0])
    assert warned.slowdown == 4.5 and not warned.may_probe(1.25, 1, idle=True)


@pytest.mark.parametrize("bad", [-1, -0.5, math.inf, math.nan, True, "2", 4000])
def test_probe_every_out_of_range_is_refused(bad):
    with pytest.raises(UserError, match="--probe-every"):
        check_probe_every(bad)


def test_probe_pool_must_be_run_or_seed():
    assert check_probe_pool("seed") == "seed"
    with pytest.raises(UserError, match="--probe-pool"):
        check_probe_pool("x")


@pytest.mark.parametrize(
    ("option", "value"), [("--probe-every", "-1"), ("--probe-pool", "x")]
)  # fmt: skip
def test_bad_probe_options_are_one_line_exit_2(tmp_path, option, value):
    out = tmp_path / "v"
    r = runner.invoke(app, ["validate", str(SCENARIO), "--calibration", str(CALIBRATION),
                            option, value, "--out", str(out)])  # fmt: skip
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.exception)
    assert len(lines) == 1 and option in lines[0] and "Traceback" not in r.stderr
    assert not out.exists()


# -- a real run (root) ----------------------------------------------------------------


@pytest.mark.needs_root
@pytest.mark.slow
@needs_testbed
def test_a_real_validation_probes_in_the_edges_idle_gaps_and_delays_no_frame(tmp_path):
    policies = ["static-best", "all-cloud"]
    out = validate(SCENARIO, CALIBRATION, tmp_path / "v", policies=policies, probe_frames=2,
                   probe_every_s=0.5, noise_draws=1, progress=lambda _: None)  # fmt: skip
    facts = json.loads((out / "validation.json").read_text())
    assert facts["probe_every_s"] == 0.5 and facts["probe_pool"] == "run"
    real = pd.read_parquet(out / "real" / "records.parquet")
    d = facts["duration_s"]
    for key, p in facts["host_speed"].items():
        during = [j for j, a in enumerate(p["at"]) if a == "during"]
        assert len(during) >= 3, (key, p)  # LeNet at 10 frames/s: gaps of ~0.1 s
        assert p["at"][:2] == ["before"] * 2 and p["at"][-2:] == ["after"] * 2
        t = [p["t_s"][j] for j in during]
        assert all(0 < x < d for x in t) and t == sorted(t)
        assert isinstance(p["skipped"], int) and p["skipped"] >= 0
        # each probe priced at the levels the follower had in place then
        for j in during:
            cpu = [e[2] for e in facts["applied"][key] if e[0] <= p["t_s"][j]][-1]
            assert p["edge_cpu"][j] == (cpu or 0.0)
        # no frame of the run was queued or in flight while a probe ran (edge or cloud)
        mine = real[(real["policy"] + "/" + real["seed"].astype(str)) == key]
        owl = 0.005  # the scenario's latency back, added after the result came in
        busy = list(zip(mine["arrival_s"], mine["done_s"] - owl, strict=True))
        spans = [(p["t_s"][j], p["t_s"][j] + p["edge_s"][j]) for j in during]
        cloud = [j for j, a in enumerate(p["cloud_at"]) if a == "during"]
        spans += [(p["cloud_t_s"][j], b) for j, b in zip(cloud, p["cloud_back_s"], strict=True)]
        assert cloud, (key, p)  # the cloud probed too, on its own input
        for s0, s1 in spans:
            assert not any(a < s1 and s0 < done for a, done in busy), (key, s0, s1)
        assert p["edge_speed_steps"] and p["cloud_speed_steps"]  # the speed over time
    assert sorted(pd.read_csv(out / "comparison_probed.csv")["policy"]) == sorted(policies)
