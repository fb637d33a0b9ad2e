"""How much could a progressive split win? The ceiling of issue 17's progressive idea.

A real edge runs the head block by block and can time its own blocks. In the
simulator one uniform per frame drives every point's edge factor
(:func:`adaptsim.simulator.draws.service_noise`), so once a frame has run its first
block on the edge, the edge knows how slow *this* frame runs, and could send now or
go deeper. This diagnostic (clairvoyant in a controlled way, not a policy to ship)
measures what that knowledge is worth at most, on the same seeds as the built-ins.

Each diagnostic is a practical built-in (``neurosurgeon``, ``changepoint``, ``mpc``:
its own decisions, from its own delayed, noisy readings) plus a per-frame
*refinement*: when a frame starts on the edge at a point other than all-cloud (the
raw input learns nothing), it may move to any point past all-cloud, choosing the
least predicted completion from

- the frame's own edge factor (``draw``: the true one, as the first block's time
  reveals under the simulator's comonotone noise; ``mean``: the mean factor, the
  control that knows nothing of the frame),
- the mean link and cloud factors (the frame's own link and cloud draws stay
  unknown: they happen after it leaves the edge),
- the true conditions when it starts on the edge (bandwidth frozen at that value,
  the true stress): more than any practical policy knows, so this is a ceiling,
- the true queues (edge, uplink, cloud).

Two ways to pay for a refinement: ``pays`` (a point other than the deployed one is a
re-partition: the switch pause is added to the frame's edge time and the new point
stays deployed, exactly as the paying oracle's look-ahead prices a move, so the
oracle stays an upper bound frame by frame) and ``free`` (a progressive edge holds
the whole model and stops where it likes: no pause, the deployed point unchanged;
then the paying oracle is no longer a bound).

Gap closed against the paying oracle, per scenario, and the mean over the six trace
scenarios with a paired bootstrap 95 % interval (seeds resampled together).

Run: ``.venv/bin/python benchmarks/progressive_ceiling.py [--seeds 5] [SCENARIO.yaml ...]``

Measured 2026-12-01 (every shipped scenario, seeds 1..5, 70 s): six-trace mean gap
closed 0.49-0.52 with ``pays`` (the own edge draw adds 0.003-0.011 over ``mean``),
0.58-0.59 with ``free`` (+0.04 over ``mean``); the table in docs/policies.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.scoring import per_seed_metrics
from adaptsim.simulator import engine, load_scenario, run_scenario
from adaptsim.simulator.policies import REGISTRY, BasePolicy
from adaptsim.simulator.record import Record
from adaptsim.simulator.scenario import PolicySpec
from adaptsim.units import bytes_per_s

sys.path.insert(0, str(Path(__file__).resolve().parent))
from near_repeat_spread import TRACE_SCENARIOS
from persistence_scores import overall_row, six_trace_mean
from policy_scores import markdown, policy_table, shipped_scenarios

__all__ = ["Refined", "RefiningRun", "Wrapped"]

BASES = ("neurosurgeon", "changepoint", "mpc")
_new_tuple = tuple.__new__


class Wrapped(BasePolicy):
    """A built-in's own decisions, for a diagnostic run that serves them its own way
    (also ``race_ceiling.py``'s)."""

    def __init__(self, base: str):
        self.base = REGISTRY[base](None)
        self.period_s = self.base.period_s
        self.uses_finished = self.base.uses_finished
        self.clairvoyant = self.base.clairvoyant  # static-best reads the truth at t = 0

    def decide(self, view) -> int:
        return self.base.decide(view)


class Refined(Wrapped):
    """A built-in's decisions, refined per frame by :class:`RefiningRun` (diagnostic)."""

    def __init__(self, base: str, knows: str, cost: str):
        super().__init__(base)
        self.knows, self.cost = knows, cost
        self.refine = True


class RefiningRun(engine._Run):
    """The fast engine's run, with a per-frame refinement for :class:`Refined` policies."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.refining = getattr(self.policy, "refine", False)
        if self.refining:
            assert not self.sc.admission.active, "the diagnostic serves without admission"
            self.serve = self.serve_refined
            n = max(len(self._arrival_s), 1)
            self.mean_fe = [sum(col) / n for col in self._fe]
            self.mean_fl = [sum(col) / n for col in self._fl]
            self.mean_fc = [sum(col) / n for col in self._fc]
            self.ordinals = self.sc.model.ordinals.tolist()

    def _predicted_done(self, i: int, es: float, k: int, row, pause: float) -> float:
        fe = self._fe[k][i] if self.policy.knows == "draw" else self.mean_fe[k]
        edge_end = es + pause + row[0][k] * fe
        ls = max(edge_end, self.link_free)
        _, over, wire, host = row
        rate = bytes_per_s(self.sc.bandwidth.at(es))
        fl = self.mean_fl[k]
        wire_s = over[k] * fl + (wire[k] * fl / rate if rate > 0 else np.inf)
        fin = ls + max(wire_s, host[k] * fl)
        c = self.cloud_s[k] * self.mean_fc[k]
        arrive = fin + self.owl
        end = max(arrive, self.cloud_free[0]) + c if c > 0 else arrive
        return end + self.owl

    def serve_refined(self, i: int) -> None:
        a = self._arrival_s[i]
        self._i = i
        if self.per_frame:
            self.decide(a)
        k = self.col[self.current]
        es = a if a > self.edge_free else self.edge_free
        row = self.edge_stress.row(es)
        pause = 0.0
        if k > 0:  # the frame runs its first block on the edge: refine past all-cloud
            pays = self.policy.cost == "pays"
            best, best_k = np.inf, k
            for j in range(1, len(self.ordinals)):
                extra = self.sc.pause_s if pays and j != k else 0.0
                done = self._predicted_done(i, es, j, row, extra)
                if done < best:
                    best, best_k = done, j
            if best_k != k:
                if pays:
                    pause = self.sc.pause_s
                    self.stats.repartitions += 1
                    self.stats.switching_s += pause
                    self.current = self.ordinals[best_k]
                    self._switched = True
                k = best_k
        fe, fl, fc = self._fe[k][i], self._fl[k][i], self._fc[k][i]
        e = row[0][k] * fe + pause
        edge_end = es + e
        self.edge_free = edge_end
        ls = edge_end if edge_end > self.link_free else self.link_free
        fin = self._sent(ls, k, fl, self.link_stress.row(ls))
        self.link_free = fin
        payload = self.payload[k]
        self.in_flight.append((edge_end, fin, payload))
        c = self.cloud_s[k] * fc
        arrive = fin + self.owl
        if c > 0:
            cs = max(arrive, self.cloud_free[0])
            ce = cs + c
            engine.heapreplace(self.cloud_free, ce)
        else:
            cs = ce = arrive
        done = ce + self.owl
        record = _new_tuple(Record, (
            i, a, self.ordinals[k], self._switched, es - a, e, ls - edge_end, fin - ls,
            cs - arrive, c, done - a, done, payload, False, "",
        ))  # fmt: skip
        self.records.append(record)
        self._switched = False
        if self.wants_finished:
            engine.heappush(self.pending, (done, i, record))


def _specs() -> tuple[PolicySpec, ...]:
    specs = [PolicySpec(policy=p) for p in ("static-best", "oracle", "oracle-free", *BASES)]
    for base in BASES:
        for knows in ("mean", "draw"):
            for cost in ("pays", "free"):
                specs.append(
                    PolicySpec(
                        policy="__main__:Refined",
                        params={"base": base, "knows": knows, "cost": cost},
                        label=f"{base} +{knows} {cost}",
                    )
                )
    return tuple(specs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", type=Path)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    engine._Run = RefiningRun  # run_policy builds its run through the module global
    seeds = tuple(range(1, args.seeds + 1))
    paths = args.scenarios or shipped_scenarios()
    t0 = time.perf_counter()
    tables, per_seed = [], {}
    for path in paths:
        sc = dataclasses.replace(load_scenario(path), policies=_specs(), seeds=seeds)
        res = run_scenario(sc)
        if res.errors:
            sys.exit(f"{path.stem}: {res.errors}")
        tables.append(policy_table(res.records).assign(scenario=sc.name))
        per_seed[sc.name] = per_seed_metrics(res.records)
        print(f"[{time.perf_counter() - t0:.0f} s] {sc.name}", file=sys.stderr)
    full = pd.concat(tables, ignore_index=True)
    cols = ["scenario", "policy", "mean_s", "p95_s", "vs_static_best_pct", "gap_closed",
            "gap_lo", "gap_hi"]  # fmt: skip
    print(f"seeds {seeds}\n")
    print(markdown(full[cols]))
    traces = [s for s in TRACE_SCENARIOS if s in per_seed]
    rng = np.random.default_rng(0)
    rows = []
    for policy in [s.label or s.policy for s in _specs()][3:]:
        gap = six_trace_mean({s: per_seed[s] for s in traces}, policy, rng)
        rows.append(overall_row(policy, gap, full[full["policy"] == policy]))
    print(f"\n## Six trace scenarios ({', '.join(traces)})\n")
    print(markdown(pd.DataFrame(rows)))
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
