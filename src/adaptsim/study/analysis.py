"""The study's analyses: best points, their distribution, sensitivity, gains.

Ties: two points tie when their latencies agree to the microsecond; the lowest
ordinal wins and the tie is flagged. Conditions missing from the grid are simply
absent from every slice (the summary says how many there are); a model with a
single point has that point as its best everywhere and no runner-up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from adaptsim.study.caveats import left_out_reason
from adaptsim.study.latency import COND_COLUMNS, FACTORS, LatencyGrid

__all__ = [
    "GAIN_FACTORS",
    "best_points",
    "combined_gains",
    "distribution",
    "gains",
    "sensitivity",
    "slices",
]

GAIN_FACTORS = ("edge_cpu", "edge_mem", "bandwidth")
_TIE_S = 1e-6
_STRESS = ("edge_cpu", "edge_mem", "cloud_cpu", "cloud_mem")


def _rank(lat: np.ndarray):
    """Best and runner-up column per row (lowest ordinal wins ties), and the tie flag."""
    q = np.where(np.isfinite(lat), np.round(lat / _TIE_S), np.inf)
    order = np.argsort(q, axis=1, kind="stable")  # stable: lower column first on ties
    best, second = order[:, 0], order[:, 1] if lat.shape[1] > 1 else np.full(len(lat), -1)
    rows = np.arange(len(lat))
    has_second = (second >= 0) & np.isfinite(lat[rows, np.maximum(second, 0)])
    tie = has_second & (q[rows, best] == q[rows, np.maximum(second, 0)])
    valid = np.isfinite(lat[rows, best])
    return best, np.where(has_second, second, -1), tie, valid


def best_points(grid: LatencyGrid) -> pd.DataFrame:
    """Per condition: the best point and its latency, the runner-up, and ties."""
    best, second, tie, valid = _rank(grid.latency_s)
    rows = np.arange(len(best))
    names = np.asarray(grid.layer_names, dtype=object)
    s = np.maximum(second, 0)
    out = grid.conditions.copy()
    out.insert(0, "model", grid.model)
    out["best_point"] = grid.ordinals[best]
    out["best_layer"] = names[best]
    out["best_latency_s"] = grid.latency_s[rows, best].round(3)
    out["runner_up_point"] = np.where(second >= 0, grid.ordinals[s], -1)
    out["runner_up_layer"] = np.where(second >= 0, names[s], "")
    out["runner_up_latency_s"] = np.where(second >= 0, grid.latency_s[rows, s], np.nan).round(3)
    out["tie"] = tie
    return out[valid].reset_index(drop=True)


def slices(grid: LatencyGrid) -> dict[str, np.ndarray]:
    """Named boolean masks over the grid's conditions (see the module docstring)."""
    c = grid.conditions
    base = grid.baseline()

    def at(factor, value):
        return np.isclose(c[FACTORS[factor]].to_numpy(), value)

    def others_at_base(keep: tuple[str, ...]):
        m = np.ones(len(c), dtype=bool)
        for f in FACTORS:
            if f not in keep:
                m &= at(f, base[f])
        return m

    out = {"all": np.ones(len(c), dtype=bool)}
    for f in FACTORS:
        out[f"single:{f}"] = others_at_base((f,))
    trio = ("edge_cpu", "edge_mem", "bandwidth")
    for f in trio:
        rest = tuple(x for x in trio if x != f)
        for end, value in (("min", grid.levels(f).min()), ("max", grid.levels(f).max())):
            out[f"{f}={end}"] = others_at_base((f, *rest)) & at(f, value)
    for end in ("min", "max"):
        m = np.ones(len(c), dtype=bool)
        for f in _STRESS:
            lv = grid.levels(f)
            m &= at(f, lv.min() if end == "min" else lv.max())
        out[f"all_stress={end}"] = m
    return out


def distribution(grid: LatencyGrid, best: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """Share of conditions in which each point is best, per slice (top ``top`` points)."""
    rows = []
    cond_key = [FACTORS[f] for f in FACTORS]
    best_idx = best.set_index(cond_key)
    for name, mask in slices(grid).items():
        conds = grid.conditions[mask]
        if conds.empty:
            continue
        sel = best_idx.reindex(pd.MultiIndex.from_frame(conds[cond_key])).dropna(
            subset=["best_point"]
        )
        if sel.empty:
            continue
        counts = (
            sel.groupby(["best_point", "best_layer"])
            .size()
            .sort_values(ascending=False, kind="stable")
        )
        total = counts.sum()
        for rank, ((point, layer), n) in enumerate(counts.head(top).items(), start=1):
            rows.append(
                {
                    "model": grid.model,
                    "slice": name,
                    "conditions": int(total),
                    "rank": rank,
                    "point": int(point),
                    "layer_name": layer,
                    "share": round(n / total, 4),
                }
            )
    return pd.DataFrame(rows)


def sensitivity(grid: LatencyGrid, best: pd.DataFrame) -> list[dict]:
    """Per factor: does the best point change across its levels (others at baseline)?"""
    cond_key = [FACTORS[f] for f in FACTORS]
    best_idx = best.set_index(cond_key)
    out = []
    for f in FACTORS:
        conds = grid.conditions[slices(grid)[f"single:{f}"]]
        sel = best_idx.reindex(pd.MultiIndex.from_frame(conds[cond_key])).dropna(
            subset=["best_point"]
        )
        distinct = sorted(sel["best_point"].astype(int).unique())
        out.append(
            {
                "model": grid.model,
                "factor": f,
                "levels": len(sel),
                "changes": "Y" if len(distinct) > 1 else "N",
                "distinct_best_points": len(distinct),
                "best_points": " ".join(map(str, distinct)),
            }
        )
    return out


def _factors_moved(grid: LatencyGrid) -> np.ndarray:
    """Per condition, how many factors are off their baseline value."""
    base = grid.baseline()
    moved = np.zeros(len(grid.conditions), dtype=int)
    for f, col in FACTORS.items():
        moved += ~np.isclose(grid.conditions[col].to_numpy(), base[f])
    return moved


def _static_column(grid: LatencyGrid, best_col: np.ndarray) -> int | None:
    """The best point's column at baseline, or None when the baseline was not measured."""
    rows = np.flatnonzero(_factors_moved(grid) == 0)
    if not len(rows) or not np.isfinite(grid.latency_s[rows[0], best_col[rows[0]]]):
        return None
    return int(best_col[rows[0]])


def _left_out_lines(grid: LatencyGrid, left_out: pd.DataFrame | None) -> dict:
    """(condition..., point) -> (flags, total_s) of the grid model's left-out lines."""
    if left_out is None or left_out.empty:
        return {}
    rows = left_out[left_out["model"] == grid.model]
    keys = zip(*(rows[c] for c in COND_COLUMNS), rows["point"], strict=True)
    return dict(zip(keys, zip(rows["flags"], rows["total_s"], strict=True), strict=True))


def _gain_note(grid, i: int, static: int, s_lat: float, b_lat: float, lines: dict):
    """Why a gains cell has no value ('' when it has one), and the left-out line's time."""
    point, layer = int(grid.ordinals[static]), grid.layer_names[static]
    if not np.isfinite(b_lat):
        return "no point was measured at this condition", np.nan
    if np.isfinite(s_lat):
        return ("", np.nan) if s_lat > 0 else (f"static point {point} takes 0 s here", np.nan)
    key = (*grid.conditions.iloc[i][COND_COLUMNS].tolist(), point)
    if key in lines:
        flags, total_s = lines[key]
        return left_out_reason(point, layer, flags, total_s), float(total_s)
    return f"static point {point} ({layer}) was not measured at this condition", np.nan


def gains(grid: LatencyGrid, left_out: pd.DataFrame | None = None) -> pd.DataFrame:
    """Gain of re-partitioning over the baseline's best point, one factor at a time.

    A cell that cannot be computed (the static point has no measurement there)
    keeps its latency and gain empty and says why in ``note``; where the static
    point's line was left out by an importer's flag (``left_out``: those rows),
    ``flagged_static_latency_s`` gives what that line reads.
    """
    base = grid.baseline()
    lat = grid.latency_s
    c = grid.conditions
    masks = slices(grid)
    cols = [
        "model",
        "factor",
        "level",
        "static_point",
        "static_latency_s",
        "best_point",
        "best_latency_s",
        "gain_pct",
        "flagged_static_latency_s",
        "note",
    ]
    lines = _left_out_lines(grid, left_out)
    best_col, _, _, _ = _rank(lat)
    static = _static_column(grid, best_col)
    if static is None:
        return pd.DataFrame(columns=cols)
    rows = []
    for f in GAIN_FACTORS:
        idx = np.flatnonzero(masks[f"single:{f}"])
        for i in idx[np.argsort(c[FACTORS[f]].to_numpy()[idx])]:
            level = c[FACTORS[f]].iloc[i]
            if np.isclose(level, base[f]):
                continue
            s_lat, b_lat = lat[i, static], lat[i, best_col[i]]
            note, flagged_s = _gain_note(grid, i, static, s_lat, b_lat, lines)
            rows.append(
                {
                    "model": grid.model,
                    "factor": f,
                    "level": float(level),
                    "static_point": int(grid.ordinals[static]),
                    "static_latency_s": round(s_lat, 3),
                    "best_point": int(grid.ordinals[best_col[i]]),
                    "best_latency_s": round(b_lat, 3),
                    "gain_pct": round((s_lat - b_lat) / s_lat * 100, 2) if s_lat > 0 else np.nan,
                    "flagged_static_latency_s": round(flagged_s, 3),
                    "note": note,
                }
            )
    return pd.DataFrame(rows, columns=cols)


def combined_gains(grid: LatencyGrid) -> pd.DataFrame:
    """Gain over the baseline's best point in every condition, with how many factors moved."""
    c = grid.conditions
    moved = _factors_moved(grid)
    best_col, _, _, valid = _rank(grid.latency_s)
    static = _static_column(grid, best_col)
    if static is None:
        return pd.DataFrame()
    rows = np.arange(len(c))
    s_lat = grid.latency_s[rows, static]
    b_lat = grid.latency_s[rows, best_col]
    out = c.assign(
        model=grid.model,
        factors_moved=moved,
        gain_pct=(s_lat - b_lat) / s_lat * 100,
        repartition=best_col != static,
    )
    return out[valid & np.isfinite(s_lat)].reset_index(drop=True)
