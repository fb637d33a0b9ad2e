"""End-to-end latency of every point under every condition, from data or a calibration.

A :class:`LatencyGrid` holds one model's latencies as an array (conditions x
points) beside the conditions table, so that the study's questions are answered
with vectorised array operations rather than a Python loop per row.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from adaptsim.calibration import Calibration
from adaptsim.errors import UserError
from adaptsim.store import FACTORS

__all__ = [
    "COND_COLUMNS",
    "FACTORS",
    "LatencyGrid",
    "from_calibration",
    "from_store_rows",
    "to_frame",
]

# factor -> condition column; the study's factors in the order the paper lists them
COND_COLUMNS = list(FACTORS.values())


@dataclass(frozen=True)
class LatencyGrid:
    """One model's end-to-end latency per (condition, point).

    Attributes:
        model: the model's name.
        conditions: one row per condition, the FACTORS columns.
        ordinals: point ordinals (columns of ``latency_s``).
        layer_names: the layer each point cuts after.
        latency_s: array (conditions, points); NaN where a point was not measured.
        parts: optional edge/cloud/comm arrays of the same shape.
    """

    model: str
    conditions: pd.DataFrame
    ordinals: np.ndarray
    layer_names: tuple[str, ...]
    latency_s: np.ndarray
    parts: dict[str, np.ndarray]

    def levels(self, factor: str) -> np.ndarray:
        return np.sort(self.conditions[FACTORS[factor]].unique())

    def baseline(self) -> dict[str, float]:
        """No stress anywhere and the highest bandwidth."""
        return {
            f: (self.levels(f).max() if f == "bandwidth" else self.levels(f).min()) for f in FACTORS
        }


def from_store_rows(model: str, rows: pd.DataFrame) -> LatencyGrid:
    """Measured totals (one run per condition, see ``select_runs``) as a grid."""
    if rows.empty:
        raise UserError(f"{model}: no per-partition measurements in the store")
    names = rows.drop_duplicates("point").set_index("point")["layer_name"]
    ordinals = np.array(sorted(names.index))
    arrays = {}
    index = None
    for part in ("total_s", "edge_s", "cloud_s", "comm_s"):
        wide = rows.pivot_table(
            index=COND_COLUMNS, columns="point", values=part, aggfunc="first"
        ).reindex(columns=ordinals)
        index = wide.index if index is None else index
        arrays[part] = wide.reindex(index).to_numpy(dtype=np.float64)
    conds = index.to_frame(index=False)
    return LatencyGrid(
        model=model,
        conditions=conds,
        ordinals=ordinals,
        layer_names=tuple(names.loc[ordinals].astype(str)),
        latency_s=arrays.pop("total_s"),
        parts=arrays,
    )


def from_calibration(cal: Calibration, model: str) -> LatencyGrid:
    """The calibration's predictions over the grid of its measured levels."""
    m = cal.model(model)
    levels = {
        "edge_cpu_pct": m.edge_blocks.cpu_levels,
        "edge_mem_pct": m.edge_blocks.mem_levels,
        "bandwidth_mbps": np.asarray(m.bandwidth_levels),
        "cloud_cpu_pct": m.cloud_blocks.cpu_levels,
        "cloud_mem_pct": m.cloud_blocks.mem_levels,
    }
    conds = pd.DataFrame(
        list(itertools.product(*(levels[c] for c in COND_COLUMNS))), columns=COND_COLUMNS
    )
    p = m.predict_at(conds)
    return LatencyGrid(
        model=model,
        conditions=conds,
        ordinals=m.ordinals,
        layer_names=m.layer_names,
        latency_s=p.total_s,
        parts={"edge_s": p.edge_s, "cloud_s": p.cloud_s, "comm_s": p.comm_s},
    )


def to_frame(grids: list[LatencyGrid]) -> pd.DataFrame:
    """Long table: one row per (model, condition, point)."""
    frames = []
    for g in grids:
        n_cond, n_pts = g.latency_s.shape
        f = g.conditions.loc[np.repeat(np.arange(n_cond), n_pts)].reset_index(drop=True)
        f.insert(0, "model", g.model)
        f["point"] = np.tile(g.ordinals, n_cond)
        f["layer_name"] = np.tile(np.asarray(g.layer_names, dtype=object), n_cond)
        f["latency_s"] = g.latency_s.ravel()
        for name, arr in g.parts.items():
            f[name] = arr.ravel()
        frames.append(f[np.isfinite(f["latency_s"])])
    return pd.concat(frames, ignore_index=True)
