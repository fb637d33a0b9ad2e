"""The project's own partition-point analysis, read from the shipped catalog.

Importers attach output bytes per point from it without importing TensorFlow; the
catalog is rebuilt from the live Keras models by ``python -m
adaptsim.models.catalog`` and a test keeps the shipped copy current.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import pandas as pd

__all__ = ["catalog_cuts", "catalog_model_points", "normalise_layer_name"]


@cache
def _catalog() -> pd.DataFrame:
    with resources.files("adaptsim").joinpath("data/points_catalog.csv").open() as fh:
        return pd.read_csv(fh)


def catalog_cuts(model: str) -> pd.DataFrame:
    """The valid cuts (ordinals 1..N) of a zoo model, as the data numbers them."""
    cat = _catalog()
    rows = cat[(cat["model"] == model) & (cat["ordinal"] >= 1) & (cat["kind"] != "all_edge")]
    return rows.reset_index(drop=True)


def catalog_model_points(model: str) -> pd.DataFrame | None:
    """Every point of a zoo model (ends included), or None for a model not in the zoo."""
    cat = _catalog()
    rows = cat[cat["model"] == model]
    return rows.reset_index(drop=True) if len(rows) else None


def normalise_layer_name(name: str) -> str:
    """Strip Keras's global numbering (``conv2d_7`` -> ``conv2d``, ``input_1`` -> ``input``)."""
    name = re.sub(r"_\d+$", "", str(name))
    return "input" if name in ("input", "input_layer") else name
