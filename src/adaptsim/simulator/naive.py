"""A naive SimPy engine: one process per request, SimPy resources, blocks summed anew.

It exists for two reasons: as the benchmark's baseline (``adaptsim bench``), and
as an independent second implementation of the same semantics, so that tests
can hold the fast engine's records against it and a bug in either shows as a
difference. It shares with the fast engine only the scenario, the calibration
(its per-block grids and link law, read here directly; the policies' own
prediction tables) and the run's random draws (:func:`~adaptsim.simulator.draws.draw`).
Everything else is its own: the processes, the queues (``simpy.Resource`` for
the edge CPU, the uplink and the ``c`` cloud servers), the transfer (stepping
through the bandwidth trace segment by segment with timeouts), the monitor's
readings, the decisions' bookkeeping (deployment, re-partitions, the pause held
on the edge CPU) and the records.

Admission control is its own too: the edge's tail drop replays the edge's queue
when a frame arrives (:meth:`_Naive.edge_queue`), the uplink's and the cloud's
read the ``simpy.Resource`` queues once the instant has settled (a priority-2
event, after every release and grant at that time), and a stale frame is
dropped when its request is granted, releasing the resource at once.

Hedged execution (the scenario key ``hedge``) is its own too, as processes and
preemptive resources (:mod:`adaptsim.simulator.naive_hedge`); a hedged run refuses
in one line a policy that reads the edge's or the uplink's backlog, the diagnostic
loser loads (``fifo``, ``ignore``), admission control and a fold-back cloud.

Look-ahead policies (the oracle) are not supported: their look-ahead is the
fast engine's analytic queue state, which a process-per-request engine does not
have.
"""

from __future__ import annotations

import math
from pathlib import Path

import simpy

from adaptsim.errors import UserError
from adaptsim.simulator.admission import Stage
from adaptsim.simulator.draws import draw
from adaptsim.simulator.engine import RunStats, Tables, policy_view
from adaptsim.simulator.hedge import hedge_columns
from adaptsim.simulator.naive_hedge import NaiveRace
from adaptsim.simulator.policies import Conditions, resolve_policy
from adaptsim.simulator.record import Record, columns, observation
from adaptsim.simulator.scenario import Scenario
from adaptsim.simulator.traces import EPS_S
from adaptsim.units import bytes_per_s

__all__ = ["run_policy_naive"]


class _Naive(NaiveRace):
    """One run of the naive engine: resources, policy, monitor and records."""

    def __init__(self, scenario: Scenario, policy_spec, seed: int, env: simpy.Environment):
        self.env = env
        self.sc = scenario
        draws = draw(scenario, seed)
        self.arrivals = draws.arrivals_s.tolist()
        self.noise = draws.noise
        self.monitor_noise = draws.monitor_noise
        m = scenario.model
        self.policy = resolve_policy(policy_spec, m, base_dir=Path(scenario.base_dir))
        self.edge = simpy.Resource(env, capacity=1)
        self.uplink = simpy.Resource(env, capacity=1)
        self.cloud = simpy.Resource(env, capacity=scenario.cloud_servers)
        self.ordinals = [int(o) for o in m.ordinals]
        # The policies' predictions come from the calibration's tables, not the service times.
        self.view = policy_view(
            scenario, Tables(scenario), self.policy, self.truth, self._no_lookahead
        )
        self.stats = RunStats()
        self.point: int | None = None  # set by the first decision, free
        self.switched = False
        self.records: list[Record] = []
        self.delivered: list[Record] = []  # results back at the edge, not yet shown to the policy
        self._reading: tuple[int, Conditions] | None = None
        self._grid_cache: dict[tuple, object] = {}
        # What waits for the edge CPU, in FIFO order: ("frame", point index, noise factor)
        # or ("pause", seconds); and when the item holding it now lets go.
        self.edge_waiting: list[tuple] = []
        self.edge_busy_until = 0.0
        self.last_arrival = 0.0
        self.on_uplink: dict[int, float] = {}  # frames done on the edge, not yet delivered
        # a hedged scenario races every practical policy's frames (the bounds: never)
        self.racing = scenario.hedge is not None and not self.policy.clairvoyant
        if self.racing:
            self.start_race()

    def _no_lookahead(self):
        """Whatever the policy is called: a look-ahead here is refused in one line."""
        raise ValueError(
            f"policy {self.policy.name}: the naive engine does not support look-ahead policies"
        )

    # -- what a policy sees ----------------------------------------------------
    def truth(self, t: float) -> Conditions:
        sc = self.sc
        return Conditions(sc.bandwidth.at(t), sc.edge_cpu.at(t), sc.edge_mem.at(t))

    def written(self, t: float) -> Conditions:
        """The traces as written at ``t``: what the monitor reads, where a folded-back
        twin's world follows them late (the belief keeps them); else the truth."""
        bw, cpu, mem = self.sc.seen_traces()
        return Conditions(bw.at(t), cpu.at(t), mem.at(t))

    def reading(self, now: float) -> Conditions:
        """The monitor's latest reading: taken at whole periods, of the traces as written
        ``delay`` earlier."""
        sc = self.sc
        index = math.floor(now / sc.observe_period_s + 1e-9)
        if self._reading is None or self._reading[0] != index:
            taken = index * sc.observe_period_s
            true = self.written(max(taken - sc.observe_delay_s, 0.0))
            bw_f, cpu_f, mem_f = self.monitor_noise[min(index, len(self.monitor_noise) - 1)]
            seen = Conditions(
                true.bandwidth_mbps * bw_f,
                min(true.edge_cpu_pct * cpu_f, 100.0),
                min(true.edge_mem_pct * mem_f, 100.0),
            )
            self._reading = (index, seen)
        return self._reading[1]

    def decide(self) -> None:
        now = self.env.now
        v = self.view
        v.now_s = now
        if self.point is None:  # before any decision: the best split for t = 0
            v.current_point = v.best_point(self.written(0.0))
        else:
            v.current_point = self.point
        v.monitor = self.reading(now)
        v.edge_free_s = self.edge_backlog_end(now)
        v.uplink_unacked_bytes = float(sum(self.on_uplink.values()))
        v.last_arrival_s = self.last_arrival
        back = sorted((r for r in self.delivered if r.done_s <= now), key=lambda r: r.done_s)
        self.delivered = [r for r in self.delivered if r.done_s > now]
        v.finished = [observation(r) for r in back] if self.policy.uses_finished else []
        chosen = int(self.policy.decide(v))
        if chosen not in self.ordinals:
            raise ValueError(
                f"policy {self.policy.name} chose point {chosen}, which is not a point"
            )
        if self.point is None:
            self.point = chosen
            return
        if chosen == self.point:
            return
        self.stats.repartitions += 1
        self.point = chosen
        self.switched = True
        if self.sc.pause_s > 0 and not self.policy.free_switching:
            self.stats.switching_s += self.sc.pause_s
            self.env.process(self.pause(self.sc.pause_s))

    def pause(self, seconds: float):
        """Swapping sub-models holds the edge CPU, behind the frames already queued."""
        item = ("pause", seconds)
        self.edge_waiting.append(item)
        with self.edge.request() as turn:
            yield turn
            self.edge_waiting.remove(item)
            self.edge_busy_until = self.env.now + seconds
            yield self.env.timeout(seconds)

    def edge_backlog_end(self, now: float) -> float:
        """When the edge CPU would be free of everything queued now (what an edge
        application knows of its own queue)."""
        return self.edge_queue(now)[0]

    def edge_queue(self, now: float) -> tuple[float, int]:
        """(when the edge CPU would be free, frames waiting for it), replayed item by
        item: each frame's head time at the stress in force when it would start, a
        stale frame (``drop: stale``) skipped, since it will be dropped at its turn."""
        t = max(now, self.edge_busy_until)
        waiting = 0
        for item in self.edge_waiting:
            if item[0] == "pause":
                t += item[1]
                continue
            waiting += t > now
            if t > item[4]:  # its deadline has passed by its turn (stale drops only)
                continue
            t += self.edge_s(item[1], t) * item[2]
        return t, waiting

    # -- service times, from the calibration's blocks --------------------------
    def _blocks(self, side: str, cpu: float, mem: float) -> tuple[list[float], list[float]]:
        """The calibration's blocks and extras on one side at a stress level (kept per level:
        interpolating the grid anew is not what the baseline is about)."""
        key = (side, cpu, mem)
        hit = self._grid_cache.get(key)
        if hit is None:
            m = self.sc.model
            grids = (
                (m.edge_blocks, m.edge_extra) if side == "edge" else (m.cloud_blocks, m.cloud_extra)
            )
            hit = self._grid_cache[key] = tuple(g.at(cpu, mem)[0][0].tolist() for g in grids)
        return hit

    def edge_s(self, k: int, t: float) -> float:
        """Head blocks 1..k plus point k's extra, summed anew, at the stress in force at t."""
        blocks, extra = self._blocks("edge", self.sc.edge_cpu.at(t), self.sc.edge_mem.at(t))
        return float(sum(blocks[: k + 1]) + extra[k])

    def cloud_s(self, k: int) -> float:
        """Tail blocks after k plus point k's extra, summed anew."""
        blocks, extra = self._blocks("cloud", self.sc.cloud_cpu_pct, self.sc.cloud_mem_pct)
        return float(sum(blocks[k + 1 :]) + extra[k])

    def link_law(self, k: int, t: float) -> tuple[float, float, float]:
        """Point k's link law (overhead s, wire bytes, host s) at the edge CPU stress at t."""
        cpu = self.sc.edge_cpu.at(t)
        hit = self._grid_cache.get(("link", cpu))
        if hit is None:
            hit = self._grid_cache[("link", cpu)] = self.sc.model.link_at(
                cpu, self.sc.cloud_cpu_pct
            )[0][0].tolist()
        return tuple(hit[k])

    def send(self, payload_bytes: float):
        """Push the bytes through the bandwidth trace, one constant step at a time."""
        env, trace = self.env, self.sc.bandwidth
        left = payload_bytes
        while left > 1e-9:
            now = env.now
            step_end = trace.next_change(now)
            if step_end <= now:  # a hair before a looped trace wraps (fmod): on the wrap
                now += EPS_S
                step_end = trace.next_change(now)
            rate = bytes_per_s(trace.at(now))
            if rate > 0 and left <= rate * (step_end - env.now):
                yield env.timeout(left / rate)
                return
            if math.isinf(step_end):  # a rate of zero for good: stalled forever
                yield env.timeout(math.inf)
                return
            left -= rate * (step_end - env.now)
            yield env.timeout(step_end - env.now)

    # -- processes -------------------------------------------------------------
    def frame(self, i: int, arrival: float, point: int, switched: bool):
        """One frame: edge CPU, uplink, one-way latency, a cloud server, the way back."""
        env, sc = self.env, self.sc
        k = self.ordinals.index(point)
        f_edge, f_link, f_cloud = self.noise[k][i].tolist()
        late = sc.admission.stale_after(arrival, sc.deadline_s)
        item = ("frame", k, f_edge, i, late)
        self.edge_waiting.append(item)
        with self.edge.request() as turn:  # all-cloud frames pass too, computing nothing
            yield turn
            self.edge_waiting.remove(item)
            edge_start = env.now
            if edge_start > late:
                self.drop(i, arrival, point, switched, Stage.edge, edge_start - arrival)
                return
            edge = self.edge_s(k, edge_start) * f_edge
            self.edge_busy_until = edge_start + edge
            yield env.timeout(edge)
        edge_end = env.now
        ahead = (edge_start - arrival, edge)
        limit = sc.admission.limit(Stage.uplink)
        if limit is not None and math.isfinite(edge_end):
            yield _Settle(env)
            if _full(self.uplink, limit):
                self.drop(i, arrival, point, switched, Stage.uplink, *ahead, 0.0)
                return
        self.on_uplink[i] = float(sc.model.output_bytes[k])
        with self.uplink.request() as turn:
            yield turn
            link_start = env.now
            if late < link_start < math.inf:
                del self.on_uplink[i]  # never sent: no longer waiting on the uplink
                wait = link_start - edge_end
                self.drop(i, arrival, point, switched, Stage.uplink, *ahead, wait)
                return
            overhead_s, wire_bytes, host_s = (x * f_link for x in self.link_law(k, link_start))
            yield env.timeout(overhead_s)
            yield from self.send(wire_bytes)
            hosts_done = link_start + host_s
            if env.now < hosts_done:  # the hosts' own sending and receiving bind
                yield env.timeout(hosts_done - env.now)
            link_end = env.now
        del self.on_uplink[i]
        yield env.timeout(sc.one_way_latency_s)
        at_cloud = env.now
        cloud = self.cloud_s(k) * f_cloud
        cloud_start = at_cloud
        if cloud > 0:
            ahead += (link_start - edge_end, link_end - link_start)
            sent = float(sc.model.output_bytes[k])
            limit = sc.admission.limit(Stage.cloud)
            if limit is not None and math.isfinite(at_cloud):
                yield _Settle(env)
                if _full(self.cloud, limit):
                    self.drop(i, arrival, point, switched, Stage.cloud, *ahead, 0.0, sent=sent)
                    return
            with self.cloud.request() as turn:
                yield turn
                cloud_start = env.now
                if late < cloud_start < math.inf:
                    wait = cloud_start - at_cloud
                    self.drop(i, arrival, point, switched, Stage.cloud, *ahead, wait, sent=sent)
                    return
                # slowed by the edge's CPU stress in force now, where they share a machine
                cloud *= sc.cloud_factor(sc.edge_cpu.at(cloud_start))
                yield env.timeout(cloud)
        yield env.timeout(sc.one_way_latency_s)
        done = env.now
        record = Record(
            request=i,
            arrival_s=arrival,
            point=point,
            switched=switched,
            edge_wait_s=edge_start - arrival,
            edge_s=edge,
            uplink_wait_s=link_start - edge_end,
            uplink_s=link_end - link_start,
            cloud_wait_s=cloud_start - at_cloud,
            cloud_s=cloud,
            latency_s=done - arrival,
            done_s=done,
            payload_bytes=float(sc.model.output_bytes[k]),
        )
        self.records.append(record)
        self.delivered.append(record)

    def drop(self, i, arrival, point, switched, stage: Stage, *parts, sent: float = 0.0):
        """Record frame i as dropped at ``stage``: the parts it went through (a wait up to
        the drop included), zero for the rest; nothing comes back, so no policy hears of it."""
        parts = parts + (0.0,) * (6 - len(parts))
        self.records.append(
            Record(
                request=i,
                arrival_s=arrival,
                point=point,
                switched=switched,
                edge_wait_s=parts[0],
                edge_s=parts[1],
                uplink_wait_s=parts[2],
                uplink_s=parts[3],
                cloud_wait_s=parts[4],
                cloud_s=parts[5],
                latency_s=math.inf,
                done_s=math.inf,
                payload_bytes=sent,
                dropped=True,
                drop_stage=stage.value,
            )
        )

    def source(self):
        """Frames reach the edge at their drawn times; per-request policies decide first."""
        env = self.env
        for i, arrival in enumerate(self.arrivals):
            if arrival > env.now:
                yield env.timeout(arrival - env.now)
            self.last_arrival = arrival
            if self.policy.period_s is None:
                self.decide()
            limit = self.sc.admission.limit(Stage.edge)
            if limit is not None:  # a full edge queue: the frame is not taken (tail drop)
                free, waiting = self.edge_queue(env.now)
                if free > env.now and waiting >= limit:
                    self.drop(i, arrival, self.point, self.switched, Stage.edge)
                    self.switched = False
                    continue
            frame = self.hedged_frame if self.racing else self.frame
            env.process(frame(i, arrival, self.point, self.switched))
            self.switched = False

    def ticker(self):
        """A periodic policy decides at 0, period, 2 * period, ... until the end."""
        env = self.env
        while env.now < self.sc.duration_s:
            self.decide()
            yield env.timeout(self.policy.period_s)


class _Settle(simpy.Event):
    """An event at the current time that fires after every other event of this instant
    (priority 2, below SimPy's NORMAL 1), so a queue is read once the instant's
    releases and grants have all happened: a frame that starts now is not waiting."""

    def __init__(self, env: simpy.Environment):
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, priority=2)


def _full(resource: simpy.Resource, limit: int) -> bool:
    """The resource's queue holds ``limit`` or more requests and a newcomer would wait."""
    busy = resource.count >= resource.capacity or len(resource.queue) > 0
    return busy and len(resource.queue) >= limit


def run_policy_naive(scenario: Scenario, policy_spec, seed: int):
    """Like :func:`adaptsim.simulator.engine.run_policy`, the naive way."""
    hedge = scenario.hedge
    if hedge is not None and (
        hedge.loser != "charge" or scenario.admission.active or scenario.cloud_scale_by_edge_cpu
    ):
        raise UserError(
            f"{scenario.source}: field hedge ({hedge.describe()}): the naive SimPy engine races "
            "only with the loser's load charged, no admission control and no fold-back cloud; "
            "remove one of them"
        )
    env = simpy.Environment()
    run = _Naive(scenario, policy_spec, seed, env)
    if run.policy.period_s is not None:
        env.process(run.ticker())
    env.process(run.source())
    env.run()
    records = sorted(run.records, key=lambda r: r.request)
    cols = columns(records)
    if hedge is not None:
        run.records = records
        if run.racing:
            run.hedge_rows = [run.hedge_rows[r.request] for r in records]
        cols.update(hedge_columns(run, len(records)))
    return cols, run.stats, run.policy.name
