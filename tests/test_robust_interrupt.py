"""Ctrl-C at random moments of `adaptsim run`: the results folder is never a mix.

A real SIGINT is sent to this very process (by a timer thread, as a terminal's
Ctrl-C would) at a random moment of a real `run` through the CLI: while loading,
simulating, writing or swapping the folder in. Afterwards the results folder must
be either the previous one, byte for byte, or a new one that is complete and
consistent (its records, summary and run.json from the same run, each policy's
throughput over the seeds it ran), with no staging folder left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from adaptsim.cli import app

runner = CliRunner()
TRIES = 24

SCENARIO = {
    "name": "ctrlc",
    "model": "alexnet",
    "duration_s": 60.0,
    "arrivals": {"kind": "poisson", "rate_hz": 4.0},
    "deadline_s": 1.0,
    "traces": {"bandwidth_mbps": {"steps": [[0, 20], [30, 2], [60, 40]], "end": "loop"}},
    "observe": {"period_s": 1.0, "noise": 0.1},
    "policies": [
        {"policy": "static-best"},
        {"policy": "reactive", "params": {"period_s": 1.0}},
        {"policy": "all-edge"},
    ],
    "seeds": [1, 2, 3],
}


def _files(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def _assert_complete(folder: Path, seeds: list[int]) -> None:
    """records, summary and run.json agree with each other and with the asked seeds."""
    meta = json.loads((folder / "run.json").read_text())
    records = pd.read_parquet(folder / "records.parquet")
    summary = pd.read_csv(folder / "summary.csv")
    assert meta["seeds"] == seeds
    assert set(records["seed"]) <= set(seeds)
    ran = records.groupby("policy")["seed"].nunique()
    assert set(summary["policy"]) == set(ran.index)
    for row in summary.itertuples(index=False):
        r = records[records["policy"] == row.policy]
        assert row.requests == len(r) == row.finished + row.unfinished
        assert row.seeds == ran[row.policy]
        in_time = np.isfinite(r["done_s"]) & (r["done_s"] <= meta["duration_s"])
        assert row.throughput_rps == pytest.approx(in_time.sum() / (meta["duration_s"] * row.seeds))
    if not meta["interrupted"]:
        assert len(summary) == len(SCENARIO["policies"])
        assert (summary["seeds"] == len(seeds)).all()


def _run_interrupted(args: list[str], delay_s: float):
    """Invoke the CLI; a timer sends this process SIGINT after delay_s (if still running)."""
    lock, state = threading.Lock(), {"running": True}

    def fire():
        with lock:
            if state["running"]:
                os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(delay_s, fire)
    result = None
    try:
        timer.start()
        result = runner.invoke(app, args)
        with lock:
            state["running"] = False
        time.sleep(0.01)  # a signal sent just before we stopped it lands here
    except KeyboardInterrupt:
        pass  # arrived after the command returned: the command was not interrupted
    finally:
        timer.cancel()
    return result


# A SIGINT can land inside a weakref callback, which Python reports as "ignored": harmless.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_ctrl_c_at_random_moments_leaves_old_or_new_complete(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # A shell starting a job in the background without job control (`cmd &` in a script)
    # hands it SIGINT ignored, and Python then keeps it ignored: restore Ctrl-C's default
    # for this test, which is about what the CLI does with it, not what the shell passed.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _ctrl_c_at_random_moments(tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)


def _ctrl_c_at_random_moments(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SCENARIO))
    out = tmp_path / "res"
    runner.invoke(app, ["run", "s.yaml", "--out", str(out), "--seed", "1"])  # warm up imports
    t0 = time.perf_counter()
    first = runner.invoke(app, ["run", "s.yaml", "--out", str(out), "--seed", "1", "--seed", "2"])
    full_s = time.perf_counter() - t0
    assert first.exit_code == 0, first.stderr
    _assert_complete(out, [1, 2])
    previous = _files(out)
    rng = random.Random(15)
    outcomes = {"old": 0, "new": 0, "new-interrupted": 0}
    # the first try is interrupted at once, the last not at all; the others at random
    delays = [0.0, *(rng.uniform(0.0, 1.5 * full_s) for _ in range(TRIES - 2)), 1e6]
    for i, delay_s in enumerate(delays):
        seeds = [10 + i, 11 + i]
        args = ["run", "s.yaml", "--out", str(out), "--seed", str(seeds[0])]
        args += ["--seed", str(seeds[1])]
        result = _run_interrupted(args, delay_s)
        if result is not None:
            assert "Traceback" not in result.stderr
            assert result.exit_code in (0, 1, 130), (result.exit_code, result.stderr)
        assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".res")]
        now = _files(out)
        if now == previous:
            outcomes["old"] += 1
            continue
        _assert_complete(out, seeds)
        interrupted = json.loads((out / "run.json").read_text())["interrupted"]
        outcomes["new-interrupted" if interrupted else "new"] += 1
        previous = now
    # the random moments hit both sides: some runs kept the old folder, some replaced it
    assert outcomes["old"] >= 1 and outcomes["new"] + outcomes["new-interrupted"] >= 1, outcomes


@pytest.mark.slow
def test_real_ctrl_c_of_the_command_keeps_finished_runs(tmp_path):
    """The command in its own process, SIGINT mid-simulation: the finished runs are written."""
    doc = dict(SCENARIO, duration_s=3000.0, seeds=[1, 2, 3, 4, 5, 6])
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    out = tmp_path / "res"
    code = "import sys; from adaptsim.cli import main; sys.argv[0] = 'adaptsim'; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "run", "s.yaml", "--out", str(out)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # the staging folder appears once everything is checked, just before simulating
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if any(p.name.startswith(".res.staging") for p in tmp_path.iterdir()):
            time.sleep(1.0)  # let a few runs finish
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.05)
    _, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr
    if proc.returncode == 0:  # the machine was fast enough to finish first
        _assert_complete(out, doc["seeds"])
        return
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("adaptsim: interrupted")
    if out.exists():
        _assert_complete(out, doc["seeds"])
        assert json.loads((out / "run.json").read_text())["interrupted"] is True
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".res")]


def test_rerun_without_report_leaves_no_stale_report(tmp_path):
    doc = dict(SCENARIO, duration_s=30.0, policies=SCENARIO["policies"][:2])
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    out = tmp_path / "res"
    r = runner.invoke(app, ["run", str(tmp_path / "s.yaml"), "--out", str(out), "--report"])
    assert r.exit_code == 0, r.stderr
    assert (out / "report.html").is_file()
    r = runner.invoke(app, ["run", str(tmp_path / "s.yaml"), "--out", str(out), "--seed", "9"])
    assert r.exit_code == 0, r.stderr
    assert not (out / "report.html").exists() and not (out / "report.md").exists()
    assert json.loads((out / "run.json").read_text())["seeds"] == [9]


def test_folders_left_by_a_killed_run_are_cleaned_up(tmp_path):
    """kill -9 leaves a staging folder behind; the next run removes it (not a live one's)."""
    doc = dict(SCENARIO, duration_s=10.0)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    orphan = tmp_path / f".res.staging-{dead.pid}"
    alive = tmp_path / ".res.staging-1"  # pid 1 always runs
    for folder in (orphan, alive):
        folder.mkdir()
        (folder / "records.parquet").write_text("half")
    r = runner.invoke(app, ["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "res")])
    assert r.exit_code == 0, r.stderr
    assert not orphan.exists() and alive.exists()
    _assert_complete(tmp_path / "res", [1, 2, 3])
