"""Host emulation: real namespaces, tc, stress-ng and their certain clean-up (as root)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from adaptsim.emulation import NetnsPair, Stress, link_available, sweep_stale
from adaptsim.emulation.cleanup import owner_alive, stale_namespaces
from adaptsim.errors import UserError

needs_link = pytest.mark.skipif(
    link_available() is not None, reason=f"needs netns and tc: {link_available()}"
)
needs_stress_ng = pytest.mark.skipif(
    shutil.which("stress-ng") is None, reason="needs stress-ng (./scripts/setup.sh as root)"
)


def _netns() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _qdisc(ns: str) -> str:
    return subprocess.run(["tc", "-n", ns, "qdisc", "show"], capture_output=True,
                          text=True).stdout  # fmt: skip


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    assert not owner_alive(p.pid)
    return p.pid


@pytest.mark.needs_root
@needs_link
def test_netns_pair_is_named_for_this_process_shaped_and_removed():
    with NetnsPair(10.0) as pair:
        assert {f"as{os.getpid()}-edge", f"as{os.getpid()}-cloud"} <= set(_netns())
        assert "rate 10Mbit" in _qdisc(pair.edge)
        pair.set_rate(2.5)  # live, as a trace steps
        assert "rate 2500Kbit" in _qdisc(pair.edge) and pair.rate_mbps == 2.5
        pair.set_rate(0.0)  # a zero-rate step: the smallest rate tc takes
        assert "rate 8Kbit" in _qdisc(pair.edge)
    assert not any(n.startswith(f"as{os.getpid()}-") for n in _netns())


@pytest.mark.needs_root
@needs_link
def test_netns_pair_is_removed_when_the_block_raises():
    with pytest.raises(RuntimeError), NetnsPair(5.0):
        raise RuntimeError("boom")
    assert not any(n.startswith(f"as{os.getpid()}-") for n in _netns())


@pytest.mark.needs_root
@needs_link
def test_sweep_removes_only_what_dead_owners_left():
    dead = _dead_pid()
    mine = f"as{os.getpid()}-edge"
    stale = f"as{dead}-edge"
    for ns in (mine, stale, "other-netns-of-someone"):
        subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        assert stale in stale_namespaces() and mine not in stale_namespaces()
        removed = sweep_stale()
        left = _netns()
        assert f"netns {stale}" in removed and stale not in left
        assert mine in left and "other-netns-of-someone" in left  # live owner, foreign name
    finally:
        for ns in (mine, stale, "other-netns-of-someone"):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.mark.needs_root
@needs_link
@needs_stress_ng
def test_sigterm_unwinds_namespaces_and_stress():
    code = (
        "import os, time\n"
        "from adaptsim.emulation import NetnsPair, Stress, terminating_as_exit\n"
        "with terminating_as_exit(), NetnsPair(5.0), Stress(50, 0, settle_s=0) as s:\n"
        "    print(s.pids[0], flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    stress_pgid = int(proc.stdout.readline())
    assert any(n.startswith(f"as{proc.pid}-") for n in _netns())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert not any(n.startswith(f"as{proc.pid}-") for n in _netns())
    with pytest.raises(ProcessLookupError):
        os.killpg(stress_pgid, 0)


@needs_stress_ng
def test_cpu_stress_can_be_placed_on_given_cores():
    with Stress(100, 0, cpu_cpus=[0], settle_s=0.2) as s:
        pgid = s.pids[0]
        members = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True,
                                 text=True).stdout.split()  # fmt: skip
        workers = [int(p) for p in members if int(p) != pgid]
        assert len(workers) == 1  # one worker for one core, not one per usable core
        assert all(os.sched_getaffinity(p) == {0} for p in [pgid, *workers])
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)


def test_bad_rates_are_refused():
    with pytest.raises(UserError, match="rate >= 0"):
        NetnsPair(-1.0)
    with pytest.raises(UserError, match="rate >= 0"):
        NetnsPair(float("nan"))
