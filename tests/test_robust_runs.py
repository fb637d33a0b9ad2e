"""Errors found while simulating: named precisely, and no finished run is lost.

A user policy that raises or returns something that is not one of the model's
points stops its own runs with one line naming the policy, the seed, the
simulated time and the value; the other policies' runs are written and the
command exits with 2. A link that dies for good ends the run with a statement
of how many frames never finished, not with statistics that quietly leave them
out. Everything goes through the real CLI and real files.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from adaptsim.cli import app

runner = CliRunner()

POLICY_FILE = """
import numpy as np

def after(value, t_s=3.0):
    def decide(view):
        return value if view.now_s >= t_s else 6
    return decide

def raises(view):
    if view.now_s >= 3.0:
        return 1 // 0
    return 6

returns_none = after(None)
returns_text = after("6")
returns_fraction = after(4.7)
returns_unknown = after(99)
returns_bool = after(True)
returns_float_whole = after(7.0)
returns_numpy = after(np.int64(7))


class BuildsOnce:
    # builds when the scenario is loaded, fails when a run builds it again

    built = 0

    def __init__(self):
        BuildsOnce.built += 1
        if BuildsOnce.built > 1:
            raise OSError("the camera is busy")
        self.period_s = None

    def decide(self, view):
        return 6
"""


def _scenario(tmp_path, policy: str, **extra) -> str:
    (tmp_path / "pol.py").write_text(POLICY_FILE)
    doc = {
        "name": "errs",
        "model": "alexnet",
        "duration_s": 10.0,
        "arrivals": {"rate_hz": 2.0},
        "deadline_s": 1.0,
        "traces": {"bandwidth_mbps": {"constant": 20.0}},
        "policies": [
            {"policy": "all-edge"},
            {"policy": f"pol.py:{policy}", "label": "mine"},
            {"policy": "all-cloud"},
        ],
        "seeds": [4, 5],
        **extra,
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.parametrize(
    "policy, value",
    [
        ("raises", "raised ZeroDivisionError: integer division or modulo by zero"),
        ("returns_none", "returned None, not a partition point"),
        ("returns_text", "returned '6', not a partition point"),
        ("returns_fraction", "returned 4.7, not a whole partition point"),
        ("returns_unknown", "returned point 99, which alexnet does not have (its points: 0..25)"),
        ("returns_bool", "returned True, not a partition point"),
    ],
)
def test_a_failing_policy_is_named_and_the_other_runs_are_kept(tmp_path, policy, value):
    out = tmp_path / "res"
    r = runner.invoke(app, ["run", _scenario(tmp_path, policy), "--out", str(out)])
    assert r.exit_code == 2, r.stderr
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    # the policy, the seed (the first one: its runs stop there), the simulated time, the value
    assert last.startswith("adaptsim: error: policy 'mine' (seed 4) at simulated time 3 s ")
    assert value in last and str(out) in last
    summary = pd.read_csv(out / "summary.csv")
    records = pd.read_parquet(out / "records.parquet")
    assert list(summary["policy"]) == ["all-edge", "all-cloud"]  # the others ran, all seeds
    assert (summary["seeds"] == 2).all() and set(records["seed"]) == {4, 5}
    assert json.loads((out / "run.json").read_text())["errors"] == [
        last.removeprefix("adaptsim: error: ").split(" (the runs that finished")[0]
    ]


@pytest.mark.parametrize("policy", ["returns_float_whole", "returns_numpy"])
def test_whole_numbers_of_other_types_are_points(tmp_path, policy):
    out = tmp_path / "res"
    r = runner.invoke(app, ["run", _scenario(tmp_path, policy), "--out", str(out)])
    assert r.exit_code == 0, r.stderr
    records = pd.read_parquet(out / "records.parquet")
    mine = records[records["policy"] == "mine"]
    assert set(mine.loc[mine["arrival_s"] >= 3.0, "point"]) == {7}


def test_a_policy_failing_everywhere_writes_nothing_but_one_line(tmp_path):
    _scenario(tmp_path, "raises")
    doc = yaml.safe_load((tmp_path / "s.yaml").read_text())
    doc["policies"] = [doc["policies"][1]]
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    r = runner.invoke(app, ["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "res")])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "policy 'mine' (seed 4) at simulated time 3 s raised ZeroDivisionError" in r.stderr
    assert not (tmp_path / "res").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".res")]


def test_a_link_dead_for_good_is_stated_and_counted(tmp_path):
    path = _scenario(
        tmp_path,
        "returns_numpy",
        traces={"bandwidth_mbps": {"steps": [[0, 20], [5, 0]], "end": "hold"}},
    )
    out = tmp_path / "res"
    r = runner.invoke(app, ["run", path, "--out", str(out)])
    assert r.exit_code == 0, r.stderr
    warnings = [x for x in r.stderr.splitlines() if x.startswith("adaptsim: warning:")]
    assert len(warnings) == 3  # one per policy
    assert "never finished (the uplink's bandwidth is 0 from t = 5 s on)" in warnings[0]
    assert "censored" in warnings[0]
    summary = pd.read_csv(out / "summary.csv")
    assert summary["censored"].all()
    assert (summary["finished"] + summary["unfinished"] == summary["requests"]).all()
    # frames that arrive once the link is dead never finish: about half of the 10 s
    assert (summary["unfinished_share"] >= 0.5).all()
    assert (summary["deadline_miss_rate"] >= summary["unfinished_share"]).all()


def test_a_report_that_cannot_be_built_keeps_the_runs(tmp_path):
    """Poisson arrivals over 0.5 s at 0.1/s: with seed 0 no frame arrives, so no report."""
    path = _scenario(
        tmp_path, "returns_numpy", duration_s=0.5, arrivals={"kind": "poisson", "rate_hz": 0.1}
    )
    out = tmp_path / "res"
    r = runner.invoke(app, ["run", path, "--out", str(out), "--report", "--seed", "0"])
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["requests"]) == [0, 0, 0] and list(summary["seeds"]) == [1, 1, 1]
    assert r.exit_code == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("adaptsim: error: no report: ") and str(out) in last
    assert not (out / "report.html").exists()


def test_default_results_folder_blocked_by_a_file_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").write_text("not a folder")
    r = runner.invoke(app, ["run", _scenario(tmp_path, "returns_numpy")])
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        "adaptsim: error: results folder results/errs: results is a file, not a folder"
    )


def test_a_policy_that_fails_to_build_for_a_run_keeps_the_others(tmp_path):
    out = tmp_path / "res"
    r = runner.invoke(app, ["run", _scenario(tmp_path, "BuildsOnce"), "--out", str(out)])
    assert r.exit_code == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "the camera is busy" in last and "(policy 'mine', seed 4)" in last
    assert list(pd.read_csv(out / "summary.csv")["policy"]) == ["all-edge", "all-cloud"]


def test_a_failed_run_into_the_default_folder_leaves_no_empty_results(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _scenario(tmp_path, "raises")
    doc = yaml.safe_load((tmp_path / "s.yaml").read_text())
    doc["policies"] = [doc["policies"][1]]  # only the failing policy: nothing to write
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    r = runner.invoke(app, ["run", path])
    assert r.exit_code == 2 and "ZeroDivisionError" in r.stderr
    assert not (tmp_path / "results").exists()
