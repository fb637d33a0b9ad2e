"""What one switch of the split point costs on the edge, measured.

Two ways a deployment can switch, both measured here per point:

- **cold**: the new head is built and compiled when the switch happens (split
  the Keras model at the new point, trace its ``tf.function``, first call); what
  a deployment pays that keeps only the current head in memory.
- **warm**: every head was built and compiled beforehand (as the testbed's edge
  does); the switch is the first call of another compiled head, and costs what
  that call takes beyond the head's steady time (caches, first touch of its
  weights after another head ran).

Run as ``python -m adaptsim.testbed.switch MODEL [--cpus 0]`` it prints one JSON
object (per-point seconds and medians); pin it as the testbed's edge is.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

__all__ = ["switch_costs"]


def switch_costs(name: str, repeats: int = 5, seed: int = 0) -> dict:
    """Cold and warm switch costs of every head of zoo model ``name`` (seconds)."""
    from adaptsim.models import analyse, build_model, canonical_name
    from adaptsim.models.graph import PointKind
    from adaptsim.models.split import compiled, split

    name = canonical_name(name)
    model = build_model(name)
    graph = analyse(model)
    x = np.random.default_rng(seed).standard_normal((1, *graph.points[0].output_shape))
    x = x.astype(np.float32)
    points = [p for p in graph.points if p.kind is not PointKind.ALL_CLOUD]
    cold, fns = {}, {}
    for p in points:
        t0 = time.perf_counter()
        head, _ = split(model, p.ordinal, graph=graph)
        fn = compiled(head)
        fn(x)
        cold[p.ordinal] = time.perf_counter() - t0
        fns[p.ordinal] = fn
    steady, first = {k: [] for k in fns}, {k: [] for k in fns}
    rng = np.random.default_rng(seed)
    ords = list(fns)
    for _ in range(repeats):
        for k in rng.permutation(ords).tolist():
            other = ords[(ords.index(k) + len(ords) // 2) % len(ords)]
            for _ in range(3):  # another head runs for a while: the switch is away from it
                fns[other](x)
            t0 = time.perf_counter()
            fns[k](x)
            first[k].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            fns[k](x)
            steady[k].append(time.perf_counter() - t0)
    warm = {k: float(np.median(first[k]) - np.median(steady[k])) for k in fns}
    cold_extra = {k: cold[k] - float(np.median(steady[k])) for k in fns}
    return {
        "model": name,
        "points": len(fns),
        "repeats": repeats,
        "cold_switch_s": cold_extra,
        "warm_switch_s": warm,
        "steady_head_s": {k: float(np.median(v)) for k, v in steady.items()},
        "median_cold_switch_s": float(np.median(list(cold_extra.values()))),
        "median_warm_switch_s": float(np.median(list(warm.values()))),
        "max_warm_switch_s": float(max(warm.values())),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m adaptsim.testbed.switch")
    ap.add_argument("model")
    ap.add_argument("--cpus", default="0", help="pin to these CPUs (the testbed's edge: 0)")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    from adaptsim.emulation import parse_cpus, pin_cpus

    pin_cpus(parse_cpus(a.cpus))
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    out = switch_costs(a.model, a.repeats)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
