"""scripts/rescore_world.py: a saved validation re-scored with another calibration as
the twin's world, the policies still predicting with the run's own.

No real run here (as tests/test_foldback_terms.py): the "measured" side is the LeNet
testbed scenario simulated in a world whose edge and cloud are 1.3x the shipped
calibration's (a stand-in for a slower host), its policies believing the shipped one.
Re-scored with a calibration file holding that world, the twin's draw 0 is the
measured run itself; with the shipped calibration it is a host 1.3x too fast.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import pytest

from adaptsim.calibration.io import load_calibration, save_calibration
from adaptsim.simulator import run_scenario
from adaptsim.simulator.scenario import PolicySpec
from adaptsim.testbed import scenario_for_testbed
from adaptsim.testbed.host_speed import HostSpeed, at_host_speed
from adaptsim.testbed.validate import write_validation

ROOT = Path(__file__).parents[1]
SCENARIO = ROOT / "tests" / "data" / "testbed_lenet.yaml"
CALIBRATION = ROOT / "src" / "adaptsim" / "data" / "calibration_own_2core.json"
SLOWER = 1.3

_spec = importlib.util.spec_from_file_location(
    "rescore_world", ROOT / "scripts" / "rescore_world.py"
)
rescore_world = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rescore_world)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(the folder, a calibration file of the slower world)."""
    tmp = tmp_path_factory.mktemp("world")
    sc = scenario_for_testbed(SCENARIO, CALIBRATION)
    sc = replace(sc, policies=tuple(PolicySpec(policy=p) for p in ("all-edge", "all-cloud")))
    # the slower world: every edge and cloud time x1.3, the policies believing the shipped
    world = at_host_speed(sc, HostSpeed(edge=SLOWER, cloud=SLOWER))
    slow_path = tmp / "slower.json"
    save_calibration(
        replace(load_calibration(CALIBRATION), models={"lenet": world.model}), slow_path
    )
    real, twin = run_scenario(world), run_scenario(sc)
    real.records["return_s"] = 0.0
    facts = {"scenario": str(SCENARIO), "calibration": str(CALIBRATION), "time_scale": 1.0,
             "duration_s": sc.duration_s, "seeds": list(sc.seeds), "notes": [],
             "placement": {"edge_cpus": [0], "cloud_cpus": [1], "cloud_workers": 1,
                           "memory_stress_cpus": [1]},
             "one_way_latency": "added in the application", "zero_rate": "tbf",
             "load_average": [1.0, 1.0, 1.0], "interrupted": False}  # fmt: skip
    return write_validation(tmp / "v", real, twin, facts), slow_path


def test_the_world_of_the_run_gives_the_run_back(saved):
    folder, slow = saved
    t = rescore_world.rescore_world(slow, folder)
    assert set(t["policy"]) == {"all-edge", "all-cloud"}
    # draw 0 is the measured run, frame for frame: its error is nil
    assert t["single_mean_error_pct"].abs().max() < 1e-6
    assert t["single_p95_error_pct"].abs().max() < 1e-6


def test_the_shipped_calibration_is_a_faster_host_than_the_run(saved):
    folder, _ = saved
    t = rescore_world.rescore_world(CALIBRATION, folder)
    # every policy computes (all-edge at the edge, all-cloud in the cloud): too fast (LeNet's
    # compute is a few percent of its latency, the link and the added latency the rest)
    assert (t["single_mean_error_pct"] < -1).all(), t[["policy", "single_mean_error_pct"]]


def test_a_calibration_of_another_model_or_no_folder_is_one_line(saved, tmp_path, capsys):
    folder, _ = saved
    other = tmp_path / "other.json"
    cal = load_calibration(CALIBRATION)
    save_calibration(replace(cal, models={"alexnet": cal.model("alexnet")}), other)
    assert rescore_world.main([str(other), str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "lenet" in err, err
    assert rescore_world.main([str(CALIBRATION), str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a validation folder" in err and len(err.splitlines()) == 1
    json.dumps(err)  # plain text
