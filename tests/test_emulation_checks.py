"""Host emulation's newer pieces at their edges: tc's rate range, a third host that fails
midway, the memory stressor's scheduling group. Found open by mutation testing.

Real ip, tc and stress-ng as root; the one failure that cannot be provoked (``ip link
set ... netns`` refusing a fresh veth) is injected into the real command sequence.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from adaptsim.emulation import MAX_RATE_MBPS, MIN_RATE_KBIT, NetnsPair, Stress, check_rate
from adaptsim.emulation import netns as netns_mod
from adaptsim.emulation.netns import link_available
from adaptsim.errors import UserError

LO_MBPS = MIN_RATE_KBIT / 1000  # tbf's slowest rate, 8 kbit/s


@pytest.mark.parametrize(
    ("rate", "kind"),
    [
        (LO_MBPS, "plain"),
        (MAX_RATE_MBPS, "plain"),
        (0.0, "zero_ok"),
        (LO_MBPS / 2, "floor_ok"),
        (0.0, "floor_ok"),
    ],
)
def test_check_rate_takes_what_tc_shapes_as_asked(rate, kind):
    assert check_rate(rate, "bandwidth", **({kind: True} if kind != "plain" else {})) == rate


@pytest.mark.parametrize(
    ("rate", "kind"),
    [
        (LO_MBPS * 0.99, "plain"),
        (0.0, "plain"),
        (-1.0, "plain"),
        (MAX_RATE_MBPS + 1, "plain"),
        (math.inf, "plain"),
        (math.nan, "plain"),
        (LO_MBPS / 2, "zero_ok"),  # a stall is 0, not a rate below the floor
        (-1e-3, "zero_ok"),
        (-1e-3, "floor_ok"),
        (math.inf, "floor_ok"),
        (MAX_RATE_MBPS + 1, "floor_ok"),
    ],
)
def test_check_rate_refuses_the_rest_in_one_line_naming_the_range(rate, kind):
    with pytest.raises(UserError) as err:
        check_rate(rate, "--bandwidth", **({kind: True} if kind != "plain" else {}))
    line = str(err.value)
    assert "\n" not in line and line.startswith(f"--bandwidth {rate:g} Mbit/s: ")
    assert "from 0.008 to 3,435,973 Mbit/s" in line and "dividing by 1e6 or 1e3" in line


def _root_links() -> str:
    return subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout


needs_link = pytest.mark.skipif(link_available() is not None, reason=f"{link_available()}")


@pytest.mark.needs_root
@needs_link
def test_a_third_host_that_fails_midway_leaves_no_veth_in_this_namespace(monkeypatch):
    """Moving the peer's veth end into its namespace fails (injected: the real command is
    not run): both ends are still in this namespace, where no namespace's deletion takes
    them, so add_peer removes them itself; the peer namespace made goes with the pair."""
    real = netns_mod._run
    tag = f"as{os.getpid()}"

    def failing(*args: str) -> None:
        if args[:3] == ("ip", "link", "set") and args[3] == f"{tag}p" and "netns" in args:
            raise UserError(f"`{' '.join(args)}` failed: injected")
        real(*args)

    monkeypatch.setattr(netns_mod, "_run", failing)
    try:
        with NetnsPair(10.0) as pair:
            with pytest.raises(UserError, match="injected"):
                pair.add_peer()
            links = _root_links()
            assert not re.search(rf"\b{tag}[pq]\b", links), links
        gone = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"{tag}-peer" not in gone and f"{tag}-cloud" not in gone
    finally:
        for dev in (f"{tag}p", f"{tag}q"):  # never leave one for the next test
            subprocess.run(["ip", "link", "del", dev], capture_output=True)


def _autogroup_nice(pid: int) -> int:
    text = Path(f"/proc/{pid}/autogroup").read_text()  # "/autogroup-123 nice 19"
    return int(text.split("nice")[1])


@pytest.mark.skipif(shutil.which("stress-ng") is None, reason="needs stress-ng")
@pytest.mark.skipif(
    not Path("/proc/self/autogroup").exists(), reason="the kernel has no sched_autogroup"
)
def test_a_yielding_memory_stressor_sits_in_an_autogroup_of_nice_19():
    """Its own session would get a fair share of the core beside another session,
    whatever its tasks' policy: the yielding stressor's session is niced to 19; at
    normal priority it is left as a new session starts, at nice 0."""
    nice = {}
    for yields in (True, False):
        with Stress(0, 8 << 20, settle_s=0.0, mem_yields=yields) as s:
            (pgid,) = s.pids
            members = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True,
                                     text=True).stdout.split()  # fmt: skip
            nice[yields] = {_autogroup_nice(int(p)) for p in members}
    assert nice[True] == {19}
    assert nice[False] == {0}
