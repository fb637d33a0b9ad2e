"""Hedged execution: each frame on two paths at once, the first result back wins.

Hedged requests ("The Tail at Scale", Dean & Barroso, CACM 2013) applied to a
split DNN, opt-in with the scenario key ``hedge`` (scenarios/README.md). A
practical policy's deployed point ``k`` (the *primary*) races one second path:

- ``edge``: all-edge. The edge runs the model once: the primary's tensor leaves
  at ``k`` on the way and the edge computes on to the end of the model (the
  prefix is shared, no extra edge work until ``k``); none when ``k`` is all-edge;
- ``cloud``: all-cloud. The raw input goes up when the frame starts on the edge,
  while the edge computes the primary's head; none when ``k`` is all-cloud;
- ``either``: ``edge``, or ``cloud`` when ``k`` is all-edge already.

Both hosts hold the whole model, so the second path needs no re-partition and
pays no pause. The clairvoyant bounds (static-best, the oracles) are not hedged.

The paths share the resources (``charge``, the loser's load counted): the edge
computes to the deeper point and stops when the winner's result is back; on the
uplink the tensor ready later (the deeper path's) preempts the one in transit,
which resumes after it; the loser's transfer aborts when the winner is back (its
bytes carried so far are counted); at the cloud the deeper path's request goes
first and the shallower one restarts after it, unless it would be done before
the deeper one starts; the loser's request is dropped when the cancel reaches the
cloud, one way after the winner is back; later frames queue behind all of it.
With ``gate`` (the default) a frame races only when the second path's extra work,
at its mean service time and the true conditions when the frame starts, ends
before the next frame is due (arrival + 1 / rate): the whole model on the edge
for all-edge, the raw input's transfer on an idle uplink for all-cloud.

The logic was measured first in ``benchmarks/race_ceiling.py`` (now a user of
this module, which adds two diagnostic forms of the loser's load, ``fifo``: no
priorities, and ``ignore``: the loser's load not counted, an upper bound).

Each hedged run's records gain :data:`HEDGE_COLUMNS` (:func:`hedge_columns`); a
run that does not hedge has exactly the records it had before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from heapq import heappush, heapreplace

import numpy as np

from adaptsim.simulator.record import Record

__all__ = ["HEDGE_COLUMNS", "HEDGE_PATHS", "Hedge", "HedgedServe", "hedge_columns"]

HEDGE_PATHS = ("edge", "cloud", "either")
_LOSER_LOADS = ("charge", "fifo", "ignore")  # fifo, ignore: diagnostics only (race_ceiling)
# Per frame of a scenario that hedges (a run that does not hedge: its defaults).
HEDGE_COLUMNS = (
    "hedge_raced",  # the frame ran on two paths (false: gated, none to race, or not hedged)
    "hedge_winner",  # "primary" or "second": whose result came back first
    "hedge_primary_point",  # the policy's deployed point (ordinal)
    "hedge_second_point",  # the second path's point (ordinal), -1 when not raced
    "hedge_loser_edge_s",  # edge seconds the loser held beyond the winner's own edge time
    "hedge_loser_uplink_bytes",  # the loser's tensor bytes carried before it ended or aborted
)
_new_tuple = tuple.__new__


@dataclass(frozen=True)
class Hedge:
    """A scenario's ``hedge`` key: the second path and the gate."""

    path: str  # one of HEDGE_PATHS
    gate: bool = True
    loser: str = "charge"  # the loser's load; "fifo" and "ignore" are diagnostics only

    def __post_init__(self):
        if self.path not in HEDGE_PATHS or self.loser not in _LOSER_LOADS:
            raise ValueError(f"hedge: unknown path {self.path!r} or loser load {self.loser!r}")

    def describe(self) -> str:
        """E.g. ``either, gated``."""
        how = "gated" if self.gate else "always"
        return f"{self.path}, {how}" + ("" if self.loser == "charge" else f", {self.loser}")


class _Path:
    """One path of a raced frame: its point column and its times."""

    __slots__ = ("arrive", "bytes_", "c", "ce", "cs", "done", "e", "edge_end", "fin", "held",
                 "k", "ls")  # fmt: skip

    def __init__(self, k: int, es: float, e: float):
        self.k, self.e, self.edge_end = k, e, es + e
        self.held = None  # (from, to): preempted on the uplink by the other path
        self.bytes_ = 1.0  # share of its bytes carried (below 1: aborted on the uplink)


class HedgedServe:
    """The fast engine's serve for a frame on two paths (mixed into its ``_Run``).

    Reads the run's state (``edge_free``, ``link_free``, ``cloud_free``, the noise
    columns, the link and its stress) and leaves it as a frame served alone would:
    the same record fields, plus one :data:`HEDGE_COLUMNS` row per frame.
    """

    def _start_hedge(self, hedge: Hedge) -> None:
        self.hedge = hedge
        self.serve = self.serve_hedged
        self._last = len(self.payload) - 1
        self._ordinals = self.sc.model.ordinals.tolist()
        self.hedge_rows: list[tuple] = []

    def serve_hedged(self, i: int) -> None:
        """Serve request i on its primary point and, if it races, a second path."""
        a = self._arrival_s[i]
        self._i = i
        if self.per_frame:
            self.decide(a)
        k = self.col[self.current]
        es = a if a > self.edge_free else self.edge_free
        p_hi, win, lose, j = self._race(i, a, k, es)
        loser = self.hedge.loser
        d = win.done
        # -- the resources after the frame ----------------------------------------
        if lose is None or loser == "ignore":
            self.edge_free = win.edge_end
            self.link_free = win.fin
            if win.c > 0:
                heapreplace(self.cloud_free, win.ce)
            loser_edge_s = loser_bytes = 0.0
        else:
            # the edge runs to the deeper point unless the winner is back first
            self.edge_free = p_hi.edge_end if win is p_hi else min(p_hi.edge_end, d)
            loser_edge_s = self.edge_free - win.edge_end
            self.link_free = max(win.fin, min(lose.fin, d), self.link_free)
            self._cloud_settle(win, lose, d)
            loser_bytes = self.payload[lose.k] * lose.bytes_
        payload = self.payload[win.k]
        self.in_flight.append((win.edge_end, win.fin, payload))
        ordinals = self._ordinals
        record = _new_tuple(Record, (
            i, a, ordinals[win.k], self._switched, es - a, win.e,
            win.ls - win.edge_end, win.fin - win.ls, win.cs - win.arrive, win.c, d - a, d,
            payload, False, "",
        ))  # fmt: skip
        self.records.append(record)
        self.hedge_rows.append((
            lose is not None, "primary" if win.k == k else "second", ordinals[k],
            ordinals[j] if lose is not None else -1, loser_edge_s, loser_bytes,
        ))  # fmt: skip
        self._switched = False
        if self.wants_finished:
            heappush(self.pending, (d, i, record))

    def _race(self, i: int, a: float, k: int, es: float):
        """Frame i (arrived at ``a``) on point column ``k`` from ``es`` on the edge, and
        on the second path if it races: (the deeper path, the winner, the loser or None,
        the second path's column). Reads the run's state, changes none of it."""
        h = self.hedge
        edge = h.path == "edge" or (h.path == "either" and k != self._last)
        j = self._last if edge else 0  # the second path: all-edge or all-cloud
        row = self.edge_stress.row(es)
        if j != k and h.gate and not self._idle_for(a, es, row, k, j):
            j = k  # the second path would not fit in the idle time before the next frame
        lo, hi = (k, j) if k <= j else (j, k)
        p_lo = _Path(lo, es, row[0][lo] * self._fe[lo][i])
        p_hi = _Path(hi, es, max(p_lo.e, row[0][hi] * self._fe[hi][i]))
        for p in (p_lo, p_hi):
            p.c = self.cloud_s[p.k] * self._fc[p.k][i]
        loser = h.loser
        if lo == hi:
            self._transfer(p_lo, i, max(p_lo.edge_end, self.link_free))
            self._at_cloud([p_lo], self.cloud_free[:1])
            return p_lo, p_lo, None, j
        if loser == "ignore":
            for p in (p_lo, p_hi):
                self._transfer(p, i, max(p.edge_end, self.link_free))
                self._at_cloud([p], self.cloud_free[:1])
        else:
            self._uplink_shared(p_lo, p_hi, i, preempt=loser == "charge")
            self._cloud_shared(p_lo, p_hi, preempt=loser == "charge")
        win, lose = (p_lo, p_hi) if p_lo.done <= p_hi.done else (p_hi, p_lo)
        return p_hi, win, lose, j

    def race_lookahead(self) -> np.ndarray:
        """When the current request's race is back at every primary point (the racing
        oracle's look-ahead, as :meth:`lookahead` is the oracle's): a point other than the
        current one starts on the edge after the switch pause."""
        i, a = self._i, self.view.now_s
        stay = max(a, self.edge_free)
        pause = 0.0 if self.free_switching or self.current is None else self.sc.pause_s
        current = self.col[self.current] if self.current is not None else -1
        n = len(self.payload)
        return np.array(
            [self._race(i, a, k, stay if k == current else stay + pause)[1].done for k in range(n)]
        )

    # -- the gate ---------------------------------------------------------------
    def _idle_for(self, a: float, es: float, row, k: int, j: int) -> bool:
        """Race only if the second path's extra work, at its mean service time and the
        true conditions when the frame starts, ends before the next frame is due (``a``
        + 1 / rate): the edge's whole model for all-edge, the raw input's transfer (on
        an idle uplink) for all-cloud."""
        next_s = a + 1.0 / self.sc.rate_hz
        if j > k:  # all-edge: the edge computes on past point k
            return es + row[0][j] <= next_s
        if self.link_free > es:
            return False
        _, over, wire, host = self._law(es)
        fin = max(self.link.finish(es + over[j], wire[j]), es + host[j])
        return fin <= next_s

    # -- one path's stages ------------------------------------------------------
    def _law(self, t: float):
        return self.link_stress.row(t)

    def _transfer(self, p: _Path, i: int, ls: float) -> None:
        """Path p's whole transfer from ``ls`` (the engine's ``_sent``)."""
        p.ls = ls
        p.fin = self._sent(ls, p.k, self._fl[p.k][i], self._law(ls))

    def _carried(self, p: _Path, i: int, start: float, end: float) -> float:
        """Share of p's wire bytes carried in [start, end] (its bytes start after the
        overhead; the time the other path held the link does not count)."""
        if end <= start:
            return 0.0
        if end == math.inf or start == math.inf:
            return 1.0 if end == math.inf else 0.0
        fl = self._fl[p.k][i]
        _, over, wire, _ = self._law(p.ls)
        total = wire[p.k] * fl
        if total <= 0:
            return 1.0 if end >= p.fin else 0.0
        cap = self.link.capacity
        over_end = p.ls + over[p.k] * fl
        held = p.held
        if held is not None and held[0] < over_end:  # preempted in its overhead: the rest
            over_end, held = held[1] + (over_end - held[0]), None  # after, then the bytes
        start = max(start, over_end)
        got = cap(end) - cap(start) if end > start else 0.0
        if held is not None:  # the other path had the link then
            h0, h1 = max(held[0], start), min(held[1], end)
            if h1 > h0:
                got -= cap(h1) - cap(h0)
        return min(1.0, max(0.0, got / total))

    def _uplink_shared(self, p_lo: _Path, p_hi: _Path, i: int, preempt: bool) -> None:
        """Both transfers on the one uplink: the shallower tensor is ready first; the
        deeper one, ready later, preempts it (``preempt``) or waits behind it."""
        s_lo = max(p_lo.edge_end, self.link_free)
        self._transfer(p_lo, i, s_lo)
        t_hi = p_hi.edge_end
        if t_hi >= p_lo.fin or not preempt:
            self._transfer(p_hi, i, max(t_hi, p_lo.fin))
            return
        if t_hi <= s_lo:  # both wait for the link: the deeper goes first
            self._transfer(p_hi, i, max(t_hi, self.link_free))
            self._transfer(p_lo, i, p_hi.fin)
            return
        # lo is sending when hi is ready: hi goes now, lo resumes after it
        self._transfer(p_hi, i, t_hi)
        fl = self._fl[p_lo.k][i]
        _, over, wire, host = self._law(s_lo)
        over_end = s_lo + over[p_lo.k] * fl
        gap = p_hi.fin - t_hi
        if t_hi < over_end:
            fin = self.link.finish(p_hi.fin + (over_end - t_hi), wire[p_lo.k] * fl)
        else:
            done = self._carried(p_lo, i, s_lo, t_hi) * wire[p_lo.k] * fl
            fin = self.link.finish(p_hi.fin, wire[p_lo.k] * fl - done)
        p_lo.fin = max(fin, s_lo + host[p_lo.k] * fl + gap)
        p_lo.ls = s_lo
        p_lo.held = (t_hi, p_hi.fin)

    def _cloud_shared(self, p_lo: _Path, p_hi: _Path, preempt: bool) -> None:
        """Both requests at the cloud's servers: in order of arrival (``preempt`` false),
        or the deeper path's first, the shallower one restarted after it unless it would
        be done before the deeper one starts (``preempt``)."""
        order = sorted((p_lo, p_hi), key=lambda p: p.fin)
        if preempt and p_lo.c > 0 and p_hi.c > 0:
            self._at_cloud([p_hi], list(self.cloud_free))
            alone = p_hi.cs
            self._at_cloud(order, list(self.cloud_free))
            if p_hi.cs > alone:  # the shallower one holds the server the deeper one needs
                order = [p_hi, p_lo]
        self._at_cloud(order, list(self.cloud_free))

    def _at_cloud(self, paths: list[_Path], heap: list[float]) -> float:
        """Serve ``paths`` in this order on the cloud's servers (``heap``: their free
        times, changed); returns the last one's cloud end."""
        end = 0.0
        owl = self.owl
        for p in paths:
            p.arrive = p.fin + owl
            if p.c > 0:
                p.cs = max(p.arrive, heap[0])
                p.ce = p.cs + p.c
                heapreplace(heap, p.ce)
            else:
                p.cs = p.ce = p.arrive
            p.done = p.ce + owl
            end = p.ce
        return end

    def _cloud_settle(self, win: _Path, lose: _Path, d: float) -> None:
        """The cloud after the race: the winner's request, and the loser's until the
        cancel reaches the cloud (``d`` + one way) if its transfer ended before ``d``."""
        if lose.fin > d:  # aborted on the uplink: the carried share, never at the cloud
            lose.bytes_ = self._carried(lose, self._i, lose.ls, d)
        cancel = d + self.owl
        for p in sorted((win, lose), key=lambda p: p.cs):
            if p.c <= 0:
                continue
            if p is lose and (lose.fin > d or lose.cs >= cancel):
                continue
            cs = max(p.arrive, self.cloud_free[0])
            ce = cs + p.c if p is win else min(cs + p.c, cancel)
            heapreplace(self.cloud_free, ce)


def hedge_columns(run, n: int) -> dict[str, list]:
    """The :data:`HEDGE_COLUMNS` of a run of a scenario that hedges (``n`` frames);
    a run that does not hedge (a clairvoyant bound): never raced, the primary wins."""
    rows = getattr(run, "hedge_rows", None)
    if rows is None:
        points = [r[2] for r in run.records]
        rows = [(False, "primary", p, -1, 0.0, 0.0) for p in points]
    if not rows:
        return {name: [] for name in HEDGE_COLUMNS}
    assert len(rows) == n, (len(rows), n)
    cols = zip(*rows, strict=True)
    return {name: list(col) for name, col in zip(HEDGE_COLUMNS, cols, strict=True)}
