"""Partition points and blocks of a Keras model, from its real graph.

A cut "after entry i of ``model.layers``" is valid when exactly one
producer-to-consumer edge crosses it: one tensor goes from the edge to the cloud
and no skip connection jumps over the cut. The graph is walked from
``model.outputs`` because a Keras 3 Sequential model keeps stale nodes.

Numbering follows the published AdaptiveDNN data: candidates are every entry of
``model.layers`` but the last, kept where valid, counted from 1. For functional
models entry 0 is the InputLayer, so point 1 is "the edge sends the raw input".
Sequential models leave the InputLayer out of ``model.layers``; for them the
all-cloud choice is point 0. Every model also offers all-edge as its last point
(the edge runs everything and sends only the final output).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import keras
import numpy as np

from adaptsim.models.flops import layer_flops

__all__ = ["ModelGraph", "PartitionPoint", "PointKind", "analyse"]


class PointKind(enum.StrEnum):
    """What a partition point means for the split."""

    ALL_CLOUD = "all_cloud"  # the edge sends the raw input
    CUT = "cut"  # the edge runs a prefix and sends one intermediate tensor
    ALL_EDGE = "all_edge"  # the edge runs everything and sends the output


@dataclass(frozen=True)
class PartitionPoint:
    """One choice of split.

    Attributes:
        ordinal: 1-based ordinal among the valid cuts (0 for a Sequential model's
            all-cloud choice, number of cuts + 1 for all-edge).
        kind: all-cloud, cut or all-edge.
        layer_index: index in ``model.layers`` of the last layer on the edge
            (-1 when the edge runs nothing).
        layer_name: that layer's name ("input" when the edge runs nothing).
        layer_class: that layer's class name.
        output_shape: shape of the tensor sent, without the batch axis.
        output_bytes: bytes of that tensor at batch 1.
        edge_flops: estimated FLOPs the edge runs at this point.
        tensor: the KerasTensor sent (the cut's edge in the real graph).
    """

    ordinal: int
    kind: PointKind
    layer_index: int
    layer_name: str
    layer_class: str
    output_shape: tuple[int, ...]
    output_bytes: int
    edge_flops: int
    tensor: object


@dataclass(frozen=True)
class ModelGraph:
    """A model's partition points in order, from all-cloud to all-edge."""

    name: str
    sequential: bool
    n_layers: int
    n_params: int
    total_flops: int
    points: tuple[PartitionPoint, ...]

    @property
    def cut_points(self) -> tuple[PartitionPoint, ...]:
        """The points a data file numbers (valid cuts, ordinals 1..N)."""
        seq_cloud = PointKind.ALL_CLOUD if self.sequential else None
        return tuple(p for p in self.points if p.kind != PointKind.ALL_EDGE and p.kind != seq_cloud)

    def point(self, ordinal: int) -> PartitionPoint:
        """The point with this ordinal; raises ValueError naming the valid range."""
        for p in self.points:
            if p.ordinal == ordinal:
                return p
        lo, hi = self.points[0].ordinal, self.points[-1].ordinal
        raise ValueError(f"{self.name}: no partition point {ordinal}; valid points are {lo}..{hi}")

    def nearest_points(
        self, layer_index: int
    ) -> tuple[PartitionPoint | None, PartitionPoint | None]:
        """The valid points just before and just after a layer index."""
        before = [p for p in self.points if p.layer_index <= layer_index]
        after = [p for p in self.points if p.layer_index > layer_index]
        return (before[-1] if before else None, after[0] if after else None)


def _bytes(shape: tuple[int, ...], dtype: str) -> int:
    return math.prod(shape) * np.dtype(dtype).itemsize


def _shape(tensor) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.shape[1:])


def _walk_edges(model: keras.Model):
    """Yield (producer, consumer, tensor) for every edge reachable from the outputs."""
    seen: set[int] = set()
    stack = list(model.outputs)
    while stack:
        tensor = stack.pop()
        op, node_index, _ = tensor._keras_history
        node = op._inbound_nodes[node_index]
        if id(node) in seen:
            continue
        seen.add(id(node))
        for t in node.input_tensors:
            yield t._keras_history[0], op, t
            stack.append(t)


def analyse(model: keras.Model) -> ModelGraph:
    """Find every valid partition point of ``model`` (see the module docstring)."""
    layers = list(model.layers)
    position = {id(layer): i for i, layer in enumerate(layers)}
    sequential = isinstance(model, keras.Sequential)
    n = len(layers)
    # crossing[i] = edges crossing the cut after entry i; cut_tensor[i] = one of them.
    crossing = np.zeros(n + 1, dtype=np.int64)
    cut_tensor: dict[int, object] = {}
    in_shapes: dict[int, tuple] = {}
    out_shapes: dict[int, tuple] = {n - 1: tuple(model.outputs[0].shape)}
    for producer, consumer, tensor in _walk_edges(model):
        pu = position.get(id(producer), -1)  # a Sequential's hidden InputLayer
        pv = position[id(consumer)]
        in_shapes.setdefault(pv, tuple(tensor.shape))
        out_shapes.setdefault(pu, tuple(tensor.shape))
        if pu >= pv:
            continue
        crossing[max(pu, 0) : pv] += 1
        for i in range(max(pu, 0), pv):
            cut_tensor.setdefault(i, tensor)

    flops = [
        layer_flops(layer, in_shapes.get(i, out_shapes[i]), out_shapes[i])
        for i, layer in enumerate(layers)
    ]
    cum_flops = np.cumsum(flops)
    total = int(cum_flops[-1]) if n else 0

    points: list[PartitionPoint] = []
    inp = model.inputs[0]
    dtype = inp.dtype if isinstance(inp.dtype, str) else "float32"
    if sequential:
        shape = _shape(inp)
        points.append(
            PartitionPoint(
                0,
                PointKind.ALL_CLOUD,
                -1,
                "input",
                "InputLayer",
                shape,
                _bytes(shape, dtype),
                0,
                inp,
            )
        )
    ordinal = 0
    for i in range(n - 1):
        if crossing[i] != 1:
            continue
        ordinal += 1
        tensor = cut_tensor[i]
        shape = _shape(tensor)
        layer = layers[i]
        is_input = isinstance(layer, keras.layers.InputLayer)
        kind = PointKind.ALL_CLOUD if is_input else PointKind.CUT
        name = "input" if is_input else layer.name  # Keras numbers input names globally
        points.append(
            PartitionPoint(
                ordinal,
                kind,
                i,
                name,
                type(layer).__name__,
                shape,
                _bytes(shape, tensor.dtype),
                int(cum_flops[i]),
                tensor,
            )
        )
    out = model.outputs[0]
    shape = _shape(out)
    points.append(
        PartitionPoint(
            ordinal + 1,
            PointKind.ALL_EDGE,
            n - 1,
            layers[-1].name,
            type(layers[-1]).__name__,
            shape,
            _bytes(shape, out.dtype),
            total,
            out,
        )
    )
    return ModelGraph(
        name=model.name,
        sequential=sequential,
        n_layers=n,
        n_params=int(model.count_params()),
        total_flops=total,
        points=tuple(points),
    )
