"""CPU placement: which cores a process (and what it starts later) may run on.

Every machine of this project has 2 cores; an emulated edge is one of them
(``pin_cpus([0])``: TensorFlow's threads and the stress-ng workers it starts
share it, as on a small edge device) and the cloud the other.
"""

from __future__ import annotations

import os
from pathlib import Path

from adaptsim.errors import UserError

__all__ = ["parse_cpus", "pin_cpus", "usable_cores"]


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_cpus(text: str, option: str = "--cpus") -> list[int]:
    """A CPU list as taskset writes it: ``0``, ``0,2``, ``0-3``."""
    out: set[int] = set()
    allowed = os.sched_getaffinity(0)
    try:
        for part in text.split(","):
            lo, dash, hi = part.strip().partition("-")
            first, last = int(lo), int(hi if dash else lo)  # "0-" is no range: int("") fails
            if last > max(allowed):  # "0-1000000000" would first list a billion CPUs
                raise UserError(
                    f"{option} {text!r}: this process may use CPUs {sorted(allowed)} only"
                )
            out.update(range(first, last + 1))
    except ValueError:
        raise UserError(f"{option} {text!r}: give a CPU list such as 0 or 0,1 or 0-3") from None
    if not out or not out <= allowed:
        raise UserError(f"{option} {text!r}: this process may use CPUs {sorted(allowed)} only")
    return sorted(out)


def pin_cpus(cpus: list[int]) -> None:
    """Run every thread of this process (and what it starts later) on ``cpus`` only."""
    for task in Path("/proc/self/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except (ProcessLookupError, PermissionError):  # a thread that just ended
            continue
