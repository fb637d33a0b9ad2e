"""Queueing theory as an independent oracle: simulated mean waits against formulas.

With constant bandwidth and stress, Poisson arrivals and exponential (or constant)
service, the edge CPU is an M/M/1 (M/D/1) queue and the cloud's ``c`` servers an
M/M/c queue, whose mean waits are known in closed form: Pollaczek-Khinchine
``W = lambda E[S^2] / (2 (1 - rho))`` and Erlang C. Exponential service comes from
a calibration spread holding the quantiles of log(Exp(1)); its first two moments
are computed from that spread by quadrature (independently of the engine) and
checked to be the exponential's, so the formulas apply.

Tolerances are confidence intervals, not chosen slack: one long seeded run, the
first frames dropped as warm-up, the rest cut into 30 consecutive batches whose
means are close to independent (batch means), and the half-width of the 99 %
Student-t interval of the overall mean. A bug that moves the mean wait by more
than a few percent (Poisson gaps at the wrong scale, a server too many or too
few, noise applied to the wrong stage or not at all) lands far outside it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from adaptsim.simulator.engine import run_policy
from simkit import exponential_spread, spread_moments, toy_calibration, toy_scenario

BATCHES = 30
CONFIDENCE = 0.99


def _batch_ci(waits: np.ndarray, warmup: int = 2000) -> tuple[float, float]:
    """Mean and the half-width of its CONFIDENCE interval by batch means."""
    w = waits[warmup:]
    n = len(w) // BATCHES * BATCHES
    means = w[:n].reshape(BATCHES, -1).mean(axis=1)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, BATCHES - 1) * means.std(ddof=1) / math.sqrt(BATCHES)
    return float(means.mean()), float(half)


def _erlang_c_wait(lam: float, mean_s: float, servers: int) -> float:
    """Mean wait in queue of M/M/c (Erlang C), from its textbook formula."""
    a = lam * mean_s
    rho = a / servers
    top = a**servers / math.factorial(servers) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(servers)) + top)
    return p_wait * mean_s / (servers * (1 - rho))


@pytest.fixture(scope="module")
def exp_spread():
    q = exponential_spread()
    m1, m2 = spread_moments(q)
    # The replayed noise is Exp(1): mean 1, second moment 2 (to well under the CIs below).
    assert m1 == pytest.approx(1.0, rel=2e-3) and m2 == pytest.approx(2.0, rel=5e-3)
    return q, m1, m2


@pytest.mark.slow
@pytest.mark.parametrize("exponential", [True, False], ids=["M/M/1", "M/D/1"])
def test_edge_wait_is_pollaczek_khinchine(tmp_path, exp_spread, exponential):
    q, m1, m2 = exp_spread
    service_s, lam = 0.1, 6.0  # rho = 0.6
    cal = toy_calibration(tmp_path / "toy.json", edge_s=(service_s, service_s), spread={"edge": q})
    sc = toy_scenario(
        cal,
        duration_s=25_000.0,
        arrivals={"kind": "poisson", "rate_hz": lam},
        traces={"bandwidth_mbps": {"constant": 10_000.0}},
        service={"noise": exponential},
    )
    cols, _, _ = run_policy(sc, sc.policies[0], 11)
    if exponential:
        es, es2 = service_s * m1, service_s**2 * m2
    else:
        es, es2 = service_s, service_s**2
        assert set(cols["edge_s"]) == {service_s}
    rho = lam * es
    expected = lam * es2 / (2 * (1 - rho))
    if exponential:  # M/M/1: rho / (mu - lambda), the same to the spread's precision
        assert expected == pytest.approx(0.6 / (10 - 6), rel=1e-2)
    mean, half = _batch_ci(np.asarray(cols["edge_wait_s"]))
    assert half < 0.05 * expected  # the run is long enough for the check to mean something
    assert abs(mean - expected) <= half, (mean, expected, half)


@pytest.mark.slow
@pytest.mark.parametrize("servers, lam, duration_s", [(1, 2.0, 100_000.0), (3, 7.0, 25_000.0)])
def test_cloud_wait_is_erlang_c(tmp_path, exp_spread, servers, lam, duration_s):
    # All-cloud: no edge work, nothing on the wire in this toy, so the cloud sees the
    # Poisson arrivals themselves. Exponential cloud service of mean 0.3 s.
    q, m1, _ = exp_spread
    service_s = 0.3
    cal = toy_calibration(
        tmp_path / "toy.json",
        cloud_all_s=service_s,
        cloud_s=0.2,
        wire_bytes=(0.0, 300_000.0, 4_000.0),
        spread={"cloud": q},
    )
    sc = toy_scenario(
        cal,
        duration_s=duration_s,
        arrivals={"kind": "poisson", "rate_hz": lam},
        cloud={"servers": servers},
        service={"noise": True},
        policies=[{"policy": "all-cloud"}],
    )
    cols, _, _ = run_policy(sc, sc.policies[0], 5)
    assert max(cols["edge_s"]) == 0 and max(cols["uplink_s"]) == 0
    expected = _erlang_c_wait(lam, service_s * m1, servers)
    if servers == 1:  # Erlang C with one server is M/M/1
        assert expected == pytest.approx(0.6 * 0.3 / (1 - 0.6), rel=1e-2)
    mean, half = _batch_ci(np.asarray(cols["cloud_wait_s"]))
    # Many frames find a free server: the mean wait is noisier than M/M/1's; a tenth still
    # tells a server too few or too many, or the noise off, far apart.
    assert half < 0.1 * expected
    assert abs(mean - expected) <= half, (mean, expected, half)
