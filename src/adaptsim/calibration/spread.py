"""The spread of a calibration: quantiles of log(measured / predicted) per part.

The simulator samples each part's time (edge, cloud, link) as the predicted time
times ``exp(q(u))`` for a uniform ``u``, where ``q`` interpolates these quantiles.
Fits (:mod:`adaptsim.calibration.fit`) take them from their residuals, own
profiles (:mod:`adaptsim.calibration.profiles`) from their repeats; both use
:func:`quantiles` so that every calibration carries the same probabilities.

A part may also carry ``by_point``: the quantiles of each point's own samples,
keyed by the point's ordinal (a string, as JSON keys are). Relative noise shrinks
with the length of a service: on this project's own profiles the 95th percentile
of sample / summary is 1.8-4x for edge services under 10 ms and 1.18 for those of
0.1-0.3 s, while all of them pooled give 1.44. Replaying the pooled spread on a
whole ResNet50 (0.19 s) made the twin's p95 20-30 % too high in validation runs
(docs/validation.md); each point's own spread does not. A point without enough
samples of its own (:data:`MIN_POINT_SAMPLES`) uses the pooled quantiles.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pandas as pd

from adaptsim.store.schema import FACTORS

__all__ = [
    "FLAT",
    "INFERENCES_PER_LINE",
    "MIN_POINT_SAMPLES",
    "NEAR_REPEAT_FACTORS",
    "PARTS",
    "SPREAD_PROBS",
    "SpreadSource",
    "by_point",
    "near_repeat_log_ratio",
    "near_repeat_spread",
    "quantiles",
]


class SpreadSource(StrEnum):
    """Where a fit of per-partition data without repeats takes its spread from."""

    residuals = "residuals"  # the fit's own residuals, pooled per part (model error too)
    near_repeats = "near-repeats"  # the data's near-repeats, per part and per point


# Quantiles of log(measured / predicted) kept as the spread. The extreme 1 % on each
# side is left out: in the AdaptiveDNN data it holds clock glitches and 20-70x
# outliers that are not the per-inference variation a simulator should replay.
SPREAD_PROBS = (0.01, *np.round(np.linspace(0.05, 0.95, 19), 2).tolist(), 0.99)
PARTS = ("edge", "cloud", "comm")  # the parts a spread has, as the simulator reads them
FLAT = {"probs": [0.0, 1.0], "log_ratio": [0.0, 0.0]}  # no spread at all
# Fewer samples than this at a point: its tails would be a handful of draws, so the
# point keeps the pooled quantiles (an own profile has repeats x conditions, 150+).
MIN_POINT_SAMPLES = 50
# Per part, the condition columns that may vary among near-repeats: the part does not
# run where they act. In the AdaptiveDNN data each of their levels moves the part's
# median by under 1 % and is the slowest of its group about 1/3 of the time, while
# the factors kept fixed move it by 40-140 % (benchmarks/near_repeat_spread.py prints
# the check). The link (total - edge - cloud) is held to fixed CPU levels: cloud CPU
# stress moves it (its 100 % level is the slowest in 48 % of groups).
NEAR_REPEAT_FACTORS = {
    "edge": ("cloud_cpu_pct", "cloud_mem_pct", "bandwidth_mbps"),
    "cloud": ("edge_cpu_pct", "edge_mem_pct", "bandwidth_mbps"),
    "comm": ("cloud_mem_pct", "edge_mem_pct"),
}
# Each AdaptiveDNN line is the mean of 2 inferences; in log space the mean of n
# independent draws has 1/sqrt(n) of one draw's spread, so the line's spread is
# scaled up by sqrt(n) to one inference's (an upper bound where the variation is
# between runs rather than between inferences).
INFERENCES_PER_LINE = 2
# Below this a time is a clock artefact or a rounding, not a service (the fit's own floor)
_MIN_TIME_S = 1e-3
_CONDITIONS = tuple(FACTORS.values())


def quantiles(log_ratio: np.ndarray) -> dict[str, list[float]]:
    """The :data:`SPREAD_PROBS` quantiles of the finite values of ``log_ratio`` (zero if none)."""
    lr = log_ratio[np.isfinite(log_ratio)]
    if not len(lr):
        lr = np.zeros(1)
    return {
        "probs": list(SPREAD_PROBS),
        "log_ratio": np.quantile(lr, SPREAD_PROBS).round(6).tolist(),
    }


def by_point(log_ratio: np.ndarray, points: np.ndarray) -> dict[str, list[float]]:
    """Per point ordinal with at least :data:`MIN_POINT_SAMPLES` finite values, the
    :data:`SPREAD_PROBS` quantiles of its own ``log_ratio`` (``points``: the ordinal of
    each value); the keys are the ordinals as strings."""
    ok = np.isfinite(log_ratio)
    lr, pt = log_ratio[ok], np.asarray(points)[ok].astype(int)
    out = {}
    for p in np.unique(pt):
        mine = lr[pt == p]
        if len(mine) >= MIN_POINT_SAMPLES:
            out[str(int(p))] = quantiles(mine)["log_ratio"]
    return out


def near_repeat_log_ratio(
    rows: pd.DataFrame,
    part: str,
    free: tuple[str, ...] | None = None,
    inferences_per_line: int = INFERENCES_PER_LINE,
) -> pd.Series:
    """Each row's ``log(part time / its near-repeats' centre)``, scaled to one inference.

    A row's near-repeats are the rows of the same model and point whose conditions
    differ only in the ``free`` columns (default :data:`NEAR_REPEAT_FACTORS`). The
    centre is the median of the OTHER near-repeats' log times (leaving the row out,
    so that with three repeats the middle one is not a zero by construction); the
    difference is scaled by ``sqrt((n - 1) / n)``, which makes its variance that of
    one row's exactly when the centre is a mean of logs, and by
    ``sqrt(inferences_per_line)`` to one inference. Rows alone in their group, or
    with a time under 1 ms, are NaN.

    Args:
        rows: per-partition rows (``model``, ``point``, the condition columns and
            ``<part>_s``), as :func:`adaptsim.calibration.build.measured_rows` gives.
        part: ``edge``, ``cloud`` or ``comm``.
        free: the condition columns that may differ among near-repeats.
        inferences_per_line: how many inferences each row's time is the mean of.
    """
    free = NEAR_REPEAT_FACTORS[part] if free is None else tuple(free)
    keys = ["model", "point", *(c for c in _CONDITIONS if c not in free)]
    v = rows[f"{part}_s"].to_numpy(dtype=np.float64)
    ok = v > _MIN_TIME_S
    logv = pd.Series(np.log(np.where(ok, v, np.nan)), index=rows.index)
    out = pd.Series(np.nan, index=rows.index)
    for idx in rows[ok].groupby(keys, sort=False).indices.values():
        n = len(idx)
        if n < 2:
            continue
        pos = rows.index[ok][idx]
        x = logv.loc[pos].to_numpy()
        others = np.array([np.median(np.delete(x, i)) for i in range(n)])
        out.loc[pos] = (x - others) * np.sqrt((n - 1) / n * inferences_per_line)
    return out


def near_repeat_spread(
    rows: pd.DataFrame, inferences_per_line: int = INFERENCES_PER_LINE
) -> dict[str, dict]:
    """Per model, each part's spread from its near-repeats (see :func:`near_repeat_log_ratio`):
    pooled over the model's points, and ``by_point`` for points with
    :data:`MIN_POINT_SAMPLES` or more, in the form :func:`fit_model` keeps."""
    ratios = {p: near_repeat_log_ratio(rows, p, None, inferences_per_line) for p in PARTS}
    out = {}
    for model, idx in rows.groupby("model").indices.items():
        spread = {}
        for part, lr in ratios.items():
            mine = lr.to_numpy()[idx]
            spread[part] = quantiles(mine)
            own = by_point(mine, rows["point"].to_numpy()[idx])
            if own:
                spread[part]["by_point"] = own
        out[str(model)] = spread
    return out
