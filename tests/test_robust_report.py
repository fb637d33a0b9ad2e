"""`adaptsim report` on bad or unusual results folders: one line and exit 2, or a report.

The report itself belongs to the report's owner; these cases pin down what a
user must get.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from adaptsim.cli import app

runner = CliRunner()

SCENARIO = {
    "name": "rep",
    "model": "alexnet",
    "duration_s": 20.0,
    "arrivals": {"rate_hz": 1.0},
    "deadline_s": 1.0,
    "traces": {"bandwidth_mbps": {"constant": 20.0}},
    "policies": [{"policy": "all-edge"}, {"policy": "all-cloud"}],
}


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rep")
    (root / "s.yaml").write_text(yaml.safe_dump(SCENARIO))
    r = runner.invoke(app, ["run", str(root / "s.yaml"), "--out", str(root / "res")])
    assert r.exit_code == 0, r.stderr
    return root / "res"


def _copy(good: Path, tmp_path: Path) -> Path:
    res = tmp_path / "res"
    shutil.copytree(good, res)
    return res


CASES = {
    "missing folder": lambda res: shutil.rmtree(res),
    "a file, not a folder": lambda res: (shutil.rmtree(res), res.write_text("x")),
    "empty folder": lambda res: [p.unlink() for p in res.iterdir()],
    "summary truncated": lambda res: (res / "summary.csv").write_text(""),
    "records not parquet": lambda res: (res / "records.parquet").write_text("hello"),
    "records truncated": lambda res: (res / "records.parquet").write_bytes(
        (res / "records.parquet").read_bytes()[:100]
    ),
    "run.json not json": lambda res: (res / "run.json").write_text("{"),
    "run.json foreign": lambda res: (res / "run.json").write_text('{"hello": 1}'),
    "run.json binary": lambda res: (res / "run.json").write_bytes(b"\x00\xff\x00"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_report_on_a_bad_folder_is_one_line(good, tmp_path, case):
    res = _copy(good, tmp_path)
    CASES[case](res)
    r = runner.invoke(app, ["report", str(res)])
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert str(res) in lines[0]


def test_report_draws_a_run_whose_link_died(tmp_path):
    doc = dict(SCENARIO, traces={"bandwidth_mbps": {"steps": [[0, 20], [5, 0]], "end": "hold"}})
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    r = runner.invoke(
        app, ["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "res"), "--report"]
    )
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "res/report.html").is_file()
