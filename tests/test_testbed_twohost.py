"""``validate --cloud`` across two hosts, emulated as the profiler emulates them.

No second real machine is reachable from CI, so the closest honest test: two
network namespaces joined by a veth pair with their own addresses
(:class:`~adaptsim.emulation.NetnsPair`, the package the profiler and the local
testbed use), shaped by tc tbf on the edge's side (the link the two "machines"
share). The cloud is a real ``adaptsim serve --role cloud --listen 10.213.0.2:PORT``
inside the cloud namespace, pinned to core 1; ``adaptsim validate ... --cloud
10.213.0.2:PORT`` runs inside the edge namespace and reaches it only over the
veth (the host's own namespace has no route to 10.213.0.0/30). A third namespace
on another network (:meth:`~adaptsim.emulation.NetnsPair.add_peer`) stands for a
third machine.

The cloud's monotonic clock is shifted by ``SHIFT_S`` in its own process (its
``time.monotonic`` replaced before anything runs): namespaces share the host's
clock, a second machine's clock has its own origin (its boot), and the shift
makes any stamp compared across the two hosts without the offset show.

What is still not tested here: physically separate machines (real clock drift,
a real network's latency, loss and path MTU).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adaptsim.emulation import CLOUD_IP, CLOUD_PEER_IP, NetnsPair, die_with_parent
from adaptsim.simulator.engine import RECORD_COLUMNS

DATA = Path(__file__).parent / "data"
SCENARIO = DATA / "testbed_lenet.yaml"
CALIBRATION = Path(__file__).parents[1] / "src" / "adaptsim" / "data" / "calibration_own_2core.json"
SECRET = "two-host-secret-" + "z" * 20
SHIFT_S = 12_345.678  # the cloud's clock minus the edge's
RATE_MBPS = 2.0  # the shared link, edge to cloud
PORT, LATE_PORT = 50100, 50101  # in the cloud namespace, this process's own: no collision
OWL_S = 0.005  # the scenario's one-way latency, added by the server on the way out

pytestmark = [
    pytest.mark.needs_root,
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("stress-ng") is None or len(os.sched_getaffinity(0)) < 2,
        reason="needs stress-ng (the scenario's edge CPU trace) and 2 cores",
    ),
]

_SHIFTED = (f"import time; _m = time.monotonic; time.monotonic = lambda: _m() + {SHIFT_S!r}; "
            "from adaptsim.cli import main; main()")  # fmt: skip
_CLI = "from adaptsim.cli import main; main()"


class _Lines:
    """A child's stderr, read by a thread: every line kept, waited for by pattern."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self._proc = proc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match:
        end, exited = time.monotonic() + timeout_s, None
        while time.monotonic() < end:
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            if self._proc.poll() is not None:  # one more look once its last lines are read
                exited = exited or time.monotonic()
                assert time.monotonic() - exited < 1.0, f"it exited: {self.lines[-5:]}"
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} in {timeout_s} s: {self.lines[-5:]}")


def _serve(pair: NetnsPair, port: int, secret_file: Path) -> tuple[subprocess.Popen, _Lines]:
    """``adaptsim serve`` in the cloud namespace on CLOUD_IP:port, on core 1, clock shifted."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("ADAPTSIM_SECRET", None)  # the cloud reads its secret from a file
    proc = subprocess.Popen(
        [*pair.exec_in(pair.cloud), sys.executable, "-c", _SHIFTED, "serve", "--role", "cloud",
         "--listen", f"{CLOUD_IP}:{port}", "--models", "lenet", "--one-way-latency-s",
         str(OWL_S), "--secret-file", str(secret_file), "--threads", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: die_with_parent([1]),
    )  # fmt: skip
    return proc, _Lines(proc)


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _validate(pair: NetnsPair, *args: str, secret: str = SECRET) -> tuple[list[str], dict]:
    """``adaptsim validate`` in the edge namespace, the secret in its environment."""
    env = {**os.environ, "ADAPTSIM_SECRET": secret, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return [*pair.exec_in(pair.edge), sys.executable, "-c", _CLI, "validate", str(SCENARIO),
            "--calibration", str(CALIBRATION), *args], env  # fmt: skip


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    """Edge, cloud and a third namespace; the cloud's ``adaptsim serve`` up on CLOUD_IP:PORT."""
    secret_file = tmp_path_factory.mktemp("twohost") / "secret"
    secret_file.write_text(SECRET + "\n")
    with NetnsPair(RATE_MBPS, burst_s=0.002, min_burst_bytes=1514) as pair:
        pair.add_peer()
        proc, lines = _serve(pair, PORT, secret_file)
        try:
            lines.wait_for(rf"serving lenet on {re.escape(CLOUD_IP)}:{PORT}", 300)
            yield pair, secret_file
        finally:
            _stop(proc)


def test_validate_across_two_hosts_a_late_server_and_one_that_dies(hosts, tmp_path):
    """One real run end to end, between a server that starts late and one that dies.

    ``validate`` starts before ``serve`` (it waits), all-cloud runs whole, and the
    cloud is killed (SIGKILL) in the middle of the next run (reactive).
    """
    pair, secret_file = hosts
    out = tmp_path / "v"
    argv, env = _validate(pair, "--cloud", f"{CLOUD_IP}:{LATE_PORT}", "--cloud-wait-s", "240",
                          "--duration", "4", "--policies", "all-cloud,reactive",
                          "--noise-draws", "1", "--out", str(out))  # fmt: skip
    t0 = time.perf_counter()
    edge = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: die_with_parent())  # fmt: skip
    cloud = None
    try:
        edge_lines = _Lines(edge)
        edge_lines.wait_for("waiting for the cloud", 120)  # started before the server
        cloud, cloud_lines = _serve(pair, LATE_PORT, secret_file)
        cloud_lines.wait_for("serving lenet", 300)
        # the records as they come (the edge's scratch folder, named by its pid): the
        # first run's 40 frames, then 10 of the second
        scratch, end, finished = Path(tempfile.gettempdir()), time.monotonic() + 300, 0
        while finished < 40 + 10 and time.monotonic() < end and edge.poll() is None:
            files = list(scratch.glob(f"adaptsim-testbed-{edge.pid}-*/records-*.jsonl"))
            finished = sum(len(f.read_text().splitlines()) for f in files)
            time.sleep(0.1)
        assert finished >= 50, edge_lines.lines[-5:]
        _stop(cloud, signal.SIGKILL)  # the cloud machine dies mid-run
        edge.wait(timeout=120)
    finally:
        if cloud is not None:
            _stop(cloud, signal.SIGKILL)
        _stop(edge)
    took = time.perf_counter() - t0
    # the edge ends with one clear line, and what finished is compared and written
    last = edge_lines.lines[-1]
    assert edge.returncode == 1, edge_lines.lines[-5:]
    assert "the cloud went away" in last and "reactive" in last and "written" in last, last
    assert "Traceback" not in "\n".join(edge_lines.lines)
    facts = json.loads((out / "validation.json").read_text())
    assert "went away" in facts["cloud_lost"] and facts["interrupted"]
    md = (out / "report.md").read_text()
    assert (out / "report.html").is_file() and "not emulated" in md
    assert "the cloud's clock is not the edge's" in md  # the report says how good the stages are
    assert facts["cloud"] == f"{CLOUD_IP}:{LATE_PORT}"
    real = pd.read_parquet(out / "real" / "records.parquet")
    assert set(RECORD_COLUMNS) <= set(real.columns)  # the simulator's schema
    whole, cut = real[real["policy"] == "all-cloud"], real[real["policy"] == "reactive"]
    assert len(whole) == 40 and np.isfinite(whole["latency_s"]).all()  # 4 s at 10 Hz
    # every frame of the cut run accounted for: finished, or kept as unfinished
    assert len(cut) == 40 and 10 <= np.isfinite(cut["latency_s"]).sum() < 40
    # the other host's clock: the offset found, within what the edge says it knows
    clock = facts["clock"]["all-cloud/1"]
    assert abs(clock["clock_offset_s"] - SHIFT_S) <= clock["clock_uncertainty_s"] + 1e-4, clock
    assert clock["cloud_latency_s"] == OWL_S
    # stamps compared across the hosts only through the offset: every stage a real duration
    done = real[np.isfinite(real["latency_s"])]
    stages = done[["edge_s", "uplink_s", "cloud_wait_s", "cloud_s", "return_s"]]
    slack = 1e-3 + max(c["clock_uncertainty_s"] for c in facts["clock"].values())
    assert (stages > -slack).all().all(), stages.min()
    # the frames crossed the shaped veth: LeNet's raw input (3,136 bytes) at 2 Mbit/s,
    # its first 1,514-byte packet from tbf's bucket, the rest paced (6.5 ms); not loopback
    assert (whole["payload_bytes"] == 28 * 28 * 4).all()
    paced_s = (28 * 28 * 4 - 1514) * 8 / (RATE_MBPS * 1e6)
    assert 0.8 * paced_s < whole["uplink_s"].median() < paced_s + 0.02, whole["uplink_s"].median()
    print(f"two-host validation took {took:.1f} s; clock {clock}")


def test_a_wrong_secret_and_nobody_listening_are_one_line(hosts, tmp_path):
    pair, _ = hosts
    out = tmp_path / "v"
    argv, env = _validate(pair, "--cloud", f"{CLOUD_IP}:{PORT}", "--out", str(out),
                          secret="a-wrong-secret-" + "q" * 20)  # fmt: skip
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "did not authenticate" in lines[0] and f"{CLOUD_IP}:{PORT}" in lines[0]
    assert not out.exists()
    # nobody on that port: retried for the bound given, then one line
    t0 = time.perf_counter()
    argv, env = _validate(pair, "--cloud", f"{CLOUD_IP}:{PORT + 7}", "--cloud-wait-s", "2",
                          "--out", str(out))  # fmt: skip
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    took = time.perf_counter() - t0
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and "cannot connect" in lines[-1] and "for 2 s" in lines[-1]
    assert any("waiting for the cloud" in line for line in lines[:-1])
    assert 2 <= took < 60 and not out.exists()


def test_a_third_host_is_refused_and_the_server_listens_only_where_told(hosts):
    pair, _ = hosts
    env = {**os.environ, "ADAPTSIM_SECRET": SECRET}
    r = subprocess.run(
        [*pair.exec_in(pair.peer), sys.executable, str(DATA / "third_host.py"), CLOUD_IP,
         CLOUD_PEER_IP, str(PORT)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout)
    # the cloud's other address: nothing listens there (bound to CLOUD_IP only) ...
    assert seen["other"] == "refused", seen
    # ... though CLOUD_IP is reachable from this host: a valid request is served
    assert seen["own"] == "result", seen
    # a captured frame replayed on another connection: refused, the connection closed
    assert "another session" in seen["replay_other"] and seen["closed_after"], seen
    # and again on its own connection: an old seq, refused
    assert "not new" in seen["replay_same"], seen
