"""The host's speed as a function of a run's time: probes interleaved with the run.

Five probes before and five after a policy run (:mod:`~adaptsim.testbed.host_speed`)
did not follow the run's own frames on this VM: the host's speed drifts within a run
(docs/validation.md, "The host speed probe"). With ``validate --probe-every S`` the
edge also probes *during* the run, in its idle gaps (:class:`ProbeGate`, used by the
edge's compute stage): about every ``S`` seconds of the run's real time (the records'
clock: trace time / ``--time-scale``), once the edge has no frame queued, no frame is
in flight (uplink and cloud idle) and the next arrival is not due within
:data:`PROBE_MARGIN` times the probe's predicted seconds (or 1.5x the recent slowdown,
the median measured / predicted of the last probes and frames' heads, where the host
runs slower than that), it times ONE call of the
whole model on the edge and asks the cloud for one call of the whole tail (a
``probe`` frame whose input the server makes itself: nothing large crosses the
shaped link). A period with no such gap is a skipped probe, counted. No probe starts
near a step of the edge's CPU or memory trace (a stressor restarting would make its
conditions unknown); one during which the follower's applied levels changed is
dropped, counted as ``mixed``.

Each interleaved probe runs under the conditions of the frames around it, so its
prediction is the calibration's whole-model seconds at the edge CPU and memory
levels in place then (the follower's ``applied`` log), and its speed is measured /
predicted-at-those-levels. The cloud's prediction does not depend on the edge's
levels (the calibration prices the cloud at the scenario's cloud stress).

From a run's probes (before at t = 0, interleaved at their start, after at the run's
end) :func:`speed_steps` makes a speed that follows time: at each probe time the
median of the :data:`SPEED_WINDOW` probes nearest in time (a running median),
piecewise-constant between probes, switching halfway. The probed twin and the
fold-back relative to the host's speed scale each frame's edge and cloud seconds by
the speed at its arrival (``Scenario.host_speed``, drawn with the service noise). A
run with only before and after probes (``--probe-every 0``, or a folder written
before) keeps one speed, the median of its probes, as before.

``--probe-pool seed`` pools every probe of a seed's policy runs into one speed for
all of them (a constant); ``run`` (the default) gives each run its own; ``ends`` each
run the median of its before and after probes alone (the probes during it ignored: the
same real run scored as without ``--probe-every``, for comparison).
"""

from __future__ import annotations

import math
from bisect import bisect_left

import numpy as np

from adaptsim.errors import UserError
from adaptsim.simulator.traces import Trace

__all__ = [
    "MAX_PROBE_EVERY_S",
    "POOLS",
    "PROBE_EVERY_S",
    "PROBE_MARGIN",
    "PROBE_POOL",
    "SPEED_WINDOW",
    "STEP_SETTLE_S",
    "ProbeGate",
    "check_probe_every",
    "check_probe_pool",
    "edge_whole_s",
    "level_at",
    "speed_at",
    "speed_steps",
    "speed_trace",
]

PROBE_EVERY_S = 0.0  # interleaved probes: one per this many seconds of run time (0: none)
MAX_PROBE_EVERY_S = 3600.0
PROBE_MARGIN = 2.0  # the next frame due no sooner than this times the probe's prediction
SLOWDOWN_MARGIN = 1.5  # ... nor than this times the prediction times the recent slowdown
RECENT = 5  # the last calls whose measured / predicted give the slowdown
STEP_SETTLE_S = 3.0  # no probe from a CPU/memory step until this long after it
SPEED_WINDOW = 5  # the running median's probes
POOLS = ("run", "seed", "ends")
PROBE_POOL = "run"


def check_probe_every(seconds) -> float:
    """``--probe-every``: seconds of run time between interleaved probes, 0 (none) to
    :data:`MAX_PROBE_EVERY_S`."""
    ok = (
        isinstance(seconds, int | float)
        and not isinstance(seconds, bool)
        and math.isfinite(seconds)
        and 0 <= seconds <= MAX_PROBE_EVERY_S
    )
    if not ok:
        raise UserError(
            f"--probe-every {seconds!r}: give the seconds of run time between probes in the "
            f"edge's idle gaps, from 0 (none) to {MAX_PROBE_EVERY_S:g}, e.g. 2"
        )
    return float(seconds)


def check_probe_pool(pool) -> str:
    """``--probe-pool``: ``run`` (each policy run's own probes), ``seed`` (pooled) or
    ``ends`` (each run's before and after probes alone)."""
    if pool not in POOLS:
        raise UserError(
            f"--probe-pool {pool!r}: give run (each policy run's speed from its own probes), "
            "seed (every run of a seed at the speed of all their probes pooled) or ends "
            "(each run's probes before and after it alone, as without --probe-every)"
        )
    return pool


def edge_whole_s(model, cpu_pct: float, mem_pct: float) -> float:
    """The calibration's seconds of the whole model on the edge (the all-edge point) at
    edge CPU ``cpu_pct`` and memory ``mem_pct`` stress."""
    k = list(model.kinds).index("all_edge")
    return float(model.edge_cum.at(cpu_pct, mem_pct)[0][0][k])


def level_at(applied: list, t_s: float) -> tuple[float, float]:
    """(edge CPU %, memory %) in place at run time ``t_s`` by the follower's ``applied``
    log (``[t, bw, cpu, mem]`` entries in time order; a null level: none, 0)."""
    cpu = mem = 0.0
    for e in applied:
        if e[0] > t_s:
            break
        cpu, mem = e[2] or 0.0, e[3] or 0.0
    return float(cpu), float(mem)


def speed_steps(samples: list[tuple[float, float]], window: int = SPEED_WINDOW) -> tuple:
    """((t_from, speed), ...) from probe samples ``(t_s, measured / predicted)``: at each
    distinct probe time the median of the ``window`` samples nearest to it in time
    (ties by order), held from halfway since the time before to halfway to the next;
    the first from t = 0. Empty for no samples."""
    if not samples:
        return ()
    ordered = sorted(samples, key=lambda s: s[0])
    times = np.array([t for t, _ in ordered])
    ratios = np.array([r for _, r in ordered])
    distinct = sorted(set(times.tolist()))
    w = min(window, len(ordered))
    steps = []
    for j, t in enumerate(distinct):
        near = np.argsort(np.abs(times - t), kind="stable")[:w]
        start = 0.0 if j == 0 else (distinct[j - 1] + t) / 2
        steps.append((start, float(np.median(ratios[near]))))
    return tuple(steps)


def speed_at(steps, t_s) -> np.ndarray:
    """The speed of ``steps`` at run times ``t_s`` (an array)."""
    starts = [s for s, _ in steps]
    values = np.array([v for _, v in steps])
    t = np.atleast_1d(np.asarray(t_s, dtype=float))
    idx = np.searchsorted(np.asarray(starts), t, side="right") - 1
    return values[np.clip(idx, 0, len(values) - 1)]


def speed_trace(steps, label: str) -> Trace:
    """``steps`` as a hold trace (the twin's ``Scenario.host_speed``)."""
    times = tuple(s for s, _ in steps)
    values = tuple(v for _, v in steps)
    last = times[-1] - times[-2] if len(times) > 1 else 1.0
    return Trace(times, values, times[-1] + last, label=label)


class ProbeGate:
    """When the edge may probe during a run (the compute stage asks; see the module).

    Args:
        every_s: seconds of run time per probe (> 0).
        duration_s: the run's duration: no probe at or after it.
        arrivals_s: every frame's arrival time (known ahead: the seed's draws).
        steps_s: the times of the edge CPU and memory traces' steps.
        predict_s: run time -> the probe's predicted seconds (edge and cloud, the larger).
        margin: :data:`PROBE_MARGIN`; settle_s: :data:`STEP_SETTLE_S`.
        recent: measured / predicted of the host's latest calls (the probes before the
            run, the last run's): the slowdown from the start (without them a host 5x
            slower than its calibration delayed a frame with the first probe of a run).
    """

    def __init__(self, every_s, duration_s, arrivals_s, steps_s, predict_s,
                 margin: float = PROBE_MARGIN, settle_s: float = STEP_SETTLE_S,
                 recent: list[float] | None = None):  # fmt: skip
        self.every_s, self.duration_s = every_s, duration_s
        self.arrivals = list(arrivals_s)
        self.steps = sorted(s for s in steps_s if s > 0)
        self.predict_s, self.margin, self.settle_s = predict_s, margin, settle_s
        self.due_s = every_s  # the next probe's period starts here
        self.skipped = 0
        # the last calls' measured / predicted: the edge's before-probes and earlier runs'
        self._recent: list[float] = list(recent or [])[-RECENT:]

    @property
    def slowdown(self) -> float:
        """How much slower than predicted the host ran lately: the median of the last
        :data:`RECENT` calls' measured / predicted (probes, and the frames' heads), at
        least 1."""
        return max(1.0, float(np.median(self._recent))) if self._recent else 1.0

    def observed(self, ratio: float) -> None:
        """A probe or a frame's head ran ``ratio`` times its prediction."""
        if math.isfinite(ratio) and ratio > 0:
            self._recent = [*self._recent[1 - RECENT :], ratio]

    def need_s(self, t: float) -> float:
        """The gap a probe at ``t`` needs before the next frame: its prediction times
        the margin, or times :data:`SLOWDOWN_MARGIN` x :attr:`slowdown` where the host
        runs slower than that (a host slower than its calibration still leaves the next
        frame its gap; one slow call alone does not stop the probes)."""
        return self.predict_s(t) * max(self.margin, SLOWDOWN_MARGIN * self.slowdown)

    def _catch_up(self, t: float) -> None:
        """Periods that ended without a gap to probe in: skipped."""
        while self.due_s + self.every_s <= t and self.due_s + self.every_s < self.duration_s:
            self.skipped += 1
            self.due_s += self.every_s

    def finish(self, t: float) -> None:
        """The run's frames are all in: periods due before ``t`` without a probe count as
        skipped (``t``: the last frame's arrival)."""
        while self.due_s < min(t, self.duration_s):
            self.skipped += 1
            self.due_s += self.every_s

    def may_probe(self, t: float, next_frame: int, idle: bool) -> bool:
        """At run time ``t``, with frame ``next_frame`` the next to arrive and ``idle``
        (nothing queued or in flight): may a probe start now?"""
        self._catch_up(t)
        if not idle or t < self.due_s or t >= self.duration_s:
            return False
        if next_frame >= len(self.arrivals):  # the last frame is in: the run is ending
            return False
        need = self.need_s(t)
        if self.arrivals[next_frame] - t <= need or t + need >= self.duration_s:
            return False
        i = bisect_left(self.steps, t - self.settle_s)
        return not (i < len(self.steps) and self.steps[i] <= t + need)

    def took(self) -> None:
        """A probe was taken: the next period starts."""
        self.due_s += self.every_s

    def wait_s(self, t: float) -> float | None:
        """How long the compute stage may sleep waiting for a frame before asking again
        (None: until a frame comes)."""
        if t < self.due_s:
            return self.due_s - t
        i = bisect_left(self.steps, t - self.settle_s)
        if i < len(self.steps) and self.steps[i] <= t + self.need_s(t):
            return max(self.steps[i] + self.settle_s - t, 0.001)
        return None
