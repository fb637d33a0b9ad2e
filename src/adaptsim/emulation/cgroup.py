"""An emulated slower edge CPU: a cgroup v1 CPU quota on a process.

cgroup v2 here has no cpu controller; v1's ``/sys/fs/cgroup/cpu`` throttles with
``cpu.cfs_quota_us`` over a 10 ms ``cpu.cfs_period_us``. A quota of 0.5 means half
of one core's time, shared by every process in the group. The child group is
owned by this process (``adaptsim-<pid>``) and is removed when the block ends.

Two uses: the profiler throttles itself (``CpuQuota(q)``: this process joins the
group and moves back to where it came from at the end, and the stress-ng it starts
inherits the group), and the testbed throttles its edge process, a child
(``CpuQuota(q, join=False)``, then :meth:`CpuQuota.admit`); :attr:`CpuQuota.procs_file`
lets other children (the edge's stress-ng) join from their ``preexec_fn``. Either
way whatever is still in the group at the end moves to this process's own group
first, so the group can always be removed; a group left by a killed process is
removed by :func:`adaptsim.emulation.cleanup.sweep_stale`.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from pathlib import Path

from adaptsim.errors import UserError

__all__ = ["CpuQuota", "cpu_quota_available"]

ROOT = Path("/sys/fs/cgroup/cpu")
_PERIOD_US = 10_000


def cpu_quota_available() -> str | None:
    """None when a quota can be set here, else why not."""
    if not (ROOT / "cpu.cfs_quota_us").exists():
        return f"no cgroup v1 cpu controller at {ROOT}"
    if not os.access(ROOT, os.W_OK):
        return f"{ROOT} is not writable (run as root)"
    return None


def _own_group() -> Path:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            return ROOT / path.lstrip("/")
    return ROOT


class CpuQuota:
    """Context manager: a group throttled to ``cores`` of CPU time.

    Args:
        cores: the quota, in cores (0.25: a quarter of one core's time).
        option: how messages name the setting (``--cpu-quota``, ``--edge-cpu-quota``).
        join: this whole process joins the group for the block (the profiler);
            False leaves it out, for children admitted with :meth:`admit`.
    """

    def __init__(self, cores: float, option: str = "--cpu-quota", join: bool = True):
        if not (math.isfinite(cores) and cores > 0):
            raise UserError(f"{option} {cores:g}: give a positive number of cores, e.g. 0.5")
        self.cores, self.option, self.join = cores, option, join
        self._group: Path | None = None
        self._home: Path | None = None

    @property
    def group(self) -> Path | None:
        """The group's folder while the block runs."""
        return self._group

    @property
    def procs_file(self) -> Path | None:
        """Write a process id here to put that process (all its threads) in the group."""
        return None if self._group is None else self._group / "cgroup.procs"

    def admit(self, pid: int) -> None:
        """Put process ``pid`` (every thread of it; what it starts later follows) in the group."""
        self.procs_file.write_text(str(pid))

    def stat(self) -> dict[str, int]:
        """The group's ``cpu.stat`` so far: ``nr_periods``, ``nr_throttled`` (periods in
        which the quota ran out) and ``throttled_time`` (ns): the quota at work, whatever
        else loads the machine."""
        out = {}
        with contextlib.suppress(OSError, ValueError):
            for line in (self._group / "cpu.stat").read_text().splitlines():
                key, value = line.split()
                out[key] = int(value)
        return out

    def __enter__(self) -> CpuQuota:
        why = cpu_quota_available()
        if why:
            raise UserError(f"{self.option} needs cgroup v1 cpu: {why}")
        self._home = _own_group()
        self._group = ROOT / f"adaptsim-{os.getpid()}"
        self._group.mkdir(exist_ok=True)
        try:
            (self._group / "cpu.cfs_period_us").write_text(str(_PERIOD_US))
            (self._group / "cpu.cfs_quota_us").write_text(str(round(self.cores * _PERIOD_US)))
            if self.join:
                self.admit(os.getpid())
        except BaseException:
            self.__exit__()
            raise
        return self

    def _members(self) -> list[str]:
        with contextlib.suppress(OSError):
            return (self._group / "cgroup.procs").read_text().split()
        return []

    def __exit__(self, *exc) -> None:
        if self._group is None:
            return
        for _ in range(50):  # moved out, so the group can go; a child may be mid-fork
            for pid in self._members():
                with contextlib.suppress(OSError):  # one that just ended
                    (self._home / "cgroup.procs").write_text(pid)
            try:
                self._group.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
        else:
            print(f"adaptsim: warning: could not remove {self._group}", file=sys.stderr)
        self._group = None
