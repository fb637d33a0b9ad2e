"""The spread of a calibration: quantiles of log(measured / predicted) per part.

The simulator samples each part's time (edge, cloud, link) as the predicted time
times ``exp(q(u))`` for a uniform ``u``, where ``q`` interpolates these quantiles.
Fits (:mod:`adaptsim.calibration.fit`) take them from their residuals, own
profiles (:mod:`adaptsim.calibration.profiles`) from their repeats; both use
:func:`quantiles` so that every calibration carries the same probabilities.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FLAT", "PARTS", "SPREAD_PROBS", "quantiles"]

# Quantiles of log(measured / predicted) kept as the spread. The extreme 1 % on each
# side is left out: in the AdaptiveDNN data it holds clock glitches and 20-70x
# outliers that are not the per-inference variation a simulator should replay.
SPREAD_PROBS = (0.01, *np.round(np.linspace(0.05, 0.95, 19), 2).tolist(), 0.99)
PARTS = ("edge", "cloud", "comm")  # the parts a spread has, as the simulator reads them
FLAT = {"probs": [0.0, 1.0], "log_ratio": [0.0, 0.0]}  # no spread at all


def quantiles(log_ratio: np.ndarray) -> dict[str, list[float]]:
    """The :data:`SPREAD_PROBS` quantiles of the finite values of ``log_ratio`` (zero if none)."""
    lr = log_ratio[np.isfinite(log_ratio)]
    if not len(lr):
        lr = np.zeros(1)
    return {
        "probs": list(SPREAD_PROBS),
        "log_ratio": np.quantile(lr, SPREAD_PROBS).round(6).tolist(),
    }
