"""A FLOP estimate per layer, for the edge's share of the work at each point.

Multiply-accumulates count two FLOPs. Convolutions and dense layers are counted
exactly; every other layer costs one FLOP per output element (activations,
batch norm, pooling, additions), which is small next to the convolutions and
only used to rank points by how much work the edge does.
"""

from __future__ import annotations

import math

import keras

__all__ = ["layer_flops"]


def _elements(shape: tuple) -> int:
    return math.prod(int(d) for d in shape[1:] if d is not None)


def layer_flops(layer: keras.layers.Layer, in_shape: tuple, out_shape: tuple) -> int:
    """Estimated FLOPs of one inference (batch 1) through ``layer``."""
    out_elems = _elements(out_shape)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return 2 * out_elems * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        cin = int(in_shape[-1]) // max(1, getattr(layer, "groups", 1))
        return 2 * out_elems * kh * kw * cin
    if isinstance(layer, keras.layers.Dense):
        return 2 * _elements(in_shape) * int(out_shape[-1])
    if isinstance(layer, keras.layers.InputLayer):
        return 0
    return out_elems
