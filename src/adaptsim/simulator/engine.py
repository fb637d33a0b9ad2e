"""The SimPy simulation of one policy on one scenario and seed.

Actors are SimPy processes named after what they are: ``arrivals`` (frames reach
the edge, periodic or Poisson), ``controller`` (a periodic policy decides) and,
in the naive engine, one ``request`` process per frame holding SimPy resources.
:func:`run_policy` replays the first two in SimPy's exact event order in a plain
loop (:func:`_drive`), without SimPy's cost per event; the actors stay as the
reference the loop is tested against.
The fast engine serves each frame when it arrives, analytically: every stage is
a FIFO queue whose service times are known when the frame enters it, so its
start is ``max(arrival at the stage, when the server frees)`` (the Lindley
recursion), the uplink integrates the bytes through the bandwidth trace
(:class:`~adaptsim.simulator.link.Link`), and the cloud's ``c`` servers are a heap
of free times. Because the edge and the uplink are single FIFO servers, frames
leave each stage in arrival order, so serving them in arrival order is exact
(frames split all-cloud pass the edge too, with nothing to compute: the edge
application takes frames one at a time, in order).

Admission control (``admission`` in the scenario; :mod:`adaptsim.simulator.admission`)
keeps that analytic form. With ``drop: never`` and no queue limits (the default)
:meth:`_Run.serve` runs unchanged. Otherwise :meth:`_Run.serve_admitted` checks, at
each stage in turn: a *tail drop* when the frame reaches the stage while it is busy
and ``queue_limit`` frames already wait there; a *stale drop* when the stage would
start the frame after its deadline. The frames waiting at a stage at time ``t``
are the earlier frames admitted to it whose (would-be) start is after ``t``:
starts at a FIFO stage (the cloud's ``c`` servers included) come in arrival order,
so a deque of start times per bounded stage, popped from the front as ``t``
grows, counts them in O(1) amortised. A dropped frame occupies neither the stage
it was dropped at nor any later one (the stage's free time stays as it was), and
is never reported to the policy. A stage that would start a frame only at t = inf
(behind a transfer that never ends) never starts it: unfinished, not dropped.

Hedged execution (``hedge`` in the scenario; :mod:`adaptsim.simulator.hedge`) keeps
it too: a practical policy's frame runs on two paths at once, each stage's start
still ``max(ready, free)``, with the uplink's priority and the cancellation worked
out per frame (:meth:`HedgedServe.serve_hedged`). Without the key :meth:`_Run.serve`
runs unchanged, and the records have no hedge columns.

Service times come from the calibration at the stress in force when the stage
starts (cumulative block sums precomputed per stress level), times a noise
factor drawn from the calibration's spread (vectorised, up front). Where the
cloud shares the edge's machine (``Scenario.cloud_scale_by_edge_cpu``, a
validation fold-back), the cloud stage's time is also times the factor at the
edge CPU stress in force when the cloud stage starts (the naive engine the same). Everything
random comes from one ``numpy.random.Generator`` seeded per run, drawn in a fixed
order, so the same scenario and seed give the same records bit for bit.
"""

from __future__ import annotations

import gc
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from heapq import heappop, heappush, heapreplace
from pathlib import Path

import numpy as np
import simpy

from adaptsim.errors import UserError
from adaptsim.simulator.admission import Stage
from adaptsim.simulator.decision import checked_decision
from adaptsim.simulator.draws import draw
from adaptsim.simulator.hedge import HedgedServe, hedge_columns
from adaptsim.simulator.link import Link
from adaptsim.simulator.monitor import Monitor, seen_conditions, true_conditions
from adaptsim.simulator.policies import Conditions, View, resolve_policy
from adaptsim.simulator.record import RECORD_COLUMNS, Record, columns, observation
from adaptsim.simulator.scenario import Scenario
from adaptsim.simulator.traces import EPS_S

_new_tuple = tuple.__new__

__all__ = ["RECORD_COLUMNS", "RunStats", "Tables", "policy_view", "run_policy"]


class Tables:
    """Per-(edge CPU %, edge memory %) lookups of the calibration, cached per stress level.

    For each stress level: cumulative edge seconds per point, and the link law's
    overhead, wire bytes and host seconds per point (at the scenario's cloud CPU
    stress).
    """

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        m = scenario.model
        self.cloud_s = m.cloud_cum.at(scenario.cloud_cpu_pct, scenario.cloud_mem_pct)[0][0]
        self.cloud_list: list[float] = self.cloud_s.tolist()
        self._cache: dict[tuple[float, float], tuple[np.ndarray, ...]] = {}
        self._lists: dict[tuple[float, float], tuple[list[float], ...]] = {}
        self._laws: dict[tuple[float, float], dict[int, tuple[float, float, float]]] = {}

    def at(self, cpu: float, mem: float):
        key = (cpu, mem)
        hit = self._cache.get(key)
        if hit is None:
            m = self.scenario.model
            edge = m.edge_cum.at(cpu, mem)[0][0]
            law = m.link_at(cpu, self.scenario.cloud_cpu_pct)[0][0]
            hit = (edge, law[:, 0].copy(), law[:, 1].copy(), law[:, 2].copy())
            self._cache[key] = hit
        return hit

    def uplink_law(self, cpu: float, mem: float) -> dict[int, tuple[float, float, float]]:
        """Point ordinal -> (overhead s, wire bytes, host s) of the link law at a stress
        level, as Python floats: a policy scores each finished upload against it."""
        key = (cpu, mem)
        hit = self._laws.get(key)
        if hit is None:
            _, over, wire_bytes, host = self.lists(cpu, mem)
            ordinals = self.scenario.model.ordinals.tolist()
            hit = {o: (over[i], wire_bytes[i], host[i]) for i, o in enumerate(ordinals)}
            self._laws[key] = hit
        return hit

    def lists(self, cpu: float, mem: float) -> tuple[list[float], ...]:
        """:meth:`at` as lists of Python floats: the engine indexes one entry per frame,
        and a numpy scalar costs several times a float in that arithmetic (the values,
        and so the records, are the same)."""
        key = (cpu, mem)
        hit = self._lists.get(key)
        if hit is None:
            hit = tuple(x.tolist() for x in self.at(cpu, mem))
            self._lists[key] = hit
        return hit


def policy_view(
    scenario: Scenario,
    tables: Tables,
    policy=None,
    truth: Callable[[float], Conditions] | None = None,
    lookahead: Callable[[], np.ndarray] | None = None,
) -> View:
    """A fresh :class:`View` of the scenario for a run's policy (either engine's, or the
    testbed's). ``truth`` and ``lookahead`` reach only a clairvoyant ``policy``.
    Where the scenario has a :class:`~adaptsim.simulator.scenario.Belief`, the view's
    calibration tables and switch cost are the belief's: every policy predicts as the
    real run's did (static-best picks the same point), while the oracle's look-ahead
    is the engine's own, of the world."""
    seer = policy is not None and policy.clairvoyant
    pause_s = scenario.pause_s
    belief = scenario.belief
    if belief is not None:
        scenario = replace(scenario, model=belief.model, belief=None)
        tables, pause_s = Tables(scenario), belief.pause_s
    return View(
        model=scenario.model,
        tables=tables,
        cloud_cpu_pct=scenario.cloud_cpu_pct,
        cloud_mem_pct=scenario.cloud_mem_pct,
        arrival_rate_hz=scenario.rate_hz,
        cloud_servers=scenario.cloud_servers,
        pause_s=pause_s,
        one_way_latency_s=scenario.one_way_latency_s,
        _truth=truth if seer else None,
        _lookahead=lookahead if seer else None,
    )


class _Stress:
    """The stress level in force at a time, remembering the current step (times only grow).

    ``row(t)`` is the :meth:`Tables.lists` entry in force at ``t``; it is the same
    while ``start <= t < until`` (the engine checks that inline, per frame).
    """

    def __init__(self, scenario: Scenario, tables: Tables):
        self.cpu, self.mem, self.tables = scenario.edge_cpu, scenario.edge_mem, tables
        self.start = self.until = -1.0
        self.current = None

    def row(self, t: float):
        if not (self.start <= t < self.until):
            self.current = self.tables.lists(self.cpu.at(t), self.mem.at(t))
            self.start = t
            self.until = min(self.cpu.next_change(t), self.mem.next_change(t)) - EPS_S
        return self.current


@dataclass
class RunStats:
    repartitions: int = 0
    switching_s: float = 0.0
    hedged: bool = False  # its frames raced a second path (the scenario's ``hedge``)


class _Run(HedgedServe):
    """State of one simulation run (one policy, one seed)."""

    def __init__(self, scenario: Scenario, policy_spec, seed: int, tables: Tables | None):
        self.sc, self.seed = scenario, seed
        draws = draw(scenario, seed)
        self.arrivals = draws.arrivals_s
        # As Python floats: serve() reads one of each per frame (numpy scalars cost more);
        # the noise as one list per part (a list per frame would be 10^5 small objects),
        # per point column (``_fe[k][i]``); points drawing the same factors share lists.
        self._arrival_s: list[float] = draws.arrivals_s.tolist()
        per_array = {id(a): tuple(a[:, j].tolist() for j in range(3)) for a in draws.noise}
        self._fe, self._fl, self._fc = (
            [per_array[id(a)][j] for a in draws.noise] for j in range(3)
        )
        self.monitor = Monitor(scenario, draws.monitor_noise)
        self.policy = resolve_policy(policy_spec, scenario.model, base_dir=Path(scenario.base_dir))
        self.tables = tables or Tables(scenario)
        self.link = Link(scenario.bandwidth)
        self.edge_stress = _Stress(scenario, self.tables)
        self.link_stress = _Stress(scenario, self.tables)
        m = scenario.model
        self.col = {int(o): i for i, o in enumerate(m.ordinals)}
        # hedged: every practical policy, and a racing oracle (its look-ahead the race's)
        pol = self.policy
        hedged = scenario.hedge is not None and (not pol.clairvoyant or pol.races)
        ahead = self.race_lookahead if hedged and pol.races else self.lookahead
        self.view = policy_view(scenario, self.tables, pol, self.truth, ahead)
        self.free_switching = self.policy.free_switching
        self.wants_finished = self.policy.uses_finished
        self.stats = RunStats()
        self.edge_free = 0.0
        self.link_free = 0.0
        self.cloud_free = [0.0] * scenario.cloud_servers
        self.pending: list[tuple[float, int, Record]] = []  # by when the result is back
        self.in_flight: deque[tuple[float, float, float]] = deque()  # see _update_view
        self.current: int | None = None  # set, without cost, by the first decision
        self._switched = False
        self._i = 0
        self.records: list[Record] = []
        self.payload = scenario.model.output_bytes.tolist()
        self.cloud_s = self.tables.cloud_list
        self.owl = scenario.one_way_latency_s
        self.per_frame = self.policy.period_s is None
        # the cloud slowed by the edge's load (empty: never; the hot path skips it)
        self.cloud_by_edge_cpu = bool(scenario.cloud_scale_by_edge_cpu)
        self._cloud_factors: dict[float, float] = {}
        if scenario.admission.active:  # the plain serve() stays as it was, and as fast
            self.serve = self.serve_admitted
            adm = scenario.admission
            # Per bounded stage: the (would-be) start times of the frames admitted to it,
            # in order; those still ahead of a time are the frames waiting then.
            self._starts = {s: deque() for s in Stage if adm.limit(s) is not None}
        if hedged:
            if scenario.admission.active or self.cloud_by_edge_cpu:
                raise UserError(
                    f"{scenario.source}: field hedge: racing with admission control or a "
                    "fold-back cloud is not built; remove one of them"
                )
            self._start_hedge(scenario.hedge)  # serve() stays as it was for the rest
            self.stats.hedged = True

    # -- conditions -------------------------------------------------------------
    def truth(self, t: float) -> Conditions:
        return true_conditions(self.sc, t)

    def _update_view(self, now: float) -> None:
        v = self.view
        v.now_s = now
        v.current_point = self.current if self.current is not None else self._deployed()
        v.monitor = self.monitor.read(now)
        v.edge_free_s = self.edge_free
        flight = self.in_flight  # (edge end, uplink end, payload) in uplink order
        while flight and flight[0][1] <= now:
            flight.popleft()
        unacked = 0.0
        for edge_end, _, payload in flight:
            if edge_end > now:
                break
            unacked += payload
        v.uplink_unacked_bytes = unacked
        v.last_arrival_s = self._arrival_s[self._i] if self._arrival_s else 0.0
        finished = []
        pending = self.pending  # empty unless the policy reads View.finished (see serve)
        while pending and pending[0][0] <= now:
            finished.append(observation(heappop(pending)[2]))
        v.finished = finished

    def _deployed(self) -> int:
        """Before any decision, the split in place is the best for the conditions at t = 0
        (as the monitor sees them: the real edge deploys by the trace)."""
        return self.view.best_point(seen_conditions(self.sc, 0.0))

    def cloud_factor(self, start_s: float) -> float:
        """The cloud's seconds factor for a cloud stage starting at ``start_s``: by the
        edge CPU stress in force then (``Scenario.cloud_scale_by_edge_cpu``)."""
        cpu = self.sc.edge_cpu.at(start_s)
        f = self._cloud_factors.get(cpu)
        if f is None:
            f = self._cloud_factors[cpu] = self.sc.cloud_factor(cpu)
        return f

    def decide(self, now: float) -> None:
        self._update_view(now)
        point = checked_decision(self.policy, self.view, self.col, self.seed, self.sc.model.model)
        if self.current is None:  # deployment: the first decision sets the split, free
            self.current = point
            return
        if point != self.current:
            self.stats.repartitions += 1
            if not self.free_switching and self.sc.pause_s > 0:
                self.edge_free = max(self.edge_free, now) + self.sc.pause_s
                self.stats.switching_s += self.sc.pause_s
            self.current = point
            self._switched = True

    # -- service ----------------------------------------------------------------
    def lookahead(self) -> np.ndarray:
        """Completion time of the current request at every point (the oracle's view).

        A point other than the current one starts on the edge after the switch pause,
        as :meth:`decide` will charge it (unless the policy switches free, or this is
        the deployment decision, which is free)."""
        i, a = self._i, self.view.now_s
        fe_k, fl_k, fc_k = self._fe, self._fl, self._fc
        stay_start = max(a, self.edge_free)
        pause = 0.0 if self.free_switching or self.current is None else self.sc.pause_s
        move_start = stay_start + pause
        stay_cum = self.edge_stress.row(stay_start)[0]
        move_cum = self.edge_stress.row(move_start)[0] if pause > 0 else stay_cum
        current = self.col[self.current] if self.current is not None else -1
        done = np.empty(len(stay_cum))
        cloud_first = self.cloud_free[0]
        cloud_s = self.tables.cloud_list
        owl = self.sc.one_way_latency_s
        for k in range(len(stay_cum)):
            edge_start, edge_cum = (
                (stay_start, stay_cum) if k == current else (move_start, move_cum)
            )
            fe, fl, fc = fe_k[k][i], fl_k[k][i], fc_k[k][i]
            e = edge_cum[k] * fe
            edge_end = edge_start + e
            ls = max(edge_end, self.link_free)
            law = self.tables.lists(self.sc.edge_cpu.at(ls), self.sc.edge_mem.at(ls))
            fin = self._sent(ls, k, fl, law)
            c = cloud_s[k] * fc
            if c > 0:
                cs = max(fin + owl, cloud_first)
                end = cs + (c * self.cloud_factor(cs) if self.cloud_by_edge_cpu else c)
            else:
                end = fin + owl
            done[k] = end + owl
        return done

    def _sent(self, ls: float, k: int, fl: float, law: tuple) -> float:
        """When point k's transfer, started at ``ls``, ends: the wire's end or, if later,
        the hosts' own sending and receiving (``law``: a :meth:`Tables.lists` entry)."""
        _, over, wire_bytes, host = law
        fin = self.link.finish(ls + over[k] * fl, wire_bytes[k] * fl)
        host_end = ls + host[k] * fl
        return fin if fin > host_end else host_end

    def serve(self, i: int) -> None:
        """Serve request i at its arrival time (see the module docstring).

        The per-frame hot path: plain floats and locals (the same arithmetic, in the
        same order, as :meth:`serve_admitted` without its checks)."""
        a = self._arrival_s[i]
        self._i = i
        if self.per_frame:
            self.decide(a)
        k = self.col[self.current]
        fe, fl, fc = self._fe[k][i], self._fl[k][i], self._fc[k][i]
        owl = self.owl
        free = self.edge_free
        # Every frame passes the edge in order, all-cloud ones with nothing to compute:
        # the edge application takes frames one at a time.
        es = a if a > free else free
        st = self.edge_stress
        row = st.current if st.start <= es < st.until else st.row(es)
        e = row[0][k] * fe
        edge_end = es + e
        self.edge_free = edge_end
        free = self.link_free
        ls = edge_end if edge_end > free else free
        st = self.link_stress
        _, over, wire, host = st.current if st.start <= ls < st.until else st.row(ls)
        fin = self.link.finish(ls + over[k] * fl, wire[k] * fl)
        host_end = ls + host[k] * fl
        if host_end > fin:
            fin = host_end
        self.link_free = fin
        payload = self.payload[k]
        self.in_flight.append((edge_end, fin, payload))
        c = self.cloud_s[k] * fc
        arrive = fin + owl
        if c > 0:
            cloud = self.cloud_free
            free = cloud[0]
            cs = arrive if arrive > free else free
            if self.cloud_by_edge_cpu:
                c *= self.cloud_factor(cs)
            ce = cs + c
            heapreplace(cloud, ce)
        else:
            cs = ce = arrive
        done = ce + owl
        # tuple.__new__ builds the NamedTuple without its Python-level __new__ (2x faster).
        record = _new_tuple(Record, (
            i, a, self.current, self._switched, es - a, e, ls - edge_end, fin - ls,
            cs - arrive, c, done - a, done, payload, False, "",
        ))  # fmt: skip
        self.records.append(record)
        self._switched = False
        if self.wants_finished:  # only a policy that reads View.finished needs them
            heappush(self.pending, (done, i, record))

    # -- admission (see adaptsim.simulator.admission) ------------------------------
    def _full(self, stage: Stage, t: float, free_s: float) -> bool:
        """Would a frame reaching ``stage`` at ``t`` find its queue full and have to wait?

        The frames waiting at ``t`` are those admitted earlier whose (would-be) start
        is after ``t``: starts at a FIFO stage come in arrival order, so the ones at or
        before ``t`` leave the front of the deque for good.
        """
        limit = self.sc.admission.limit(stage)
        if limit is None or t == math.inf:
            return False
        starts = self._starts[stage]
        while starts and starts[0] <= t:
            starts.popleft()
        return free_s > t and len(starts) >= limit

    def _waited(self, stage: Stage, start_s: float) -> None:
        """The frame waits at ``stage`` until ``start_s`` (when it starts or is dropped)."""
        if stage in self._starts:
            self._starts[stage].append(start_s)

    def _drop(self, i, a, point, switched, stage: Stage, parts, payload_bytes) -> None:
        """Record frame i as dropped at ``stage``; ``parts``: its six stage times so far."""
        self.records.append(
            Record(
                i, a, point, switched, *parts, math.inf, math.inf, payload_bytes, True, stage.value
            )
        )

    def serve_admitted(self, i: int) -> None:
        """:meth:`serve` with admission control: each stage may refuse the frame (a tail
        drop when its queue is full, a stale drop when it would start the frame after
        its deadline); a dropped frame occupies neither that stage nor any later one."""
        a = self._arrival_s[i]
        self._i = i
        if self.per_frame:
            self.decide(a)
        point, switched = self.current, self._switched
        self._switched = False
        k = self.col[point]
        fe, fl, fc = self._fe[k][i], self._fl[k][i], self._fc[k][i]
        owl = self.sc.one_way_latency_s
        late = self.sc.admission.stale_after(a, self.sc.deadline_s)
        drop = self._drop
        if self._full(Stage.edge, a, self.edge_free):
            return drop(i, a, point, switched, Stage.edge, (0.0,) * 6, 0.0)
        es = a if a > self.edge_free else self.edge_free
        self._waited(Stage.edge, es)
        if es > late:
            return drop(i, a, point, switched, Stage.edge, (es - a,) + (0.0,) * 5, 0.0)
        e = self.edge_stress.row(es)[0][k] * fe
        edge_end = es + e
        self.edge_free = edge_end
        parts = (es - a, e)
        if self._full(Stage.uplink, edge_end, self.link_free):
            return drop(i, a, point, switched, Stage.uplink, parts + (0.0,) * 4, 0.0)
        ls = edge_end if edge_end > self.link_free else self.link_free
        self._waited(Stage.uplink, ls)
        if late < ls < math.inf:
            self.in_flight.append((edge_end, ls, self.payload[k]))  # it waited, then left
            parts += (ls - edge_end, 0.0, 0.0, 0.0)
            return drop(i, a, point, switched, Stage.uplink, parts, 0.0)
        fin = self._sent(ls, k, fl, self.link_stress.row(ls))
        self.link_free = fin
        self.in_flight.append((edge_end, fin, self.payload[k]))
        parts += (ls - edge_end, fin - ls)
        c = self.tables.cloud_s[k] * fc
        arrive = fin + owl
        if c > 0:
            free = self.cloud_free[0]
            if self._full(Stage.cloud, arrive, free):
                parts += (0.0, 0.0)
                return drop(i, a, point, switched, Stage.cloud, parts, self.payload[k])
            cs = arrive if arrive > free else free
            self._waited(Stage.cloud, cs)
            if late < cs < math.inf:
                parts += (cs - arrive, 0.0)
                return drop(i, a, point, switched, Stage.cloud, parts, self.payload[k])
            if self.cloud_by_edge_cpu:
                c *= self.cloud_factor(cs)
            ce = cs + c
            heapreplace(self.cloud_free, ce)
        else:
            cs = ce = arrive
        done = ce + owl
        record = Record(
            i, a, point, switched, *parts, cs - arrive, c, done - a, done, self.payload[k]
        )
        self.records.append(record)
        if self.wants_finished:
            heappush(self.pending, (done, i, record))


def arrivals(env: simpy.Environment, run: _Run):
    """Frames reach the edge; each is served the moment it arrives."""
    timeout = env.timeout
    serve = run.serve
    for i, a in enumerate(run.arrivals.tolist()):
        if a > env.now:
            yield timeout(a - env.now)
        serve(i)


def controller(env: simpy.Environment, run: _Run):
    """A periodic policy decides every ``period_s`` seconds, from t = 0."""
    period = run.policy.period_s
    while env.now < run.sc.duration_s:
        run.decide(env.now)
        yield env.timeout(period)


def _drive(run: _Run) -> None:
    """Serve every frame and make every periodic decision, in SimPy's event order.

    The same run as ``arrivals`` and ``controller`` (registered in that order) on a
    ``simpy.Environment``, event for event, without SimPy's per-event cost (a
    Timeout, a heap entry and a generator resume per frame, a third of the run
    time). Between two decisions the frames are independent of the event loop, so
    only where decisions fall among the frames matters, and that is SimPy's order
    replayed exactly: each actor's next event at ``now + delay`` (the same float
    sums, so the same times), ties between them broken by which was scheduled
    first (SimPy's event id), a frame arriving at its predecessor's time served at
    once. ``tests/test_simulator_drive.py`` holds the two to the same records.
    """
    serve = run.serve
    arrival_s = run._arrival_s
    n = len(arrival_s)
    period = run.policy.period_s
    inf = math.inf
    i = 0
    if period is None:  # decisions are made in serve(), per frame: no events to merge
        while i < n:
            serve(i)
            i += 1
        return
    until = run.sc.duration_s
    decide = run.decide
    next_id = 0  # SimPy's event ids: the order in which the timeouts were scheduled

    def due(now: float) -> tuple[float, int]:
        """The arrivals actor at ``now``: serve the frames already due, then the time and
        event id of its next timeout (inf: none)."""
        nonlocal i, next_id
        while i < n and arrival_s[i] <= now:
            serve(i)
            i += 1
        if i == n:
            return inf, 0
        next_id += 1
        return now + (arrival_s[i] - now), next_id - 1

    # The controller starts first at t = 0 (SimPy runs processes in the order registered).
    decide(0.0)
    tick, tick_id, next_id = 0.0 + period, 0, 1  # the controller's next timeout, its id
    at, at_id = due(0.0)
    while at < inf or tick < inf:
        if at < tick or (at == tick and at_id < tick_id):
            serve(i)  # the frame the timeout was for (``at`` may round a hair off it)
            i += 1
            at, at_id = due(at)
        elif tick < until:
            decide(tick)
            tick, tick_id, next_id = tick + period, next_id, next_id + 1
        else:
            tick = inf


def run_policy(scenario: Scenario, policy_spec, seed: int, tables: Tables | None = None):
    """Simulate one policy with one seed; returns (record columns, RunStats, policy name).

    The cyclic garbage collector is paused while the run builds its records and
    their columns: the run makes no reference cycles, and the collector's passes
    over tens of thousands of fresh record tuples cost a fifth of the run time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        run = _Run(scenario, policy_spec, seed, tables)
        _drive(run)
        cols = columns(run.records)
        if scenario.hedge is not None or run.stats.hedged:  # else: the records as ever
            cols.update(hedge_columns(run, len(run.records)))
        return cols, run.stats, run.policy.name
    finally:
        if was_enabled:
            gc.enable()
