"""Validation folders damaged or foreign, as `validate --fold-back`, the validation report,
the scorecard and re-scoring read them: one line naming the file, never a traceback.

The audit of 1 Dec found every reader of a validation folder going straight to pandas
and ``json``: ``validate --fold-back`` of a folder with a truncated Parquet file, a
``validation.json`` that is not an object, or a summary without the columns the
fold-back fits on raised KeyError, ArrowInvalid or JSONDecodeError (for
``--fold-back``: before the real run, so nothing was lost but the message). They all
read through :mod:`adaptsim.testbed.folder` now. The folder here is a stand-in
written by the real writer (a simulated "real" run with a real run's ``return_s``),
as in tests/test_testbed_report.py: no root, no namespaces.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import pytest

from adaptsim.errors import UserError
from adaptsim.simulator import run_scenario
from adaptsim.simulator.scenario import PolicySpec
from adaptsim.testbed import scenario_for_testbed
from adaptsim.testbed.foldback import FoldBack, apply_foldback, fit_foldback
from adaptsim.testbed.folder import fold_back_source
from adaptsim.testbed.host_speed import host_speeds, predicted_probe_s, probed_twin, record_speeds
from adaptsim.testbed.report import write_validation_report
from adaptsim.testbed.rescore import rescore_probed, twin_scenario
from adaptsim.testbed.validate import write_validation
from damage import Damage, csv_edit, json_edit, parquet_edit, replace_with, truncate

DATA = Path(__file__).parent / "data"
SCENARIO = DATA / "testbed_lenet.yaml"
CALIBRATION = Path(__file__).parents[1] / "src/adaptsim/data/calibration_own_2core.json"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    sc = scenario_for_testbed(SCENARIO, CALIBRATION, duration_s=4.0)
    sc = replace(sc, policies=(PolicySpec(policy="all-edge"), PolicySpec(policy="all-cloud")))
    stand_in = FoldBack(edge_scale=1.4, cloud_scale=1.2, uplink_extra_s=0.002, return_s=0.0,
                        pause_s=0.0, frames=40)  # fmt: skip
    real = run_scenario(apply_foldback(sc, stand_in))
    real.records["return_s"] = 0.001  # a real run's own column
    facts = {"scenario": str(SCENARIO), "calibration": str(CALIBRATION), "time_scale": 1.0,
             "duration_s": 4.0, "seeds": list(sc.seeds), "applied": {}, "notes": [],
             "placement": {"edge_cpus": [0], "cloud_cpus": [1], "cloud_workers": 1,
                           "memory_stress_cpus": [1]},
             "one_way_latency": "added in the application", "zero_rate": "tbf",
             "load_average": [1.0, 1.0, 1.0], "interrupted": False}  # fmt: skip
    # probes of a host 1.1x the calibration's edge and 0.9x its cloud, as validate keeps them
    edge_s, cloud_s = predicted_probe_s(sc.model)
    facts["host_speed"] = {f"{p.policy}/{seed}": {"edge_s": [1.1 * edge_s] * 2,
                                                  "cloud_s": [0.9 * cloud_s] * 2,
                                                  "at": ["before", "after"]}
                           for p in sc.policies for seed in sc.seeds}  # fmt: skip
    speeds = host_speeds(facts["host_speed"], sc.model)
    record_speeds(facts["host_speed"], speeds)
    facts["fold_back"] = {"from": "elsewhere", **asdict(stand_in)}
    twin = run_scenario(sc)
    out = write_validation(tmp_path_factory.mktemp("v") / "v", real, twin, facts,
                           twin_folded=[run_scenario(apply_foldback(sc, stand_in))],
                           twin_probed=probed_twin(sc, speeds, 1))  # fmt: skip
    fit_foldback(out)  # the stand-in is one a fold-back fits on
    return out


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "v"))


_write = replace_with
_truncate = truncate


def _facts(edit: Callable[[dict], None]) -> Damage:
    return json_edit("validation.json", edit)


def _records(side: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Damage:
    return parquet_edit(f"{side}/records.parquet", edit)


def _summary(edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Damage:
    return csv_edit("real/summary.csv", edit)


# case -> (damage, readers that must refuse it in one line)
FOLD, REPORT, RESCORE, SCORED = "fold-back", "report", "rescore", "scored"
DAMAGED = {
    "validation.json not JSON": (_write("validation.json", "{"), (FOLD, REPORT, RESCORE)),
    "validation.json a list": (_write("validation.json", "[1]"), (FOLD, REPORT, RESCORE)),
    "validation.json binary": (_write("validation.json", b"\x00\xff"), (FOLD, REPORT, RESCORE)),
    "validation.json seeds a word": (_facts(lambda f: f.update(seeds="x")), (FOLD, RESCORE)),
    "validation.json without a placement": (_facts(lambda f: f.pop("placement")), (REPORT,)),
    "validation.json applied a list": (_facts(lambda f: f.update(applied=[1])), (FOLD,)),
    "real records truncated": (_truncate("real/records.parquet"), (FOLD, REPORT)),
    "simulated records truncated": (_truncate("simulated/records.parquet"), (FOLD, REPORT)),
    "real records latency words": (
        _records("real", lambda r: r.assign(latency_s="x")),
        (FOLD, REPORT),
    ),
    "real records without return_s": (
        _records("real", lambda r: r.drop(columns="return_s")),
        (FOLD,),
    ),
    "real summary without switching_s": (
        _summary(lambda s: s.drop(columns="switching_s")),
        (FOLD,),
    ),
    "real summary empty": (_write("real/summary.csv", ""), (FOLD, RESCORE)),
    "comparison.csv binary": (_write("comparison.csv", b"\x00\x01\xff"), (REPORT,)),
    # the audit of the validation path (1 Dec, evening): files and fields added since
    "validation.json truncated": (_truncate("validation.json"), (FOLD, REPORT, SCORED)),
    "host_speed probes words": (
        _facts(lambda f: next(iter(f["host_speed"].values())).update(edge_s=["fast"])),
        (FOLD, REPORT, SCORED),
    ),
    "host_speed a derived speed a word": (
        _facts(lambda f: next(iter(f["host_speed"].values())).update(edge="fast")),
        (REPORT, SCORED),
    ),
    "host_speed a list": (_facts(lambda f: f.update(host_speed=[1])), (FOLD, REPORT, SCORED)),
    "fold_back a scale a word": (
        _facts(lambda f: f["fold_back"].update(edge_scale="x1.4")),
        (REPORT,),
    ),
    "fold_back per level not pairs": (
        _facts(lambda f: f["fold_back"].update(edge_scale_by_cpu=[[0, 1, 2]])),
        (REPORT,),
    ),
    "fold_back a list": (_facts(lambda f: f.update(fold_back=[1])), (REPORT,)),
    "real records without edge_s": (
        _records("real", lambda r: r.drop(columns="edge_s")),
        (FOLD, SCORED),
    ),
    "real records without point": (
        _records("real", lambda r: r.drop(columns="point")),
        (FOLD, REPORT, SCORED),
    ),
    "real records of one policy gone": (
        _records("real", lambda r: r[r["policy"] != "all-cloud"]),
        (FOLD, REPORT, SCORED),
    ),
    "real summary without p95_s": (_summary(lambda s: s.drop(columns="p95_s")), (SCORED,)),
    "real summary mean_s words": (_summary(lambda s: s.assign(mean_s="x")), (FOLD, SCORED)),
    "comparison.csv without mean_error_pct": (
        csv_edit("comparison.csv", lambda t: t.drop(columns="mean_error_pct")),
        (REPORT,),
    ),
    "comparison_probed.csv p95 words": (
        csv_edit("comparison_probed.csv", lambda t: t.assign(simulated_p95_s="x")),
        (REPORT,),
    ),
    "comparison_folded.csv truncated": (_truncate("comparison_folded.csv", 40), (REPORT,)),
    "validation.json incomplete": (
        _facts(lambda f: f.update(incomplete="interrupted (SIGINT) while the twin was simulated")),
        (FOLD, REPORT, SCORED),
    ),
}

READERS = {
    FOLD: lambda v: fold_back_source(v, "--fold-back"),
    REPORT: write_validation_report,
    RESCORE: twin_scenario,
    SCORED: lambda v: rescore_probed(v, draws=1),  # re-scoring at the probed host speed
}


@pytest.mark.parametrize(
    ("case", "reader"),
    [(c, r) for c, (_, readers) in DAMAGED.items() for r in readers],
)
def test_a_damaged_validation_folder_is_one_line(folder, tmp_path, case, reader):
    v = _copy(folder, tmp_path)
    culprit = DAMAGED[case][0](v)
    with pytest.raises(UserError) as exc:
        READERS[reader](v)
    message = str(exc.value)
    assert "\n" not in message and str(culprit) in message, message


def test_the_intact_folder_passes_every_reader(folder, tmp_path):
    v = _copy(folder, tmp_path)
    fold_back_source(v)
    write_validation_report(v)
    assert twin_scenario(v).duration_s == 4.0


def test_the_report_of_a_validation_folder_rebuilds_it_and_says_what_is_damaged(folder, tmp_path):
    """`adaptsim report` of a validation folder: its validation report, rebuilt (it read the
    folder as a run's and said summary.csv was missing); a damaged one: one line, exit 2."""
    from typer.testing import CliRunner

    from adaptsim.cli import app

    v = _copy(folder, tmp_path)
    (v / "report.md").unlink()
    done = CliRunner().invoke(app, ["report", str(v)])
    assert done.exit_code == 0, done.stderr
    assert "Kendall" in (v / "report.md").read_text()
    culprit = DAMAGED["host_speed a derived speed a word"][0](v)
    bad = CliRunner().invoke(app, ["report", str(v)])
    assert bad.exit_code == 2 and "Traceback" not in bad.stderr
    line = bad.stderr.strip()
    assert "\n" not in line and str(culprit) in line and "host_speed" in line, line


def test_the_report_says_the_run_was_interrupted(folder, tmp_path):
    v = _copy(folder, tmp_path)
    stopped = {"interrupted": True, "interrupted_by": "SIGTERM", "runs_finished": 2,
               "runs_planned": 5}  # fmt: skip
    json_edit("validation.json", lambda f: f.update(stopped))(v)
    write_validation_report(v)
    text = (v / "report.md").read_text()
    assert "stopped early (SIGTERM): 2 of 5 policy runs finished" in text


SCRIPTS = Path(__file__).parents[1] / "scripts"


def _script(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


@pytest.mark.slow
def test_the_scripts_say_a_damaged_folder_in_one_line(folder, tmp_path):
    """The three re-scoring scripts read folders unchecked (rescore_foldback.py had no
    error handling at all): a traceback after seconds of simulation. Now each checks
    every folder first and says what is wrong in one line, exit 2."""
    seed1 = Path(shutil.copytree(folder, tmp_path / "x-seed1"))
    seed2 = Path(shutil.copytree(folder, tmp_path / "x-seed2"))
    culprit = DAMAGED["real summary without p95_s"][0](seed2)
    runs = {
        "rescore_foldback": _script(SCRIPTS / "rescore_foldback.py", tmp_path, "x"),
        "foldback_terms": _script(SCRIPTS / "foldback_terms.py", seed1, seed2, "1"),
        "rescore_world": _script(SCRIPTS / "rescore_world.py", CALIBRATION, seed2),
    }
    for name, run in runs.items():
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2 and len(lines) == 1, (name, run.stderr)
        assert lines[0].startswith(f"{name}: error: ") and str(culprit) in lines[0], lines
    usage = _script(SCRIPTS / "rescore_foldback.py")
    assert usage.returncode == 2 and "usage: rescore_foldback.py" in usage.stderr


def test_an_incomplete_folder_is_finished_by_resume(folder, tmp_path):
    """A validation interrupted while its twin was simulated keeps its real runs in a
    folder marked incomplete (tests/test_validate_interrupt.py makes one for real);
    `validate --resume` compares them, running nothing again."""
    import json

    from typer.testing import CliRunner

    from adaptsim.cli import app

    v = _copy(folder, tmp_path)
    for p in list(v.iterdir()):  # what write_incomplete leaves: real/ and the facts
        if p.name not in ("real", "validation.json"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    said = "interrupted (SIGTERM) while the twin was simulated: ..."
    json_edit("validation.json", lambda f: f.update(incomplete=said, incomplete_by="SIGTERM"))(v)
    refused = CliRunner().invoke(app, ["validate", str(SCENARIO), "--out", str(v)])
    assert refused.exit_code == 2 and "give --resume to finish it" in refused.stderr
    done = CliRunner().invoke(app, ["validate", str(SCENARIO), "--out", str(v), "--resume"])
    assert done.exit_code == 0, done.stderr
    facts = json.loads((v / "validation.json").read_text())
    assert "incomplete" not in facts and "incomplete_by" not in facts
    before = pd.read_csv(folder / "comparison.csv").set_index("policy")
    after = pd.read_csv(v / "comparison.csv").set_index("policy")
    assert sorted(after.index) == sorted(before.index)  # the same real runs, compared
    cols = ["measured_mean_s", "measured_p95_s", "frames"]
    pd.testing.assert_frame_equal(after[cols], before.loc[after.index, cols])
    assert after["noise_draws"].eq(9).all()  # the folder's own (its facts: the default)
    for name in ("comparison_probed.csv", "comparison_folded.csv", "report.html"):
        assert (v / name).is_file(), name  # its probes and fold-back, as validate would
    again = CliRunner().invoke(app, ["validate", str(SCENARIO), "--out", str(v), "--resume"])
    assert again.exit_code == 2 and "not an incomplete validation" in again.stderr
