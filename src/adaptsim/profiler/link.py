"""Probing a real shaped link: two network namespaces, a veth pair, tc tbf.

The edge end sends payloads of several sizes to the cloud end through a veth pair
whose edge side is shaped with ``tc qdisc ... tbf rate <bandwidth>mbit``; each
transfer is timed from the first byte sent to a one-byte reply. The kernel here
has no netem, so no delay or loss is emulated: the fixed cost measured is the
real one of this host's stack. Needs root, ``ip netns`` and ``tc``; the namespaces
are this process's own and are deleted afterwards, also on errors and Ctrl-C.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager

from adaptsim.errors import UserError

__all__ = ["link_available", "probe_sizes", "shaped_link", "transfer_times"]

_PORT = 50007
_EDGE_IP, _CLOUD_IP = "10.213.0.1", "10.213.0.2"


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


def _ip(*args: str) -> None:
    out = subprocess.run(list(args), capture_output=True, text=True)
    if out.returncode != 0:
        raise UserError(f"`{' '.join(args)}` failed: {out.stderr.strip()}")


@contextmanager
def shaped_link(bandwidth_mbps: float):
    """Namespaces (edge, cloud) joined by a veth pair shaped to ``bandwidth_mbps``."""
    why = link_available()
    if why:
        raise UserError(f"link profiling {why}")
    if not bandwidth_mbps > 0:
        raise UserError(f"bandwidth {bandwidth_mbps:g} Mbit/s: give a positive rate")
    tag = f"as{os.getpid() % 100000}"
    edge_ns, cloud_ns = f"{tag}-edge", f"{tag}-cloud"
    try:
        _ip("ip", "netns", "add", edge_ns)
        _ip("ip", "netns", "add", cloud_ns)
        _ip("ip", "link", "add", f"{tag}e", "type", "veth", "peer", "name", f"{tag}c")
        _ip("ip", "link", "set", f"{tag}e", "netns", edge_ns)
        _ip("ip", "link", "set", f"{tag}c", "netns", cloud_ns)
        for ns, dev, addr in ((edge_ns, f"{tag}e", _EDGE_IP), (cloud_ns, f"{tag}c", _CLOUD_IP)):
            _ip("ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            _ip("ip", "-n", ns, "link", "set", dev, "up")
            _ip("ip", "-n", ns, "link", "set", "lo", "up")
        burst = max(32_000, int(bandwidth_mbps * 1e6 / 8 / 100))  # >= 10 ms of traffic
        _ip(
            "ip", "netns", "exec", edge_ns, "tc", "qdisc", "add", "dev", f"{tag}e", "root",
            "tbf", "rate", f"{bandwidth_mbps:g}mbit", "burst", str(burst), "latency", "200ms",
        )  # fmt: skip
        yield edge_ns, cloud_ns
    finally:
        for ns in (edge_ns, cloud_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def probe_sizes(bandwidth_mbps: float, max_transfer_s: float, n: int = 6) -> list[int]:
    """Payload sizes from 1 kB up to what takes ``max_transfer_s`` at the rate."""
    top = max(int(bandwidth_mbps * 1e6 / 8 * max_transfer_s), 4096)
    ratio = (top / 1000) ** (1 / (n - 1))
    return sorted({int(1000 * ratio**i) for i in range(n)})


def transfer_times(
    bandwidth_mbps: float, sizes: list[int], repeats: int, seed: int
) -> list[tuple[int, float]]:
    """(bytes, seconds) of every transfer through a link shaped to the bandwidth."""
    with shaped_link(bandwidth_mbps) as (edge_ns, cloud_ns):
        server = subprocess.Popen(
            ["ip", "netns", "exec", cloud_ns, sys.executable, "-m", "adaptsim.profiler.probe",
             "serve", str(_PORT)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            if server.stdout.readline().strip() != "ready":
                raise UserError(f"link probe server did not start: {server.stderr.read()[-300:]}")
            budget_s = 30 + 3 * repeats * sum(sizes) * 8 / (bandwidth_mbps * 1e6)
            t0 = time.monotonic()
            out = subprocess.run(
                ["ip", "netns", "exec", edge_ns, sys.executable, "-m", "adaptsim.profiler.probe",
                 "send", _CLOUD_IP, str(_PORT), "--sizes", ",".join(map(str, sizes)),
                 "--repeats", str(repeats), "--seed", str(seed)],
                capture_output=True, text=True, timeout=budget_s,
            )  # fmt: skip
            if out.returncode != 0:
                raise UserError(f"link probe failed: {out.stderr.strip()[-300:]}")
        except subprocess.TimeoutExpired:
            raise UserError(
                f"link probe at {bandwidth_mbps:g} Mbit/s ran past {time.monotonic() - t0:.0f} s"
            ) from None
        finally:
            server.kill()
            server.wait()
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return [(int(r["bytes"]), float(r["seconds"])) for r in rows]
