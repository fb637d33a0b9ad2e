"""Results folders the report meets: runs where no frame finished, folders damaged by hand.

Three classes of failure, each found by an adversarial audit and pinned here:

- a real run whose frames all went undelivered (a link that dies for good, or
  admission that drops every frame) made `run --report` crash while drawing its
  PNG axes, and the staged results of the simulation were lost with it;
- a results folder whose files are there but hold what `adaptsim run` never
  writes (a column of the wrong type, a negative time, a duration that is not a
  number, JSON nested too deeply) made `report` crash with a traceback, after
  writing some of its files;
- a report file that cannot be written (a folder in its place) left the images
  of the new report beside the old page: the report's files are now written
  together, all old or all new.

Everything runs through the real CLI on real runs of a small scenario.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from adaptsim.atomic import write_together
from adaptsim.cli import app
from adaptsim.errors import UserError
from damage import Damage, csv_edit, json_edit, parquet_edit, replace_with

runner = CliRunner()

SCENARIO = {
    "name": "res",
    "model": "alexnet",
    "duration_s": 10.0,
    "arrivals": {"rate_hz": 2.0},
    "deadline_s": 1.0,
    "traces": {"bandwidth_mbps": {"constant": 20.0}},
    "policies": [
        {"policy": "all-edge"},
        {"policy": "all-cloud"},
        {"policy": "static-best"},
        {"policy": "oracle"},
        {"policy": "reactive"},
    ],
    "seeds": [1, 2],
}

REPORT_FILES = ("report.html", "report.md", "latency_cdf.png", "timeline.png")


def _run(tmp_path: Path, doc: dict, *extra: str):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    out = tmp_path / "res"
    return runner.invoke(app, ["run", str(tmp_path / "s.yaml"), "--out", str(out), *extra]), out


NOTHING_FINISHES = {
    # the uplink dies 10 ms in and stays dead: no frame sent raw to the cloud finishes
    "link dies for good": {
        "traces": {"bandwidth_mbps": {"steps": [[0, 5], [0.01, 0]], "end": "hold"}},
        "policies": [{"policy": "all-cloud"}],
    },
    # a deadline no stage can meet: admission drops every frame of every policy
    "admission drops every frame": {"deadline_s": 0.001, "admission": {"drop": "stale"}},
}


@pytest.mark.parametrize("case", list(NOTHING_FINISHES))
def test_run_report_draws_a_run_where_no_frame_finished(tmp_path, case):
    r, out = _run(tmp_path, {**SCENARIO, **NOTHING_FINISHES[case]}, "--report")
    assert r.exit_code == 0, (r.stderr, r.exception)
    records = pd.read_parquet(out / "records.parquet")
    assert not np.isfinite(records["latency_s"]).any()  # the case is what it says
    for name in REPORT_FILES:
        assert (out / name).stat().st_size > 0, name
    assert "No verdict" in (out / "report.md").read_text()  # none on no latency


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("good")
    r, out = _run(root, SCENARIO)
    assert r.exit_code == 0, r.stderr
    return out


def _meta(edit: Callable[[dict], None]) -> Damage:
    return json_edit("run.json", edit)


def _records(edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Damage:
    return parquet_edit("records.parquet", edit)


def _column(name: str, value) -> Damage:
    return _records(lambda r: r.assign(**{name: value}))


def _summary(edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Damage:
    return csv_edit("summary.csv", edit)


_nested = replace_with("run.json", "[" * 100_000 + "]" * 100_000)


DAMAGED: dict[str, Damage] = {
    "run.json seeds a word": _meta(lambda m: m.update(seeds="abc")),
    "run.json seeds missing a value": _meta(lambda m: m.update(seeds=None)),
    "run.json duration a word": _meta(lambda m: m.update(duration_s="ten")),
    "run.json duration NaN": _meta(lambda m: m.update(duration_s=float("nan"))),
    "run.json deadline negative": _meta(lambda m: m.update(deadline_s=-1)),
    "run.json scenario a number": _meta(lambda m: m.update(scenario=5)),
    "run.json nested too deeply": _nested,
    "records policy numbers": _column("policy", 3),
    "records latency words": _column("latency_s", "x"),
    "records latency negative": _column("latency_s", -1.0),
    "records seed fractional": _column("seed", 1.5),
    "records seed words": _column("seed", "a"),
    "records point words": _column("point", "a"),
    "records deadline_met words": _column("deadline_met", "yes"),
    "records arrival missing": _column("arrival_s", np.nan),
    "records a stage negative": _column("uplink_s", -0.5),
    "summary mean a word": _summary(lambda s: s.assign(mean_s="x")),
}


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("case", list(DAMAGED))
def test_report_on_a_damaged_folder_is_one_line_and_writes_nothing(good, tmp_path, case):
    res = tmp_path / "res"
    shutil.copytree(good, res)
    culprit = DAMAGED[case](res)
    before = _snapshot(res)
    r = runner.invoke(app, ["report", str(res)])
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(culprit) in lines[0]
    assert _snapshot(res) == before  # no image of a report that failed


@pytest.mark.parametrize("blocked", ["report.html", "report.md", "timeline.png"])
def test_a_report_file_that_cannot_be_written_leaves_the_old_report_whole(good, tmp_path, blocked):
    res = tmp_path / "res"
    shutil.copytree(good, res)
    assert runner.invoke(app, ["report", str(res)]).exit_code == 0
    _records(lambda r: r[r["seed"] == 1])(res)  # the next report differs from this one
    (res / blocked).unlink()
    (res / blocked).mkdir()  # a folder where the report writes a file
    before = _snapshot(res)
    r = runner.invoke(app, ["report", str(res)])
    assert r.exit_code == 2, (r.stderr, r.exception)
    assert blocked in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert _snapshot(res) == before
    assert not [p for p in res.iterdir() if p.name.endswith(".tmp")]


def test_files_written_together_stay_old_when_one_write_fails(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")
    b.write_text("old b")

    def fails(p: Path):
        raise OSError(28, os.strerror(28), str(p))  # a full disk on the second file

    with pytest.raises(UserError, match="No space left"):
        write_together({a: lambda p: p.write_text("new a"), b: fails})
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    write_together({a: lambda p: p.write_text("new a"), b: lambda p: p.write_text("new b")})
    assert (a.read_text(), b.read_text()) == ("new a", "new b")
