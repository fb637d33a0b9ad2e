"""Probing a real shaped link: two network namespaces, a veth pair, tc tbf.

The edge end sends payloads of several sizes to the cloud end through a veth pair
whose edge side is shaped with ``tc qdisc ... tbf rate <bandwidth>mbit``; each
transfer is timed from the first byte sent to a one-byte reply. The kernel here
has no netem, so no delay or loss is emulated: the fixed cost measured is the
real one of this host's stack. Needs root, ``ip netns`` and ``tc``; the namespaces
(:class:`adaptsim.emulation.NetnsPair`) are this process's own and are deleted
afterwards, also on errors, Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from adaptsim.emulation import CLOUD_IP, NetnsPair, die_with_parent, terminating_as_exit
from adaptsim.errors import UserError

__all__ = ["probe_sizes", "transfer_times"]

_PORT = 50007


def probe_sizes(bandwidth_mbps: float, max_transfer_s: float, n: int = 6) -> list[int]:
    """Payload sizes from 1 kB up to what takes ``max_transfer_s`` at the rate."""
    top = max(int(bandwidth_mbps * 1e6 / 8 * max_transfer_s), 4096)
    ratio = (top / 1000) ** (1 / (n - 1))
    return sorted({int(1000 * ratio**i) for i in range(n)})


def transfer_times(
    bandwidth_mbps: float, sizes: list[int], repeats: int, seed: int
) -> list[tuple[int, float]]:
    """(bytes, seconds) of every transfer through a link shaped to the bandwidth."""
    if not bandwidth_mbps > 0:
        raise UserError(f"bandwidth {bandwidth_mbps:g} Mbit/s: give a positive rate")
    with terminating_as_exit(), NetnsPair(bandwidth_mbps) as pair:
        server = subprocess.Popen(
            [*pair.exec_in(pair.cloud), sys.executable, "-m", "adaptsim.profiler.probe",
             "serve", str(_PORT)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent,
        )  # fmt: skip
        try:
            if server.stdout.readline().strip() != "ready":
                raise UserError(f"link probe server did not start: {server.stderr.read()[-300:]}")
            budget_s = 30 + 3 * repeats * sum(sizes) * 8 / (bandwidth_mbps * 1e6)
            t0 = time.monotonic()
            out = subprocess.run(
                [*pair.exec_in(pair.edge), sys.executable, "-m", "adaptsim.profiler.probe",
                 "send", CLOUD_IP, str(_PORT), "--sizes", ",".join(map(str, sizes)),
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
