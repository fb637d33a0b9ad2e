"""The persistence estimator (adaptsim.calibration.persistence) on planted data.

Sequences with a known latent (an AR process in time with a known share and
correlation time, the rest independent) must give back that share and time
within the estimator's own 95 % intervals; independent draws must give no
excess beyond the permutation null.
"""

from __future__ import annotations

import math

import numpy as np

from adaptsim.calibration.persistence import Lagged, lagged

EDGES_S = np.array([0, 0.75, 1.5, 3, 6, 12])


def _planted(share: float, tau_s: float, seed: int = 0, n_seq: int = 150, n: int = 60):
    """Frames 0.5 s apart; log ratio exp(z) (a skewed transform: the estimator is rank
    based), z = sqrt(share) * AR + sqrt(1 - share) * noise."""
    rng = np.random.default_rng(seed)
    rho = math.exp(-0.5 / tau_s) if tau_s > 0 else 0.0
    lr, t, seq = [], [], []
    for s in range(n_seq):
        a = rng.standard_normal()
        for i in range(n):
            if i:
                a = rho * a + math.sqrt(1 - rho * rho) * rng.standard_normal()
            z = math.sqrt(share) * a + math.sqrt(1 - share) * rng.standard_normal()
            lr.append(math.exp(z))
            t.append(0.5 * i)
            seq.append(s)
    seq = np.array(seq)
    return Lagged.of(np.array(lr), np.array(t), seq, seq)


def test_a_planted_share_and_correlation_time_are_recovered_within_their_intervals():
    lg = _planted(0.5, 2.0)
    table, fit = lagged(lg, max_lag=20, by="gap", gap_edges_s=EDGES_S,
                        rng=np.random.default_rng(1), null_reps=100, boot_reps=100)  # fmt: skip
    assert fit["share_lo"] <= 0.5 <= fit["share_hi"]
    assert fit["tau_s_lo"] <= 2.0 <= fit["tau_s_hi"]
    assert fit["share_hi"] - fit["share_lo"] < 0.4  # an interval that says something
    assert (table["r"].iloc[:3] > table["null_hi"].iloc[:3]).all()  # beyond the null


def test_independent_draws_show_nothing_beyond_the_null():
    lg = _planted(0.0, 0.0, seed=3)
    table, fit = lagged(lg, max_lag=20, by="gap", gap_edges_s=EDGES_S,
                        rng=np.random.default_rng(2), null_reps=100, boot_reps=100)  # fmt: skip
    inside = (table["r"] >= table["null_lo"] - 0.01) & (table["r"] <= table["null_hi"] + 0.01)
    assert inside.all()
    assert fit["share_lo"] <= 0.02 and fit["share"] < 0.05
