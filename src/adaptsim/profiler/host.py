"""Facts about this host that a profile records beside its timings."""

from __future__ import annotations

import platform
import socket
from pathlib import Path

from adaptsim.emulation.cpus import usable_cores

__all__ = ["host_facts"]


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
