"""Exact head/tail splitting of a Keras model at a partition point.

Keras 3 splits without cloning: the head is ``Model(inputs, t)`` and the tail
``Model(t, outputs)`` for the cut's tensor ``t``; both share the full model's
layers and weights, so head then tail computes exactly what the model computes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import keras

from adaptsim.models.graph import ModelGraph, PointKind, analyse

__all__ = ["InvalidPointError", "compiled", "split"]


class InvalidPointError(ValueError):
    """A split asked for at a point that is not a valid partition point."""


def _single(tensors):
    return tensors[0] if len(tensors) == 1 else tensors


def split(
    model: keras.Model,
    point: int,
    *,
    by: str = "ordinal",
    graph: ModelGraph | None = None,
) -> tuple[keras.Model, keras.Model]:
    """Split ``model`` into (head, tail) at a partition point.

    Args:
        model: the full model.
        point: the point's ordinal (``by="ordinal"``) or the index in
            ``model.layers`` of the last layer on the edge (``by="layer"``).
        by: how ``point`` is given.
        graph: the model's analysis, when the caller already has it.

    Raises:
        InvalidPointError: out of range, or inside a block; names the nearest points.
    """
    graph = graph or analyse(model)
    if by == "ordinal":
        try:
            p = graph.point(point)
        except ValueError as exc:
            raise InvalidPointError(str(exc)) from None
    elif by == "layer":
        matches = [q for q in graph.points if q.layer_index == point]
        if not matches:
            before, after = graph.nearest_points(point)
            near = ", ".join(
                f"point {q.ordinal} (after layer {q.layer_index} {q.layer_name})"
                for q in (before, after)
                if q is not None
            )
            raise InvalidPointError(
                f"{graph.name}: layer {point} is not a valid partition point "
                f"(it lies inside a block or out of range); nearest valid: {near}"
            )
        p = matches[-1]
    else:
        raise ValueError(f"by must be 'ordinal' or 'layer', not {by!r}")
    inputs = _single(model.inputs)
    outputs = _single(model.outputs)
    head = keras.Model(inputs, p.tensor, name=f"{graph.name}_head_{p.ordinal}")
    if p.kind is PointKind.ALL_EDGE:  # the cloud has nothing to run: an identity tail
        t = keras.Input(shape=p.output_shape, dtype=p.tensor.dtype)
        tail = keras.Model(t, t, name=f"{graph.name}_tail_{p.ordinal}")
    else:
        tail = keras.Model(p.tensor, outputs, name=f"{graph.name}_tail_{p.ordinal}")
    return head, tail


def compiled(model: keras.Model) -> Callable:
    """``model(x, training=False)`` as a ``tf.function`` of its own, traced once per input shape.

    Wrapped as a ``functools.partial``, not a lambda: TensorFlow counts a function's
    traces per Python code object, so every lambda made by one line of code shares a
    counter, and the first (necessary) trace of the fifth sub-model printed "5 out of
    the last 5 calls to <function ...<lambda>> triggered tf.function retracing",
    although no function was ever traced twice. A partial is counted on its own: a
    warning now means a real retrace. The traced graph is the lambda's.
    """
    import tensorflow as tf

    return tf.function(functools.partial(model, training=False), reduce_retracing=True)
