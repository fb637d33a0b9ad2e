"""Two network namespaces joined by a veth pair, the edge side shaped with tc tbf.

The edge namespace (``as<pid>-edge``, address 10.213.0.1) and the cloud
namespace (``as<pid>-cloud``, 10.213.0.2) are this process's own: the pid in the
name keeps concurrent runs apart and lets :func:`~adaptsim.emulation.cleanup.sweep_stale`
remove what a killed run left. Deleting a namespace deletes its veth end and the
qdisc on it, so leaving the ``with`` block removes everything.

The kernel here has no netem: tc adds no delay or loss. One-way latency is
added by the application (the testbed), and said so in its results.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from adaptsim.emulation.cleanup import sweep_stale
from adaptsim.errors import UserError

__all__ = [
    "CLOUD_IP",
    "CLOUD_PEER_IP",
    "EDGE_IP",
    "MAX_RATE_MBPS",
    "MIN_RATE_KBIT",
    "PEER_IP",
    "QUEUE_LIMIT_BYTES",
    "TCP_COUNTERS",
    "NetnsPair",
    "check_rate",
    "link_available",
    "parse_tcp_counters",
]

EDGE_IP, CLOUD_IP = "10.213.0.1", "10.213.0.2"
# a third host (:meth:`NetnsPair.add_peer`): its own /30 to the cloud namespace, the cloud
# reached on a second address there
PEER_IP, CLOUD_PEER_IP = "10.213.1.1", "10.213.1.2"
MIN_RATE_KBIT = 8  # a zero-rate trace step: tbf takes no rate of 0, this is 1 kB/s
# tbf's queue, in bytes, at every rate: far above any TCP send buffer here (tcp_wmem's
# maximum is 4 MiB), so a sender's whole window always fits and tbf never drops. With
# ``latency 200ms`` the queue was 200 ms at the rate (26.5 kB at 1 Mbit/s, 1.7 kB at the
# zero-rate step): a window grown at 20 Mbit/s overflowed it when the rate fell, and the
# lost tail waited out TCP's retransmission time-outs (seconds, doubling).
QUEUE_LIMIT_BYTES = 32 << 20
# tc holds tbf's bucket ("burst", bytes) in 32 bits, so with a bucket of burst_s of traffic
# the fastest rate it takes is (2**32 - 1) * 8 / burst_s bit/s. Measured here (iproute2 6.1.0,
# kernel 6.18, as root): `tbf rate 3435973000kbit burst 4294967295` is taken, `burst
# 4294967296` refused ("illegal value for burst"); the rate alone is never refused (beyond
# 2**64 bit/s it wraps silently). With the largest bucket used here (10 ms, the profiler's):
MAX_BURST_BYTES = 2**32 - 1
MAX_RATE_MBPS = math.floor(MAX_BURST_BYTES * 8 / 0.01 / 1e6)  # 3,435,973 Mbit/s


def link_available() -> str | None:
    """None when namespaces and tc can be used here, else why not."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and tc)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: iproute2)"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"ip netns does not work here: {probe.stderr.strip()}"
    return None


def check_rate(
    bandwidth_mbps: float, what: str, zero_ok: bool = False, floor_ok: bool = False
) -> float:
    """A rate tc tbf shapes as asked, checked before any namespace is made or changed.

    Above :data:`MAX_RATE_MBPS` tc refuses the qdisc (see its comment); below
    :data:`MIN_RATE_KBIT` tbf shapes at that floor, not at the rate asked for: refused,
    except 0 (a trace's stall, shaped at the floor) with ``zero_ok``, and anything from 0
    to the floor with ``floor_ok`` (a live link, whose caller checked its trace first).
    """
    lo = MIN_RATE_KBIT / 1000
    ok = math.isfinite(bandwidth_mbps) and lo <= bandwidth_mbps <= MAX_RATE_MBPS
    if zero_ok and bandwidth_mbps == 0:
        ok = True
    if floor_ok and 0 <= bandwidth_mbps < lo:
        ok = True
    if not ok:
        raise UserError(
            f"{what} {bandwidth_mbps:g} Mbit/s: tc tbf shapes rates from {lo:g} to "
            f"{MAX_RATE_MBPS:,} Mbit/s; give a rate in that range (a rate in bit/s or kbit/s "
            "needs dividing by 1e6 or 1e3)"
        )
    return bandwidth_mbps


# A namespace's TCP counters that tell why an upload took longer than its bytes at the
# rate: a retransmission time-out (at least 200 ms here, doubling), a tail-loss probe,
# retransmitted segments, a receiver that closed its window.
TCP_COUNTERS = ("TCPTimeouts", "TCPLossProbes", "RetransSegs", "TCPFastRetrans",
                "TCPToZeroWindowAdv", "TCPWantZeroWindowAdv")  # fmt: skip


def parse_tcp_counters(text: str) -> dict[str, int]:
    """:data:`TCP_COUNTERS` from ``/proc/net/netstat`` and ``/proc/net/snmp`` text: each
    section is a line of names and a line of values, both led by the same ``Prefix:``."""
    found: dict[str, int] = {}
    lines = text.splitlines()
    for names, values in itertools.pairwise(lines):
        head, _, rest = names.partition(":")
        vhead, _, vrest = values.partition(":")
        if head != vhead or head not in ("TcpExt", "Tcp"):
            continue
        keys, nums = rest.split(), vrest.split()
        if len(keys) != len(nums) or not all(n.lstrip("-").isdigit() for n in nums):
            continue  # two header lines in a row, or not a pair
        found.update((k, int(n)) for k, n in zip(keys, nums, strict=True) if k in TCP_COUNTERS)
    return found


def _run(*args: str) -> None:
    out = subprocess.run(list(args), capture_output=True, text=True)
    if out.returncode != 0:
        raise UserError(f"`{' '.join(args)}` failed: {out.stderr.strip()}")


def _tbf_args(bandwidth_mbps: float, burst_s: float, min_burst_bytes: int) -> list[str]:
    kbit = max(round(bandwidth_mbps * 1000), MIN_RATE_KBIT)
    burst = max(min_burst_bytes, int(kbit * 1000 / 8 * burst_s))
    return ["tbf", "rate", f"{kbit}kbit", "burst", str(burst), "limit", str(QUEUE_LIMIT_BYTES)]


@dataclass
class NetnsPair:
    """Context manager: the edge and cloud namespaces, shaped to ``bandwidth_mbps``.

    The token bucket (``burst``) holds ``burst_s`` of traffic, at least
    ``min_burst_bytes``. A message smaller than the bucket leaves at line rate
    when the bucket is full: the profiler's probe keeps its 10 ms / 32 kB bucket
    (its link law fits what that gives); the testbed uses a bucket of 2 ms and
    at least one 1,514-byte packet, so that a frame is paced at the trace's
    rate as the simulator's link assumes (measured here: a 3,136-byte LeNet
    input took 0.6 ms at "1 Mbit/s" with the 32 kB bucket, 25 ms at the rate).

    Attributes:
        edge, cloud: namespace names; ``exec_in(ns)`` prefixes a command to run there.
        rate_mbps: the rate tbf applies now (0 means the smallest rate tc takes).
    """

    bandwidth_mbps: float
    tag: str = ""
    rate_mbps: float = 0.0
    burst_s: float = 0.01
    min_burst_bytes: int = 32_000
    peer: str = ""  # the third namespace, once add_peer made it

    def __post_init__(self):
        check_rate(self.bandwidth_mbps, "bandwidth", floor_ok=True)  # before any namespace
        self.tag = self.tag or f"as{os.getpid()}"
        self.edge, self.cloud = f"{self.tag}-edge", f"{self.tag}-cloud"
        self.edge_dev, self.cloud_dev = f"{self.tag}e", f"{self.tag}c"

    @staticmethod
    def exec_in(ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns]

    def __enter__(self) -> NetnsPair:
        why = link_available()
        if why:
            raise UserError(f"the emulated link {why}")
        sweep_stale()
        try:
            _run("ip", "netns", "add", self.edge)
            _run("ip", "netns", "add", self.cloud)
            _run("ip", "link", "add", self.edge_dev, "type", "veth", "peer", "name", self.cloud_dev)
            _run("ip", "link", "set", self.edge_dev, "netns", self.edge)
            _run("ip", "link", "set", self.cloud_dev, "netns", self.cloud)
            for ns, dev, addr in (
                (self.edge, self.edge_dev, EDGE_IP),
                (self.cloud, self.cloud_dev, CLOUD_IP),
            ):
                _run("ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
                _run("ip", "-n", ns, "link", "set", dev, "up")
                _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("tc", "-n", self.edge, "qdisc", "add", "dev", self.edge_dev, "root",
                 *_tbf_args(self.bandwidth_mbps, self.burst_s, self.min_burst_bytes))  # fmt: skip
            self.rate_mbps = self.bandwidth_mbps
        except BaseException:
            self.close()
            raise
        return self

    def set_rate(self, bandwidth_mbps: float) -> None:
        """Change the edge side's rate live (``tc qdisc change``); 0 is the smallest rate.

        What is queued stays queued and leaves at the new rate: the queue's limit
        (:data:`QUEUE_LIMIT_BYTES`) does not shrink with the rate, so no change drops.
        """
        check_rate(bandwidth_mbps, "bandwidth", floor_ok=True)
        _run("tc", "-n", self.edge, "qdisc", "change", "dev", self.edge_dev, "root",
             *_tbf_args(bandwidth_mbps, self.burst_s, self.min_burst_bytes))  # fmt: skip
        self.rate_mbps = bandwidth_mbps

    def dropped_packets(self) -> int:
        """Packets the edge's tbf dropped so far (``tc -s qdisc``); 0 is what the run needs."""
        out = subprocess.run(["tc", "-s", "-n", self.edge, "qdisc", "show", "dev", self.edge_dev],
                             capture_output=True, text=True)  # fmt: skip
        found = re.search(r"dropped (\d+)", out.stdout)
        if out.returncode != 0 or found is None:
            raise UserError(f"tc -s qdisc in {self.edge} failed: {out.stderr.strip()}")
        return int(found[1])

    def tcp_counters(self) -> dict[str, int]:
        """The edge namespace's TCP counters that tell a stalled upload (see
        :func:`parse_tcp_counters`): time-outs, tail-loss probes, retransmitted
        segments and zero-window events, read from its own ``/proc/net``."""
        out = subprocess.run(["ip", "netns", "exec", self.edge, "cat", "/proc/net/netstat",
                              "/proc/net/snmp"], capture_output=True, text=True)  # fmt: skip
        if out.returncode != 0:
            raise UserError(f"reading TCP counters in {self.edge} failed: {out.stderr.strip()}")
        return parse_tcp_counters(out.stdout)

    def add_peer(self) -> str:
        """A third host: namespace ``<tag>-peer`` joined to the cloud namespace by its own veth.

        The peer is :data:`PEER_IP`; the cloud gets a second address on that link,
        :data:`CLOUD_PEER_IP`, and the peer routes to the edge-cloud /30 through it,
        so the cloud's :data:`CLOUD_IP` is reachable from the peer too. That is a
        machine on another network than the edge's: it tells a server that listens
        on one address from one that listens on all of them, and it can try what
        an eavesdropper would (replay a captured frame). Removed with the pair.

        Returns:
            The peer's namespace name.
        """
        peer, peer_dev, cloud_dev = f"{self.tag}-peer", f"{self.tag}p", f"{self.tag}q"
        self.peer = peer
        _run("ip", "netns", "add", peer)
        try:
            _run("ip", "link", "add", peer_dev, "type", "veth", "peer", "name", cloud_dev)
            _run("ip", "link", "set", peer_dev, "netns", peer)
            _run("ip", "link", "set", cloud_dev, "netns", self.cloud)
            for ns, dev, addr in ((peer, peer_dev, PEER_IP),
                                  (self.cloud, cloud_dev, CLOUD_PEER_IP)):  # fmt: skip
                _run("ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
                _run("ip", "-n", ns, "link", "set", dev, "up")
            _run("ip", "-n", peer, "link", "set", "lo", "up")
            _run("ip", "-n", peer, "route", "add", "10.213.0.0/30", "via", CLOUD_PEER_IP)
        except BaseException:  # a veth left in this namespace goes with neither namespace
            subprocess.run(["ip", "link", "del", peer_dev], capture_output=True)
            raise
        return peer

    def close(self) -> None:
        for ns in (self.edge, self.cloud, self.peer):
            if ns:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def __exit__(self, *exc) -> None:
        self.close()
