"""How close a prediction comes to a measurement: the scores the check and the floors share.

Each score is per condition (a row of a conditions x points array of totals):

- :func:`regret`: how much slower the predicted-best point truly is than the
  measured-best one, the question a split policy cares about;
- :func:`ape_columns`: the points' absolute percentage errors, their median and
  90th percentile;
- :func:`part_errors`: which part (edge, cloud, link) carries the error.

They live apart from the check (:mod:`adaptsim.calibration.check`) because the
noise floors of own profiles (:mod:`adaptsim.calibration.profiles`) score the
data against itself with the same measures and must not depend on the fitting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from adaptsim.store import FACTORS

__all__ = ["ERROR_PARTS", "ape_columns", "part_errors", "regret", "row_quantile"]

_COND = list(FACTORS.values())

# The parts of a point's time: (detail column, Prediction attribute, store column)
ERROR_PARTS = (
    ("edge_err_share", "edge_s", "edge_s"),
    ("cloud_err_share", "cloud_s", "cloud_s"),
    ("link_err_share", "comm_s", "comm_s"),
)


def part_errors(pred, rows: pd.DataFrame, conds: pd.DataFrame, ordinals, measured) -> dict:
    """Which part misses: per condition, each part's share of the prediction's error.

    A part's error at a point is its absolute error over the point's measured total;
    its share is its sum over the condition's points over the sum of all three
    parts' (``edge_err_share``, ``cloud_err_share``, ``link_err_share``; they add up
    to 1). Only points with every part measured count; none, or no error, gives NaN.
    ``pred`` and ``measured`` (totals) are per ``conds`` row and ``ordinals`` column.
    """
    cols = [col for *_, col in ERROR_PARTS]
    wide = rows.groupby([*_COND, "point"])[cols].first().unstack("point")
    wide = wide.reindex(pd.MultiIndex.from_frame(conds[_COND]))
    errs = []
    for _, attr, col in ERROR_PARTS:
        part = wide[col].reindex(columns=ordinals).to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            errs.append(np.abs(getattr(pred, attr) - part) / measured)
    errs = np.stack(errs)  # (parts, conditions, points)
    ok = np.isfinite(errs).all(axis=0) & (measured > 0)
    sums = np.where(ok, errs, 0.0).sum(axis=2)  # (parts, conditions)
    total = sums.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, sums / total, np.nan)
    return {name: share[i] for i, (name, *_) in enumerate(ERROR_PARTS)}


def regret(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Per row: measured time of the predicted-best point over the measured best, minus 1.

    Only points measured in that row compete; rows with nothing measured give NaN.
    """
    avail = np.isfinite(measured)
    pred = np.where(avail & np.isfinite(predicted), predicted, np.inf)
    pick = np.argmin(pred, axis=1)
    best = np.nanmin(np.where(avail, measured, np.nan), axis=1)
    chosen = measured[np.arange(len(measured)), pick]
    with np.errstate(invalid="ignore", divide="ignore"):
        return chosen / best - 1.0


def ape_columns(predicted: np.ndarray, measured: np.ndarray) -> dict[str, np.ndarray]:
    """Per row, the points' absolute percentage errors: their median (``ape``) and
    90th percentile (``ape_p90``). Only points measured in both count; none gives NaN.
    """
    ok = np.isfinite(measured) & (measured > 0) & np.isfinite(predicted)
    err = np.where(ok, np.abs(predicted / np.where(ok, measured, 1.0) - 1.0), np.nan)
    return {"ape": row_quantile(err, 0.5), "ape_p90": row_quantile(err, 0.9)}


def row_quantile(values: np.ndarray, q: float) -> np.ndarray:
    """Each row's ``q`` quantile over its finite values (linear, as np.quantile); NaN if none.

    np.nanquantile does the same row by row in Python, 30x slower on a check's rows.
    """
    ordered = np.sort(values, axis=1)  # NaN last
    n = np.isfinite(values).sum(axis=1)
    pos = np.maximum(n - 1, 0) * q
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    rows = np.arange(len(values))
    out = ordered[rows, lo] * (1 - (pos - lo)) + ordered[rows, hi] * (pos - lo)
    return np.where(n > 0, out, np.nan)
