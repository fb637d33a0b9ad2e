"""Host emulation: real namespaces, tc, stress-ng and their certain clean-up (as root)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adaptsim.emulation import (
    CLOUD_IP,
    CLOUD_PEER_IP,
    EDGE_IP,
    NetnsPair,
    Stress,
    link_available,
    sweep_stale,
)
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
def test_a_peer_namespace_reaches_the_cloud_not_the_edge_and_goes_with_the_pair():
    def ping(ns: str, addr: str) -> bool:  # a TCP connect to a closed port: refused = reached
        argv = [
            "ip",
            "netns",
            "exec",
            ns,
            "timeout",
            "2",
            "bash",
            "-c",
            f"exec 3<>/dev/tcp/{addr}/9",
        ]
        out = subprocess.run(argv, capture_output=True, text=True)
        return "Connection refused" in out.stderr

    with NetnsPair(10.0) as pair:
        peer = pair.add_peer()
        assert peer == f"as{os.getpid()}-peer" and peer in _netns()
        assert ping(peer, CLOUD_PEER_IP) and ping(peer, CLOUD_IP)  # via the cloud's 2nd address
        assert not ping(peer, EDGE_IP)  # another network: the cloud does not forward to it
        assert peer not in stale_namespaces()  # named for a live owner: no sweep takes it
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


# A peer on each end (tests/data/link_peer.py): the cloud acknowledges every message,
# the edge sends them on a schedule over one TCP connection and times each one.
PEER = str(Path(__file__).parent / "data" / "link_peer.py")


@contextlib.contextmanager
def _peer_server(pair: NetnsPair, port: int):
    """tests/data/link_peer.py serving in the cloud's namespace, ready, killed after."""
    server = subprocess.Popen(
        [*pair.exec_in(pair.cloud), sys.executable, PEER, "serve", str(port)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout.readline().strip() == "ready"
        yield server
    finally:
        server.kill()
        server.wait()


@pytest.mark.needs_root
@needs_link
def test_rate_changes_drop_nothing_and_stall_no_message():
    """Regression: a 5.7 s uplink stall after `tc qdisc change` in a real LeNet run.

    tbf's queue was ``latency 200ms`` at the rate: 26.5 kB at 1 Mbit/s. A TCP window
    grown at 20 Mbit/s overflowed it when the rate fell, and the lost tail waited out
    retransmission time-outs. On that code this test saw 313 drops and a 63 kB
    message take 1.14 s (0.52 s at 1 Mbit/s); now the queue keeps one limit at every
    rate: nothing is dropped and every message takes what its bytes take at the rates.
    """
    port = 50000 + os.getpid() % 10000
    sizes, period_s, count = (3136, 63_000, 18_816), 0.05, 100  # LeNet's tensors and more
    # as the testbed's link
    with NetnsPair(20.0, burst_s=0.002, min_burst_bytes=1514) as pair, _peer_server(pair, port):
        client = subprocess.Popen(
            [*pair.exec_in(pair.edge), sys.executable, PEER, "send", CLOUD_IP,
             str(port), ",".join(map(str, sizes)), str(period_s), str(count)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        t0, k = time.monotonic(), 1
        while client.poll() is None:  # 20 and 1 Mbit/s by turns, every 0.37 s
            time.sleep(max(0.0, t0 + 0.37 * k - time.monotonic()))
            pair.set_rate(1.0 if k % 2 else 20.0)
            k += 1
        rows = [json.loads(line) for line in client.stdout.read().splitlines()]
        assert client.returncode == 0 and len(rows) == count
        dropped = pair.dropped_packets()
    assert k > 10  # the rate changed while messages crossed
    assert dropped == 0
    # the slowest a message may take: its bytes and headers (a 1,514-byte packet per
    # 1,448 bytes) at 1 Mbit/s, plus less than TCP's smallest retransmission time-out
    worst_s = max(r["seconds"] for r in rows)
    assert worst_s < max(sizes) * 1514 / 1448 * 8 / 1e6 + 0.2, worst_s


@pytest.mark.needs_root
@needs_link
def test_tcp_counters_are_the_edge_namespaces_and_see_its_retransmissions():
    """What `validate` records per run as ``edge_tcp``: the sender's own counters.

    tbf with a two-packet queue drops most of a 63 kB message's window, so the edge
    retransmits; the cloud, which only acknowledged, retransmits nothing, and the
    counters read in the edge's namespace are not the cloud's."""
    from adaptsim.emulation.netns import TCP_COUNTERS, parse_tcp_counters

    def cloud_counters(pair) -> dict[str, int]:
        text = subprocess.run(
            [*pair.exec_in(pair.cloud), "cat", "/proc/net/netstat", "/proc/net/snmp"],
            capture_output=True,
            text=True,
            check=True,
        )
        return parse_tcp_counters(text.stdout)

    port = 50000 + (os.getpid() + 1) % 10000
    with NetnsPair(2.0, burst_s=0.002, min_burst_bytes=1514) as pair:
        subprocess.run(
            [
                "tc",
                "-n",
                pair.edge,
                "qdisc",
                "change",
                "dev",
                pair.edge_dev,
                "root",
                "tbf",
                "rate",
                "2mbit",
                "burst",
                "1514",
                "limit",
                "3028",
            ],
            check=True,
        )
        edge0, cloud0 = pair.tcp_counters(), cloud_counters(pair)
        with _peer_server(pair, port):
            client = subprocess.run(
                [*pair.exec_in(pair.edge), sys.executable, PEER, "send", CLOUD_IP,
                 str(port), "63000", "0.05", "3"], capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert client.returncode == 0, client.stderr
            edge1, cloud1 = pair.tcp_counters(), cloud_counters(pair)
            dropped = pair.dropped_packets()
    assert set(edge0) == set(cloud0) == set(TCP_COUNTERS)
    assert dropped > 0  # the link really lost packets
    assert edge1["RetransSegs"] - edge0["RetransSegs"] > 0
    assert cloud1["RetransSegs"] == cloud0["RetransSegs"]


def test_tcp_counters_are_read_by_name_from_each_sections_pair_of_lines():
    text = (
        "TcpExt: SyncookiesSent TCPTimeouts TCPLossProbes TCPToZeroWindowAdv\n"
        "TcpExt: 1 7 11 0\n"
        "IpExt: InNoRoutes TCPTimeouts\n"  # another section's same name is not TCP's
        "IpExt: 5 99\n"
        "Tcp: RtoAlgorithm RetransSegs\n"
        "Tcp: 1 23\n"
    )
    from adaptsim.emulation.netns import parse_tcp_counters

    assert parse_tcp_counters(text) == {
        "TCPTimeouts": 7, "TCPLossProbes": 11, "TCPToZeroWindowAdv": 0, "RetransSegs": 23
    }  # fmt: skip


def test_bad_rates_are_refused():
    with pytest.raises(UserError, match="tc tbf shapes rates"):
        NetnsPair(-1.0)
    with pytest.raises(UserError, match="tc tbf shapes rates"):
        NetnsPair(float("nan"))


def _burn(seconds: float) -> float:
    """CPU seconds a busy loop pinned to CPU 1 gets in ``seconds`` of wall time."""
    os.sched_setaffinity(0, {1})
    start_cpu, start = time.process_time(), time.monotonic()
    while time.monotonic() - start < seconds:
        pass
    return time.process_time() - start_cpu


def _group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) of every process in the group so far."""
    total = 0
    for p in subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True,
                            text=True).stdout.split():  # fmt: skip
        stat = Path(f"/proc/{p}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@needs_stress_ng
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs CPU 1")
def test_a_yielding_memory_stressor_leaves_its_core_to_a_busy_process():
    """The testbed's memory stressor sits on the local cloud's core (combined's cloud
    ran x2.1-2.3 under edge memory stress at normal priority): with ``mem_yields``
    every stress-ng process is SCHED_IDLE and, beside a busy process on that core,
    gets next to none of it; at normal priority it takes about as much as the busy
    one. (Ratios of the two, side by side: the machine's other load slows both.)"""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    share = {}
    for yields in (True, False):
        with Stress(0, 32 << 20, mem_cpus=[1], settle_s=0.2, mem_yields=yields) as s:
            (pgid,) = s.pids
            members = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True,
                                     text=True).stdout.split()  # fmt: skip
            policies = {os.sched_getscheduler(int(p)) for p in members}
            with ctx.Pool(1) as pool:
                pool.apply(int, (0,))  # the worker started before the clock
                before = _group_cpu_s(pgid)
                busy_s = pool.apply(_burn, (1.5,))
                share[yields] = (_group_cpu_s(pgid) - before) / busy_s
        assert policies == ({os.SCHED_IDLE} if yields else {os.SCHED_OTHER})
    assert share[True] < 0.1  # the stressor's CPU per busy second: it yields
    assert share[False] > 0.5  # at normal priority the core is shared about evenly


@needs_stress_ng
def test_the_testbed_runs_its_memory_stressor_yielding():
    """ConditionFollower (the testbed's live conditions) starts the memory stressor
    under SCHED_IDLE; the CPU stressor stays at normal priority (it is the edge's load)."""
    from adaptsim.simulator.scenario import scenario_from_dict
    from adaptsim.testbed.conditions import ConditionFollower

    cal = Path(__file__).parents[1] / "src" / "adaptsim" / "data" / "calibration_own_2core.json"
    sc = scenario_from_dict({
        "name": "mem", "model": "lenet", "duration_s": 5, "deadline_s": 1, "calibration": str(cal),
        "arrivals": {"kind": "periodic", "rate_hz": 1},
        "traces": {"bandwidth_mbps": {"constant": 10}, "edge_cpu_pct": {"constant": 50},
                   "edge_mem_pct": {"constant": 50}},
        "policies": [{"policy": "all-edge"}],
    })  # fmt: skip
    with ConditionFollower(sc, None, [0], [1], 64 << 20) as follow:
        follow.start(time.monotonic())
        (cpu_pgid,), (mem_pgid,) = follow.stress_pids
        for pgid, want in ((cpu_pgid, os.SCHED_OTHER), (mem_pgid, os.SCHED_IDLE)):
            members = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True,
                                     text=True).stdout.split()  # fmt: skip
            assert members and {os.sched_getscheduler(int(p)) for p in members} == {want}


@pytest.mark.needs_root
@needs_link
@needs_stress_ng
def test_a_slow_memory_step_holds_up_no_bandwidth_step():
    """Regression (combined, traces x20): the link kept a stale rate for up to 3.9 s
    while a memory stressor that yields its core to a busy cloud made its bytes
    resident, because tc and stress-ng were changed in one thread. Here CPU 1 is
    kept busy for 1 s at normal priority, so the yielding stressor cannot become
    resident before then; the bandwidth steps behind it still land on time."""
    from adaptsim.simulator.scenario import scenario_from_dict
    from adaptsim.testbed.conditions import ConditionFollower

    cal = Path(__file__).parents[1] / "src" / "adaptsim" / "data" / "calibration_own_2core.json"
    sc = scenario_from_dict({
        "name": "slow-mem", "model": "lenet", "duration_s": 3, "deadline_s": 1,
        "calibration": str(cal), "arrivals": {"kind": "periodic", "rate_hz": 1},
        "traces": {"bandwidth_mbps": {"steps": [[0, 10], [0.3, 20], [0.4, 5], [0.5, 15]]},
                   "edge_mem_pct": {"steps": [[0, 0], [0.2, 100]]}},
        "policies": [{"policy": "all-edge"}],
    })  # fmt: skip
    spin = "import os, time\nos.sched_setaffinity(0, {1})\nt = time.monotonic()\n" \
        "while time.monotonic() - t < 1.0:\n    pass\n"  # fmt: skip
    with NetnsPair(10.0, burst_s=0.002, min_burst_bytes=1514) as pair:
        busy = subprocess.Popen([sys.executable, "-c", spin])
        try:
            with ConditionFollower(sc, pair, [0], [1], 64 << 20) as follow:
                follow.start(time.monotonic())
                time.sleep(2.5)
        finally:
            busy.wait()
        steps = list(follow.applied)
    link = {round(t, 1): e for e in steps for t in (0.3, 0.4, 0.5) if e[1] is not None
            and abs(e[0] - t) < 0.5 and e[1] == sc.bandwidth.at(t)}  # fmt: skip
    assert sorted(link) == [0.3, 0.4, 0.5], steps
    assert all(e[0] - t < 0.1 for t, e in link.items()), steps  # each rate on time
    mem_in_place = min(e[0] for e in steps if e[3] == 100)
    assert mem_in_place > 0.6, steps  # the memory step really was slow
