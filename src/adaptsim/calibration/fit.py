"""Fitting calibrations from per-partition measurements (scipy).

Per model, per edge stress level (CPU x memory): the median edge time of each
point over every file at that level (all bandwidth and cloud conditions, 27 files
in the AdaptiveDNN grid) is fitted with non-negative least squares to per-block
times whose cumulative sums are the edge times; the cloud side likewise with
the sums of the blocks after each point. Medians over repeats average the noise
of single 2-inference lines; the non-negativity keeps edge times monotone in the
point. A point measured well above what any monotone sum of blocks allows (more
than 5 % + 1 ms above the fit) gets a per-point extra instead, and the blocks are
refitted without it: in the AdaptiveDNN data the cloud sub-model that starts at
ResNet50's second point takes 2.3 s where the one starting a layer earlier takes
0.7 s, and forcing such a point into the blocks bent every block before it. The
all-edge block (never measured: the cloud always ran the last layer)
and, for Sequential models, the first block on the cloud (all-cloud is never
measured) are derived from the other side's block time and the median
edge/cloud speed ratio; the calibration notes say so.

The link, per point, is what the compute fits leave of the total: a table of
medians per measured bandwidth level at each (edge CPU, cloud CPU) stress level,
and a law ``overhead + effective_bytes * 8 / bandwidth`` whose effective bytes
are fitted (non-negative least squares) on every file together and whose
overhead is each level's own.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from adaptsim.calibration.grid import StressGrid
from adaptsim.calibration.model import Calibration, ModelCalibration, link_grid
from adaptsim.errors import UserError
from adaptsim.importers.adaptivednn import UNUSABLE_FLAGS
from adaptsim.importers.catalog import catalog_model_points
from adaptsim.store import select_runs

__all__ = ["SPREAD_PROBS", "calibration_rows", "fit_calibration", "fit_model"]

# Quantiles of log(measured / predicted) kept as the spread. The extreme 1 % on each
# side is left out: in the AdaptiveDNN data it holds clock glitches and 20-70x
# outliers that are not the per-inference variation a simulator should replay.
SPREAD_PROBS = (0.01, *np.round(np.linspace(0.05, 0.95, 19), 2).tolist(), 0.99)
_MIN_S = 1e-4


def _levels(rows: pd.DataFrame, col: str) -> np.ndarray:
    return np.array(sorted(rows[col].unique()), dtype=np.float64)


def _layout(model: str, rows: pd.DataFrame):
    """Columns of the calibration: measured ordinals plus the ends the data lacks."""
    first = rows.sort_values("point").drop_duplicates("point")
    ordinals = first["point"].to_numpy(dtype=np.int64)
    names = first["layer_name"].tolist()
    out_bytes = first["output_bytes"].to_numpy(dtype=np.float64)
    kinds = ["cut"] * len(ordinals)
    notes = []
    zoo = catalog_model_points(model)
    sequential = zoo is not None and zoo["ordinal"].min() == 0
    if sequential and ordinals[0] != 0:  # all-cloud not measured (AdaptiveDNN)
        p0 = zoo[zoo["ordinal"] == 0].iloc[0]
        ordinals = np.r_[0, ordinals]
        names = ["input", *names]
        out_bytes = np.r_[p0["output_bytes"], out_bytes]
        kinds = ["all_cloud", *kinds]
    elif ordinals[0] <= 1:
        kinds[0] = "all_cloud"  # functional: point 1 sends the raw input
    if zoo is not None and ordinals[-1] == zoo["ordinal"].max():  # all-edge measured (profiles)
        kinds[-1] = "all_edge"
        return ordinals, kinds, names, out_bytes, sequential, notes
    if zoo is not None:
        end = zoo[zoo["kind"] == "all_edge"].iloc[0]
        end_bytes, end_name = float(end["output_bytes"]), str(end["layer_name"])
    else:
        end_bytes, end_name = float(out_bytes.min()), "output"
        notes.append(f"{model} is not in the zoo: all-edge output bytes taken as {end_bytes:.0f}")
    ordinals = np.r_[ordinals, ordinals[-1] + 1]
    return (
        ordinals,
        [*kinds, "all_edge"],
        [*names, end_name],
        np.r_[out_bytes, end_bytes],
        sequential,
        notes,
    )


# A point whose measurement exceeds the blocks' fit by more than this gets its own extra.
EXTRA_REL, EXTRA_ABS_S = 0.05, 1e-3


def _nnls_cumulative(cols: np.ndarray, y: np.ndarray, unknowns: np.ndarray, upper: bool):
    """Fit y[r] = sum of x[j] over unknowns j <= cols[r] (or > cols[r] when upper) + e[r].

    x >= 0 are the blocks; e >= 0 the per-point extras, nonzero only at points the
    blocks leave more than ``EXTRA_REL * y + EXTRA_ABS_S`` below their measurement
    (found one round at a time, each refit without the points already found). A
    tiny penalty on the extras makes them the smallest that fit: where a block and
    an extra cannot be told apart, the block takes what it can.

    Returns:
        (x, e).
    """
    a = (unknowns[None, :] > cols[:, None]) if upper else (unknowns[None, :] <= cols[:, None])
    a = a.astype(np.float64)
    free = np.zeros(len(y), dtype=bool)
    while True:
        k = int(free.sum())
        design = np.block(
            [[a, np.eye(len(y))[:, free]], [np.zeros((k, a.shape[1])), 1e-3 * np.eye(k)]]
        )
        x, _ = nnls(design, np.r_[y, np.zeros(k)])
        above = (~free) & (y - a @ x[: a.shape[1]] > EXTRA_REL * y + EXTRA_ABS_S)
        if not above.any():
            break
        free |= above
    extra = np.zeros(len(y))
    extra[free] = x[a.shape[1] :]
    return x[: a.shape[1]], extra


def _fit_side(rows, side, n, measured_cols, col_of, sequential):
    """Per-block times and per-point extras at each stress level of one side."""
    cpu_levels, mem_levels = _levels(rows, f"{side}_cpu_pct"), _levels(rows, f"{side}_mem_pct")
    values = np.zeros((len(cpu_levels), len(mem_levels), n))
    extra = np.zeros_like(values)
    first, last = measured_cols.min(), measured_cols.max()
    for i, cpu in enumerate(cpu_levels):
        for j, mem in enumerate(mem_levels):
            cell = rows[(rows[f"{side}_cpu_pct"] == cpu) & (rows[f"{side}_mem_pct"] == mem)]
            if cell.empty:
                raise UserError(
                    f"{rows['model'].iloc[0]}: no measurements at {side} CPU {cpu:g}% and "
                    f"memory {mem:g}%; a calibration needs every combination of measured levels"
                )
            med = cell.groupby("point")[f"{side}_s"].median()
            cols = np.array([col_of[p] for p in med.index])
            if side == "edge":
                unknowns = np.arange(1 if sequential else 0, last + 1)
            else:
                unknowns = np.arange(first + 1, n)
            values[i, j, unknowns], extra[i, j, cols] = _nnls_cumulative(
                cols, med.to_numpy(), unknowns, upper=side == "cloud"
            )
    return StressGrid(cpu_levels, mem_levels, values), StressGrid(cpu_levels, mem_levels, extra)


def _speed_ratio(edge: np.ndarray, cloud: np.ndarray) -> float:
    both = (edge > _MIN_S) & (cloud > _MIN_S)
    return float(np.median(edge[both] / cloud[both])) if both.any() else 1.0


def _link_rows(rows: pd.DataFrame, compute: ModelCalibration, col_of) -> pd.DataFrame:
    """Per row, what the compute fits leave of the total: the link's share."""
    cols = np.array([col_of[int(p)] for p in rows["point"]])
    idx = np.arange(len(rows))
    e, _ = compute.edge_cum.at(rows["edge_cpu_pct"].to_numpy(), rows["edge_mem_pct"].to_numpy())
    c, _ = compute.cloud_cum.at(rows["cloud_cpu_pct"].to_numpy(), rows["cloud_mem_pct"].to_numpy())
    return rows.assign(link_s=rows["total_s"].to_numpy() - e[idx, cols] - c[idx, cols], col=cols)


def _link_cell(med: pd.Series, out_bytes: np.ndarray, bw_levels: np.ndarray):
    """Law and table from medians per (column, bandwidth): one stress level's, or all pooled.

    Returns:
        (law (points, 2), table (points, bandwidth levels)).
    """
    n = len(out_bytes)
    law = np.zeros((n, 2))
    table = np.full((n, len(bw_levels)), np.nan)
    x_levels = 8.0 / (bw_levels * 1e6)
    for (col, bw), v in med.items():
        table[col, np.searchsorted(bw_levels, bw)] = v
    seen = np.isfinite(table).sum(axis=1)
    for col in np.flatnonzero(seen >= 2):
        ok = np.isfinite(table[col])
        a = np.column_stack([np.ones(ok.sum()), x_levels[ok]])
        law[col], _ = nnls(a, table[col, ok])
    multi = seen >= 2
    # Weighted by bytes: a small payload's transfer is lost in the overhead.
    ratio = law[multi, 1].sum() / max(out_bytes[multi].sum(), 1.0) if multi.any() else 1.0
    over = np.median(law[multi, 0]) if multi.any() else 0.0
    for col in np.flatnonzero(seen < 2):
        eff = ratio * out_bytes[col]
        if seen[col] == 1:
            k = np.flatnonzero(np.isfinite(table[col]))[0]
            law[col] = (max(table[col, k] - eff * x_levels[k], 0.0), eff)
        else:
            law[col] = (over, eff)
    # Gaps in the table (a point not measured at some level) follow the law.
    gaps = ~np.isfinite(table)
    table[gaps] = (law[:, :1] + law[:, 1:] * x_levels[None, :])[gaps]
    return law, table


def _fit_link(rows, compute: ModelCalibration, col_of):
    """The link per point: a law and a table over bandwidth levels, per (edge CPU, cloud CPU).

    The link's share of each total (total minus the fitted edge and cloud times)
    is taken as a median over the files at each bandwidth level, edge CPU level
    and cloud CPU level (pooled over both memory stresses, which barely move it):
    that is the table. The link follows both hosts' CPU stress: what the data
    calls communication includes the edge's send and the cloud's receive, and in
    the AdaptiveDNN data DenseNet121's 1.6 MB at 50 Mbit/s takes 0.73 s with the
    edge idle and 0.27 s with it at 100 % CPU stress, and its 0.2 MB at point 21
    takes 0.03 s with the cloud idle and 0.87 s with it at 100 %.

    The law ``overhead_s + effective_bytes * 8 / bandwidth`` prices a transfer
    at any bandwidth (the simulator's, and the table's slope beyond its levels).
    Its effective bytes come from every file together: per point, non-negative
    least squares on the table pooled over all stress levels (9 times the files
    of one level: the slope from two or three bandwidth medians of one level
    wanders). Its overhead is each level's own: the median, over bandwidth
    levels, of the table less the bytes' time. Effective bytes are the payload
    as the link saw it: close to the tensor's bytes where the data is clean,
    larger where transfers were slower than the bytes explain. A point seen at a
    single bandwidth gets the effective/actual byte ratio of the others (their
    effective bytes over their bytes, summed: a small payload's transfer is lost
    in the overhead); ends never measured get the others' median overhead and
    their own bytes times that ratio.

    Returns:
        (law grid (..., points, 2), table grid (..., points, bandwidth levels), levels).
    """
    out_bytes = compute.output_bytes
    lr = _link_rows(rows, compute, col_of)
    bw_levels = _levels(lr, "bandwidth_mbps")
    x_levels = 8.0 / (bw_levels * 1e6)
    ecpu, ccpu = _levels(lr, "edge_cpu_pct"), _levels(lr, "cloud_cpu_pct")
    n = len(out_bytes)
    law = np.zeros((len(ecpu), len(ccpu), n, 2))
    table = np.zeros((len(ecpu), len(ccpu), n, len(bw_levels)))
    pooled = lr.groupby(["col", "bandwidth_mbps"])["link_s"].median().clip(lower=0.0)
    eff = _link_cell(pooled, out_bytes, bw_levels)[0][:, 1]
    keys = ["edge_cpu_pct", "cloud_cpu_pct", "col", "bandwidth_mbps"]
    med = lr.groupby(keys)["link_s"].median().clip(lower=0.0)
    for i, e in enumerate(ecpu):
        for j, c in enumerate(ccpu):
            if (e, c) not in med.index.droplevel([2, 3]):
                raise UserError(
                    f"{rows['model'].iloc[0]}: no measurements at edge CPU {e:g}% and cloud "
                    f"CPU {c:g}%; a calibration needs every combination of measured levels"
                )
            table[i, j] = _link_cell(med.loc[(e, c)], out_bytes, bw_levels)[1]
            over = np.median(table[i, j] - eff[:, None] * x_levels, axis=1)
            law[i, j] = np.column_stack([np.maximum(over, 0.0), eff])
    return link_grid(ecpu, ccpu, law), link_grid(ecpu, ccpu, table), bw_levels


def _quantiles(log_ratio: np.ndarray) -> dict[str, list[float]]:
    lr = log_ratio[np.isfinite(log_ratio)]
    if not len(lr):
        lr = np.zeros(1)
    return {
        "probs": list(SPREAD_PROBS),
        "log_ratio": np.quantile(lr, SPREAD_PROBS).round(6).tolist(),
    }


def fit_model(model: str, rows: pd.DataFrame) -> ModelCalibration:
    """Fit one model's calibration from its partition rows (one run per condition)."""
    rows = rows[rows["record"] == "partition"]
    if rows.empty:
        raise UserError(f"{model}: no per-partition measurements to calibrate from")
    ordinals, kinds, names, out_bytes, sequential, notes = _layout(model, rows)
    n = len(ordinals)
    col_of = {int(o): i for i, o in enumerate(ordinals)}
    measured = np.array(sorted(col_of[int(p)] for p in rows["point"].unique()))
    edge, edge_extra = _fit_side(rows, "edge", n, measured, col_of, sequential)
    cloud, cloud_extra = _fit_side(rows, "cloud", n, measured, col_of, sequential)
    # Derive the blocks no measurement covers, from the other side and the speed ratio.
    base_ratio = _speed_ratio(edge.values[0, 0, measured], cloud.values[0, 0, measured])
    if n - 1 not in measured:
        for i in range(len(edge.cpu_levels)):
            for j in range(len(edge.mem_levels)):
                r = _speed_ratio(edge.values[i, j, measured], cloud.values[0, 0, measured])
                edge.values[i, j, n - 1] = r * cloud.values[0, 0, n - 1]
        notes.append(
            f"all-edge block derived: cloud time of the last block x edge/cloud speed "
            f"ratio ({base_ratio:.2f} at no stress)"
        )
    if sequential and measured.min() > 0:
        first = measured.min()
        for i in range(len(cloud.cpu_levels)):
            for j in range(len(cloud.mem_levels)):
                r = _speed_ratio(edge.values[0, 0, measured], cloud.values[i, j, measured])
                cloud.values[i, j, first] = edge.values[0, 0, first] / r
        notes.append(
            "all-cloud: the first block's cloud time derived from its edge time and the speed ratio"
        )
    for side, extra in (("edge", edge_extra), ("cloud", cloud_extra)):
        at = ordinals[extra.values.reshape(-1, n).any(axis=0)]
        if len(at):
            notes.append(f"{side} per-point extras (beyond the blocks) at points {at.tolist()}")
    compute = ModelCalibration(
        model,
        ordinals,
        tuple(kinds),
        tuple(names),
        out_bytes,
        edge,
        cloud,
        link=None,
        link_table=None,
        bandwidth_levels=(),
        spread={},
        quality={},
        edge_extra=edge_extra,
        cloud_extra=cloud_extra,
    )
    law, table, bw_levels = _fit_link(rows, compute, col_of)
    cal = replace(compute, link=law, link_table=table, bandwidth_levels=tuple(bw_levels.tolist()))
    spread, quality = _in_sample(cal, rows, col_of)
    return replace(cal, spread=spread, quality=quality, notes=tuple(notes))


def _in_sample(cal: ModelCalibration, rows: pd.DataFrame, col_of):
    """Spread (log measured/predicted quantiles) and fit quality on the fitted rows."""
    pred = cal.predict_at(rows)
    cols = np.array([col_of[int(p)] for p in rows["point"]])
    idx = np.arange(len(rows))
    spread, quality = {}, {}
    for part, arr in (("edge", pred.edge_s), ("cloud", pred.cloud_s), ("comm", pred.comm_s)):
        p = arr[idx, cols]
        m = rows[f"{part}_s"].to_numpy()
        ok = (p > 1e-3) & (m > 1e-3)
        spread[part] = _quantiles(np.log(m[ok] / p[ok]))
        quality[f"{part}_median_ape"] = round(float(np.median(np.abs(m[ok] / p[ok] - 1))), 4)
    total = pred.total_s[idx, cols]
    m = rows["total_s"].to_numpy()
    ok = m > 0
    quality["total_median_ape"] = round(float(np.median(np.abs(total[ok] / m[ok] - 1))), 4)
    quality["rows"] = len(rows)
    return spread, quality


def calibration_rows(
    frame: pd.DataFrame, models: list[str] | None = None, left_out: dict | None = None
) -> pd.DataFrame:
    """The per-partition rows a calibration is fitted on: one run per model and condition.

    Rows an importer flagged as not measuring what they are labelled
    (``UNUSABLE_FLAGS``) are left out; ``left_out``, when given, receives their
    count per flag. A store of own profiles only (edge, cloud and link halves)
    gives its composed rows (:func:`adaptsim.calibration.profiles.compose`).
    """
    rows = select_runs(frame)
    from adaptsim.calibration.profiles import compose, has_profiles  # it imports this module

    if rows.empty and has_profiles(frame):
        return compose(frame, models)
    if rows.empty:
        hosts = sorted(set(frame["edge_host"]) - {""})
        hint = (
            f"; it has per-block data: pass --edge-host and --cloud-host (hosts: "
            f"{', '.join(hosts)})"
            if (frame["record"] == "block").any()
            else ""
        )
        raise UserError("the store has no per-partition measurements to calibrate from" + hint)
    names = sorted(rows["model"].unique())
    if models:
        unknown = sorted(set(models) - set(names))
        if unknown:
            raise UserError(f"--models: no measurements for {unknown}; the store has {names}")
        rows = rows[rows["model"].isin(models)]
    for flag in UNUSABLE_FLAGS:  # after the model choice: count only what is left out of it
        bad = rows["flags"].str.contains(rf"(?:^|,){flag}(?:,|$)")
        if bad.any():
            rows = rows[~bad]
            if left_out is not None:
                left_out[flag] = int(bad.sum())
    return rows


def fit_calibration(
    rows: pd.DataFrame, provenance: dict, models: list[str] | None = None, progress=None
) -> Calibration:
    """Fit every model in ``rows`` (or those named) into one calibration."""
    names = sorted(rows["model"].unique())
    if models:
        unknown = sorted(set(models) - set(names))
        if unknown:
            raise UserError(f"--models: no measurements for {unknown}; the store has {names}")
        names = [n for n in names if n in models]
    out = {}
    for name in names:
        out[name] = fit_model(name, rows[rows["model"] == name])
        if progress:
            progress(name)
    return Calibration(out, provenance)
