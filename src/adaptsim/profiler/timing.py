"""Timing the two halves of every split of a model, on this host.

The edge half at point k is the head ``Model(input, t_k)``, the cloud half the
tail ``Model(t_k, output)`` (:func:`adaptsim.models.split`). Each is wrapped in a
``tf.function`` and timed as one compiled call, exactly as a split deployment runs
it: ``model.predict`` would add ~50-70 ms a call and eager calls ~1 ms a layer.
Heads and tails are timed directly rather than summed from per-block timings:
measured here, blocks timed alone over-count by 5-50 % (a compiled call's fixed
cost per block, and layers that fuse inside one graph but not across a cut).

One repeat times every point once, in an order drawn from the seeded generator,
so drifts of a noisy host fall on all points alike rather than on the last ones.
Nothing runs at the ends: the head of all-cloud and the tail of all-edge take 0 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from adaptsim.models.graph import ModelGraph, PointKind
from adaptsim.models.split import compiled, split

__all__ = ["SplitTimer", "compiled"]

_WARM_CALLS = 2


def _clock(fn: Callable, x) -> float:
    t0 = time.perf_counter()
    fn(x)  # on the CPU a compiled call returns when its result is computed
    return time.perf_counter() - t0


class SplitTimer:
    """Compiled heads (role ``edge``) or tails (role ``cloud``) of every point."""

    def __init__(self, model: keras.Model, graph: ModelGraph, role: str, rng: np.random.Generator):
        if role not in ("edge", "cloud"):
            raise ValueError(f"role must be edge or cloud, not {role!r}")
        self.graph, self.role = graph, role
        shape = (1, *graph.points[0].output_shape)
        x = tf.constant(rng.standard_normal(shape).astype(np.float32))
        self._calls: list[tuple[Callable, object] | None] = []
        for p in graph.points:
            idle = (role == "edge" and p.kind is PointKind.ALL_CLOUD) or (
                role == "cloud" and p.kind is PointKind.ALL_EDGE
            )
            if idle:
                self._calls.append(None)
                continue
            head, tail = split(model, p.ordinal, graph=graph)
            if role == "edge":
                self._calls.append((compiled(head), x))
            else:  # the tail's input is the head's real output
                self._calls.append((compiled(tail), head(x, training=False)))
        self.ordinals = np.array([p.ordinal for p in graph.points], dtype=np.int64)
        for _ in range(_WARM_CALLS):  # trace every graph and warm its caches
            self.once(np.random.default_rng(0))

    def once(self, rng: np.random.Generator) -> np.ndarray:
        """One repeat: seconds of every point's half, in point order."""
        out = np.zeros(len(self._calls))
        for i in rng.permutation(len(self._calls)):
            call = self._calls[i]
            if call is not None:
                out[i] = _clock(*call)
        return out
