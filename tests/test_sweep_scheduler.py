"""``adaptsim sweep --scheduler``: a Dask scheduler and worker started apart, as on a cluster.

Both run as subprocesses on 127.0.0.1 on a free port (chosen by the kernel), the
way ``dask scheduler`` and ``dask worker`` run on a real multi-machine cluster;
the sweep connects to it like to any remote cluster.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adaptsim.cli import app
from adaptsim.sweep import load_plan, read_runs

SMALL = Path(__file__).parent / "data" / "sweep" / "small.yaml"
runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the scheduler exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"no scheduler on port {port} after {timeout_s} s")


@pytest.fixture
def scheduler():
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-dashboard",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait_for_port(port, procs[0])
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_worker",
                    address,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.slow
def test_sweep_on_a_separately_started_scheduler(scheduler, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(
        app, ["sweep", str(SMALL), "--scheduler", scheduler, "--out", str(out), "--no-report"]
    )
    assert res.exit_code == 0, res.output
    plan = load_plan(SMALL)
    runs = read_runs(out)
    assert sorted(runs["run_id"]) == sorted(r.run_id for r in plan.runs)
    assert runs["error"].notna().sum() == 4  # the planted failures, recorded
    assert (out / "sweep_summary.csv").is_file() and not (out / "report.html").exists()
    # run again: everything is there, nothing is sent to the cluster
    again = runner.invoke(app, ["sweep", str(SMALL), "--scheduler", scheduler, "--out", str(out)])
    assert (
        again.exit_code == 0
        and "0 runs done" in again.output
        and "20 already there" in again.output
    )


def test_unreachable_scheduler_is_one_line_exit_2(tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"  # nobody listens there
    res = runner.invoke(
        app, ["sweep", str(SMALL), "--scheduler", address, "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and address in lines[0] and "Traceback" not in res.output
