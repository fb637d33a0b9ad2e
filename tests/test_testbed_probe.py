"""The host-speed probe: probe frames around every real policy run, the twin at each run's
probed speed, and a fold-back relative to the host's speed.

The arithmetic runs on validation folders written here: the "measured" side is the
LeNet testbed scenario simulated with each policy run's edge and cloud at a known host
speed (times a known pipeline factor for the fold-back), its probes planted as that
host would have timed them, and the folder written as ``adaptsim validate`` writes it.
The real test (root) records the probes of a short LeNet validation.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adaptsim.cli import app
from adaptsim.errors import UserError
from adaptsim.simulator.scenario import PolicySpec
from adaptsim.testbed import real_run_available, scenario_for_testbed, validate
from adaptsim.testbed.foldback import FoldBack, apply_foldback, fit_foldback, folded_twin
from adaptsim.testbed.folder import fold_back_source
from adaptsim.testbed.host_speed import (
    HostSpeed,
    at_host_speed,
    check_probe_frames,
    host_speeds,
    predicted_probe_s,
    probed_twin,
    record_speeds,
    run_keys,
    twin_per_run,
)
from adaptsim.testbed.twin import twin_draws
from adaptsim.testbed.validate import write_validation

DATA = Path(__file__).parent / "data"
SCENARIO = DATA / "testbed_lenet.yaml"  # 20 -> 1 -> 20 Mbit/s at 3 and 6 s, CPU 0 -> 50 % at 4.5 s
CALIBRATION = Path(__file__).parents[1] / "src" / "adaptsim" / "data" / "calibration_own_2core.json"
POLICIES = ("all-cloud", "all-edge", "static-best")  # as the YAML has them (re-scoring)
runner = CliRunner()


def _scenario(seed: int = 1):
    sc = scenario_for_testbed(SCENARIO, CALIBRATION)
    return replace(sc, policies=tuple(PolicySpec(policy=p) for p in POLICIES), seeds=(seed,))


def _applied_log(sc) -> list[list]:
    """The follower's log of a world on time: the t = 0 levels, then each change."""
    traces = (sc.bandwidth, sc.edge_cpu, sc.edge_mem)
    times = sorted({t for tr in traces for t in tr.breakpoints(sc.duration_s + 5) if t > 0})
    log = [[0.0, *(tr.at(0.0) for tr in traces)]]
    for t in times:
        entry = [t, *(tr.at(t) for tr in traces)]
        if entry[1:] != log[-1][1:]:
            log.append(entry)
    return log


def _probes(speed: tuple[float, float], predicted: tuple[float, float], n: int = 5) -> dict:
    """What a host at ``speed`` (edge, cloud) times: n probes before and n after the run,
    one of them an outlier (so the median, not the mean, is the host's speed)."""
    out = {}
    for role, s, pred in (("edge_s", speed[0], predicted[0]), ("cloud_s", speed[1], predicted[1])):
        seconds = [s * pred] * (2 * n)
        seconds[n - 1] *= 4.0  # one slow probe: a median ignores it, a mean does not
        out[role] = seconds
    out["at"] = ["before"] * n + ["after"] * n
    return out


def _folder(tmp_path: Path, name: str, sc, speeds: dict, pipeline=(1.0, 1.0), probes=True):
    """A validation folder whose policy runs ran at ``speeds[key]`` = (edge, cloud) host
    speed times the pipeline's own factor ``pipeline`` (what the probes do not see; a
    dict: per run)."""
    per_run = pipeline if isinstance(pipeline, dict) else dict.fromkeys(speeds, pipeline)
    world = {k: HostSpeed(edge=e * per_run[k][0], cloud=c * per_run[k][1])
             for k, (e, c) in speeds.items()}  # fmt: skip
    real = twin_per_run(sc, lambda key: at_host_speed(sc, world[key]), 1)[0]
    real.records["return_s"] = 0.0
    twin = twin_draws(sc, 1)
    keys = [k for _, k in run_keys(sc)]
    predicted = predicted_probe_s(sc.model)
    facts = {"scenario": str(SCENARIO), "calibration": str(CALIBRATION), "time_scale": 1.0,
             "duration_s": sc.duration_s, "seeds": list(sc.seeds), "notes": [],
             "applied": {k: _applied_log(sc) for k in keys},
             "clock": {k: {"cloud_latency_s": sc.one_way_latency_s} for k in keys},
             "placement": {"edge_cpus": [0], "cloud_cpus": [1], "cloud_workers": 1,
                           "memory_stress_cpus": [1]},
             "one_way_latency": "added in the application", "zero_rate": "tbf",
             "load_average": [1.0, 1.0, 1.0], "interrupted": False}  # fmt: skip
    if probes:
        facts["host_speed"] = {k: _probes(speeds[k], predicted) for k in keys}
        facts["probe_frames"] = 5
    found = host_speeds(facts.get("host_speed", {}), sc.model)
    record_speeds(facts.get("host_speed", {}), found)  # as validate does
    probed = probed_twin(sc, found, 1) if found else None
    return write_validation(tmp_path / name, real, twin, facts, twin_probed=probed), real


# per run (edge, cloud): the edge and cloud at other speeds, each run at its own
SEED1 = {"all-cloud/1": (1.30, 1.10), "all-edge/1": (1.20, 1.45), "static-best/1": (1.25, 1.40)}
SEED2 = {"all-cloud/2": (0.90, 1.60), "all-edge/2": (1.05, 0.95), "static-best/2": (0.95, 1.50)}
PIPELINE = (1.08, 1.15)  # what the real pipeline adds beyond the host's speed


def test_a_runs_host_speed_is_each_roles_median_probe_over_its_prediction():
    sc = _scenario()
    model = sc.model
    # the calibration's whole model at the edge and whole tail in the cloud, no stress
    pred = model.predict(0.0, 0.0, 0.0, 0.0, 20.0)
    kinds = list(model.kinds)
    edge_pred, cloud_pred = predicted_probe_s(model)
    assert edge_pred == pytest.approx(float(pred.edge_s[0, kinds.index("all_edge")]))
    assert cloud_pred == pytest.approx(float(pred.cloud_s[0, kinds.index("all_cloud")]))
    assert edge_pred > 0 and cloud_pred > 0 and edge_pred != cloud_pred
    probes = {"a/1": _probes((1.3, 0.7), (edge_pred, cloud_pred)),
              "b/1": {"edge_s": [2 * edge_pred], "cloud_s": []}}  # fmt: skip
    speeds = host_speeds(probes, model)
    assert speeds["a/1"].edge == pytest.approx(1.3) and speeds["a/1"].cloud == pytest.approx(0.7)
    assert speeds["a/1"].edge_probe_s == pytest.approx(1.3 * edge_pred)
    # a cloud that answered no probe: no cloud speed, factor 1
    assert speeds["b/1"].edge == pytest.approx(2.0) and speeds["b/1"].cloud is None
    assert speeds["b/1"].factors() == (pytest.approx(2.0), 1.0)


def test_the_twin_per_run_of_the_plain_world_is_the_plain_twin():
    sc = _scenario()
    per_run = twin_per_run(sc, lambda key: sc, 2)
    plain = twin_draws(sc, 2)
    key = ["policy", "seed", "request"]
    for a, b in zip(per_run, plain, strict=True):
        left = a.records.sort_values(key).reset_index(drop=True)
        right = b.records.sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(left[right.columns], right)
        assert a.records.index.equals(pd.RangeIndex(len(a.records)))  # one frame, one row
        assert a.wall_s > 0 and a.interrupted is False and a.errors == ()
        pd.testing.assert_frame_equal(
            a.summary.set_index("policy").sort_index(), b.summary.set_index("policy").sort_index()
        )


def test_the_probed_twin_reproduces_runs_at_their_host_speed(tmp_path):
    """Each policy run at its own host speed (edge and cloud apart): the twin at the
    probed speeds gives the run back frame by frame; the plain twin does not."""
    sc = _scenario()
    folder, real = _folder(tmp_path, "v", sc, SEED1)
    speeds = host_speeds(json.loads((folder / "validation.json").read_text())["host_speed"],
                         sc.model)  # fmt: skip
    assert {k: v.factors() for k, v in speeds.items()} == {
        k: (pytest.approx(e), pytest.approx(c)) for k, (e, c) in SEED1.items()
    }
    probed = probed_twin(sc, speeds, 1)[0].records
    key = ["policy", "seed", "request"]
    both = real.records.merge(probed, on=key, suffixes=("", "_twin"))
    assert len(both) == len(real.records)
    for col in ("edge_s", "cloud_s", "latency_s"):
        np.testing.assert_allclose(both[f"{col}_twin"], both[col], rtol=1e-9, atol=1e-12)
    comp = pd.read_csv(folder / "comparison_probed.csv").set_index("policy")
    assert comp["mean_error_pct"].abs().max() < 1e-6
    plain = pd.read_csv(folder / "comparison.csv").set_index("policy")
    assert (plain["mean_error_pct"] < -0.3).all()  # the plain twin: the profile's host, faster
    sim = pd.read_parquet(folder / "simulated" / "records.parquet")
    off = real.records.merge(sim, on=key, suffixes=("", "_twin"))
    edge = off[off["edge_s"] > 0]
    assert (edge["edge_s"] / edge["edge_s_twin"]).min() > 1.15  # every edge frame slower
    md = (folder / "report.md").read_text()
    assert "probed host speed" in md and "x1.450" in md  # all-edge's cloud speed, per run


def test_a_fold_back_relative_to_the_host_speed_transfers_to_another_speed(tmp_path):
    """Fitted on seed 1 (each run at its own host speed, the pipeline x1.08 edge and x1.15
    cloud beyond it), the fold-back is the pipeline's factor alone; applied to seed 2
    at each of its runs' probed speed, it gives seed 2 back frame by frame. The same
    fold-back fitted without the probes carries seed 1's speed and misses seed 2."""
    sc1, sc2 = _scenario(1), _scenario(2)
    seed1, _ = _folder(tmp_path, "s1", sc1, SEED1, PIPELINE)
    seed2, real2 = _folder(tmp_path, "s2", sc2, SEED2, PIPELINE)
    fb = fit_foldback(seed1, scenario=sc1)
    assert fb.host_relative is True  # a JSON true in validation.json, not a string
    assert FoldBack.from_dict(json.loads(fb.to_json())) == fb
    assert fb.edge_scale == pytest.approx(PIPELINE[0], rel=1e-6)
    assert fb.cloud_scale == pytest.approx(PIPELINE[1], rel=1e-6)
    assert [s for _, s in fb.edge_scale_by_cpu] == pytest.approx([PIPELINE[0]] * 2, rel=1e-6)
    assert [s for _, s in fb.cloud_scale_by_cpu] == pytest.approx([PIPELINE[1]] * 2, rel=1e-6)
    # the fit run's host speed: the median over its runs, per role
    assert (fb.fit_edge_speed, fb.fit_cloud_speed) == (pytest.approx(1.25), pytest.approx(1.40))
    speeds2 = host_speeds(json.loads((seed2 / "validation.json").read_text())["host_speed"],
                          sc2.model)  # fmt: skip
    folded = folded_twin(sc2, fb, speeds2, 1)[0].records
    key = ["policy", "seed", "request"]
    both = real2.records.merge(folded, on=key, suffixes=("", "_twin"))
    assert len(both) == len(real2.records)
    for col in ("edge_s", "cloud_s"):
        np.testing.assert_allclose(both[f"{col}_twin"], both[col], rtol=1e-6)
    # as before the probes: the scales carry seed 1's host speed, and miss seed 2's runs
    plain = fit_foldback(seed1, scenario=sc1, host_speed=False)
    assert not plain.host_relative
    assert plain.edge_scale == pytest.approx(fb.edge_scale * 1.25, rel=0.05)
    old = folded_twin(sc2, plain, speeds2, 1)[0].records
    worse = real2.records.merge(old, on=key, suffixes=("", "_twin"))
    edge = worse[worse["edge_s"] > 0]
    assert (edge["edge_s_twin"] / edge["edge_s"]).sub(1).abs().max() > 0.1


def test_rescoring_saved_folders_uses_their_probes(tmp_path):
    """``rescore_folder`` (the scorecard's --resimulate, scripts/rescore_foldback.py and
    foldback_terms.py): the fold-back fitted on seed 1's folder relative to its host
    speed and applied at seed 2's probed speeds, both read from the folders."""
    from adaptsim.testbed.rescore import folder_speeds, rescore_folder, rescore_probed

    sc1, sc2 = _scenario(1), _scenario(2)
    seed1, _ = _folder(tmp_path, "s1", sc1, SEED1, PIPELINE)
    seed2, _ = _folder(tmp_path, "s2", sc2, SEED2, PIPELINE)
    assert {k: v.factors() for k, v in folder_speeds(seed2, sc2).items()} == {
        k: (pytest.approx(e), pytest.approx(c)) for k, (e, c) in SEED2.items()
    }
    after, fb = rescore_folder(seed2, fold_back_from=seed1, draws=1)
    assert fb.host_relative and fb.edge_scale == pytest.approx(PIPELINE[0], rel=1e-6)
    assert after["mean_error_pct"].abs().max() < 0.5
    plain, fb_plain = rescore_folder(seed2, fold_back_from=seed1, draws=1, host_speed=False)
    assert not fb_plain.host_relative
    # seed 1's host speed carried over (LeNet: compute is a small part of a frame's latency)
    assert plain["mean_error_pct"].abs().max() > 1.0
    assert after["mean_error_pct"].abs().max() < plain["mean_error_pct"].abs().max() / 10
    before, none = rescore_folder(seed2, draws=1)  # no fold-back: the plain twin again
    assert none is None
    saved = pd.read_csv(seed2 / "comparison.csv")
    np.testing.assert_allclose(before["mean_error_pct"], saved["mean_error_pct"], rtol=1e-9)
    probed = rescore_probed(seed2, draws=1)
    assert probed["mean_error_pct"].abs().max() < 10  # the pipeline's 8-15 % is not in it
    assert (probed["mean_error_pct"] < 0).all()


def test_a_relative_fold_back_applied_without_probes_takes_the_fit_runs_speed(tmp_path):
    sc1, sc2 = _scenario(1), _scenario(2)
    seed1, _ = _folder(tmp_path, "s1", sc1, SEED1, PIPELINE)
    fb = fit_foldback(seed1, scenario=sc1)
    at_fit = fb.at_host(None)
    assert not at_fit.host_relative
    assert at_fit.edge_scale == pytest.approx(PIPELINE[0] * 1.25)
    assert at_fit.cloud_scale == pytest.approx(PIPELINE[1] * 1.40)
    # apply_foldback alone (older callers): the same as at the fit run's speed
    a, b = apply_foldback(sc2, fb), apply_foldback(sc2, at_fit)
    np.testing.assert_allclose(a.model.edge_cum.values, b.model.edge_cum.values)
    np.testing.assert_allclose(a.model.cloud_cum.values, b.model.cloud_cum.values)
    # a run without probes among probed ones: the fit run's speed for it alone
    one = HostSpeed(edge=2.0, cloud=None)
    moved = fb.at_host(one)
    assert moved.edge_scale == pytest.approx(PIPELINE[0] * 2.0)
    assert moved.cloud_scale == pytest.approx(PIPELINE[1] * 1.40)
    moved = fb.at_host(HostSpeed(edge=None, cloud=3.0))
    assert moved.edge_scale == pytest.approx(PIPELINE[0] * 1.25)
    assert moved.cloud_scale == pytest.approx(PIPELINE[1] * 3.0)
    assert [s for _, s in moved.cloud_scale_by_cpu] == pytest.approx([PIPELINE[1] * 3.0] * 2)


def test_older_fold_backs_and_folders_without_probes_read_as_before(tmp_path):
    old = {"edge_scale": 1.2, "cloud_scale": 1.1, "uplink_extra_s": 0.0, "return_s": 0.0,
           "pause_s": 0.0, "frames": 10, "from": "x"}  # fmt: skip
    fb = FoldBack.from_dict(old)
    assert not fb.host_relative and (fb.fit_edge_speed, fb.fit_cloud_speed) == (1.0, 1.0)
    assert FoldBack.from_dict({**old, "host_relative": False}).host_relative is False
    assert fb.at_host(HostSpeed(edge=3.0, cloud=3.0)) is fb  # absolute: never rescaled
    sc = _scenario()
    folder, _ = _folder(tmp_path, "v", sc, SEED1, PIPELINE, probes=False)
    assert not (folder / "comparison_probed.csv").exists()
    got = fit_foldback(folder, scenario=sc)
    assert not got.host_relative
    assert got.edge_scale == pytest.approx(PIPELINE[0] * 1.25, rel=0.05)  # the host in it
    # applied to a probed run, it stays absolute: the same twin with or without speeds
    speeds = {k: HostSpeed(edge=2.0, cloud=2.0) for _, k in run_keys(sc)}
    a = folded_twin(sc, got, speeds, 1)[0].summary
    b = twin_draws(apply_foldback(sc, got), 1)[0].summary
    pd.testing.assert_frame_equal(a, b)


def test_a_fit_without_steps_to_time_rebuilds_its_scenario_to_price_the_probes(tmp_path):
    """A folder whose applied log has no step after t = 0 (nothing to time) and no
    scenario handed in: the fit rebuilds the run's scenario from its facts for the
    calibration that prices the probes, and says so in one line when it is gone."""
    sc = _scenario()
    folder, _ = _folder(tmp_path, "v", sc, SEED1, PIPELINE)
    path = folder / "validation.json"
    facts = json.loads(path.read_text())
    facts["applied"] = {k: log[:1] for k, log in facts["applied"].items()}  # t = 0 only
    path.write_text(json.dumps(facts))
    fb = fit_foldback(folder)
    assert fb.host_relative and fb.cloud_scale == pytest.approx(PIPELINE[1], rel=1e-6)
    path.write_text(json.dumps({**facts, "scenario": str(tmp_path / "gone.yaml")}))
    with pytest.raises(UserError, match="prices the probes") as exc:
        fit_foldback(folder)
    assert str(path) in str(exc.value) and "gone.yaml" in str(exc.value)


@pytest.mark.parametrize("bad", [-1, 101, 2.5, True, "5"])
def test_probe_frames_out_of_range_are_refused(bad):
    with pytest.raises(UserError, match="--probe-frames"):
        check_probe_frames(bad)
    assert check_probe_frames(0) == 0 and check_probe_frames(100) == 100


def test_probe_frames_minus_one_on_the_command_line_is_one_line_exit_2(tmp_path):
    r = runner.invoke(app, ["validate", str(SCENARIO), "--calibration", str(CALIBRATION),
                            "--probe-frames", "-1", "--out", str(tmp_path / "v")])  # fmt: skip
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.exception)
    assert len(lines) == 1 and "--probe-frames -1" in lines[0], r.stderr
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize(
    "host_speed",
    [
        [1, 2],
        {"all-cloud/1": [0.1]},
        {"all-cloud/1": {"edge_s": [], "cloud_s": [0.1]}},
        {"all-cloud/1": {"edge_s": [0.1, -0.2], "cloud_s": [0.1]}},
        {"all-cloud/1": {"edge_s": [0.1], "cloud_s": "fast"}},
        {"all-cloud/1": {"edge_s": [0.1], "cloud_s": [float("nan")]}},
        # probes during the run (tests/test_testbed_drift.py): one run time and level each
        {"all-cloud/1": {"edge_s": [0.1, 0.1], "cloud_s": [0.1], "t_s": [0.0, -1.0]}},
        {"all-cloud/1": {"edge_s": [0.1], "cloud_s": [0.1], "t_s": [0.0, 1.0]}},
        {"all-cloud/1": {"edge_s": [0.1], "cloud_s": [0.1], "cloud_t_s": "0"}},
        {"all-cloud/1": {"edge_s": [0.1], "cloud_s": [0.1], "edge_cpu": [True]}},
    ],
)
def test_a_fold_back_folder_with_malformed_probes_is_one_line_exit_2(tmp_path, host_speed):
    sc = _scenario()
    folder, _ = _folder(tmp_path, "v", sc, SEED1)
    path = folder / "validation.json"
    facts = json.loads(path.read_text())
    path.write_text(json.dumps({**facts, "host_speed": host_speed}))
    with pytest.raises(UserError, match=r"host_speed.*delete host_speed from its validation"):
        fit_foldback(folder, scenario=sc)
    with pytest.raises(UserError, match="host_speed"):
        fold_back_source(folder)
    out = str(tmp_path / "out")
    r = runner.invoke(app, ["validate", str(SCENARIO), "--calibration", str(CALIBRATION),
                            "--fold-back", str(folder), "--out", out])  # fmt: skip
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.exception)
    assert len(lines) == 1 and "host_speed" in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


# -- a real run (root) --------------------------------------------------------------

needs_testbed = pytest.mark.skipif(
    real_run_available() is not None, reason=f"a real run {real_run_available()}"
)


def _nothing_left():
    assert not list(Path(tempfile.gettempdir()).glob(f"adaptsim-testbed-{os.getpid()}-*"))


@pytest.mark.needs_root
@pytest.mark.slow
@needs_testbed
def test_a_real_validation_probes_the_host_around_every_policy_run(tmp_path):
    policies = ["static-best", "all-cloud"]
    out = validate(SCENARIO, CALIBRATION, tmp_path / "v", policies=policies, time_scale=2.0,
                   probe_frames=3, noise_draws=2, progress=lambda _: None)  # fmt: skip
    facts = json.loads((out / "validation.json").read_text())
    assert facts["probe_frames"] == 3
    probes = facts["host_speed"]
    assert sorted(probes) == sorted(f"{p}/1" for p in policies)
    for p in probes.values():
        assert p["at"] == ["before"] * 3 + ["after"] * 3
        assert p["cloud_at"] == ["before"] * 3 + ["after"] * 3
        for role in ("edge_s", "cloud_s"):
            assert len(p[role]) == 6 and all(math.isfinite(s) and s > 0 for s in p[role])
        for role in ("edge", "cloud"):  # the speed against the calibration's prediction
            assert math.isfinite(p[role]) and p[role] > 0
            assert p[role] == pytest.approx(np.median(p[f"{role}_s"]) / p[f"{role}_predicted_s"])
        assert p["wall_s"] > 0
    comp = pd.read_csv(out / "comparison_probed.csv")
    assert sorted(comp["policy"]) == sorted(policies)
    assert "The twin at the probed host speed" in (out / "report.md").read_text()
    # off: no probe, no probed twin
    off = validate(SCENARIO, CALIBRATION, tmp_path / "off", policies=["all-cloud"],
                   time_scale=2.0, probe_frames=0, noise_draws=1,
                   progress=lambda _: None)  # fmt: skip
    facts = json.loads((off / "validation.json").read_text())
    assert "host_speed" not in facts and facts["probe_frames"] == 0
    assert not (off / "comparison_probed.csv").exists()
    _nothing_left()
