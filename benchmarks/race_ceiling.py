"""How much could hedged (racing) execution win? The ceiling of issue 17's racing idea.

Hedged requests (Dean & Barroso, "The Tail at Scale", CACM 2013) applied to a split
DNN: a frame runs on TWO paths at once and the first complete result wins; the
loser is cancelled. It uses the randomness the oracle exploits (each frame's own
service-time draws) without knowing it: per frame min(path A, path B).

Each row is a practical built-in (``neurosurgeon``, ``changepoint``, ``mpc``: its own
decisions, from its own delayed, noisy readings; its switch pauses charged as
shipped) whose deployed point ``k`` (the *primary*) races one second path:

- ``edge``: all-edge. The edge runs the model once: the primary's tensor leaves at
  point ``k`` and the edge keeps computing to the end of the model (the prefix is
  shared, no extra edge work until ``k``); none when ``k`` is all-edge already;
- ``cloud``: all-cloud. The raw input is sent when the frame starts on the edge,
  while the edge computes the primary's head; none when ``k`` is all-cloud;
- ``either``: ``edge``, or ``cloud`` when ``k`` is all-edge.

Both full models are held (the edge the whole model, the cloud the whole model),
so the second path needs no re-partition and pays no pause.

Two ways to count the loser's load, on the same seeds and arrivals as the built-ins:

- ``ignore`` (an upper bound): each path is computed alone from the same queues (as
  if it had the edge, the uplink and the cloud to itself) and only the winner's
  occupancy stays on the resources; per frame exactly min(A, B) from those queues;
- ``charge``: the paths share the resources and the loser holds them until it is
  cancelled. The edge computes to the deeper point (the shallower tensor leaves on
  the way) and stops when the winner is back (``min(deeper end, winner's done)``);
  on the uplink the tensor ready later (the deeper path's: the primary's against
  the raw input, the all-edge result against the primary's tensor) preempts the
  one in transit, which resumes after it (``fifo``: no preemption, the later one
  waits); the loser's transfer aborts when the winner is back; the cloud serves
  both in order of arrival and drops the loser's request when the cancel reaches it
  (one way later), so later frames queue behind whatever the loser occupied;
- ``gated``: ``charge``, but a frame races only when the second path's extra work
  (the whole model on the edge, or the raw input on an idle uplink), at its mean
  time and the true conditions when the frame starts, ends before the next frame is
  due (arrival + 1 / rate); otherwise the primary runs alone.

Gap closed in mean latency against the paying oracle (which chooses ONE point per
frame and pays the pause to move: a race, whose second path needs no pause, can
beat it per frame, so the gap closed may exceed 1), per scenario and the mean over
the six trace scenarios with a paired bootstrap 95 % interval (seeds resampled
together), and the same mean against ``oracle-free`` (one point per frame, moving
free, as the race's second path does: from the same queues it is never slower than
a race between two of its points); p95; the difference to static-best in %; and the
resource cost of ``charge``: extra edge-CPU seconds and extra uplink bytes (bytes on
the wire, an aborted transfer counted for what it carried) per frame against the
same built-in alone, in %.

The engine's own serve is reproduced for a built-in alone (``--check``, on by
default: the ``none`` race must give the built-in's records bit for bit).

Run: ``.venv/bin/python benchmarks/race_ceiling.py [--seeds 5] [--bases B,...] [--alts
edge,cloud,either] [--charges ignore,charge,fifo] [--rate-x X] [SCENARIO.yaml ...]``
(default: the three built-ins, every form, the six trace scenarios, vehicle_trace and
busy_edge; ``--rate-x`` multiplies each scenario's frame rate, to see when the
loser's load starts to queue later frames).

Measured 2026-12-01 (the default scenarios, seeds 1..5, bases neurosurgeon,
changepoint, mpc and static-best, 370 s on the shared 2-core machine): six-trace
mean gap closed against the paying oracle 0.51 for neurosurgeon alone; raced and
charged, ``edge`` 0.87 [0.82, 0.93], ``cloud`` 0.93 [0.84, 1.03], ``either`` 1.15
[1.11, 1.24] (against ``oracle-free``: 0.31 alone, 0.49 / 0.60 / 0.66); mean -15.2 %
against static-best (alone -11.1 %); extra edge CPU +3 % to +157 % a frame. At twice
the frame rate the charged race queues later frames (bus_1 1.49 s against the
built-in's 1.09) unless ``gated`` (1.065). Tables in
benchmarks/spread_tables/race_ceiling.md, the reading in docs/policies.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import sys
import time
from heapq import heappush, heapreplace
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.scoring import per_seed_metrics
from adaptsim.simulator import engine, load_scenario, run_scenario
from adaptsim.simulator.record import Record
from adaptsim.simulator.scenario import PolicySpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from near_repeat_spread import TRACE_SCENARIOS
from persistence_scores import overall_row, six_trace_mean
from policy_scores import ROOT, markdown, policy_table
from progressive_ceiling import Wrapped

__all__ = ["Raced", "RacingRun"]

BASES = ("neurosurgeon", "changepoint", "mpc")
ALTS = ("edge", "cloud", "either")
CHARGES = ("ignore", "charge", "fifo", "gated")
DEFAULT_SCENARIOS = (*TRACE_SCENARIOS, "vehicle_trace", "busy_edge")
_new_tuple = tuple.__new__
# (scenario, policy label, seed) -> [frames, edge busy s, uplink wire bytes]
COST: dict[tuple[str, str, int], list[float]] = {}


class Raced(Wrapped):
    """A built-in's decisions, each frame raced by :class:`RacingRun` (diagnostic)."""

    def __init__(self, base: str, alt: str, charge: str):
        super().__init__(base)
        self.alt, self.charge = alt, charge
        self.race = True


class _Path:
    """One path of a raced frame: its point column and its times."""

    __slots__ = ("arrive", "bytes_", "c", "ce", "cs", "done", "e", "edge_end", "fin", "held",
                 "k", "ls")  # fmt: skip

    def __init__(self, k: int, es: float, e: float):
        self.k, self.e, self.edge_end = k, e, es + e
        self.held = None  # (from, to): preempted on the uplink by the other path


class RacingRun(engine._Run):
    """The fast engine's run, serving :class:`Raced` policies' frames on two paths."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        if getattr(self.policy, "race", False):
            assert not self.sc.admission.active, "the diagnostic serves without admission"
            assert not self.cloud_by_edge_cpu, "the diagnostic has no fold-back cloud"
            self.serve = self.serve_raced
            self.last = len(self.payload) - 1
            self.ordinals = self.sc.model.ordinals.tolist()
            key = (self.sc.name, self.policy.name, self.seed)
            self.cost = COST[key] = [0, 0.0, 0.0]

    # -- one path's stages ------------------------------------------------------------
    def _law(self, t: float):
        return self.link_stress.row(t)

    def _transfer(self, p: _Path, i: int, ls: float) -> None:
        """Path p's whole transfer from ``ls`` (the engine's _sent)."""
        p.ls = ls
        p.fin = self._sent(ls, p.k, self._fl[p.k][i], self._law(ls))

    def _carried(self, p: _Path, i: int, start: float, end: float) -> float:
        """Share of p's wire bytes carried in [start, end] (its bytes start after the
        overhead; used for an aborted or preempted transfer)."""
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
        start = max(start, p.ls + over[p.k] * fl)
        got = cap(end) - cap(start) if end > start else 0.0
        if p.held is not None:  # the other path had the link then
            h0, h1 = max(p.held[0], start), min(p.held[1], end)
            if h1 > h0:
                got -= cap(h1) - cap(h0)
        return min(1.0, max(0.0, got / total))

    def _cloud_alone(self, p: _Path, first_free: float) -> None:
        p.arrive = p.fin + self.owl
        if p.c > 0:
            p.cs = max(p.arrive, first_free)
            p.ce = p.cs + p.c
        else:
            p.cs = p.ce = p.arrive
        p.done = p.ce + self.owl

    def serve_raced(self, i: int) -> None:
        a = self._arrival_s[i]
        self._i = i
        if self.per_frame:
            self.decide(a)
        k = self.col[self.current]
        alt = self.policy.alt
        if alt == "edge" or (alt == "either" and k != self.last):
            j = self.last
        elif alt in ("cloud", "either"):
            j = 0
        else:  # "none": the built-in alone (the engine's serve, for the check)
            j = k
        es = a if a > self.edge_free else self.edge_free
        row = self.edge_stress.row(es)
        if j != k and self.policy.charge == "gated" and not self._idle_for(a, es, row, k, j):
            j = k  # the second path would not fit in the idle time before the next frame
        lo, hi = (k, j) if k <= j else (j, k)
        p_lo = _Path(lo, es, row[0][lo] * self._fe[lo][i])
        p_hi = _Path(hi, es, max(p_lo.e, row[0][hi] * self._fe[hi][i]))
        for p in (p_lo, p_hi):
            p.c = self.cloud_s[p.k] * self._fc[p.k][i]
            p.bytes_ = 1.0
        charge = self.policy.charge
        if lo == hi:
            p_hi = p_lo
            self._transfer(p_lo, i, max(p_lo.edge_end, self.link_free))
            self._cloud_alone(p_lo, self.cloud_free[0])
            win, lose = p_lo, None
        elif charge == "ignore":
            for p in (p_lo, p_hi):
                self._transfer(p, i, max(p.edge_end, self.link_free))
                self._cloud_alone(p, self.cloud_free[0])
            win, lose = (p_lo, p_hi) if p_lo.done <= p_hi.done else (p_hi, p_lo)
        else:
            self._uplink_shared(p_lo, p_hi, i, preempt=charge != "fifo")
            self._cloud_shared(p_lo, p_hi, preempt=charge != "fifo")
            win, lose = (p_lo, p_hi) if p_lo.done <= p_hi.done else (p_hi, p_lo)
        d = win.done
        # -- the resources after the frame --------------------------------------------
        if lose is None or charge == "ignore":
            self.edge_free = win.edge_end
            self.link_free = win.fin
            if win.c > 0:
                heapreplace(self.cloud_free, win.ce)
            edge_busy = win.edge_end - es
            wire = self._wire(win, i)
        else:
            # the edge runs to the deeper point unless the winner is back first
            self.edge_free = p_hi.edge_end if win is p_hi else min(p_hi.edge_end, d)
            edge_busy = self.edge_free - es
            lose_end = min(lose.fin, d)
            self.link_free = max(win.fin, lose_end, self.link_free)
            wire = self._wire(win, i) + self._wire(lose, i) * lose.bytes_
            self._cloud_settle(win, lose, d)
        self.cost[0] += 1
        self.cost[1] += edge_busy
        self.cost[2] += wire
        payload = self.payload[win.k]
        self.in_flight.append((win.edge_end, win.fin, payload))
        record = _new_tuple(Record, (
            i, a, self.ordinals[win.k], self._switched, es - a, win.e,
            win.ls - win.edge_end, win.fin - win.ls, win.cs - win.arrive, win.c, d - a, d,
            payload, False, "",
        ))  # fmt: skip
        self.records.append(record)
        self._switched = False
        if self.wants_finished:
            heappush(self.pending, (d, i, record))

    def _idle_for(self, a: float, es: float, row, k: int, j: int) -> bool:
        """The gate of ``gated``: race only if the second path's extra work, at its mean
        service time and the true conditions when the frame starts, ends before the next
        frame is due (``a`` + 1 / rate): the edge's whole model for all-edge, the raw
        input's transfer (on an idle uplink) for all-cloud."""
        next_s = a + 1.0 / self.sc.rate_hz
        if j > k:  # all-edge: the edge computes on past point k
            return es + row[0][j] <= next_s
        if self.link_free > es:
            return False
        _, over, wire, host = self._law(es)
        fin = max(self.link.finish(es + over[j], wire[j]), es + host[j])
        return fin <= next_s

    def _wire(self, p: _Path, i: int) -> float:
        """p's bytes on the wire (the link law's, without the noise factor)."""
        return self._law(p.ls)[2][p.k]

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
        or the deeper path's first, the shallower one preempted and restarted after
        it unless it would be done before the deeper one starts (``preempt``)."""
        order = sorted((p_lo, p_hi), key=lambda p: p.fin)
        if preempt and p_lo.c > 0 and p_hi.c > 0:
            lo_end = self._at_cloud([p_lo], list(self.cloud_free))
            self._at_cloud([p_hi], list(self.cloud_free))
            if not (p_lo.fin <= p_hi.fin and lo_end <= p_hi.cs):
                order = [p_hi, p_lo]
        self._at_cloud(order, list(self.cloud_free))

    def _at_cloud(self, paths: list[_Path], heap: list[float]) -> float:
        """Serve ``paths`` in this order on the cloud's servers (``heap``: their free
        times); returns the last one's cloud end."""
        end = 0.0
        for p in paths:
            p.arrive = p.fin + self.owl
            if p.c > 0:
                p.cs = max(p.arrive, heap[0])
                p.ce = p.cs + p.c
                heapreplace(heap, p.ce)
            else:
                p.cs = p.ce = p.arrive
            p.done = p.ce + self.owl
            end = p.ce
        return end

    def _cloud_settle(self, win: _Path, lose: _Path, d: float) -> None:
        """The cloud after the race: the winner's request, and the loser's until the
        cancel reaches the cloud (``d`` + one way) if its transfer ended before ``d``."""
        if lose.fin > d:  # aborted on the uplink: the carried share, never at the cloud
            lose.bytes_ = self._carried_abort(lose, d)
        cancel = d + self.owl
        for p in sorted((win, lose), key=lambda p: p.cs):
            if p.c <= 0:
                continue
            if p is lose and (lose.fin > d or lose.cs >= cancel):
                continue
            cs = max(p.arrive, self.cloud_free[0])
            ce = cs + p.c if p is win else min(cs + p.c, cancel)
            heapreplace(self.cloud_free, ce)
            if p is win:
                assert abs(ce - win.ce) < 1e-9, (ce, win.ce)

    def _carried_abort(self, p: _Path, d: float) -> float:
        i = self._i
        return self._carried(p, i, p.ls, d)


def _raced(base: str, alt: str, charge: str, label: str) -> PolicySpec:
    params = {"base": base, "alt": alt, "charge": charge}
    return PolicySpec(policy="__main__:Raced", params=params, label=label)


def _specs(bases, alts, charges) -> tuple[PolicySpec, ...]:
    """The bounds, the bases as shipped, each base alone through the racing run (the
    check) and every race form of each."""
    bounds = ("static-best", "oracle", "oracle-free")
    specs = [PolicySpec(policy=p) for p in dict.fromkeys((*bounds, *bases))]
    specs += [_raced(b, "none", "ignore", f"{b} alone") for b in bases]
    specs += [
        _raced(b, a, c, f"{b} race {a} {c}") for b, a, c in itertools.product(bases, alts, charges)
    ]
    return tuple(specs)


def _check(records: pd.DataFrame, bases) -> None:
    """Each built-in served by the racing run without a second path must give the
    engine's own records bit for bit (or the script stops)."""
    cols = ["request", "point", "edge_wait_s", "edge_s", "uplink_s", "cloud_s", "latency_s"]
    for base in bases:
        mine = records[records["policy"] == f"{base} alone"][cols].to_numpy()
        theirs = records[records["policy"] == base][cols].to_numpy()
        if mine.shape != theirs.shape or not np.array_equal(mine, theirs):
            sys.exit(f"the racing run's {base} alone differs from the engine's {base}")


def _costs(scenario: str, seeds, labels) -> list[dict]:
    """Per race label: extra edge busy seconds and uplink wire bytes per frame (%)
    against the same built-in alone, summed over the seeds."""
    rows = []
    for label in labels:
        base = label.split(" ")[0]
        mine = np.sum([COST[(scenario, label, s)] for s in seeds], axis=0)
        alone = np.sum([COST[(scenario, f"{base} alone", s)] for s in seeds], axis=0)
        rows.append({
            "scenario": scenario, "policy": label,
            "extra_edge_cpu_pct": 100 * (mine[1] / alone[1] - 1),
            "extra_uplink_bytes_pct": 100 * (mine[2] / alone[2] - 1),
            "extra_edge_ms_per_frame": 1e3 * (mine[1] - alone[1]) / mine[0],
            "extra_uplink_kB_per_frame": 1e-3 * (mine[2] - alone[2]) / mine[0],
        })  # fmt: skip
    return rows


def _free(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per-seed metrics with ``oracle-free`` in the oracle's place."""
    ps = per_seed[per_seed["policy"] != "oracle"]
    return ps.replace({"policy": {"oracle-free": "oracle"}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", type=Path)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--bases", default=",".join(BASES), help="built-ins to race")
    ap.add_argument("--alts", default=",".join(ALTS))
    ap.add_argument("--charges", default=",".join(CHARGES))
    ap.add_argument(
        "--rate-x", type=float, default=1.0, help="frame rate times this (load sensitivity)"
    )
    args = ap.parse_args()
    engine._Run = RacingRun  # run_policy builds its run through the module global
    seeds = tuple(range(1, args.seeds + 1))
    paths = args.scenarios or [ROOT / "scenarios" / f"{s}.yaml" for s in DEFAULT_SCENARIOS]
    bases = args.bases.split(",")
    specs = _specs(bases, args.alts.split(","), args.charges.split(","))
    races = [s.label for s in specs if s.label and "race" in s.label]
    t0 = time.perf_counter()
    tables, per_seed, costs = [], {}, []
    for path in paths:
        sc = load_scenario(path)
        sc = dataclasses.replace(sc, policies=specs, seeds=seeds, rate_hz=sc.rate_hz * args.rate_x)
        res = run_scenario(sc)
        if res.errors:
            sys.exit(f"{path.stem}: {res.errors}")
        _check(res.records, bases)
        tables.append(policy_table(res.records).assign(scenario=sc.name))
        per_seed[sc.name] = per_seed_metrics(res.records)
        costs += _costs(sc.name, seeds, races)
        print(f"[{time.perf_counter() - t0:.0f} s] {sc.name}", file=sys.stderr)
    full = pd.concat(tables, ignore_index=True)
    full = full.merge(pd.DataFrame(costs), on=["scenario", "policy"], how="left")
    full = full[~full["policy"].str.endswith(" alone")]
    cols = ["scenario", "policy", "mean_s", "p95_s", "vs_static_best_pct", "gap_closed",
            "gap_lo", "gap_hi", "extra_edge_cpu_pct", "extra_uplink_bytes_pct",
            "extra_edge_ms_per_frame", "extra_uplink_kB_per_frame"]  # fmt: skip
    print(f"seeds {seeds}, frame rate x{args.rate_x:g}\n")
    print(markdown(full[cols]))
    traces = [s for s in TRACE_SCENARIOS if s in per_seed]
    if traces:
        rng = np.random.default_rng(0)
        rows = []
        for policy in [*bases, *races]:
            gap = six_trace_mean({s: per_seed[s] for s in traces}, policy, rng)
            mine = full[full["policy"] == policy]
            row = overall_row(policy, gap, mine)
            # against the oracle that switches free (a race's second path needs no pause)
            free = six_trace_mean({s: _free(per_seed[s]) for s in traces}, policy, rng)
            row["vs_oracle_free"], row["free_lo"], row["free_hi"] = free
            in_traces = mine[mine["scenario"].isin(traces)]
            row["mean_vs_static_best_pct"] = in_traces["vs_static_best_pct"].mean()
            row["mean_p95_s"] = in_traces["p95_s"].mean()
            if policy in races:
                row["edge_cpu_pct"] = in_traces["extra_edge_cpu_pct"].mean()
                row["uplink_bytes_pct"] = in_traces["extra_uplink_bytes_pct"].mean()
                row["edge_ms_per_frame"] = in_traces["extra_edge_ms_per_frame"].mean()
                row["uplink_kB_per_frame"] = in_traces["extra_uplink_kB_per_frame"].mean()
            rows.append(row)
        print(f"\n## The trace scenarios ({', '.join(traces)})\n")
        print(markdown(pd.DataFrame(rows)))
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
