"""Real CPU and memory stress with stress-ng, for as long as a ``with`` block runs.

CPU stress loads every usable core to the asked percentage (``--cpu N
--cpu-load P --cpu-load-slice 10``). Memory stress holds a number of bytes with
``--vm 1 --vm-bytes B --vm-keep`` (a large percentage fills slowly and overshoots its timeout, so
absolute bytes are given) and the block starts only once that memory is resident.
stress-ng runs in its own process group, dies with this process
(``PR_SET_PDEATHSIG``) and is stopped when the block ends, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from adaptsim.emulation.cleanup import die_with_parent
from adaptsim.emulation.cpus import usable_cores
from adaptsim.errors import UserError

__all__ = ["Stress", "require_stress_ng"]

_RESIDENT_SHARE = 0.9  # memory counts as in place once 90 % of it is resident


def require_stress_ng() -> str:
    path = shutil.which("stress-ng")
    if path is None:
        raise UserError(
            "stress-ng is not installed: install it (Debian: apt-get install stress-ng, "
            "or run ./scripts/setup.sh as root) or profile with --cpu-stress 0 --mem-stress 0"
        )
    return path


def _group_members(pgid: int) -> list[Path]:
    """``/proc/<pid>`` of every process in the group ``pgid``."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[2]) == pgid:
                out.append(d)
        except (OSError, ValueError):
            continue
    return out


def _group_rss_bytes(pgid: int) -> int:
    total = 0
    for d in _group_members(pgid):
        try:
            for line in (d / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ValueError):
            continue
    return total


def _start_child(cpus: list[int] | None, cgroup_procs: Path | None = None) -> None:
    """``preexec_fn``: dies with its parent, pinned; in the cgroup whose ``cgroup.procs``
    is ``cgroup_procs`` (a throttled edge's quota, inherited by stress-ng's workers)."""
    die_with_parent(cpus)
    if cgroup_procs is not None:
        cgroup_procs.write_text(str(os.getpid()))


def _set_yielding(pgid: int, yielding: bool) -> None:
    """Every process of the group under ``SCHED_IDLE`` and, where the kernel groups each
    session for the scheduler (``sched_autogroup``: the new session would otherwise get
    a fair share of the core whatever its tasks' policy), in an autogroup of nice 19;
    or, with ``yielding`` False, both back to normal.

    Yielding is set by the parent once the stressor has started, not in the child
    before it execs: a child that yields before exec on a core a busy cloud holds
    starts only when that core idles (stress-ng was not even running 0.8 s after its
    start, and stop() waited on it, with CPU 1 kept busy). Workers forked before the
    switch are caught by the next call (:meth:`Stress._wait_ready` repeats it). Back
    to normal before it is stopped, so that it exits now: a process frees its memory
    in its own time, which SCHED_IDLE hardly gets on a busy core (stopping one took
    5.7 s at load 7 on 2 cores; 0.17 s after this, autogroup too)."""
    policy, nice = (os.SCHED_IDLE, "19") if yielding else (os.SCHED_OTHER, "0")
    for d in _group_members(pgid):
        with contextlib.suppress(OSError, ValueError):
            os.sched_setscheduler(int(d.name), policy, os.sched_param(0))
        with contextlib.suppress(OSError), open(d / "autogroup", "w") as f:
            f.write(nice)


class Stress:
    """Context manager: stress-ng loading the CPU and/or holding memory.

    Args:
        cpu_pct: load per core, 0-100 (0: no CPU stressor).
        mem_bytes: bytes to hold resident (0: no memory stressor).
        mem_cpus: CPUs the memory stressor runs on (default: this process's). A
            pinned edge keeps its own cores for the model and the CPU stress, so
            that memory stress presses on memory, not on the edge's core time.
        ready_timeout_s: how long to wait for the memory to become resident.
        settle_s: pause after start so the load is in place before timing.
        cpu_cpus: CPUs the CPU stressor loads, one worker each (default: this
            process's). The testbed's edge is core 0 while its own process is not.
        mem_yields: run the memory stressor under ``SCHED_IDLE``, so that it only
            gets time no other process wants on its cores. The testbed sets it: its
            memory stressor stands for the edge host's memory pressure but sits on
            the local cloud's core (2 cores), and at normal priority it took half of
            that core from the cloud (VGG19's tails x2.1-2.3 under edge memory
            stress, docs/validation.md). The profiler's edge leaves that core to the
            stressor alone, where the priority changes nothing.
        cgroup_procs: a cgroup's ``cgroup.procs`` every stressor joins before it
            starts (:attr:`adaptsim.emulation.CpuQuota.procs_file`): the testbed's
            throttled edge puts its stress inside its own quota, as the profiler's
            stress-ng, a child of the throttled profile, inherits it.
        cancel: once set, the ``with`` block starts without waiting for the memory
            to be resident (the caller is stopping: a yielding stressor on a busy
            core may take seconds to get there); the stressors run until the block
            ends, and the caller tells a cancelled start by its own event.
    """

    def __init__(
        self,
        cpu_pct: float,
        mem_bytes: int,
        mem_cpus: list[int] | None = None,
        ready_timeout_s: float = 120.0,
        settle_s: float = 1.0,
        cpu_cpus: list[int] | None = None,
        mem_yields: bool = False,
        cancel: threading.Event | None = None,
        cgroup_procs: Path | None = None,
    ):
        if not 0 <= cpu_pct <= 100:
            raise UserError(f"CPU stress {cpu_pct:g}% is outside 0-100")
        if mem_bytes < 0:
            raise UserError(f"memory stress of {mem_bytes} bytes is negative")
        self.cpu_pct, self.mem_bytes, self.mem_cpus = cpu_pct, int(mem_bytes), mem_cpus
        self.cpu_cpus, self.mem_yields = cpu_cpus, mem_yields
        self.cgroup_procs = cgroup_procs
        self.ready_timeout_s, self.settle_s = ready_timeout_s, settle_s
        self.cancel = cancel
        self._procs: list[subprocess.Popen] = []
        self._yielding: list[int] = []  # process groups of the yielding stressors

    @property
    def idle(self) -> bool:
        return self.cpu_pct == 0 and self.mem_bytes == 0

    @property
    def pids(self) -> list[int]:
        """Process-group leaders of the running stressors."""
        return [p.pid for p in self._procs]

    def commands(self) -> list[list[str]]:
        """One stress-ng command per stressor (CPU, memory).

        CPU load comes in 10 ms busy slices (``--cpu-load-slice 10``): stress-ng's
        default draws random busy periods of up to 0.5 s, which an inference of a
        few tens of ms either misses or sits in, so the same level gave very
        different timings from one repeat to the next.
        """
        base = [require_stress_ng(), "--timeout", "6h", "--quiet"]
        out = []
        if self.cpu_pct > 0:
            out.append(
                [
                    *base,
                    "--cpu",
                    str(len(self.cpu_cpus) if self.cpu_cpus else usable_cores()),
                    "--cpu-load",
                    f"{self.cpu_pct:g}",
                ]
                + (["--cpu-load-slice", "10"] if self.cpu_pct < 100 else [])
            )
        if self.mem_bytes > 0:
            out.append([*base, "--vm", "1", "--vm-bytes", str(self.mem_bytes), "--vm-keep"])
        return out

    def __enter__(self) -> Stress:
        try:
            for cmd in self.commands():
                mem = "--vm" in cmd
                cpus = self.mem_cpus if mem else self.cpu_cpus
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    preexec_fn=lambda cpus=cpus: _start_child(cpus, self.cgroup_procs),
                )
                self._procs.append(proc)
                if mem and self.mem_yields:
                    self._yielding.append(proc.pid)
                    _set_yielding(proc.pid, True)
            if self._procs:
                self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        want = self.mem_bytes * _RESIDENT_SHARE
        while True:
            for pgid in self._yielding:  # workers forked before the switch, too
                _set_yielding(pgid, True)
            for proc in self._procs:
                if proc.poll() is not None:
                    msg = (proc.stderr.read() or b"").decode(errors="replace").strip()
                    raise UserError(
                        f"stress-ng exited at start (code {proc.returncode}): "
                        f"{msg.splitlines()[-1] if msg else 'no message'}; command: "
                        + " ".join(proc.args)
                    )
            if sum(_group_rss_bytes(pid) for pid in self.pids) >= want:
                break
            if self.cancel is not None and self.cancel.is_set():
                return
            if time.monotonic() > deadline:
                raise UserError(
                    f"stress-ng did not make {self.mem_bytes} bytes resident in "
                    f"{self.ready_timeout_s:g} s; lower --mem-budget-bytes"
                )
            time.sleep(0.1)
        for pgid in self._yielding:
            _set_yielding(pgid, True)
        time.sleep(self.settle_s)

    def stop(self) -> None:
        for pgid in self._yielding:
            _set_yielding(pgid, False)
        for proc in self._procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            finally:
                if proc.stderr:
                    proc.stderr.close()
        self._procs, self._yielding = [], []

    def __exit__(self, *exc) -> None:
        self.stop()
