"""The model zoo, partition points and exact splitting (imports TensorFlow)."""

import os


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up banner (oneDNN, CPU features) muted.

    The banner goes straight to file descriptor 2 from absl before any log level
    applies, so fd 2 is pointed at /dev/null for the import only. Python errors
    still propagate as exceptions.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_tensorflow_quietly()

from adaptsim.models.graph import ModelGraph, PartitionPoint, PointKind, analyse
from adaptsim.models.split import InvalidPointError, split
from adaptsim.models.zoo import (
    ZOO_NAMES,
    build_model,
    canonical_name,
    load_model_file,
    resolve_model,
)

__all__ = [
    "ZOO_NAMES",
    "InvalidPointError",
    "ModelGraph",
    "PartitionPoint",
    "PointKind",
    "analyse",
    "build_model",
    "canonical_name",
    "load_model_file",
    "resolve_model",
    "split",
]
