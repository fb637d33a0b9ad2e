"""Host emulation shared by the profiler and the testbed.

Network namespaces joined by a veth pair and shaped with tc (:class:`NetnsPair`),
real CPU and memory stress with stress-ng (:class:`Stress`), a slower CPU as a
cgroup v1 quota (:class:`CpuQuota`), core placement (:mod:`~adaptsim.emulation.cpus`),
and the clean-up that makes all of it certain (:mod:`~adaptsim.emulation.cleanup`):
context managers, SIGTERM unwinding, children that die with their parent, and
names owned by a pid so a later run removes what a killed one left.
"""

from adaptsim.emulation.cgroup import CpuQuota, cpu_quota_available
from adaptsim.emulation.cleanup import die_with_parent, sweep_stale, terminating_as_exit
from adaptsim.emulation.cpus import parse_cpus, pin_cpus, usable_cores
from adaptsim.emulation.netns import (
    CLOUD_IP,
    CLOUD_PEER_IP,
    EDGE_IP,
    MAX_RATE_MBPS,
    MIN_RATE_KBIT,
    PEER_IP,
    NetnsPair,
    check_rate,
    link_available,
)
from adaptsim.emulation.stress import Stress, require_stress_ng

__all__ = [
    "CLOUD_IP",
    "CLOUD_PEER_IP",
    "EDGE_IP",
    "MAX_RATE_MBPS",
    "MIN_RATE_KBIT",
    "PEER_IP",
    "CpuQuota",
    "NetnsPair",
    "Stress",
    "check_rate",
    "cpu_quota_available",
    "die_with_parent",
    "link_available",
    "parse_cpus",
    "pin_cpus",
    "require_stress_ng",
    "sweep_stale",
    "terminating_as_exit",
    "usable_cores",
]
