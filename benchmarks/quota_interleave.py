# ruff: noqa: E402  (pinned to CPU 0 before TensorFlow starts its thread pools)
"""Under CpuQuota(0.2) on CPU 0, one TF thread: ResNet50's whole model timed repeatedly,
and interleaved with other points' heads (as the profiler's repeats time every point in a
shuffled order), alternating blocks in one process. Idle machine."""

import os
import statistics
import time

os.sched_setaffinity(0, {0})
import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
import numpy as np

from adaptsim.emulation import CpuQuota
from adaptsim.models import analyse, build_model
from adaptsim.models.split import split

m = build_model("resnet50")
g = analyse(m)
pts = [p.ordinal for p in g.points]
last = pts[-1]
heads = {
    k: tf.function(lambda x, h=split(m, k, graph=g)[0]: h(x, training=False))
    for k in (pts[5], pts[10], pts[15], pts[20], last)
}
x = tf.constant(np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32))
for f in heads.values():
    for _ in range(2):
        f(x).numpy()
res = {"repeated": [], "interleaved": []}
rng = np.random.default_rng(1)


def clock(f):
    t = time.perf_counter()
    f(x)
    return time.perf_counter() - t


with CpuQuota(0.2):
    for _block in range(4):
        for _ in range(5):
            res["repeated"].append(clock(heads[last]))
        for _ in range(5):
            for k in rng.permutation(list(heads)):
                d = clock(heads[k])
                if k == last:
                    res["interleaved"].append(d)
for k, v in res.items():
    print(k, "median", round(statistics.median(v), 4), "n", len(v))
print(
    "ratio interleaved/repeated",
    round(statistics.median(res["interleaved"]) / statistics.median(res["repeated"]), 3),
)
