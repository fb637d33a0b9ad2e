"""An emulated slower edge CPU: a cgroup v1 CPU quota on this process.

cgroup v2 here has no cpu controller; v1's ``/sys/fs/cgroup/cpu`` throttles with
``cpu.cfs_quota_us`` over a 10 ms ``cpu.cfs_period_us``. A quota of 0.5 means half
of one core's time. The child group is this process's own (``adaptsim-<pid>``) and is removed when
the block ends; the process moves back to the group it came from. A group left
by a killed process is removed by :func:`adaptsim.emulation.cleanup.sweep_stale`.
"""

from __future__ import annotations

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
    """Context manager: throttle this whole process to ``cores`` of CPU time."""

    def __init__(self, cores: float):
        if not cores > 0:
            raise UserError(f"--cpu-quota {cores:g}: give a positive number of cores, e.g. 0.5")
        self.cores = cores
        self._group: Path | None = None
        self._home: Path | None = None

    def __enter__(self) -> CpuQuota:
        why = cpu_quota_available()
        if why:
            raise UserError(f"--cpu-quota needs cgroup v1 cpu: {why}")
        self._home = _own_group()
        self._group = ROOT / f"adaptsim-{os.getpid()}"
        self._group.mkdir(exist_ok=True)
        (self._group / "cpu.cfs_period_us").write_text(str(_PERIOD_US))
        (self._group / "cpu.cfs_quota_us").write_text(str(round(self.cores * _PERIOD_US)))
        (self._group / "cgroup.procs").write_text(str(os.getpid()))
        return self

    def __exit__(self, *exc) -> None:
        if self._group is None:
            return
        (self._home / "cgroup.procs").write_text(str(os.getpid()))
        for _ in range(50):  # children (stress-ng) may take a moment to leave
            try:
                self._group.rmdir()
                break
            except OSError:
                time.sleep(0.1)
        else:
            print(f"adaptsim: warning: could not remove {self._group}", file=sys.stderr)
        self._group = None
