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

import numpy as np

__all__ = ["FLAT", "MIN_POINT_SAMPLES", "PARTS", "SPREAD_PROBS", "by_point", "quantiles"]

# Quantiles of log(measured / predicted) kept as the spread. The extreme 1 % on each
# side is left out: in the AdaptiveDNN data it holds clock glitches and 20-70x
# outliers that are not the per-inference variation a simulator should replay.
SPREAD_PROBS = (0.01, *np.round(np.linspace(0.05, 0.95, 19), 2).tolist(), 0.99)
PARTS = ("edge", "cloud", "comm")  # the parts a spread has, as the simulator reads them
FLAT = {"probs": [0.0, 1.0], "log_ratio": [0.0, 0.0]}  # no spread at all
# Fewer samples than this at a point: its tails would be a handful of draws, so the
# point keeps the pooled quantiles (an own profile has repeats x conditions, 150+).
MIN_POINT_SAMPLES = 50


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
