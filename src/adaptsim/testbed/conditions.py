"""Conditions that follow the scenario's traces, live: tc rate and stress-ng.

At every step of the bandwidth trace the edge's tbf qdisc changes rate (``tc
qdisc change``); a zero-rate step sets the smallest rate tc takes
(:data:`~adaptsim.emulation.MIN_RATE_KBIT`, 1 kB/s: effectively a stall, not an
exact one). At every step of the edge CPU or memory trace the running stress-ng
stops and a new one starts at the new levels, as the profiler applies stress:
CPU stress on the edge core (it shares it with the heads), memory stress on the
other core, as a percentage of the profile's memory budget. Under an edge CPU
quota both stressors join the edge's quota group (``cgroup_procs``): the
profiler's stress-ng is a child of the throttled profile and shares its quota,
so the real edge's must too, or the run would emulate another host.
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
        self._stress: Stress | None = None
        self._level: tuple[float, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.applied: list[tuple[float, float, float, float]] = []  # (t, bw, cpu, mem)
        self.error: str | None = None

    def _apply(self, t: float, elapsed: float) -> None:
        sc = self.sc
        bw, cpu, mem = sc.bandwidth.at(t), sc.edge_cpu.at(t), sc.edge_mem.at(t)
        if self.link is not None and bw != self.link.rate_mbps:
            self.link.set_rate(bw)
        if (cpu, mem) != self._level:
            if self._stress is not None:
                self._stress.stop()
                self._stress = None
            if cpu > 0 or mem > 0:
                s = Stress(cpu, int(mem / 100 * self.budget), self.mem_cpus, settle_s=0.0,
                           cpu_cpus=self.edge_cpus, mem_yields=True,
                           cgroup_procs=self.cgroup_procs)  # fmt: skip
                self._stress = s.__enter__()
            self._level = (cpu, mem)
        applied_bw = bw if self.link is not None else None  # not shaped: none applied
        self.applied.append((round(elapsed, 4), applied_bw, cpu, mem))

    def start(self, t0: float) -> None:
        """Follow the traces from ``t0`` (monotonic) in a thread."""
        self._apply(0.0, 0.0)
        steps = sorted(
            {t for tr in (self.sc.bandwidth, self.sc.edge_cpu, self.sc.edge_mem)
             for t in tr.breakpoints(self.sc.duration_s) if t > 0}
        )  # fmt: skip

        def follow():
            try:
                for t in steps:
                    if self._stop.wait(max(0.0, t0 + t - time.monotonic())):
                        return
                    self._apply(t, time.monotonic() - t0)
            except Exception as exc:  # the run reports it
                self.error = f"{type(exc).__name__}: {exc}"
            # Stay alive until stopped: stress-ng started here gets SIGTERM when the
            # thread that started it ends (PR_SET_PDEATHSIG follows the thread).
            self._stop.wait()

        self._thread = threading.Thread(target=follow, daemon=True, name="conditions")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._stress is not None:
            with contextlib.suppress(Exception):
                self._stress.stop()
            self._stress = None
        self._level = None

    def __enter__(self) -> ConditionFollower:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
