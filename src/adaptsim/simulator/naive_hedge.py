"""Hedged execution in the naive SimPy engine: a frame on two paths, as processes.

The independent reference for :mod:`adaptsim.simulator.hedge` (the fast engine's
race), written from the documented semantics (docs/policies.md, "Hedged
execution"), not from that module's code. A raced frame is one process that
holds the edge CPU and one process per path (a *leg*) for the uplink, the
one-way trips and the cloud:

- the edge computes the shallower path's head, hands its tensor to that leg, and
  computes on to the deeper point (the prefix is shared) unless the winner is
  back first; then it lets go of the edge CPU;
- the uplink and the cloud are ``simpy.PreemptiveResource``s whose priority is
  the frame first, then the deeper path: the deeper path's tensor preempts the
  shallower one in transit (which resumes, its bytes kept, after it) and its
  cloud request preempts the shallower one's (which restarts from scratch after
  it); no frame preempts an earlier frame's work, so later frames queue behind;
- the first leg back wins (the shallower one on a tie); the loser is interrupted
  on the uplink (or in its queue) when the winner is back, and at the cloud when
  the cancel gets there, one way later;
- with ``gate``, a frame races only when the second path's extra work at its mean
  time (the whole model on the edge for all-edge; the raw input's transfer on an
  idle uplink for all-cloud) ends before the next frame is due.

What a policy reads of the edge's and the uplink's backlog (``edge_free_s``,
``uplink_unacked_bytes``) depends on races not yet run out, which a process
engine does not know in advance: a hedged run refuses, in one line, a policy
that reads them (:class:`SealedView`).
"""

from __future__ import annotations

import math

import simpy

from adaptsim.errors import UserError
from adaptsim.simulator.policies import View
from adaptsim.simulator.record import Record
from adaptsim.simulator.traces import EPS_S
from adaptsim.units import bytes_per_s

__all__ = ["NaiveRace", "SealedView"]

_CANCEL = "cancel"  # an Interrupt's cause: the winner is back (uplink) or the cancel arrived


class SealedView(View):
    """A policy's view in a hedged naive run: the backlogs it cannot know are refused."""

    def _refuse(self, what: str):
        raise UserError(
            f"the naive SimPy engine cannot tell a policy {what} in a hedged run (it depends "
            "on races not yet run out); run this policy with the fast engine"
        )

    @property
    def edge_free_s(self) -> float:
        self._refuse("when the edge CPU is free (edge_free_s)")

    @edge_free_s.setter
    def edge_free_s(self, value: float) -> None:
        pass

    @property
    def uplink_unacked_bytes(self) -> float:
        self._refuse("its unacknowledged uplink bytes (uplink_unacked_bytes)")

    @uplink_unacked_bytes.setter
    def uplink_unacked_bytes(self, value: float) -> None:
        pass


class _Leg:
    """One path of a frame: its point index and what happened to it."""

    def __init__(self, k: int, deeper: bool, edge_s: float, ready_s: float):
        self.k, self.deeper, self.edge_s, self.ready_s = k, deeper, edge_s, ready_s
        self.link_start_s: float | None = None  # first grant of the uplink that carried bytes
        self.link_end_s = math.inf
        self.at_cloud_s = math.inf
        self.cloud_start_s = math.inf
        self.cloud_s = 0.0
        self.done_s = math.inf
        self.wire_total = 0.0
        self.wire_left = 0.0
        self.stage = "edge"  # edge, uplink, flight, cloud, done
        self.proc: simpy.Process | None = None


class _Race:
    def __init__(self, env: simpy.Environment):
        self.back = env.event()  # fires once the winner is settled
        self.first: list[_Leg] = []  # legs done at the first finishing instant
        self.winner: _Leg | None = None


class NaiveRace:
    """Mixed into the naive engine's run (``_Naive``): the hedged frame process."""

    def start_race(self) -> None:
        env, sc = self.env, self.sc
        self.uplink = simpy.PreemptiveResource(env, capacity=1)
        self.cloud = simpy.PreemptiveResource(env, capacity=sc.cloud_servers)
        self.view.__class__ = SealedView
        self.hedge_rows: dict[int, tuple] = {}
        self.stats.hedged = True

    # -- the gate ----------------------------------------------------------------
    def second_path(self, k: int) -> int:
        """The second path's point index for primary index k (k itself: none)."""
        path, last = self.sc.hedge.path, len(self.ordinals) - 1
        if path == "edge" or (path == "either" and k != last):
            return last
        return 0

    def fits(self, arrival: float, es: float, k: int, j: int) -> bool:
        """The gate: the second path's extra work at its mean time ends before the next
        frame is due."""
        next_s = arrival + 1.0 / self.sc.rate_hz
        if j > k:
            return es + self.edge_s(j, es) <= next_s
        if self.uplink.count or self.uplink.queue:
            return False
        overhead_s, wire_bytes, host_s = self.link_law(j, es)
        return max(self.wire_end(es + overhead_s, wire_bytes), es + host_s) <= next_s

    def wire_end(self, start_s: float, nbytes: float) -> float:
        """When ``nbytes`` pushed from ``start_s`` through the bandwidth trace are through."""
        trace, t, left = self.sc.bandwidth, start_s, nbytes
        while left > 1e-9:
            step_end = trace.next_change(t)
            if step_end <= t:
                step_end = trace.next_change(t + EPS_S)
            rate = bytes_per_s(trace.at(t if step_end > t else t + EPS_S))
            if rate > 0 and left <= rate * (step_end - t):
                return t + left / rate
            if math.isinf(step_end):
                return math.inf
            left -= rate * (step_end - t)
            t = step_end
        return t

    # -- the frame ---------------------------------------------------------------
    def hedged_frame(self, i: int, arrival: float, point: int, switched: bool):
        env = self.env
        k = self.ordinals.index(point)
        race = _Race(env)
        item = ("frame", k, self.noise[k][i][0], i, math.inf)
        self.edge_waiting.append(item)
        with self.edge.request() as turn:
            yield turn
            self.edge_waiting.remove(item)
            es = env.now
            j = self.second_path(k)
            if j != k and self.sc.hedge.gate:
                if j < k:  # the uplink's state once this instant's releases are done
                    yield _Settle(env)
                if not self.fits(arrival, es, k, j):
                    j = k
            lo, hi = min(k, j), max(k, j)
            e_lo = self.edge_s(lo, es) * self.noise[lo][i][0]
            e_hi = max(e_lo, self.edge_s(hi, es) * self.noise[hi][i][0])
            legs = [_Leg(lo, lo == hi, e_lo, es + e_lo)]
            yield env.timeout(e_lo)
            legs[0].proc = env.process(self.leg(i, legs[0], race))
            if hi != lo:
                deeper = _Leg(hi, True, e_hi, es + e_hi)
                legs.append(deeper)
                yield env.timeout(e_hi - e_lo) | race.back
                if race.back.triggered and env.now < deeper.ready_s:
                    deeper.stage = "never"  # the winner is back before it was computed
                else:
                    deeper.proc = env.process(self.leg(i, deeper, race))
            edge_released = env.now
        if not race.back.triggered:
            yield race.back
        win = race.winner
        lose = next((leg for leg in legs if leg is not win), None)
        if lose is not None and lose.proc is not None and lose.proc.is_alive:
            if lose.stage == "uplink":  # its transfer stops now: count its bytes first
                lose.proc.interrupt(_CANCEL)
                yield env.timeout(0)
            else:
                env.process(self.cancel(lose))
        self._record_race(i, arrival, point, k, j, switched, es, win, lose, edge_released)

    def _record_race(self, i, arrival, point, k, j, switched, es, win, lose, edge_released):
        record = Record(
            request=i,
            arrival_s=arrival,
            point=self.ordinals[win.k],
            switched=switched,
            edge_wait_s=es - arrival,
            edge_s=win.edge_s,
            uplink_wait_s=win.link_start_s - win.ready_s,
            uplink_s=win.link_end_s - win.link_start_s,
            cloud_wait_s=win.cloud_start_s - win.at_cloud_s,
            cloud_s=win.cloud_s,
            latency_s=win.done_s - arrival,
            done_s=win.done_s,
            payload_bytes=float(self.sc.model.output_bytes[win.k]),
        )
        self.records.append(record)
        self.delivered.append(record)
        loser_edge_s = loser_bytes = 0.0
        if lose is not None:
            loser_edge_s = edge_released - win.ready_s
            if lose.link_end_s <= win.done_s:
                share = 1.0
            elif lose.wire_total > 0:
                share = (lose.wire_total - lose.wire_left) / lose.wire_total
            else:
                share = 0.0
            loser_bytes = float(self.sc.model.output_bytes[lose.k]) * share
        self.hedge_rows[i] = (
            lose is not None,
            "primary" if win.k == k else "second",
            point,
            self.ordinals[j] if lose is not None else -1,
            loser_edge_s,
            loser_bytes,
        )

    def cancel(self, lose: _Leg):
        """The winner is back and the loser is past the uplink: its cloud request stops
        when the cancel reaches the cloud, one way later."""
        if lose.stage == "edge":  # its process has not begun: it never will
            lose.stage = "aborted"
            return
        yield self.env.timeout(self.sc.one_way_latency_s)
        if lose.proc.is_alive and lose.stage in ("flight", "cloud"):
            lose.proc.interrupt(_CANCEL)

    # -- one path: the uplink, the trips, the cloud --------------------------------
    def leg(self, i: int, leg: _Leg, race: _Race):
        env, sc = self.env, self.sc
        priority = 2 * i + (0 if leg.deeper else 1)
        f_link, f_cloud = self.noise[leg.k][i][1], self.noise[leg.k][i][2]
        if leg.stage == "aborted":
            return
        leg.stage = "uplink"
        try:
            yield from self.carry(leg, priority, f_link)
        except simpy.Interrupt:
            return  # aborted: the winner is back
        leg.stage = "flight"
        try:
            yield env.timeout(sc.one_way_latency_s)
            leg.at_cloud_s = leg.cloud_start_s = env.now
            leg.cloud_s = self.cloud_s(leg.k) * f_cloud
            if leg.cloud_s > 0:
                leg.stage = "cloud"
                yield from self.compute(leg, priority)
        except simpy.Interrupt:
            return  # cancelled at the cloud
        leg.stage = "back"
        yield env.timeout(sc.one_way_latency_s)
        leg.done_s = env.now
        leg.stage = "done"
        race.first.append(leg)
        if len(race.first) == 1:  # settle the winner after this instant (a tie: shallower)
            env.process(self.settle(race))

    def settle(self, race: _Race):
        yield _Settle(self.env)
        race.winner = min(race.first, key=lambda leg: leg.deeper)
        race.back.succeed()

    def carry(self, leg: _Leg, priority: int, f_link: float):
        """The leg's transfer: overhead, wire bytes through the trace, the hosts' bound;
        preempted by the deeper path it waits and goes on where it was."""
        env = self.env
        over_left = host_end = held_from = 0.0
        while True:
            req = self.uplink.request(priority=priority, preempt=True)
            try:
                yield req
            except simpy.Interrupt:  # cancelled while waiting
                req.cancel()
                raise
            now = env.now
            if leg.link_start_s is None:
                leg.link_start_s = now
                overhead_s, wire, host_s = (x * f_link for x in self.link_law(leg.k, now))
                over_left, leg.wire_total, leg.wire_left = overhead_s, wire, wire
                host_end = now + host_s
            else:
                host_end += now - held_from
            try:
                if over_left > 0:
                    t0 = env.now
                    try:
                        yield env.timeout(over_left)
                    finally:
                        over_left -= env.now - t0
                yield from self.push(leg)
                if env.now < host_end:
                    yield env.timeout(host_end - env.now)
            except simpy.Interrupt as stop:
                self.uplink.release(req)
                if not isinstance(stop.cause, simpy.resources.resource.Preempted):
                    raise
                held_from = env.now
                if held_from == leg.link_start_s:  # preempted as it started: never started
                    leg.link_start_s = None
                continue
            self.uplink.release(req)
            leg.link_end_s = env.now
            return

    def push(self, leg: _Leg):
        """Push the leg's wire bytes left through the bandwidth trace, one step at a time,
        keeping count of what is through if interrupted."""
        env, trace = self.env, self.sc.bandwidth
        while leg.wire_left > 1e-9:
            now = env.now
            step_end = trace.next_change(now)
            probe = now
            if step_end - now <= EPS_S:  # a hair before a step (or a looped trace's wrap)
                probe = now + EPS_S
                step_end = trace.next_change(probe)
            rate = bytes_per_s(trace.at(probe))
            last = rate > 0 and leg.wire_left <= rate * (step_end - now)
            if last:
                wait = leg.wire_left / rate
            elif math.isinf(step_end):
                wait = math.inf
            else:
                wait = step_end - now
            through = False
            try:
                yield env.timeout(wait)
                through = last
            finally:
                if through:
                    leg.wire_left = 0.0
                else:
                    leg.wire_left = max(leg.wire_left - rate * (env.now - now), 0.0)

    def compute(self, leg: _Leg, priority: int):
        """The leg's cloud request; preempted by the deeper path's, it starts over after it."""
        env = self.env
        while True:
            req = self.cloud.request(priority=priority, preempt=True)
            try:
                yield req
            except simpy.Interrupt:
                req.cancel()
                raise
            leg.cloud_start_s = env.now
            try:
                yield env.timeout(leg.cloud_s)
            except simpy.Interrupt as stop:
                self.cloud.release(req)
                if not isinstance(stop.cause, simpy.resources.resource.Preempted):
                    raise
                continue
            self.cloud.release(req)
            return


class _Settle(simpy.Event):
    """Fires at the current time after every other event of this instant (priority 2)."""

    def __init__(self, env: simpy.Environment):
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, priority=2)
