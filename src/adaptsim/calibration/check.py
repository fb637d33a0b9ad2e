"""How good is a calibration? Leave-one-level-out cross-validation and the noise floor.

For each factor (edge CPU, edge memory, cloud CPU, cloud memory, bandwidth) and
each of its levels, the calibration is fitted without that level and predicts
every point's end-to-end latency at the held-out conditions. Scores, per held-out
condition:

- regret: how much slower the predicted-best point truly is (measured) than the
  measured-best point, ``T[argmin predicted] / min T - 1``;
- per-point absolute percentage error of the predicted total.

Holding out the middle level is interpolation; holding out an end level makes the
stress axes extrapolate linearly (flagged in the detail rows). Bandwidth needs no
extrapolation: the link model is a function of any bandwidth.

The noise floor is measured the same way on the data alone: files that differ
only in cloud memory stress are treated as repeats; the best point picked from
one is scored on the other, and their per-point differences are the floor's
per-point error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from adaptsim.calibration.fit import fit_model

__all__ = ["FACTORS", "check_calibration", "cross_validate", "noise_floor", "regret"]

FACTORS = {
    "edge_cpu": "edge_cpu_pct",
    "edge_mem": "edge_mem_pct",
    "cloud_cpu": "cloud_cpu_pct",
    "cloud_mem": "cloud_mem_pct",
    "bandwidth": "bandwidth_mbps",
}
_COND = list(FACTORS.values())


def _matrix(rows: pd.DataFrame, ordinals: np.ndarray):
    """Measured total per (condition, point): (conditions frame, array with NaN gaps)."""
    wide = rows.pivot_table(index=_COND, columns="point", values="total_s", aggfunc="first")
    wide = wide.reindex(columns=ordinals)
    return wide.index.to_frame(index=False), wide.to_numpy(dtype=np.float64)


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


def _ape(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    ok = np.isfinite(measured) & (measured > 0)
    return np.abs(predicted[ok] / measured[ok] - 1.0)


def cross_validate(model: str, rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Leave-one-level-out CV of one model: (per held-out condition rows, point APEs)."""
    detail, apes = [], []
    for factor, col in FACTORS.items():
        levels = sorted(rows[col].unique())
        if len(levels) < 2:
            continue
        for level in levels:
            train, test = rows[rows[col] != level], rows[rows[col] == level]
            cal = fit_model(model, train)
            conds, meas = _matrix(test, cal.ordinals)
            pred = cal.predict(*(conds[c].to_numpy() for c in _COND), extrapolate=True)
            r = regret(pred.total_s, meas)
            detail.append(conds.assign(model=model, factor=factor, level=level, regret=r,
                                       extrapolated=pred.extrapolated))
            apes.append(_ape(pred.total_s, meas))
    return pd.concat(detail, ignore_index=True), np.concatenate(apes)


def noise_floor(model: str, rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Near-repeat files (differing only in cloud memory): (per pair rows, point APEs)."""
    ordinals = np.array(sorted(rows["point"].unique()))
    conds, meas = _matrix(rows, ordinals)
    others = [c for c in _COND if c != "cloud_mem_pct"]
    detail, apes = [], []
    for _, idx in conds.groupby(others).indices.items():
        for a in idx:
            for b in idx:
                if a == b:
                    continue
                r = regret(meas[[a]], meas[[b]])
                detail.append({**conds.iloc[b].to_dict(), "model": model, "regret": r[0]})
                apes.append(_ape(meas[a], meas[b]))
    return pd.DataFrame(detail), np.concatenate(apes) if apes else np.array([])


def _stats(regrets: np.ndarray, apes: np.ndarray) -> dict:
    r = regrets[np.isfinite(regrets)]
    return {
        "n": len(r),
        "within_5pct": float(np.mean(r <= 0.05)) if len(r) else np.nan,
        "median_regret": float(np.median(r)) if len(r) else np.nan,
        "p90_regret": float(np.quantile(r, 0.9)) if len(r) else np.nan,
        "median_ape": float(np.median(apes)) if len(apes) else np.nan,
    }


def check_calibration(rows: pd.DataFrame, models: list[str], progress=None):
    """CV and floor for each model; returns (summary table, per-condition detail)."""
    summary, details = [], []
    all_cv, all_cv_ape, all_fl, all_fl_ape = [], [], [], []
    for model in models:
        mrows = rows[rows["model"] == model]
        cv, cv_ape = cross_validate(model, mrows)
        fl, fl_ape = noise_floor(model, mrows)
        summary.append(_row(model, cv, cv_ape, fl, fl_ape))
        details.append(cv)
        all_cv.append(cv)
        all_cv_ape.append(cv_ape)
        all_fl.append(fl)
        all_fl_ape.append(fl_ape)
        if progress:
            progress(model)
    summary.append(_row("all", pd.concat(all_cv), np.concatenate(all_cv_ape),
                        pd.concat(all_fl), np.concatenate(all_fl_ape)))
    return pd.DataFrame(summary), pd.concat(details, ignore_index=True)


def _row(model, cv, cv_ape, fl, fl_ape) -> dict:
    c = _stats(cv["regret"].to_numpy(), cv_ape)
    interp = cv[~cv["extrapolated"].astype(bool)]["regret"].to_numpy()
    f = _stats(fl["regret"].to_numpy() if len(fl) else np.array([]), fl_ape)
    return {
        "model": model,
        "conditions": c["n"],
        "within_5pct": round(c["within_5pct"], 3),
        "floor_within_5pct": round(f["within_5pct"], 3),
        "median_regret": round(c["median_regret"], 4),
        "floor_median_regret": round(f["median_regret"], 4),
        "p90_regret": round(c["p90_regret"], 4),
        "floor_p90_regret": round(f["p90_regret"], 4),
        "median_ape": round(c["median_ape"], 4),
        "floor_median_ape": round(f["median_ape"], 4),
        "interp_within_5pct": round(float(np.mean(interp[np.isfinite(interp)] <= 0.05)), 3)
        if len(interp) else np.nan,
    }
