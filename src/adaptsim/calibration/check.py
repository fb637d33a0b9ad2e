"""How good is a calibration? Leave-one-level-out cross-validation and the noise floor.

For each factor (edge CPU, edge memory, cloud CPU, cloud memory, bandwidth) and
each of its levels, the calibration is fitted without that level and predicts
every point's end-to-end latency at the held-out conditions. Scores, per held-out
condition:

- regret: how much slower the predicted-best point truly is (measured) than the
  measured-best point, ``T[argmin predicted] / min T - 1``;
- per-point absolute percentage error of the predicted total: the median over
  the condition's points (``ape``) and their 90th percentile (``ape_p90``);
- which part misses: the edge's, the cloud's and the link's share of that
  error (:func:`~adaptsim.calibration.scores.part_errors`).

The scores themselves live in :mod:`adaptsim.calibration.scores`.

Summaries over the held-out conditions: the share within 5 % regret, the median
and p90 regret, the median of ``ape`` (``median_ape``) and the median of
``ape_p90`` (``p90_ape``: in the typical condition, nine points in ten are
predicted within it).

Holding out the middle level is interpolation; holding out an end level makes the
calibration extrapolate (flagged in the detail rows): compute by the
time-sharing law in CPU stress and the nearest memory level, the link by its
nearest CPU level and its law beyond the bandwidth levels.

The noise floor is measured the same way on the data alone: files that differ
only in cloud memory stress are treated as repeats; the best point picked from
one is scored on the other, and their per-point differences are the floor's
per-point error. Beside both, the ``siblings`` reference predicts each held-out
file by the mean of the measured files that differ from it only in the held-out
factor: how far the data's own neighbours carry, with no model at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.atomic import write_atomic
from adaptsim.calibration.fit import fit_model
from adaptsim.calibration.scores import ERROR_PARTS, ape_columns, part_errors, regret
from adaptsim.store import FACTORS

__all__ = [
    "CheckInterrupted",
    "by_factor",
    "check_calibration",
    "cross_validate",
    "floor_gain",
    "noise_floor",
    "siblings",
    "write_check",
]

_COND = list(FACTORS.values())


def _matrix(rows: pd.DataFrame, ordinals: np.ndarray):
    """Measured total per (condition, point): (conditions frame, array with NaN gaps)."""
    wide = rows.pivot_table(index=_COND, columns="point", values="total_s", aggfunc="first")
    wide = wide.reindex(columns=ordinals)
    return wide.index.to_frame(index=False), wide.to_numpy(dtype=np.float64)


def cross_validate(model: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Leave-one-level-out CV of one model: a row per (held-out condition, fold).

    ``regret`` as in :func:`~adaptsim.calibration.scores.regret`; ``ape`` the median
    absolute percentage error of the predicted totals over that condition's points.
    """
    detail = []
    for factor, col in FACTORS.items():
        levels = sorted(rows[col].unique())
        if len(levels) < 2:
            continue
        for level in levels:
            train, test = rows[rows[col] != level], rows[rows[col] == level]
            cal = fit_model(model, train)
            conds, meas = _matrix(test, cal.ordinals)
            pred = cal.predict_at(conds, extrapolate=True)
            detail.append(
                conds.assign(
                    model=model,
                    factor=factor,
                    level=level,
                    regret=regret(pred.total_s, meas),
                    **ape_columns(pred.total_s, meas),
                    **part_errors(pred, test, conds, cal.ordinals, meas),
                    extrapolated=pred.extrapolated,
                )
            )
    return pd.concat(detail, ignore_index=True)


def noise_floor(model: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Near-repeat files (differing only in cloud memory): a row per ordered pair."""
    ordinals = np.array(sorted(rows["point"].unique()))
    conds, meas = _matrix(rows, ordinals)
    others = [c for c in _COND if c != "cloud_mem_pct"]
    pairs = [
        (a, b) for idx in conds.groupby(others).indices.values() for a in idx for b in idx if a != b
    ]
    if not pairs:
        return pd.DataFrame(columns=[*_COND, "model", "regret", "ape", "ape_p90"])
    a, b = np.array(pairs).T
    return (
        conds.iloc[b]
        .reset_index(drop=True)
        .assign(model=model, regret=regret(meas[a], meas[b]), **ape_columns(meas[a], meas[b]))
    )


def siblings(model: str, rows: pd.DataFrame) -> pd.DataFrame:
    """A data-only reference for the CV: each held-out file predicted by its siblings.

    For every factor and condition, the prediction is the mean measured total of the
    conditions that differ from it only in that factor (the other levels a
    leave-one-level-out fold keeps). It shows how far the data's own neighbours
    carry; in the cloud-memory folds they are the floor's near-repeats.
    """
    ordinals = np.array(sorted(rows["point"].unique()))
    conds, meas = _matrix(rows, ordinals)
    out = []
    for factor, col in FACTORS.items():
        others = [c for c in _COND if c != col]
        for idx in conds.groupby(others).indices.values():
            if len(idx) < 2:
                continue
            group = meas[idx]
            with np.errstate(all="ignore"):
                sums, counts = np.nansum(group, axis=0), np.isfinite(group).sum(axis=0)
                pred = (sums[None, :] - np.nan_to_num(group)) / (
                    counts[None, :] - np.isfinite(group)
                )
            out.append(
                conds.iloc[idx].assign(
                    model=model,
                    factor=factor,
                    regret=regret(pred, group),
                    **ape_columns(pred, group),
                )
            )
    if not out:
        return pd.DataFrame(columns=[*_COND, "model", "factor", "regret", "ape", "ape_p90"])
    return pd.concat(out, ignore_index=True)


def _stats(frame: pd.DataFrame) -> dict:
    r = frame["regret"].to_numpy(dtype=np.float64)
    r = r[np.isfinite(r)]
    ape = frame["ape"].to_numpy(dtype=np.float64)
    ape = ape[np.isfinite(ape)]
    p90 = frame["ape_p90"].to_numpy(dtype=np.float64)
    p90 = p90[np.isfinite(p90)]
    return {
        "n": len(r),
        "within_5pct": float(np.mean(r <= 0.05)) if len(r) else np.nan,
        "median_regret": float(np.median(r)) if len(r) else np.nan,
        "p90_regret": float(np.quantile(r, 0.9)) if len(r) else np.nan,
        "median_ape": float(np.median(ape)) if len(ape) else np.nan,
        "p90_ape": float(np.median(p90)) if len(p90) else np.nan,
    }


# The scores floor_gain compares: (name, detail column, share within 5 % or median)
_GAINS = (
    ("within_5pct", "regret", "share"),
    ("median_regret", "regret", "median"),
    ("median_ape", "ape", "median"),
    ("p90_ape", "ape_p90", "median"),
)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Median of ``values`` under each row of ``weights`` (reps x values); values sorted."""
    cum = np.cumsum(weights, axis=1)
    half = cum[:, -1:] / 2.0
    lo = np.argmax(cum >= half, axis=1)  # the lower middle
    hi = np.argmax(cum > half, axis=1)  # the upper middle (the same when odd)
    return (values[lo] + values[hi]) / 2.0


def _scores(frame: pd.DataFrame, keys: pd.Index, counts: np.ndarray) -> np.ndarray:
    """(reps, len(_GAINS)): each score of ``frame`` with its clusters drawn ``counts`` times."""
    out = []
    for _, col, how in _GAINS:
        vals = frame[col].to_numpy(dtype=np.float64)
        ok = np.isfinite(vals)
        order = np.argsort(vals[ok], kind="stable")
        vals = vals[ok][order]
        w = counts[:, keys.get_indexer(frame["_key"].to_numpy()[ok][order])]
        if how == "share":
            out.append((w * (vals <= 0.05)).sum(axis=1) / w.sum(axis=1))
        else:
            out.append(_weighted_median(vals, w))
    return np.stack(out, axis=1)


def floor_gain(detail: pd.DataFrame, rng: np.random.Generator, reps: int = 1000) -> pd.DataFrame:
    """How much better than the floor the CV is, with 95 % bootstrap intervals.

    A row per model and one for all: ``gain_within_5pct`` (CV minus floor) and
    ``gain_median_regret``, ``gain_median_ape``, ``gain_p90_ape`` (floor minus CV),
    each with ``_lo`` and ``_hi``; positive is better than the floor, and an
    interval above 0 says the difference is more than the resampling noise.
    The resampling unit is a measured condition (the CV's folds and the floor's
    pairs about it move together), drawn with replacement within each model: the
    CV and the floor are scored on the same draws.
    """
    cond = [c for c in _COND if c in detail.columns]
    frame = detail[detail["kind"].isin(["cv", "floor"])].copy()
    if frame.empty:
        return pd.DataFrame(columns=["model"])
    frame["_key"] = frame["model"].astype(str) + frame[cond].astype(str).agg("|".join, axis=1)
    sign = np.array([-1.0 if how == "share" else 1.0 for *_, how in _GAINS])  # more: better
    out = []
    groups = list(frame.groupby("model", sort=True))
    draws = {}
    for m, g in groups:
        keys = pd.Index(sorted(g["_key"].unique()))
        picks = rng.integers(0, len(keys), size=(reps, len(keys)))
        draws[m] = (keys, np.stack([np.bincount(p, minlength=len(keys)) for p in picks]))
    for m, g in [*groups, ("all", frame)]:
        names = [m] if m != "all" else [k for k, _ in groups]
        keys = pd.Index(np.concatenate([draws[n][0] for n in names]))
        counts = np.concatenate([draws[n][1] for n in names], axis=1)
        ones = np.ones((1, len(keys)))
        cv, fl = g[g["kind"] == "cv"], g[g["kind"] == "floor"]
        if cv.empty or fl.empty:
            continue
        point = sign * (_scores(fl, keys, ones)[0] - _scores(cv, keys, ones)[0])
        boot = sign * (_scores(fl, keys, counts) - _scores(cv, keys, counts))
        row = {"model": m}
        for i, (name, *_) in enumerate(_GAINS):
            lo, hi = np.quantile(boot[:, i], [0.025, 0.975])
            row |= {f"gain_{name}": point[i], f"gain_{name}_lo": lo, f"gain_{name}_hi": hi}
        out.append(row)
    return pd.DataFrame(out).round(4)


def check_calibration(rows: pd.DataFrame, models: list[str], progress=None, floor=None, rng=None):
    """CV and floor for each model; returns (summary table, per-condition detail).

    The detail has one row per held-out condition and fold (``kind`` = ``cv``) and
    one per floor comparison (``kind`` = ``floor``). ``floor(model, rows)`` gives the
    floor's rows; by default the near-repeat pairs of :func:`noise_floor`. The
    summary carries :func:`floor_gain`'s columns, resampled with ``rng`` (default:
    seed 0).
    """
    floor = floor or noise_floor
    cvs, floors, sibs, summary = [], [], [], []
    try:
        for model in models:
            mrows = rows[rows["model"] == model]
            cvs.append(cross_validate(model, mrows))
            floors.append(floor(model, mrows))
            sibs.append(siblings(model, mrows))
            summary.append(_row(model, cvs[-1], floors[-1], sibs[-1]))
            if progress:
                progress(model)
    except KeyboardInterrupt:
        if not summary:
            raise
        done = [r["model"] for r in summary]
        raise CheckInterrupted(done, *_assemble(cvs, floors, sibs, summary, rng)) from None
    return _assemble(cvs, floors, sibs, summary, rng)


class CheckInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`check_calibration`: the models checked so far, whole."""

    def __init__(self, models: list[str], summary: pd.DataFrame, detail: pd.DataFrame):
        super().__init__(f"check interrupted after {', '.join(models)}")
        self.models, self.summary, self.detail = models, summary, detail


def _assemble(cvs, floors, sibs, summary, rng):
    """The summary (with its 'all' row and gains) and the detail of the checked models."""
    cv, floor = pd.concat(cvs, ignore_index=True), pd.concat(floors, ignore_index=True)
    sib = pd.concat(sibs, ignore_index=True)
    summary = [*summary, _row("all", cv, floor, sib)]
    detail = pd.concat(
        [cv.assign(kind="cv"), floor.assign(kind="floor"), sib.assign(kind="siblings")],
        ignore_index=True,
    )
    gains = floor_gain(detail, rng if rng is not None else np.random.default_rng(0))
    summary = pd.DataFrame(summary)
    if not gains.empty:
        summary = summary.merge(gains, on="model", how="left")
    return summary, detail


def by_factor(detail: pd.DataFrame) -> pd.DataFrame:
    """The check per held-out factor and level, per model and over all models.

    From the cross-validation rows of :func:`check_calibration`'s detail: held-out
    conditions, share within 5 % regret, median regret, median and p90 per-point
    error (as in the summary), and the means of
    :func:`~adaptsim.calibration.scores.part_errors` (how much of the error each of
    edge, cloud and link carries). Each
    factor has a row with ``level`` = ``all`` (every fold of that factor) and one per
    held-out level; ``extrapolated`` is the share of that row's conditions that lay
    beyond the levels left to fit (the end levels of a stress axis).
    """
    cv = detail[detail["kind"] == "cv"]
    out = []
    for model, frame in [*cv.groupby("model", sort=True), ("all", cv)]:
        for factor in FACTORS:
            folds = frame[frame["factor"] == factor]
            parts = [("all", folds), *folds.groupby("level", sort=True)]
            for level, part in parts:
                s = _stats(part)
                if s["n"]:
                    out.append(
                        {
                            "model": model,
                            "factor": factor,
                            "level": level if level == "all" else f"{level:g}",
                            "conditions": s["n"],
                            "extrapolated": round(
                                float(part["extrapolated"].astype(bool).mean()), 3
                            ),
                            "within_5pct": round(s["within_5pct"], 3),
                            "median_regret": round(s["median_regret"], 4),
                            "median_ape": round(s["median_ape"], 4),
                            "p90_ape": round(s["p90_ape"], 4),
                            **{
                                f"mean_{name}": round(float(part[name].mean()), 3)
                                for name, *_ in ERROR_PARTS
                            },
                        }
                    )
    return pd.DataFrame(out)


def _row(model: str, cv: pd.DataFrame, floor: pd.DataFrame, sib: pd.DataFrame) -> dict:
    c, f, s = _stats(cv), _stats(floor), _stats(sib)
    interp = _stats(cv[~cv["extrapolated"].astype(bool)])
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
        "p90_ape": round(c["p90_ape"], 4),
        "floor_p90_ape": round(f["p90_ape"], 4),
        "interp_within_5pct": round(interp["within_5pct"], 3),
        "interp_median_ape": round(interp["median_ape"], 4),
        "siblings_within_5pct": round(s["within_5pct"], 3),
        "siblings_median_ape": round(s["median_ape"], 4),
    }


def write_check(summary: pd.DataFrame, detail: pd.DataFrame, path: Path) -> list[Path]:
    """Write the check's files, each atomically: the summary at ``path``, the detail
    (``<stem>-detail.csv``) and :func:`by_factor` (``<stem>-by-factor.csv``) beside it.

    Returns:
        The paths written.
    """
    paths = []
    for p, frame in (
        (path, summary),
        (path.with_name(path.stem + "-detail.csv"), detail),
        (path.with_name(path.stem + "-by-factor.csv"), by_factor(detail)),
    ):
        write_atomic(p, lambda tmp, frame=frame: frame.to_csv(tmp, index=False))
        paths.append(p)
    return paths
