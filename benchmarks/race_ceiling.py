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
resource cost of ``charge``: extra edge-CPU seconds and extra uplink bytes (tensor
bytes, an aborted transfer counted for what it carried) per frame against the same
built-in alone, in %.

The race itself is the engine's (``adaptsim.simulator.hedge``, the scenario key
``hedge``: ``charge`` and ``gated``); this script adds per-policy forms and the two
diagnostic loser loads (``ignore``, ``fifo``). Until 1 Dec it carried its own copy,
which the engine's reproduces frame for frame (docs/policies.md); the costs were
then counted in bytes on the wire (the link law's), now in tensor bytes.

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
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.scoring import per_seed_metrics
from adaptsim.simulator import engine, load_scenario, run_scenario
from adaptsim.simulator.hedge import Hedge
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


class Raced(Wrapped):
    """A built-in's decisions, each frame raced by the engine's hedge (diagnostic)."""

    def __init__(self, base: str, alt: str, charge: str):
        super().__init__(base)
        self.alt, self.charge = alt, charge
        self.race = True


class RacingRun(engine._Run):
    """The fast engine's run; a :class:`Raced` policy's frames served by the engine's
    hedged serve (``adaptsim.simulator.hedge``) with its own path and loser load."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        if getattr(self.policy, "race", False):
            c = self.policy.charge
            loser = c if c in ("fifo", "ignore") else "charge"
            self._start_hedge(Hedge(self.policy.alt, gate=c == "gated", loser=loser))
            self.stats.hedged = True


def _raced(base: str, alt: str, charge: str, label: str) -> PolicySpec:
    params = {"base": base, "alt": alt, "charge": charge}
    return PolicySpec(policy="__main__:Raced", params=params, label=label)


def _specs(bases, alts, charges) -> tuple[PolicySpec, ...]:
    """The bounds, the bases as shipped and every race form of each."""
    bounds = ("static-best", "oracle", "oracle-free")
    specs = [PolicySpec(policy=p) for p in dict.fromkeys((*bounds, *bases))]
    specs += [
        _raced(b, a, c, f"{b} race {a} {c}") for b, a, c in itertools.product(bases, alts, charges)
    ]
    return tuple(specs)


def _costs(scenario: str, records: pd.DataFrame, labels) -> list[dict]:
    """Per race label: extra edge busy seconds and uplink tensor bytes per frame (%)
    against the same built-in alone, over the seeds (the engine's hedge columns)."""
    rows = []
    edge = records["edge_s"] + records.get("hedge_loser_edge_s", 0.0).fillna(0.0)
    sent = records["payload_bytes"] + records.get("hedge_loser_uplink_bytes", 0.0).fillna(0.0)
    by = records.assign(edge_busy_s=edge, sent_bytes=sent).groupby("policy")
    busy, wire, frames = by["edge_busy_s"].sum(), by["sent_bytes"].sum(), by.size()
    for label in labels:
        base = label.split(" ")[0]
        rows.append({
            "scenario": scenario, "policy": label,
            "extra_edge_cpu_pct": 100 * (busy[label] / busy[base] - 1),
            "extra_uplink_bytes_pct": 100 * (wire[label] / wire[base] - 1),
            "extra_edge_ms_per_frame": 1e3 * (busy[label] - busy[base]) / frames[label],
            "extra_uplink_kB_per_frame": 1e-3 * (wire[label] - wire[base]) / frames[label],
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
        tables.append(policy_table(res.records).assign(scenario=sc.name))
        per_seed[sc.name] = per_seed_metrics(res.records)
        costs += _costs(sc.name, res.records, races)
        print(f"[{time.perf_counter() - t0:.0f} s] {sc.name}", file=sys.stderr)
    full = pd.concat(tables, ignore_index=True)
    full = full.merge(pd.DataFrame(costs), on=["scenario", "policy"], how="left")
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
