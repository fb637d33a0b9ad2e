"""Is an edge that wakes to a frame now and then slowed less by CPU stress than a profile says?

The profiler times back-to-back inferences beside stress-ng on the edge's core; a
real edge computes a frame and sleeps until the next. If the scheduler favoured
the waking thread over the stressor, stressed profiles would over-predict a real
edge. This times one compiled model on CPU 0 (one TensorFlow thread) beside
stress-ng on CPU 0 (the profiler's and the testbed's own ``Stress``), back to back
and after an idle gap, interleaved in blocks so drifts fall on every variant.

Run on the idle machine (root not needed; stress-ng installed):
``.venv/bin/python benchmarks/stress_idle_gap.py [MODEL]`` (a keras.applications
name, default ResNet50V2).

Result (2026-11-30 21:11 UTC, idle machine, load average 2.5 from the profile that
had just ended, 16 calls per cell; medians in ms):

| CPU stress | back to back | after 0.1 s idle | after 0.5 s idle |
| --- | --- | --- | --- |
| 0 % | 130.9 | 135.7 | 139.1 |
| 50 % | 189.3 | 189.2 | 194.0 |
| 100 % | 260.2 | 257.0 | 261.1 |

The gap changes nothing (ratios 0.99-1.03): no waking-thread advantage. The real
edge of busy_edge took 258 ms at 100 % (its saved run); the shipped profile had
0.46-0.53 s there, because it was taken while other work ran on the machine.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

GAPS_S = (0.0, 0.1, 0.5)
LEVELS_PCT = (0, 50, 100)


def main(name: str = "ResNet50V2", blocks: int = 4, per_block: int = 4) -> None:
    os.sched_setaffinity(0, {0})
    import keras
    import tensorflow as tf

    from adaptsim.emulation.stress import Stress

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = getattr(keras.applications, name)(weights=None)
    fn = tf.function(lambda x: model(x, training=False))
    x = tf.constant(np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32))
    fn(x), fn(x)

    def clock() -> float:
        t0 = time.perf_counter()
        fn(x)
        return time.perf_counter() - t0

    times: dict[tuple[int, float], list[float]] = {}
    for level in LEVELS_PCT:
        with Stress(level, 0, cpu_cpus=[0]):
            for _ in range(blocks):
                for gap in GAPS_S:
                    for _ in range(per_block):
                        if gap:
                            time.sleep(gap)
                        else:
                            clock()  # busy just before: back to back
                        times.setdefault((level, gap), []).append(clock())
    print(f"{name}: median ms per (CPU stress, idle gap before the call)")
    for level in LEVELS_PCT:
        med = [np.median(times[(level, g)]) for g in GAPS_S]
        cells = "  ".join(f"gap {g:.1f} s {m * 1e3:7.1f}" for g, m in zip(GAPS_S, med, strict=True))
        print(f"CPU {level:3d} %: {cells}  ratios to back-to-back "
              + " ".join(f"{m / med[0]:.3f}" for m in med[1:]))  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:2])
