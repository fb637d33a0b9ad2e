"""The statistics of benchmarks/block_time_correlation.py on planted per-frame times.

That benchmark answers whether a frame's first block tells how slow the rest of its
head runs on a real host (the simulator assumes it tells exactly). Its numbers are
only as good as these helpers: a comonotone pair must read near 1 and outside the
permutation null; independent times must read inside it; and a slow drift shared by
both parts with independent per-frame noise must read high raw but near 0 once
detrended, since what only the frame's own first block can tell is the per-frame
part.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "block_time_correlation.py"
_spec = importlib.util.spec_from_file_location("block_time_correlation", _PATH)
btc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(btc)

N = 300


def _lognormal(rng, sd=0.1):
    return np.exp(rng.normal(0.0, sd, N))


def test_comonotone_parts_read_near_one_and_outside_the_null():
    rng = np.random.default_rng(1)
    factor = _lognormal(rng)
    res = btc.prefix_rest_correlation(0.002 * factor, 0.2 * factor**1.3, rng)
    assert res["r"] > 0.99
    assert res["lo"] > res["null_hi"]


def test_independent_parts_read_inside_the_null_band():
    rng = np.random.default_rng(2)
    res = btc.prefix_rest_correlation(_lognormal(rng), _lognormal(rng), rng)
    assert res["null_lo"] < res["r"] < res["null_hi"]
    assert res["null_lo"] < 0 < res["null_hi"]
    assert res["lo"] < 0 < res["hi"]


def test_a_shared_slow_drift_is_taken_out_by_detrending():
    rng = np.random.default_rng(3)
    drift = np.exp(0.5 * np.sin(np.arange(N) / 40.0))  # slow: a period of ~250 frames
    first = drift * _lognormal(rng, 0.1)
    rest = drift * _lognormal(rng, 0.1)
    assert btc.rank_correlation(first, rest) > 0.8  # raw: the drift alone
    r = btc.rank_correlation(btc.detrended(first), btc.detrended(rest))
    assert abs(r) < 0.2


def test_detrending_keeps_a_per_frame_link_between_the_parts():
    rng = np.random.default_rng(4)
    drift = np.exp(0.5 * np.sin(np.arange(N) / 40.0))
    own = _lognormal(rng, 0.1)  # the frame's own slowness, in both parts
    first = drift * own * _lognormal(rng, 0.02)
    rest = drift * own * _lognormal(rng, 0.02)
    assert btc.rank_correlation(btc.detrended(first), btc.detrended(rest)) > 0.8


def test_the_detrended_series_is_each_time_over_its_neighbours_median():
    times = np.array([1.0] * 10 + [3.0] + [1.0] * 10 + [2.0] * 21)
    d = btc.detrended(times, window=5)
    assert d[10] == 3.0  # a lone slow frame stands out against its neighbours
    assert d[35] == 1.0  # a slow stretch is the neighbourhood's level, not an outlier
    assert np.isfinite(d).all()
