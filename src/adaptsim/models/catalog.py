"""Point tables: what can be split where, as plain rows (no TensorFlow to read).

``points_frame`` turns a model's analysis into the table ``adaptsim points``
prints. ``write_catalog`` writes that table for every zoo model into the package
(``adaptsim/data/points_catalog.csv``) so that importers and the study can attach
output bytes to published measurements without importing TensorFlow; a test
rebuilds it from the live models and checks the shipped file is current.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from adaptsim.atomic import write_atomic
from adaptsim.models.graph import ModelGraph, analyse
from adaptsim.models.zoo import ZOO_NAMES, build_model

__all__ = ["CATALOG_PATH", "model_row", "points_frame", "write_catalog"]

CATALOG_PATH = Path(__file__).resolve().parent.parent / "data" / "points_catalog.csv"


def model_row(name: str, graph: ModelGraph) -> dict:
    """One row of the ``adaptsim models`` table."""
    chain = len(graph.cut_points) == graph.n_layers - 1
    return {
        "model": name,
        "layers": graph.n_layers,
        "params": graph.n_params,
        "size_mb": round(graph.n_params * 4 / 1e6, 1),
        "points": len(graph.cut_points),
        "type": "S" if chain else "N",
    }


def points_frame(graph: ModelGraph) -> pd.DataFrame:
    """One row per partition point, from all-cloud to all-edge."""
    total = max(graph.total_flops, 1)
    return pd.DataFrame(
        {
            "ordinal": [p.ordinal for p in graph.points],
            "kind": [str(p.kind) for p in graph.points],
            "layer_index": [p.layer_index for p in graph.points],
            "layer_name": [p.layer_name for p in graph.points],
            "layer_class": [p.layer_class for p in graph.points],
            "output_shape": ["x".join(map(str, p.output_shape)) for p in graph.points],
            "output_bytes": [p.output_bytes for p in graph.points],
            "edge_flops_share": [round(p.edge_flops / total, 6) for p in graph.points],
        }
    )


def write_catalog(path: Path = CATALOG_PATH) -> pd.DataFrame:
    """Analyse every zoo model and write the points catalog CSV."""
    frames = []
    for name in ZOO_NAMES:
        frame = points_frame(analyse(build_model(name)))
        frame.insert(0, "model", name)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    write_atomic(path, lambda tmp: table.to_csv(tmp, index=False))
    return table


if __name__ == "__main__":
    print(f"wrote {len(write_catalog())} rows to {CATALOG_PATH}")
