"""Facts about this host that a profile records beside its timings."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

from adaptsim.errors import UserError

__all__ = ["host_facts", "parse_cpus", "pin_cpus", "usable_cores"]


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_cpus(text: str) -> list[int]:
    """A CPU list as taskset writes it: ``0``, ``0,2``, ``0-3``."""
    out: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise UserError(f"--cpus {text!r}: give a CPU list such as 0 or 0,1 or 0-3") from None
    allowed = os.sched_getaffinity(0)
    if not out or not out <= allowed:
        raise UserError(f"--cpus {text!r}: this process may use CPUs {sorted(allowed)} only")
    return sorted(out)


def pin_cpus(cpus: list[int]) -> None:
    """Run every thread of this process (and what it starts later) on ``cpus`` only.

    This emulates a host with that many cores: TensorFlow's threads and the
    stress-ng workers started afterwards share them, as on a small edge device.
    """
    for task in Path("/proc/self/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except (ProcessLookupError, PermissionError):  # a thread that just ended
            continue


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware"):
                return value.strip()
    except OSError:
        pass
    return platform.processor() or ""


def _memory_bytes() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return float(line.split()[1]) * 1024.0
    except OSError:
        pass
    return float("nan")


def host_facts(name: str | None = None) -> dict:
    """Name, architecture, CPU model, usable cores and memory of this host."""
    return {
        "host": name or socket.gethostname(),
        "arch": platform.machine(),
        "cpu": _cpu_model(),
        "cores": float(usable_cores()),
        "memory_bytes": _memory_bytes(),
    }
