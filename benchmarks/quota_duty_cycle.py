# ruff: noqa: E402  (pinned to CPU 0 before TensorFlow starts its thread pools)
"""Under CpuQuota(0.2) on CPU 0, one TF thread: ResNet50's whole model timed back to back
(as the profiler's repeats) and with idle gaps between inferences (as the testbed's edge at
0.8 frames/s), alternating blocks, in one process. Idle machine."""

import os
import statistics
import time

os.sched_setaffinity(0, {0})
import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
import numpy as np

from adaptsim.emulation import CpuQuota

m = tf.keras.applications.ResNet50(weights=None)
f = tf.function(lambda x: m(x, training=False))
x = tf.constant(np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32))
for _ in range(3):
    f(x).numpy()
res = {"back_to_back": [], "gap_0.6s": []}
with CpuQuota(0.2):
    for _ in range(2):
        f(x).numpy()
    for _block in range(4):
        for mode in res:
            for _ in range(5):
                if mode != "back_to_back":
                    time.sleep(0.6)
                t = time.perf_counter()
                f(x).numpy()
                res[mode].append(time.perf_counter() - t)
for k, v in res.items():
    print(
        k,
        "median",
        round(statistics.median(v), 4),
        "n",
        len(v),
        "min",
        round(min(v), 4),
        "max",
        round(max(v), 4),
    )
print(
    "ratio gap/b2b",
    round(statistics.median(res["gap_0.6s"]) / statistics.median(res["back_to_back"]), 3),
)
