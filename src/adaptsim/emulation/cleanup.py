"""Certain clean-up of what host emulation creates: names owned by a process id.

Every namespace, veth and cgroup this package makes carries the id of the
process that made it (``as<pid>-edge``, ``adaptsim-<pid>``), so concurrent runs
never collide, and a later run can tell what a dead run left behind: the owner
is gone, the object is stale, :func:`sweep_stale` removes it. That is what
makes clean-up certain even after SIGKILL, which no handler sees.

Within a living process, context managers do the clean-up; :func:`terminating_as_exit`
turns SIGTERM (and SIGHUP) into :class:`SystemExit` so those ``with`` blocks
unwind as they do on Ctrl-C (:func:`terminating_as_interrupt`: into Ctrl-C itself,
for work that keeps what it finished). Children get :func:`die_with_parent` so that they
end when the process that started them does, whatever killed it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "NETNS_PATTERN",
    "Terminated",
    "die_with_parent",
    "owner_alive",
    "stale_namespaces",
    "sweep_stale",
    "terminating_as_exit",
    "terminating_as_interrupt",
]

_PR_SET_PDEATHSIG = 1
NETNS_PATTERN = re.compile(r"^as(\d+)-(edge|cloud|peer)$")
_CGROUP_PATTERN = re.compile(r"^adaptsim-(\d+)$")
_CGROUP_ROOTS = (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/memory"))


def die_with_parent(cpus: list[int] | None = None, new_group: bool = True) -> None:
    """For ``preexec_fn``: SIGTERM this child when its parent dies; own process group.

    A process group of its own lets the parent stop the child and everything it
    started at once (``os.killpg``); ``cpus`` pins it before it runs anything.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if new_group:
        os.setsid()
    if cpus:
        os.sched_setaffinity(0, cpus)


def owner_alive(pid: int) -> bool:
    """Whether process ``pid`` still exists (the owner of a name)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_namespaces() -> list[str]:
    """Network namespaces named by this package whose owner process is gone."""
    try:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return []
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if (m := NETNS_PATTERN.match(n)) and not owner_alive(int(m[1]))]


def sweep_stale() -> list[str]:
    """Remove namespaces and cgroups left by dead runs; returns what was removed.

    Only objects named by this package whose owner pid no longer exists are
    touched: another user's live run is never disturbed.
    """
    removed = []
    for ns in stale_namespaces():
        if subprocess.run(["ip", "netns", "del", ns], capture_output=True).returncode == 0:
            removed.append(f"netns {ns}")
    for root in _CGROUP_ROOTS:
        if not root.is_dir():
            continue
        for d in root.iterdir():
            m = _CGROUP_PATTERN.match(d.name)
            if m and not owner_alive(int(m[1])):
                with contextlib.suppress(OSError):
                    d.rmdir()
                    removed.append(f"cgroup {d}")
    return removed


def _raise_exit(signum, _frame):
    raise SystemExit(128 + signum)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP taken as Ctrl-C (:func:`terminating_as_interrupt`); ``signum``
    says which (an exit code is 128 + it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Terminated:
    """SIGTERM/SIGHUP as Ctrl-C: remembers the signals and raises :class:`Terminated`."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    def __call__(self, signum, _frame):
        self.signals.append(signum)
        raise Terminated(signum)


_STOPPING = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def terminating_as_exit() -> Iterator[None]:
    """SIGTERM and SIGHUP raise SystemExit in the main thread while the block runs.

    The default action of SIGTERM ends the process at once, skipping every
    ``finally``; as an exception it unwinds the ``with`` blocks that hold
    namespaces, stress-ng and children, as Ctrl-C does. Inside
    :func:`terminating_as_interrupt` it leaves that block's handler in place (the
    outer caller keeps what finished, as on Ctrl-C).
    """
    if threading.current_thread() is not threading.main_thread() or isinstance(
        signal.getsignal(signal.SIGTERM), _Terminated
    ):
        yield
        return
    old = {s: signal.signal(s, _raise_exit) for s in _STOPPING}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def terminating_as_interrupt() -> Iterator[list[int]]:
    """SIGTERM and SIGHUP raise :class:`Terminated` (a KeyboardInterrupt) in the main
    thread while the block runs: work that keeps what finished on Ctrl-C keeps it on
    ``kill`` too. Yields the list of the signals that came (empty: none, or Ctrl-C
    itself), for the exit code and the facts."""
    handler = _Terminated()
    if threading.current_thread() is not threading.main_thread():
        yield handler.signals
        return
    old = {s: signal.signal(s, handler) for s in _STOPPING}
    try:
        yield handler.signals
    finally:
        for s, h in old.items():
            signal.signal(s, h)
