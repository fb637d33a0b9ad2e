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
and a law ``max(overhead + wire_bytes * 8 / bandwidth, host)``: the slower of
the wire and the hosts' own sending and receiving. Its wire bytes are the
tensor's unless every file together says otherwise; overhead and host time are
each level's own (see :func:`_fit_link`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from adaptsim.calibration.grid import StressGrid
from adaptsim.calibration.model import Calibration, ModelCalibration, law_s, link_grid
from adaptsim.calibration.spread import PARTS, quantiles
from adaptsim.errors import UserError
from adaptsim.store import FACTORS, choose_models
from adaptsim.store.catalog import catalog_model_points
from adaptsim.units import seconds_per_byte

__all__ = ["fit_calibration", "fit_model"]

_MIN_S = 1e-4
_TIE = 0.01  # relative RMS per level within which link fits count as equal


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


def _conditions(rows: pd.DataFrame, keys: list[str]):
    """Each distinct condition of ``keys`` once, and each row's index into them.

    Grids give every point's value at a condition; asking once per condition, not
    once per row (a row is one point), saves a factor of the number of points.
    """
    distinct = rows.drop_duplicates(keys)[keys]
    return distinct, rows.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()


def _link_rows(rows: pd.DataFrame, compute: ModelCalibration, col_of) -> pd.DataFrame:
    """Per row, what the compute fits leave of the total: the link's share."""
    cols = np.array([col_of[int(p)] for p in rows["point"]])
    left = rows["total_s"].to_numpy()
    for side, grid in (("edge", compute.edge_cum), ("cloud", compute.cloud_cum)):
        conds, row_of = _conditions(rows, [f"{side}_cpu_pct", f"{side}_mem_pct"])
        left = left - grid.at(*conds.to_numpy().T)[0][row_of, cols]
    return rows.assign(link_s=left, col=cols)


def _median(a: np.ndarray) -> float:
    """``np.median`` of a short array, without its overhead (the link fits call it often)."""
    s = np.sort(a)
    return float(0.5 * (s[(len(s) - 1) // 2] + s[len(s) // 2]))


def _pipelined(x: np.ndarray, m: np.ndarray, wire_bytes: float | None):
    """Fit ``max(overhead + wire_bytes * x, host)`` to medians ``m`` at seconds per byte ``x``.

    The transfer and the hosts' own sending and receiving run side by side: the
    slower sets the time. At the slowest links the wire does (``overhead +
    bytes * x``), at fast ones it may be the hosts (``host``, whatever the
    bandwidth). Every split of the levels into wire-bound (the slowest k) and
    host-bound (the rest) is tried. Of the splits that fit as well as the best
    (within 1 % RMS per level), the one that leaves the least time to causes other
    than the wire (overhead + host) wins: two levels often fit both ways, and
    then the wire, which the bytes must cost, explains what it can. With
    ``wire_bytes`` None the bytes are fitted too (needs a wire-bound level).

    Returns:
        (overhead, wire bytes, host, squared relative error); bytes NaN when none fit.
    """
    order = np.argsort(-x)  # slowest link first
    x, m = x[order], m[order]
    fits = []
    # One level cannot show the hosts binding: with the bytes given, the wire explains it.
    for k in [1] if len(x) == 1 and wire_bytes is not None else range(len(x) + 1):
        wire, host = slice(0, k), slice(k, None)
        w = wire_bytes
        if w is None:
            if k == 0:
                continue
            if k == 1:
                over, w = 0.0, m[0] / x[0]
            else:
                (over, w), _ = nnls(np.column_stack([np.ones(k), x[wire]]), m[wire])
        else:
            over = max(_median(m[wire] - w * x[wire]), 0.0) if k else 0.0
        h = _median(m[host]) if k < len(x) else 0.0
        pred = np.maximum(over + w * x, h)
        err = float(np.sum((pred / np.maximum(m, _MIN_S) - 1.0) ** 2))
        fits.append((float(over), float(w), h, err))
    if not fits:
        return (0.0, np.nan, 0.0, np.inf)
    least = min(f[3] for f in fits) + len(x) * _TIE**2
    return min((f for f in fits if f[3] <= least), key=lambda f: f[0] + f[2])


def _table(med: pd.Series, n: int, bw_levels: np.ndarray) -> np.ndarray:
    """Medians per (point column, bandwidth level); NaN where a point was not measured."""
    table = np.full((n, len(bw_levels)), np.nan)
    for (col, bw), v in med.items():
        table[col, np.searchsorted(bw_levels, bw)] = v
    return table


def _wire_bytes(tables: np.ndarray, x_levels: np.ndarray, out_bytes: np.ndarray) -> np.ndarray:
    """Per point, the bytes the link carried: the tensor's, unless the medians say otherwise.

    ``tables``: (cells, points, levels) medians, one table per (edge CPU, cloud
    CPU) cell. Each candidate size is scored by how well every cell's law fits
    with it (:func:`_pipelined`, summed). The tensor's bytes win unless a fitted
    size (fitted to the medians pooled over the cells, or the median of each
    cell's own) does better by more than 3 % RMS per level: then the wire costs
    what the payload must. Fitted sizes win where the data is clearly another
    size (MobileNet's padded cuts moved 0.2-0.25 of the bytes the Keras graph
    gives them, LeNet's 2-63 KB pass inside the shaper's burst). Points not seen
    at two levels in every cell get their bytes times the others' ratio of
    fitted to tensor bytes.
    """
    w = out_bytes.astype(np.float64).copy()
    seen = np.isfinite(tables).all(axis=0).sum(axis=1) >= 2  # at two levels in every cell
    for col in np.flatnonzero(seen):
        cells = [(x_levels[ok], m[ok]) for m in tables[:, col] for ok in [np.isfinite(m)]]
        pooled = np.nanmedian(tables[:, col], axis=0)
        ok = np.isfinite(pooled)
        own = [_pipelined(xc, mc, None)[1] for xc, mc in cells]
        fitted = [_pipelined(x_levels[ok], pooled[ok], None)[1], float(np.median(own))]
        options = [s for s in fitted if np.isfinite(s)]
        scores = [sum(_pipelined(xc, mc, s)[3] for xc, mc in cells) for s in options]
        tol = sum(len(xc) for xc, _ in cells) * 0.03**2
        if scores and min(scores) + tol < sum(_pipelined(xc, mc, w[col])[3] for xc, mc in cells):
            w[col] = options[int(np.argmin(scores))]
    ratio = w[seen].sum() / max(out_bytes[seen].sum(), 1.0) if seen.any() else 1.0
    w[~seen] = ratio * out_bytes[~seen]
    return w


def _cell_law(table: np.ndarray, x_levels: np.ndarray, wire: np.ndarray) -> np.ndarray:
    """Law (points, 3) of one (edge CPU, cloud CPU) cell; fills the table's gaps from it."""
    n = len(wire)
    law = np.zeros((n, 3))
    seen = np.isfinite(table)
    for col in np.flatnonzero(seen.any(axis=1)):
        ok = seen[col]
        over, _, host, _ = _pipelined(x_levels[ok], table[col, ok], wire[col])
        law[col] = (over, wire[col], host)
    over = np.median(law[seen.any(axis=1), 0]) if seen.any() else 0.0
    for col in np.flatnonzero(~seen.any(axis=1)):  # never measured: the others' overhead
        law[col] = (over, wire[col], 0.0)
    gaps = ~seen
    table[gaps] = law_s(law[:, None, :], x_levels[None, :])[gaps]
    return law


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

    The law ``max(overhead_s + wire_bytes * 8 / bandwidth, host_s)`` prices a
    transfer at any bandwidth (the simulator's, and the table's shape between and
    beyond its levels): the wire and the hosts' sending and receiving overlap, and
    the slower sets the time. In the data the wire is exact where it binds
    (DenseNet121's 3.2 MB cuts take 2.57 s at 10 Mbit/s, 3.2 MB x 8 / 10 Mbit/s),
    while at 25 and 50 Mbit/s the same cuts take 1.4-2.3 s whatever the
    bandwidth: the hosts bind. A sum of the two would price the 10 Mbit/s cuts
    at twice their time; a straight line through the medians flattens to the
    hosts' time and prices slow links below the wire. The wire bytes are the
    tensor's unless every file together says otherwise (:func:`_wire_bytes`);
    overhead and host time are each (edge CPU, cloud CPU) level's own
    (:func:`_pipelined`).

    Returns:
        (law grid (..., points, 3), table grid (..., points, bandwidth levels), levels).
    """
    out_bytes = compute.output_bytes
    n = len(out_bytes)
    lr = _link_rows(rows, compute, col_of)
    bw_levels = _levels(lr, "bandwidth_mbps")
    x_levels = seconds_per_byte(bw_levels)
    ecpu, ccpu = _levels(lr, "edge_cpu_pct"), _levels(lr, "cloud_cpu_pct")
    law = np.zeros((len(ecpu), len(ccpu), n, 3))
    table = np.zeros((len(ecpu), len(ccpu), n, len(bw_levels)))
    keys = ["edge_cpu_pct", "cloud_cpu_pct", "col", "bandwidth_mbps"]
    med = lr.groupby(keys)["link_s"].median().clip(lower=0.0)
    measured = set(med.index.droplevel([2, 3]))
    for i, e in enumerate(ecpu):
        for j, c in enumerate(ccpu):
            if (e, c) not in measured:
                raise UserError(
                    f"{rows['model'].iloc[0]}: no measurements at edge CPU {e:g}% and cloud "
                    f"CPU {c:g}%; a calibration needs every combination of measured levels"
                )
            table[i, j] = _table(med.loc[(e, c)], n, bw_levels)
    wire = _wire_bytes(table.reshape(-1, n, len(bw_levels)), x_levels, out_bytes)
    for i in range(len(ecpu)):
        for j in range(len(ccpu)):
            law[i, j] = _cell_law(table[i, j], x_levels, wire)
    return link_grid(ecpu, ccpu, law), link_grid(ecpu, ccpu, table), bw_levels


def fit_model(model: str, rows: pd.DataFrame, spread: dict | None = None) -> ModelCalibration:
    """Fit one model's calibration from its partition rows (one run per condition).

    Args:
        model: the model's name.
        rows: its per-partition rows (store columns), one run per condition.
        spread: the spread to keep (per part, see :mod:`adaptsim.calibration.spread`);
            None: the quantiles of the fit's own residuals. Own profiles pass the
            spread of their repeats, which composed rows no longer show.
    """
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
        model=model,
        ordinals=ordinals,
        kinds=tuple(kinds),
        layer_names=tuple(names),
        output_bytes=out_bytes,
        edge_blocks=edge,
        cloud_blocks=cloud,
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
    residual_spread, quality = _in_sample(cal, rows, col_of)
    return replace(
        cal,
        spread=residual_spread if spread is None else spread,
        quality=quality,
        notes=tuple(notes),
    )


def _in_sample(cal: ModelCalibration, rows: pd.DataFrame, col_of):
    """Spread (log measured/predicted quantiles) and fit quality on the fitted rows."""
    conds, idx = _conditions(rows, list(FACTORS.values()))
    pred = cal.predict_at(conds)
    cols = np.array([col_of[int(p)] for p in rows["point"]])
    spread, quality = {}, {}
    for part, arr in zip(PARTS, (pred.edge_s, pred.cloud_s, pred.comm_s), strict=True):
        p = arr[idx, cols]
        m = rows[f"{part}_s"].to_numpy()
        ok = (p > 1e-3) & (m > 1e-3)
        spread[part] = quantiles(np.log(m[ok] / p[ok]))
        quality[f"{part}_median_ape"] = round(float(np.median(np.abs(m[ok] / p[ok] - 1))), 4)
    total = pred.total_s[idx, cols]
    m = rows["total_s"].to_numpy()
    ok = m > 0
    quality["total_median_ape"] = round(float(np.median(np.abs(total[ok] / m[ok] - 1))), 4)
    quality["rows"] = len(rows)
    return spread, quality


def fit_calibration(
    rows: pd.DataFrame,
    provenance: dict,
    models: list[str] | None = None,
    progress=None,
    spreads: dict[str, dict] | None = None,
) -> Calibration:
    """Fit every model in ``rows`` (or those named) into one calibration.

    ``progress(model)`` is called after each model; ``spreads``, when given, holds
    each model's spread by name (see :func:`fit_model`).
    """
    names = choose_models(models, sorted(rows["model"].unique()), "the store's measurements")
    out = {}
    for name in names:
        spread = None if spreads is None else spreads[name]
        out[name] = fit_model(name, rows[rows["model"] == name], spread)
        if progress:
            progress(name)
    return Calibration(out, provenance)
