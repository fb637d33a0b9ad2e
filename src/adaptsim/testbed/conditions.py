"""Conditions that follow the scenario's traces, live: tc rate and stress-ng.

At every step of the bandwidth trace the edge's tbf qdisc changes rate (``tc
qdisc change``); a zero-rate step sets the smallest rate tc takes
(:data:`~adaptsim.emulation.MIN_RATE_KBIT`, 1 kB/s: effectively a stall, not an
exact one). At every step of the edge CPU or memory trace the stressor whose
level changed stops and a new one starts at the new level, as the profiler
applies stress: CPU stress on the edge core (it shares it with the heads), memory
stress on the other core, as a percentage of the profile's memory budget.

The link, the CPU stress and the memory stress follow in a thread each. A memory
stressor is in place only once its bytes are resident, which takes seconds when it
yields its core to a busy cloud (``mem_yields``); in one thread, the tc changes
waited behind it: on ``combined`` (traces x20) the link kept a stale rate for up
to 3.9 s after a memory step, and uploads that the trace gave 0.13 s took
0.35-0.71 s (and in a shared stress thread, so did the edge's CPU load). Now a
step delays nothing but itself, and ``applied`` says when each level was in
place: while a stressor restarts its level reads 0 (none in place), a memory
start that stop() cancelled is not logged, and without a shaped link (a remote
cloud) the bandwidth trace's steps log nothing.

Under an edge CPU quota both stressors join the edge's quota group
(``cgroup_procs``): the profiler's stress-ng is a child of the throttled profile
and shares its quota, so the real edge's must too, or the run would emulate
another host.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

from adaptsim.emulation import NetnsPair, Stress
from adaptsim.simulator import Scenario

__all__ = ["ConditionFollower"]


class ConditionFollower:
    """Context manager: apply the conditions at t = 0 now, then follow the traces from ``t0``.

    Args:
        link: the shaped link, or None when the network is real (a remote cloud).
        edge_cpus: the edge's cores (CPU stress goes there).
        mem_cpus: where the memory stressor runs.
        mem_budget_bytes: what 100 % memory stress holds.
        cgroup_procs: the edge's CPU quota group (its ``cgroup.procs``), which the
            stressors join; None when the edge is not throttled.
    """

    def __init__(
        self,
        sc: Scenario,
        link: NetnsPair | None,
        edge_cpus: list[int],
        mem_cpus: list[int] | None,
        mem_budget_bytes: int,
        cgroup_procs: Path | None = None,
    ):
        self.sc, self.link = sc, link
        self.edge_cpus, self.mem_cpus, self.budget = edge_cpus, mem_cpus, mem_budget_bytes
        self.cgroup_procs = cgroup_procs
        self._cpu_stress: Stress | None = None
        self._mem_stress: Stress | None = None
        self._cpu: float | None = None  # the level in place
        self._mem: float | None = None
        self._bw: float | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._initial_done = False
        self.applied: list[tuple[float, float, float, float]] = []  # (t, bw, cpu, mem)
        self.error: str | None = None

    @property
    def stress_pids(self) -> tuple[list[int], list[int]]:
        """Process-group leaders of the running CPU and memory stressors."""
        return tuple(s.pids if s is not None else [] for s in (self._cpu_stress, self._mem_stress))

    def _log(self, elapsed: float) -> None:
        bw = self._bw if self.link is not None else None  # not shaped: none applied
        with self._lock:
            self.applied.append((round(elapsed, 4), bw, self._cpu, self._mem))

    def _set_link(self, t: float) -> bool:
        bw = self.sc.bandwidth.at(t)
        if self.link is not None and bw != self.link.rate_mbps:
            self.link.set_rate(bw)
        changed, self._bw = bw != self._bw, bw
        return changed

    def _keep(self, attr: str, s: Stress) -> bool:
        """Hand a started stressor to ``attr`` unless stop() has begun; then stop it here.

        stop() sets the event before it takes the lock, so a stressor is either handed
        over in time for stop() to stop it, or seen here as too late: none outlives
        stop(), even one whose start stop() did not wait for (its join timed out)."""
        with self._lock:
            late = self._stop.is_set()
            if not late:
                setattr(self, attr, s)
        if late:
            s.stop()
        return not late

    def _restart(self, part: str, level: float, start) -> bool:
        """Restart ``part``'s stressor (``cpu`` or ``mem``: attributes ``_<part>`` and
        ``_<part>_stress``) if its level changed; ``start()`` makes the new one. Its
        level is 0 (none in place) from the old one's stop until the new one is in
        place, and stays so when stop() began meanwhile."""
        if level == getattr(self, f"_{part}"):
            return False
        old = getattr(self, f"_{part}_stress")
        if old is not None:
            old.stop()
            setattr(self, f"_{part}_stress", None)
            setattr(self, f"_{part}", 0.0)
        if level > 0 and not self._keep(f"_{part}_stress", start().__enter__()):
            return False
        setattr(self, f"_{part}", level)
        return True

    def _set_cpu(self, t: float) -> bool:
        """Restart the CPU stressor if its level changed at ``t``."""
        cpu = self.sc.edge_cpu.at(t)
        return self._restart("cpu", cpu, lambda: Stress(
            cpu, 0, settle_s=0.0, cpu_cpus=self.edge_cpus, cgroup_procs=self.cgroup_procs
        ))  # fmt: skip

    def _set_mem(self, t: float) -> bool:
        """Restart the memory stressor if its level changed at ``t``; the level is in
        place once its bytes are resident (not when stop() cancelled the wait)."""
        mem = self.sc.edge_mem.at(t)
        return self._restart("mem", mem, lambda: Stress(
            0, int(mem / 100 * self.budget), self.mem_cpus, settle_s=0.0, mem_yields=True,
            cancel=self._stop, cgroup_procs=self.cgroup_procs))  # fmt: skip

    def apply_initial(self) -> None:
        """Put the levels at t = 0 in place now, the memory's once resident (seconds, for
        a large budget or a yielding stressor on a busy core). Call it before choosing
        the run's ``t0``, so that the run's clock starts with them in place; start()
        calls it where it was not called. The calling thread must live until stop(),
        since stress-ng started by a thread gets SIGTERM when that thread ends
        (PR_SET_PDEATHSIG follows the thread)."""
        if self._initial_done:
            return
        self._set_link(0.0)
        self._set_cpu(0.0)
        self._set_mem(0.0)
        self._log(0.0)
        self._initial_done = True

    def start(self, t0: float) -> None:
        """Follow the traces from ``t0`` (monotonic): the link, the CPU stress and the
        memory stress in a thread each, so that no step waits behind another's. The
        levels at t = 0 are put in place first (:meth:`apply_initial`), by the calling
        thread, which must live until stop()."""
        self.apply_initial()
        d = self.sc.duration_s

        def follow(times: list[float], apply) -> None:
            try:
                for t in times:
                    if self._stop.wait(max(0.0, t0 + t - time.monotonic())):
                        return
                    if apply(t):
                        self._log(time.monotonic() - t0)
            except Exception as exc:  # the run reports it (the first one)
                with self._lock:
                    self.error = self.error or f"{type(exc).__name__}: {exc}"
            # Stay alive until stopped: stress-ng started here gets SIGTERM when the
            # thread that started it ends (PR_SET_PDEATHSIG follows the thread).
            self._stop.wait()

        plans = (
            # not shaped (a remote cloud): the bandwidth steps change nothing here
            (self.sc.bandwidth if self.link is not None else None, self._set_link, "link"),
            (self.sc.edge_cpu, self._set_cpu, "cpu"),
            (self.sc.edge_mem, self._set_mem, "mem"),
        )
        for trace, apply, name in plans:
            times = [t for t in trace.breakpoints(d) if t > 0] if trace is not None else []
            if not times:
                continue
            th = threading.Thread(target=follow, args=(sorted(set(times)), apply), daemon=True,
                                  name=f"conditions-{name}")  # fmt: skip
            th.start()
            self._threads.append(th)

    def stop(self) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(timeout=30)
        self._threads = []
        with self._lock:  # a thread still starting one stops it itself (_keep)
            running = (self._cpu_stress, self._mem_stress)
            self._cpu_stress = self._mem_stress = None
        for s in running:
            if s is not None:
                with contextlib.suppress(Exception):
                    s.stop()
        self._cpu = self._mem = self._bw = None
        with self._lock:
            self.applied.sort(key=lambda a: a[0])

    def __enter__(self) -> ConditionFollower:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
