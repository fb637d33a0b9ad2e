"""Does compiling the profiler's heads as partials (no retracing warning) change their timings?

``adaptsim.profiler.timing.compiled`` wraps each sub-model as
``tf.function(functools.partial(model, training=False))``; it used to be
``tf.function(lambda x: model(x, training=False))``, whose shared code object made
TensorFlow warn of retracing on the fifth sub-model. This builds every head of a
model both ways in one process, checks the two traced graphs hold the same
operations, and times them side by side: every round visits every (point, way) once
in a seeded random order, so the machine's drift falls on both ways alike. As the
profiler does: one compiled call per timing, after two warm calls.

``.venv/bin/python benchmarks/profile_compile_ab.py [MODEL] [ROUNDS]`` (default
alexnet, 15 rounds); ``ADAPTSIM_AB_CPUS=0`` pins the process to CPU 0 with one
TensorFlow thread (the profiler's ``--cpus 0``).

Result (2026-12-01 12:22 UTC, measured on a LOADED machine: load average 3.4-3.7 on
2 cores while other engineers' jobs ran; AlexNet, 25 heads, 15 rounds, both
TensorFlow threads; medians of 15 calls per head and way): the graphs are the same
op for op, and the partial's timings are the lambda's within this machine's noise:
median of the 25 per-head ratios after / before 0.966 (0.740-1.277 per head; the
spread is the load's, both ways alike); whole model (point 25) 125.5 ms before,
112.8 ms after; a head a third of the way in (point 9) 107.7 / 96.0 ms.
Again pinned to CPU 0 with one thread (``ADAPTSIM_AB_CPUS=0``, 12:41 UTC, load average
4.3-5.9, still loaded): median ratio 0.969 (0.893-1.094 per head); whole model 58.6 ms
before, 53.5 ms after. Neither way is slower beyond the noise.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np


def _ops(fn, x) -> list[str]:
    graph = fn.get_concrete_function(x).graph
    return sorted(op.type for op in graph.get_operations())


def main(name: str = "alexnet", rounds: int = 15) -> None:
    cpus = os.environ.get("ADAPTSIM_AB_CPUS")
    if cpus:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    import tensorflow as tf

    if cpus:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    from adaptsim.models import PointKind, analyse, build_model, split
    from adaptsim.profiler.timing import compiled

    model = build_model(name)
    graph = analyse(model)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((1, *graph.points[0].output_shape)).astype(np.float32))
    ways = {}
    for p in graph.points:
        if p.kind is PointKind.ALL_CLOUD:
            continue
        head = split(model, p.ordinal, graph=graph)[0]
        old = tf.function(lambda v, m=head: m(v, training=False), reduce_retracing=True)
        new = compiled(head)
        assert _ops(old, x) == _ops(new, x), f"point {p.ordinal}: the graphs differ"
        ways[(p.ordinal, "lambda")] = old
        ways[(p.ordinal, "partial")] = new
    for fn in ways.values():  # as SplitTimer: two warm calls
        fn(x), fn(x)
    keys = list(ways)
    times: dict[tuple[int, str], list[float]] = {k: [] for k in keys}
    load = [os.getloadavg()[0]]
    for _ in range(rounds):
        for i in rng.permutation(len(keys)):
            fn = ways[keys[i]]
            t0 = time.perf_counter()
            fn(x)
            times[keys[i]].append(time.perf_counter() - t0)
        load.append(os.getloadavg()[0])
    points = sorted({k[0] for k in keys})
    print(f"{name}: {len(points)} heads, {rounds} rounds, graphs identical op for op; "
          f"load average {min(load):.1f}-{max(load):.1f} over {os.cpu_count()} cores"
          f"{f', pinned to CPU {cpus}, 1 thread' if cpus else ''}")  # fmt: skip
    print("| point | lambda (before) median ms | partial (after) median ms | after / before |")
    print("| --- | --- | --- | --- |")
    ratios = []
    for p in points:
        a, b = np.median(times[(p, "lambda")]), np.median(times[(p, "partial")])
        ratios.append(b / a)
        print(f"| {p} | {1e3 * a:.2f} | {1e3 * b:.2f} | {b / a:.3f} |")
    print(f"median of the per-point ratios: {np.median(ratios):.3f} "
          f"(range {min(ratios):.3f}-{max(ratios):.3f})")  # fmt: skip


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["alexnet"]), *(int(v) for v in sys.argv[2:3]))
