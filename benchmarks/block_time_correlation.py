"""Does a frame's first block tell how slow the rest of its head will run? On a real host.

The simulator draws one uniform per frame for the edge and maps it through every
point's quantiles (:func:`adaptsim.simulator.draws.service_noise`): a frame's edge
factor is comonotone across points, so the time of its first block would tell a
progressive edge exactly how slow the rest of the frame will run (a rank
correlation of 1). The profiles cannot check that (every point is a separate
inference). This runs one real Keras model (``weights=None``) as a progressive edge
that re-decides once would: per frame, the head up to a prefix point, then the rest
of the head from that point's real output to the model's output, each its own
compiled ``tf.function``, back to back, frame after frame, the process pinned to one
core with one TensorFlow thread (optionally under stress-ng CPU load on that same
core). Prefixes: the first block (the first point past all-cloud) and the first
points whose edge FLOPs reach 10 % and 25 % of the model's. Each frame also runs
the whole model as one compiled call, so the cost of cutting the head in two shows
(``split_cost_ms``: median prefix + rest - median whole model).

Reported, over frames: Spearman's rank correlation between the prefix's time and
the rest's time; raw, and detrended (each frame's times divided by the median of
the 21 frames around it, which takes out the slow drift a policy already sees in
its previous frames: what is left is what only the frame's own first block can
tell), with a 95 % moving-block bootstrap interval (blocks of 20 frames) and the
95 % band of a permutation null.

Run: ``.venv/bin/python benchmarks/block_time_correlation.py [-m mobilenet] [--frames 400]
[--cpu 1] [--cpu-stress 0] [--out times.csv]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["detrended", "prefix_rest_correlation", "rank_correlation"]

_BOOT = 1000
_PERM = 1000
_WINDOW = 21
_BLOCK = 20


def rank_correlation(first: np.ndarray, rest: np.ndarray) -> float:
    """Spearman's rank correlation of two per-frame series."""
    return float(stats.spearmanr(first, rest).statistic)


def detrended(times_s: np.ndarray, window: int = _WINDOW) -> np.ndarray:
    """Each frame's time over the centred rolling median of ``window`` frames around it."""
    s = pd.Series(times_s)
    return (s / s.rolling(window, center=True, min_periods=window // 4 + 1).median()).to_numpy()


def prefix_rest_correlation(
    first: np.ndarray, rest: np.ndarray, rng: np.random.Generator, block: int = _BLOCK
) -> dict[str, float]:
    """Rank correlation, its moving-block bootstrap 95 % interval and a permutation
    null's 95 % band (``rest`` shuffled against ``first``)."""
    n = len(first)
    r = rank_correlation(first, rest)
    starts = np.arange(max(n - block + 1, 1))
    boot = []
    for _ in range(_BOOT):
        pick = rng.choice(starts, size=max(n // block, 1))
        idx = (pick[:, None] + np.arange(min(block, n))[None, :]).ravel()
        boot.append(rank_correlation(first[idx], rest[idx]))
    null = [rank_correlation(first, rng.permutation(rest)) for _ in range(_PERM)]
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])
    nlo, nhi = np.percentile(null, [2.5, 97.5])
    return {"r": r, "lo": float(lo), "hi": float(hi), "null_lo": float(nlo), "null_hi": float(nhi)}


def _progressive(model_name: str, shares: tuple[float, ...]):
    """Per prefix: the head up to a partition point and the rest of the head after it,
    each compiled as one call (what a progressive edge that re-decides once runs), and
    the whole model compiled as one call. Prefixes: the first point past all-cloud
    (the first block), and the first point whose edge FLOPs reach each of ``shares``."""
    import keras
    import tensorflow as tf

    from adaptsim.models import PointKind, analyse, build_model

    model = build_model(model_name, seed=0)
    graph = analyse(model)
    points = [p for p in graph.points if p.kind is not PointKind.ALL_CLOUD]
    last = points[-1]
    total = float(last.edge_flops) or 1.0
    chosen = {"first block": points[0]}
    for q in shares:
        p = next(p for p in points if p.edge_flops / total >= q)
        chosen[f">= {q:.0%} of the FLOPs"] = p
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs

    def compiled(sub):
        return tf.function(lambda x: sub(x, training=False), reduce_retracing=True)

    pairs = {
        label: (
            p,
            compiled(keras.Model(inputs, p.tensor)),
            compiled(keras.Model(p.tensor, last.tensor)),
        )
        for label, p in chosen.items()
    }
    return graph, pairs, compiled(model)


def time_frames(
    model_name: str, frames: int, seed: int, progress, shares=(0.10, 0.25)
) -> tuple[pd.DataFrame, dict]:
    """Per frame and prefix: the prefix's and the rest's seconds, run back to back; and
    the whole model's seconds as one call."""
    import tensorflow as tf

    graph, pairs, whole = _progressive(model_name, shares)
    rng = np.random.default_rng(seed)
    shape = (1, *graph.points[0].output_shape)
    pool = [tf.constant(rng.standard_normal(shape).astype(np.float32)) for _ in range(4)]
    for x in pool[:2]:  # trace and warm every graph
        for _, head, rest in pairs.values():
            rest(head(x))
        whole(x)
    rows = []
    clock = time.perf_counter
    try:
        for f in range(frames):
            x = pool[f % len(pool)]
            row = {"frame": f}
            for label, (_, head, rest) in pairs.items():
                t0 = clock()
                y = head(x)  # on the CPU a compiled call returns when its result is computed
                t1 = clock()
                rest(y)
                t2 = clock()
                row[f"{label}|prefix_s"], row[f"{label}|rest_s"] = t1 - t0, t2 - t1
            t0 = clock()
            whole(x)
            row["whole_s"] = clock() - t0
            rows.append(row)
            if (f + 1) % 50 == 0:
                progress(f"{f + 1}/{frames} frames")
    except KeyboardInterrupt:
        progress(f"interrupted: {len(rows)} frames kept")
    return pd.DataFrame(rows), {label: p for label, (p, _, _) in pairs.items()}


def summarise(times: pd.DataFrame, points: dict, rng: np.random.Generator) -> pd.DataFrame:
    """The correlations of the module docstring, one row per prefix and treatment."""
    rows = []
    whole = float(times["whole_s"].median())
    for label, p in points.items():
        first = times[f"{label}|prefix_s"].to_numpy()
        rest = times[f"{label}|rest_s"].to_numpy()
        both = float(np.median(first + rest))
        for how, (a, b) in {
            "raw": (first, rest),
            "detrended": (detrended(first), detrended(rest)),
        }.items():
            ok = np.isfinite(a) & np.isfinite(b)
            res = prefix_rest_correlation(a[ok], b[ok], rng)
            rows.append(
                {
                    "prefix": label,
                    "point": p.ordinal,
                    "prefix_ms": float(np.median(first)) * 1e3,
                    "rest_ms": float(np.median(rest)) * 1e3,
                    "split_cost_ms": (both - whole) * 1e3,
                    "series": how,
                    **res,
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", default="mobilenet")
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--cpu", type=int, default=1, help="the one core to pin to")
    ap.add_argument("--cpu-stress", type=float, default=0.0, help="stress-ng load %% on it")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="per-frame block times (CSV)")
    args = ap.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from adaptsim.emulation.stress import Stress

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    with Stress(args.cpu_stress, 0, cpu_cpus=[args.cpu]):
        times, points = time_frames(args.model, args.frames, args.seed, progress)
    wall_s = time.perf_counter() - t0
    if args.out:
        from adaptsim.atomic import write_atomic

        write_atomic(args.out, lambda p: times.to_csv(p, index=False))
    rng = np.random.default_rng(args.seed)
    table = summarise(times, points, rng)
    print(
        f"{args.model}: {len(times)} frames, core {args.cpu}, 1 TF thread, stress-ng "
        f"{args.cpu_stress:g} %; {wall_s:.0f} s; load average before {load_before[0]:.2f}, "
        f"after {os.getloadavg()[0]:.2f}; whole model as one call: median "
        f"{times['whole_s'].median() * 1e3:.2f} ms\n"
    )
    cols = ["prefix", "point", "prefix_ms", "rest_ms", "split_cost_ms", "series", "r", "lo",
            "hi", "null_lo", "null_hi"]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for _, row in table[cols].iterrows():
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
