"""The run's randomness: arrivals, service noise, monitor noise, and determinism.

Statistical tests (scipy) at a significance level fixed before running (1 %), on
seeded runs, so they are deterministic; each would fail for the plausible bug
named in its docstring.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from adaptsim.simulator import load_scenario, run_scenario
from adaptsim.simulator.engine import run_policy
from simkit import toy_calibration, toy_scenario

REPO = Path(__file__).resolve().parent.parent
ALPHA = 0.01


def test_poisson_arrivals_have_the_rate_and_exponential_gaps(tmp_path):
    """Gaps drawn at the wrong scale (rate for mean), or a periodic stream, fail here."""
    lam, duration = 7.5, 4000.0
    cal = toy_calibration(tmp_path / "toy.json")
    sc = toy_scenario(
        cal,
        duration_s=duration,
        arrivals={"kind": "poisson", "rate_hz": lam},
        traces={"bandwidth_mbps": {"constant": 10_000.0}},
    )
    cols, _, _ = run_policy(sc, sc.policies[0], 3)
    t = np.asarray(cols["arrival_s"])
    n = len(t)
    # The count in [0, duration) is Poisson(lam * duration): two-sided test.
    cdf = stats.poisson.cdf(n, lam * duration)
    sf = stats.poisson.sf(n - 1, lam * duration)
    assert 2 * min(cdf, sf) > ALPHA, n
    gaps = np.diff(np.r_[0.0, t])
    assert stats.kstest(gaps, stats.expon(scale=1 / lam).cdf).pvalue > ALPHA
    # Consecutive gaps are independent (lag-1 correlation within its 99 % band).
    r = np.corrcoef(gaps[:-1], gaps[1:])[0, 1]
    assert abs(r) < stats.norm.ppf(1 - ALPHA / 2) / np.sqrt(n)
    assert t.min() >= 0 and t.max() < duration and (np.diff(t) > 0).all()


def _log_ratio_cdf(q):
    """CDF of log(measured/predicted) whose quantile function the calibration holds."""
    return lambda x: np.interp(x, q["log_ratio"], q["probs"])


@pytest.mark.parametrize("model", ["resnet50", "alexnet"])
def test_replayed_noise_has_the_calibrations_spread_and_sign(model):
    """Each stage's time over its noiseless time follows that stage's calibrated spread.

    Fails if the noise's sign is flipped (slower measurements replayed as faster),
    if it is drawn from another part's spread (edge noise on the link), or if it is
    scaled or switched off.
    """
    doc = {
        "name": "noise",
        "model": model,
        "duration_s": 3000.0,
        "arrivals": {"kind": "periodic", "rate_hz": 1.0},
        "deadline_s": 100.0,
        "traces": {"bandwidth_mbps": {"constant": 20.0}},
        "policies": [{"policy": "static", "params": {"point": 4}}],
    }
    from adaptsim.simulator import scenario_from_dict

    sc = scenario_from_dict(doc, "noise")
    clean = scenario_from_dict({**doc, "service": {"noise": False}}, "noise")
    noisy, _, _ = run_policy(sc, sc.policies[0], 9)
    base, _, _ = run_policy(clean, clean.policies[0], 9)
    for part, col in (("edge", "edge_s"), ("comm", "uplink_s"), ("cloud", "cloud_s")):
        q = sc.model.spread[part]
        assert np.ptp(q["log_ratio"]) > 0.05, part  # a spread wide enough to test
        ratio = np.log(np.asarray(noisy[col]) / np.asarray(base[col]))
        assert stats.kstest(ratio, _log_ratio_cdf(q)).pvalue > ALPHA, part
        # The sign: the share of frames slower than predicted is the calibration's.
        slower = float(np.interp(0.0, q["log_ratio"], q["probs"]))
        assert np.mean(ratio > 0) == pytest.approx(1 - slower, abs=0.04), part


def test_a_skewed_spread_is_replayed_with_its_sign(tmp_path):
    """A spread where measurements ran up to 2.7x slower but at most 5 % faster."""
    q = {"probs": [0.0, 0.5, 0.9, 1.0], "log_ratio": [-0.05, 0.0, 0.4, 1.0]}
    cal = toy_calibration(tmp_path / "toy.json", spread={"edge": q})
    sc = toy_scenario(cal, duration_s=2000.0, service={"noise": True})
    cols, _, _ = run_policy(sc, sc.policies[0], 4)
    ratio = np.log(np.asarray(cols["edge_s"]) / 0.2)
    assert stats.kstest(ratio, _log_ratio_cdf(q)).pvalue > ALPHA
    assert ratio.min() >= -0.05 - 1e-12 and ratio.max() > 0.9
    assert np.mean(ratio > 0.4) == pytest.approx(0.1, abs=0.025)


_RUN = """
import hashlib, sys
from adaptsim.simulator import load_scenario, run_scenario
sc = load_scenario(sys.argv[1]).shortened(150.0, (2, 5))
rec = run_scenario(sc).records
print(hashlib.sha256(rec.to_csv(index=False, float_format="%.17g").encode()).hexdigest())
"""


def _digest(records: pd.DataFrame) -> str:
    text = records.to_csv(index=False, float_format="%.17g")
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.slow
def test_same_records_in_other_processes_and_hash_seeds():
    """String hashing differs between processes: nothing may depend on it (set order,
    a module name from ``hash``), nor on anything else process-local. The scenario
    loads user policies from a file (a module named by a hash) and draws Poisson-free
    periodic frames with noise; two other processes with other hash seeds."""
    path = REPO / "scenarios" / "user_policy.yaml"
    here = _digest(run_scenario(load_scenario(path).shortened(150.0, (2, 5))).records)
    for hash_seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", _RUN, str(path)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            cwd=REPO,
        )
        assert out.stdout.strip() == here, hash_seed
