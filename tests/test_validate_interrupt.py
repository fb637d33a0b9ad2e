"""Ctrl-C and kill during `adaptsim validate`: what is kept, and nothing left behind (as root).

The command runs in its own process (Ctrl-C's default handler restored: a background
job hands its children SIGINT ignored), on the 9 s LeNet scenario at twice its speed
with two policies; a signal is sent when its progress line says it reached a moment:
- compiling (before any policy run finished): nothing written, one line saying so;
- the second policy run: the first run's records compared and written, the folder and
  its report saying it was interrupted and how many runs finished;
- the twin (1000 noise draws make it long enough to hit): the real runs kept in a folder
  marked incomplete, which every reader refuses in one line and a second validate will
  not overwrite (`validate --resume` compares it).
Each time: exit 128 + the signal, no traceback, and no namespace, child process,
stress-ng, scratch or staging folder left. Before the audit of 1 Dec (evening), SIGTERM
in the second run and Ctrl-C in the twin lost every finished run. And a child that
fails: its one line names its log, which is kept for it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from adaptsim.testbed import real_run_available

DATA = Path(__file__).parent / "data"
SCENARIO = DATA / "testbed_lenet.yaml"
CALIBRATION = Path(__file__).parents[1] / "src/adaptsim/data/calibration_own_2core.json"
POLICIES = "all-edge,all-cloud"

pytestmark = [
    pytest.mark.needs_root,
    pytest.mark.slow,
    pytest.mark.skipif(
        real_run_available() is not None, reason=f"a real run {real_run_available()}"
    ),
]

_CLI = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv[0] = 'adaptsim'; from adaptsim.cli import main; main()")  # fmt: skip


def _cli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _CLI, *map(str, args)],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _validate(out: Path, *extra: str) -> subprocess.Popen:
    return _cli("validate", SCENARIO, "--calibration", CALIBRATION, "--policies", POLICIES,
                "--time-scale", "2", "--probe-frames", "1", "--out", out, *extra,
                cwd=out.parent)  # fmt: skip


def _signal_at(proc: subprocess.Popen, moment: str, sig: int, after_s: float = 0.0) -> str:
    """Send ``sig`` once a progress line holds ``moment`` (and ``after_s`` later); the
    whole stderr once the process ended."""
    lines = []
    deadline = time.monotonic() + 300
    for line in proc.stderr:
        lines.append(line)
        if moment in line:
            time.sleep(after_s)
            proc.send_signal(sig)
            break
        assert time.monotonic() < deadline, "".join(lines)
    else:
        raise AssertionError(f"never reached {moment!r}: {''.join(lines)}")
    rest = proc.communicate(timeout=300)[1]
    return "".join(lines) + rest


def _left_behind(pid: int, parent: Path) -> list[str]:
    """Whatever the validation's process ``pid`` made and should have removed."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left = [f"netns {n.split()[0]}" for n in out.splitlines() if n.startswith(f"as{pid}-")]
    for pattern in ("adaptsim.testbed.edge", "adaptsim.testbed.server", "stress-ng"):
        kids = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
        for k in kids.stdout.split():
            with open(f"/proc/{k}/status") as fh:  # children of the killed validation only
                ppid = next(x for x in fh if x.startswith("PPid:")).split()[1]
            if ppid == str(pid):
                left.append(f"{pattern} {k}")
    left += [str(p) for p in Path(tempfile.gettempdir()).glob(f"adaptsim-testbed-{pid}-*")]
    left += [str(p) for p in parent.iterdir() if p.name.startswith(".")]  # staging, .old
    left += [str(p) for p in Path("/sys/fs/cgroup/cpu").glob(f"adaptsim-{pid}")]
    return left


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    return stderr.strip().splitlines()[-1]


def test_kill_while_compiling_writes_nothing_and_says_so(tmp_path):
    out = tmp_path / "v"
    proc = _validate(out)
    stderr = _signal_at(proc, "building and compiling", signal.SIGTERM, after_s=2.0)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "interrupted (SIGTERM) before any policy run finished; nothing written" in _one_line(
        stderr
    )
    time.sleep(1.0)  # the children's death signal
    assert not out.exists()
    assert _left_behind(proc.pid, tmp_path) == []


def test_kill_in_the_second_run_keeps_the_first(tmp_path):
    out = tmp_path / "v"
    proc = _validate(out)
    stderr = _signal_at(proc, "[1/2] real", signal.SIGTERM, after_s=1.0)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "1 of 2 policy runs that finished were compared" in _one_line(stderr)
    facts = json.loads((out / "validation.json").read_text())
    assert facts["interrupted"] is True and facts["interrupted_by"] == "SIGTERM"
    assert (facts["runs_finished"], facts["runs_planned"]) == (1, 2)
    said = next(x for x in stderr.splitlines() if "[1/2] real" in x)  # "[1/2] real P seed 1"
    first = said.split("[1/2] real ")[1].split(" seed")[0]
    assert pd.read_csv(out / "comparison.csv")["policy"].tolist() == [first]
    real = pd.read_parquet(out / "real" / "records.parquet")
    assert set(real["policy"]) == {first} and len(real) == facts["frames_per_run"]
    assert "1 of 2 policy runs finished" in (out / "report.md").read_text()
    time.sleep(1.0)
    assert _left_behind(proc.pid, tmp_path) == []


def test_ctrl_c_in_the_twin_keeps_the_real_runs_in_a_folder_marked_incomplete(tmp_path):
    out = tmp_path / "v"
    proc = _validate(out, "--noise-draws", "1000")
    stderr = _signal_at(proc, "simulating the twin", signal.SIGINT, after_s=0.5)
    # 1000 draws take minutes: a 0 here is a Ctrl-C swallowed (each draw's run_scenario
    # kept what it had and the next draw started: a partial twin compared as whole)
    assert proc.returncode == 130, stderr
    line = _one_line(stderr)
    assert "interrupted (SIGINT) while the twin was simulated" in line, line
    assert "the 2 real policy run(s) that finished are in" in line, line
    facts = json.loads((out / "validation.json").read_text())
    assert facts["incomplete"] and facts["runs_finished"] == 2
    real = pd.read_parquet(out / "real" / "records.parquet")
    assert sorted(set(real["policy"])) == sorted(POLICIES.split(","))
    assert not (out / "comparison.csv").exists()
    assert "incomplete" in (out / "report.md").read_text()
    assert _left_behind(proc.pid, tmp_path) == []
    # the readers refuse it in one line naming the file; the real runs report as a run
    report = _cli("report", out, cwd=tmp_path)
    assert report.wait(timeout=120) == 2
    said = _one_line(report.stderr.read())
    assert str(out / "validation.json") in said and "incomplete" in said, said
    runs = _cli("report", out / "real", cwd=tmp_path)
    assert runs.wait(timeout=120) == 0, runs.stderr.read()
    # a second validate into it is refused before anything runs: its real runs stay
    again = _validate(out)
    assert again.wait(timeout=120) == 2
    said = _one_line(again.stderr.read())
    assert "holds an incomplete validation" in said and "another --out" in said, said
    assert json.loads((out / "validation.json").read_text()) == facts
    assert os.listdir(tmp_path) == ["v"]
    # (--resume then compares them with the folder's own 1000 draws: minutes here;
    # tests/test_robust_validation_folders.py resumes a folder of the same shape)


def test_a_failed_child_keeps_the_log_its_one_line_names(tmp_path):
    """A calibration of another build of the model (its points not the model's): the edge
    fails after compiling and the one line names its log, which validate then deleted
    with its scratch folder. Now the log stays (nothing else does) until the next run."""
    cal = json.loads(CALIBRATION.read_text())
    cal["models"] = {"lenet": cal["models"]["lenet"]}
    points = cal["models"]["lenet"]["points"]
    points[-2]["ordinal"], points[-1]["ordinal"] = 29, 30  # no such layers in LeNet
    bad = tmp_path / "other-build.json"
    bad.write_text(json.dumps(cal))
    out = tmp_path / "v"
    proc = _cli("validate", SCENARIO, "--calibration", bad, "--policies", "all-cloud",
                "--duration", "2", "--probe-frames", "1", "--out", out, cwd=tmp_path)  # fmt: skip
    stderr = proc.communicate(timeout=300)[1]
    assert proc.returncode == 2, stderr
    line = _one_line(stderr)
    assert "the edge process failed" in line and "[29, 30] are not the model's" in line, line
    log = Path(line.split("(log: ")[1].rstrip(")"))
    assert "are not the model's" in log.read_text()
    assert not out.exists()
    assert _left_behind(proc.pid, tmp_path) == [str(log.parent)]  # the log's folder alone
    from adaptsim.testbed.run import scratch_dir

    shutil.rmtree(scratch_dir())  # the next run's scratch folder: the dead run's goes first
    assert not log.parent.exists()
