"""``validate --cloud HOST:PORT``: the edge here, the cloud a separate ``adaptsim serve``.

Two real machines are not available in CI; the cloud here is a real ``adaptsim
serve --role cloud`` process on 127.0.0.1 (port 0: the kernel picks a free one),
and the edge talks to it over real TCP with HMAC-authenticated frames, exactly
as it would to another machine. No namespaces are needed (the network is the
real one), so these tests need no root; stress-ng follows the edge CPU trace.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adaptsim.cli import app
from adaptsim.testbed.client import CloudClient
from wire_relays import Relay, Replayer

DATA = Path(__file__).parent / "data"
SCENARIO = DATA / "testbed_lenet.yaml"
CALIBRATION = Path(__file__).parents[1] / "src" / "adaptsim" / "data" / "calibration_own_2core.json"
SECRET = "s3cret-" + "x" * 25

pytestmark = pytest.mark.skipif(
    shutil.which("stress-ng") is None or len(os.sched_getaffinity(0)) < 2,
    reason="needs stress-ng (the scenario's edge CPU trace) and 2 cores",
)


def _children() -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


@pytest.fixture(scope="module")
def cloud():
    """A real ``adaptsim serve`` on 127.0.0.1, stopped (its whole group) after the tests."""
    env = {**os.environ, "ADAPTSIM_SECRET": SECRET, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from adaptsim.cli import main; main()", "serve", "--role",
         "cloud", "--listen", "127.0.0.1:0", "--models", "lenet", "--one-way-latency-s",
         "0.005"],  # the scenario's one-way latency, added on the way out by the server
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        address = None
        deadline = time.monotonic() + 300
        while address is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "serve died before it served"
            m = re.search(r"serving lenet on (\S+:\d+)", line)
            address = m[1] if m else None
        assert address, "serve did not start in 300 s"
        yield address
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_wrong_secret_is_refused_with_one_line(cloud, tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTSIM_SECRET", "another-secret-" + "y" * 20)
    out = tmp_path / "v"
    r = CliRunner().invoke(app, ["validate", str(SCENARIO), "--calibration", str(CALIBRATION),
                                 "--cloud", cloud, "--out", str(out)])  # fmt: skip
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "did not authenticate" in lines[0] and cloud in lines[0]
    assert "Traceback" not in r.output and not out.exists()
    # the same secret in a file works as far as the hello (a model it does not serve)
    key = tmp_path / "key"
    key.write_text(SECRET)
    r = CliRunner().invoke(app, ["validate", str(DATA / "testbed_lenet.yaml"), "--calibration",
                                 str(CALIBRATION), "--cloud", "127.0.0.1:1", "--secret-file",
                                 str(key), "--cloud-wait-s", "0"])  # fmt: skip
    assert r.exit_code == 2 and "cannot connect" in r.output


@pytest.mark.slow
def test_validate_against_a_separate_cloud_process(cloud, tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTSIM_SECRET", SECRET)
    before = _children()
    out = tmp_path / "remote"
    t0 = time.perf_counter()
    r = CliRunner().invoke(app, ["validate", str(SCENARIO), "--calibration", str(CALIBRATION),
                                 "--cloud", cloud, "--duration", "5", "--policies",
                                 "static-best,all-cloud", "--out", str(out)])  # fmt: skip
    took = time.perf_counter() - t0
    assert r.exit_code == 0, r.output
    real = pd.read_parquet(out / "real" / "records.parquet")
    assert set(real["policy"]) == {"static-best", "all-cloud"}
    assert len(real) == 2 * 50 and np.isfinite(real["latency_s"]).all()  # 5 s at 10 Hz
    # the cloud's stamps came onto the edge's clock: every stage is a real, ordered duration
    facts = json.loads((out / "validation.json").read_text())
    clock = facts["clock"]["all-cloud/1"]
    assert clock["cloud_latency_s"] == 0.005  # the server said what it adds
    slack = 1e-3 + max(c["clock_uncertainty_s"] for c in facts["clock"].values())
    stages = real[["edge_s", "uplink_s", "cloud_s", "cloud_wait_s", "return_s"]]
    assert (stages > -slack).all().all(), stages.min()
    parts = real[["edge_wait_s", "edge_s", "uplink_wait_s", "uplink_s", "cloud_wait_s",
                  "cloud_s", "return_s"]].sum(axis=1) + 2 * 0.005  # fmt: skip
    np.testing.assert_allclose(parts, real["latency_s"], atol=1e-6)  # the stages add up
    cloud_side = real[real["policy"] == "all-cloud"]
    assert (cloud_side["payload_bytes"] == 28 * 28 * 4).all()  # LeNet's raw input sent
    assert facts["cloud"] == cloud and "remote" in str(facts["placement"]["cloud_cpus"])
    # no tc here: no bandwidth applied (its steps add no rows); the CPU stress still
    # followed its trace
    steps = facts["applied"]["all-cloud/1"]
    assert all(s[1] is None for s in steps) and [s[2] for s in steps] == [0, 50]
    assert (out / "report.html").is_file() and "not emulated" in (out / "report.md").read_text()
    assert _children() <= before  # the edge process is gone
    print(f"remote validation took {took:.1f} s")


def test_a_recorded_session_replayed_to_validate_is_refused_with_one_line(
    cloud, tmp_path, monkeypatch
):
    """A man in the middle between an edge and the real ``adaptsim serve`` process
    records a session (the hellos, the clock sync), then plays the server's part to a
    later ``validate --cloud`` with the recording: the edge's own nonce is in none of
    its frames, so ``validate`` refuses it in one line, exit 2, before compiling or
    writing anything."""
    monkeypatch.setenv("ADAPTSIM_SECRET", SECRET)
    host, port = cloud.rsplit(":", 1)
    tap = Relay((host, int(port)))
    client = CloudClient(*tap.address, SECRET.encode())
    client.sync_clock(probes=2)
    assert client.models == ["lenet"]
    client.close()
    tap.close()
    replayer = Replayer(tap.down[0])
    out = tmp_path / "v"
    r = CliRunner().invoke(app, ["validate", str(SCENARIO), "--calibration", str(CALIBRATION),
                                 "--cloud", f"127.0.0.1:{replayer.address[1]}", "--out",
                                 str(out), "--cloud-wait-s", "0"])  # fmt: skip
    replayer.close()
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    said = (f"--cloud 127.0.0.1:{replayer.address[1]}: refused: a reply not bound to this "
            "edge's nonce (a recorded session replayed?)")  # fmt: skip
    assert lines[0].endswith(said), lines[0]
    assert "Traceback" not in r.output and not out.exists()
    assert len(replayer.heard) == 1  # the edge's hello, then it hung up
