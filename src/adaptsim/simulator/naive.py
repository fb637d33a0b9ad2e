"""A naive SimPy implementation: one process per request, resources, blocks summed anew.

It exists for two reasons: as the benchmark's baseline (``adaptsim bench``), and
as an independent second implementation of the same semantics, so tests can hold
the fast engine's records against it. Each request is its own SimPy process that
queues for ``simpy.Resource`` objects (edge CPU, uplink, cloud servers); service
times are recomputed by summing the calibration's blocks at the stress in force;
a transfer steps through the bandwidth trace segment by segment with timeouts.
Clairvoyant policies (the oracle) are not supported here.
"""

from __future__ import annotations

import heapq
import math

import simpy

from adaptsim.simulator.engine import RECORD_COLUMNS, Tables, _Run, controller
from adaptsim.simulator.scenario import Scenario

__all__ = ["run_policy_naive"]


class _NaiveRun(_Run):
    def __init__(self, scenario: Scenario, policy_spec, seed: int, env: simpy.Environment):
        super().__init__(scenario, policy_spec, seed, Tables(scenario))
        if getattr(self.policy, "clairvoyant", False) and self.policy.name == "oracle":
            raise ValueError("the naive engine does not support look-ahead policies")
        self.env = env
        self.edge = simpy.Resource(env, capacity=1)
        self.uplink = simpy.Resource(env, capacity=1)
        self.cloud = simpy.Resource(env, capacity=scenario.cloud_servers)
        self.rows: list[tuple] = []
        self._blocks: dict[tuple, tuple[list[float], list[float]]] = {}

    def decide(self, now: float) -> None:
        before = self.current
        pause_before = self.stats.switching_s
        super().decide(now)
        if before is not None and self.stats.switching_s > pause_before:
            self.env.process(self._pause(self.stats.switching_s - pause_before))

    def _pause(self, seconds: float):
        with self.edge.request() as req:  # swapping sub-models holds the edge CPU
            yield req
            yield self.env.timeout(seconds)

    def _blocks_sum(self, side: str, k: int, cpu: float, mem: float) -> float:
        """Sum the blocks on this side of point k, plus k's extra, anew for every request."""
        key = (side, cpu, mem)
        hit = self._blocks.get(key)
        if hit is None:  # interpolating the grid is not what the baseline is about
            m = self.sc.model
            grids = (
                (m.edge_blocks, m.edge_extra) if side == "edge" else (m.cloud_blocks, m.cloud_extra)
            )
            hit = self._blocks[key] = tuple(g.at(cpu, mem)[0][0].tolist() for g in grids)
        blocks, extra = hit
        done = sum(blocks[: k + 1]) if side == "edge" else sum(blocks[k + 1 :])
        return float(done + extra[k])

    def _transfer(self, payload: float):
        """Send ``payload`` bytes through the bandwidth trace, one step at a time."""
        env, trace = self.env, self.sc.bandwidth
        remaining = payload
        while remaining > 1e-9:
            rate = trace.at(env.now) * 1e6 / 8.0
            nxt = trace.next_change(env.now)
            if rate > 0 and remaining <= rate * (nxt - env.now):
                yield env.timeout(remaining / rate)
                return
            if math.isinf(nxt):
                yield env.timeout(math.inf)  # stalled for good
                return
            remaining -= rate * (nxt - env.now)
            yield env.timeout(nxt - env.now)

    def request(self, i: int, a: float, point: int, switched: bool):
        env, sc = self.env, self.sc
        k = self.col[point]
        fe, fl, fc = self.noise[i]
        owl = sc.one_way_latency_s
        with self.edge.request() as req:  # all-cloud frames pass too, computing nothing
            yield req
            es = env.now
            e = self._blocks_sum("edge", k, sc.edge_cpu.at(es), sc.edge_mem.at(es)) * fe
            yield env.timeout(e)
        edge_end = env.now
        with self.uplink.request() as req:
            yield req
            ls = env.now
            law = sc.model.link_at(sc.edge_cpu.at(ls), sc.cloud_cpu_pct)[0][0]
            yield env.timeout(law[k, 0] * fl)
            yield from self._transfer(law[k, 1] * fl)
            if env.now < ls + law[k, 2] * fl:  # the hosts' sending and receiving bind
                yield env.timeout(ls + law[k, 2] * fl - env.now)
            fin = env.now
        yield env.timeout(owl)
        arrive = env.now
        c = self._blocks_sum("cloud", k, sc.cloud_cpu_pct, sc.cloud_mem_pct) * fc
        cs = arrive
        if c > 0:
            with self.cloud.request() as req:
                yield req
                cs = env.now
                yield env.timeout(c)
        yield env.timeout(owl)
        done = env.now
        payload = self.payload[k]
        self.rows.append(
            (
                i,
                a,
                point,
                switched,
                es - a,
                e,
                ls - edge_end,
                fin - ls,
                cs - arrive,
                c,
                done - a,
                done,
                payload,
            )
        )
        heapq.heappush(self.pending, (done, i, (done, point, done - a, e, fin - ls, payload)))

    def serve(self, i: int) -> None:
        a = self.arrivals[i]
        self._i = i
        if self.policy.period_s is None:
            self.decide(a)
        self.env.process(self.request(i, a, self.current, self._switched))
        self._switched = False


def _arrivals(env: simpy.Environment, run: _NaiveRun):
    for i, a in enumerate(run.arrivals.tolist()):
        if a > env.now:
            yield env.timeout(a - env.now)
        run.serve(i)


def run_policy_naive(scenario: Scenario, policy_spec, seed: int):
    """Like :func:`adaptsim.simulator.engine.run_policy`, the naive way."""
    env = simpy.Environment()
    run = _NaiveRun(scenario, policy_spec, seed, env)
    if run.policy.period_s is not None:
        env.process(controller(env, run))
    env.process(_arrivals(env, run))
    env.run()
    rows = sorted(run.rows)
    cols = {c: [r[j] for r in rows] for j, c in enumerate(RECORD_COLUMNS)}
    return cols, run.stats, run.policy.name
