"""Persistent service noise: the cases the first tests left open, found by mutation testing.

Each test holds the code to what the design says (docs in :mod:`adaptsim.simulator.draws`,
:class:`adaptsim.simulator.forecast.RecentService` and
:mod:`adaptsim.calibration.persistence`), with the expected numbers worked out here:
the conditional mean of the next factor by quadrature, correlations of a few values
by hand, an exponential fitted to points drawn from a known one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from adaptsim.simulator import run_scenario
from adaptsim.simulator.forecast import RecentService, mean_factors
from adaptsim.simulator.policies import Conditions, Observation
from test_persistent_noise import _view, persistent, scenario, with_spread

SKEWED = {"probs": [0.0, 0.5, 1.0], "log_ratio": [-0.5, 0.0, 1.5]}


def _lr(q: dict, p: float) -> float:
    return float(np.interp(p, q["probs"], q["log_ratio"]))


def _timed_point(sc) -> tuple[int, int, object]:
    """A point with both edge and cloud work: (column, ordinal, typical times at no stress)."""
    pred = _view(sc, []).predict(Conditions(1.0, 0.0, 0.0))
    k = next(i for i in range(len(sc.model.ordinals)) if pred.edge_s[i] > 0 and pred.cloud_s[i] > 0)
    return k, int(sc.model.ordinals[k]), pred


def _factors(sc, finished, at_s=10.0):
    view = _view(sc, finished)
    recent = RecentService()
    recent.observe(view)
    base = mean_factors(view)
    return recent.factors(view, base, at_s=at_s), base


@pytest.mark.parametrize("scale", [math.exp(2.0), math.exp(-2.0)])
def test_a_frame_beyond_the_spreads_ends_is_read_as_its_end_not_a_crash(scale):
    """Quantiles from 0 to 1 (a calibration may give them) and a frame 7x slower (or
    faster) than typical, beyond the spread's last quantile: read as a latent at the
    end of the range (the draws' own bound), a slow (fast) spell expected to go on,
    its factor within the spread's range; the inverse normal of 1 (or 0) was an
    error that stopped the run."""
    q = {"probs": [0.0, 0.5, 1.0], "log_ratio": [-0.5, 0.0, 0.5]}
    sc = with_spread(scenario(), edge=persistent(q, 4.0))
    k, point, pred = _timed_point(sc)
    obs = Observation(9.0, point, 1.0, float(pred.edge_s[k]) * scale, 0.1, 1000.0)
    got, base = _factors(sc, [obs])
    assert math.exp(-0.5) <= got[0][k] <= math.exp(0.5)
    assert (got[0][k] > base[0][k] * 1.2) if scale > 1 else (got[0][k] < base[0][k] / 1.2)


def test_a_run_whose_monitor_lags_the_stress_reads_frames_beyond_the_spread():
    """The same in a whole run: the edge's stress steps while the monitor reads it 3 s
    late, so a policy's typical time is often at the wrong stress and a finished frame
    lies far beyond a narrow spread from 0 to 1; the feedback policies run to the end."""
    q = {"probs": [0.0, 0.5, 1.0], "log_ratio": [-0.2, 0.0, 0.2]}
    base = scenario(
        duration_s=60.0,
        arrivals={"kind": "periodic", "rate_hz": 2.0},
        traces={
            "bandwidth_mbps": {"constant": 20.0},
            "edge_cpu_pct": {"steps": [[0, 0.0], [10, 100.0], [20, 0.0]], "end": "loop"},
        },
        observe={"period_s": 1.0, "delay_s": 3.0},
        policies=[{"policy": "neurosurgeon"}, {"policy": "mpc"}, {"policy": "changepoint"}],
    )
    sc = with_spread(base, edge=persistent(q, 5.0), cloud=persistent(q, 5.0))
    res = run_scenario(sc)
    assert not res.errors, res.errors  # each was "StatisticsError: p must be in ... 0 < p < 1"
    assert res.records.groupby("policy").size().to_dict() == dict.fromkeys(
        ("neurosurgeon", "mpc", "changepoint"), 120 * len(sc.seeds)
    )
