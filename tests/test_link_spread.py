"""The link's spread per payload: each point takes the probes nearest its message in size.

The link is profiled once for every model with messages from 1 kB up; a probe
smaller than tbf's bucket leaves at line rate or at the rate as the bucket happens
to be, so the small probes are spread wide while the large ones are within a few
%. Pooled, the small ones gave a whole ResNet50 input (602 kB) a p95 of x2.25 and
made the twin's all-cloud p95 27 % too high (docs/validation.md, "The twin's uplink
spread"). These tests plant probes whose noise is known per size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adaptsim.calibration.profiles import profile_spread
from adaptsim.calibration.spread import MIN_POINT_SAMPLES, by_size, quantiles
from adaptsim.simulator.engine import run_policy
from simkit import toy_calibration, toy_scenario

ROOT = Path(__file__).resolve().parents[1]
P95 = 0.95


def _p(q: dict | list, prob: float, probs=None) -> float:
    lr = q["log_ratio"] if isinstance(q, dict) else q
    probs = q["probs"] if isinstance(q, dict) else probs
    return float(np.interp(prob, probs, lr))


def _probes(rng, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Link probes as the profiler takes them: sizes 1 kB-3 MB (factor ~5 apart),
    ``n`` each; sizes under 100 kB spread like a tbf bucket (log sd 1.0), larger ones
    +-2 %."""
    sizes = np.array([1_000, 5_000, 25_000, 125_000, 625_000, 3_125_000], dtype=float)
    lr, sz = [], []
    for s in sizes:
        x = rng.normal(0.0, 1.0, n) if s < 100_000 else np.log(rng.uniform(0.98, 1.02, n))
        lr.append(x - np.median(x))
        sz.append(np.full(n, s))
    return np.concatenate(lr), np.concatenate(sz)


def test_each_point_takes_the_probes_nearest_its_payload():
    """A 602 kB point takes the 625 kB, 125 kB and 3.1 MB probes (+-2 %), a 3 kB point the
    1-25 kB ones (wide), a 12 kB point 25 kB, 5 kB and 125 kB (nearest on a log scale),
    an all-edge point sending nothing gets none. Fails if the spread is pooled, borrowed
    farthest first, by linear distance (602 kB would take 25 kB before 3.1 MB, 12 kB 1 kB
    before 125 kB), or keyed by the index instead of the point's ordinal."""
    lr, sizes = _probes(np.random.default_rng(5))
    assert 2 * 20 < MIN_POINT_SAMPLES <= 3 * 20  # three sizes make a point's pool
    own = by_size(lr, sizes, {1: 602_112.0, 4: 3_136.0, 7: 12_000.0, 9: 0.0})
    assert set(own) == {"1", "4", "7"}
    probs = quantiles(lr)["probs"]
    assert abs(_p(own["1"], P95, probs)) < np.log(1.025)
    assert abs(_p(own["1"], 0.05, probs)) < np.log(1.025)
    assert _p(own["4"], P95, probs) > 1.0  # the small probes: ~exp(1.645)
    # 12 kB: 25 kB (x2.1 away), 5 kB (x2.4), then 125 kB (x10.4) before 1 kB (x12)
    expect = quantiles(lr[np.isin(sizes, [25_000, 5_000, 125_000])])["log_ratio"]
    np.testing.assert_allclose(own["7"], expect, atol=1e-9)
    assert _p(quantiles(lr), P95) > 0.8  # pooled: wide


def test_too_few_probes_give_no_spread_of_their_own():
    lr = np.zeros(MIN_POINT_SAMPLES - 1)
    assert by_size(lr, np.full(len(lr), 1e5), {1: 1e5}) == {}
    lr = np.zeros(MIN_POINT_SAMPLES)
    assert set(by_size(lr, np.full(len(lr), 1e5), {1: 1e5})) == {"1"}


def _profile(rng) -> pd.DataFrame:
    """An own profile of model m: point 1 (all-cloud) sends 602 kB, point 2 3 kB, point
    3 (all-edge) 4 kB of result; 60 edge repeats a point, and the link probes."""
    cond = dict.fromkeys(("edge_cpu_pct", "edge_mem_pct", "cloud_cpu_pct", "cloud_mem_pct"), 0.0)
    base = {**cond, "bandwidth_mbps": np.nan, "stat": "sample", "model": "m"}
    rows = []
    for point, out_bytes, t in ((1, 602_112.0, 1e-5), (2, 3_136.0, 0.05), (3, 4_000.0, 0.2)):
        rows += [{**base, "host_role": "edge", "point": point, "output_bytes": out_bytes,
                  "edge_s": t * f, "cloud_s": 0.0, "comm_s": 0.0}
                 for f in rng.uniform(0.98, 1.02, 60)]  # fmt: skip
    lr, sizes = _probes(rng)
    link = {**base, "host_role": "link", "point": 0, "model": "", "bandwidth_mbps": 10.0}
    for x, s in zip(lr, sizes, strict=True):
        rows.append({**link, "output_bytes": s, "edge_s": 0.0, "cloud_s": 0.0,
                     "comm_s": s * 8 / 10e6 * np.exp(x)})  # fmt: skip
    return pd.DataFrame(rows)


def test_profile_spread_gives_the_link_a_spread_per_point_by_its_payload():
    """From the repeats of a profile: the all-cloud point's link spread is the large
    probes' (+-2 %), the 3 kB point's the small ones' (wide), the pooled one stays as
    it was (every probe). Fails if profile_spread keeps the pool only, keys the link's
    points by the probes' sizes rather than the model's payloads, or takes the sizes
    from another model."""
    frame = _profile(np.random.default_rng(11))
    other = frame[frame["host_role"] == "edge"].assign(model="n", output_bytes=1_000.0)
    comm = profile_spread(pd.concat([frame, other]), ["m"])["m"]["comm"]
    assert set(comm["by_point"]) == {"1", "2", "3"}
    assert abs(_p(comm["by_point"]["1"], P95, comm["probs"])) < np.log(1.025)
    assert _p(comm["by_point"]["2"], P95, comm["probs"]) > 1.0
    assert _p(comm, P95) > 0.8  # the pool keeps every probe


def test_the_twin_replays_the_links_own_spread_for_the_point_it_sends(tmp_path):
    """The engine draws a point's link factor from its own quantiles: with a pooled
    +-2x and the all-cloud point's own +-3 %, the all-cloud frames' uplink times stay
    within 3 % of the law, the middle point's spread +-2x. Fails if the link's
    by_point is not read (the all-cloud frames get +-2x)."""
    wide = {"probs": [0.0, 0.5, 1.0], "log_ratio": [-0.7, 0.0, 0.7]}
    spread = {"comm": {**wide, "by_point": {"1": [-0.03, 0.0, 0.03]}}}
    cal = toy_calibration(tmp_path / "toy.json", spread=spread)

    def ratios(point: int) -> np.ndarray:
        sc = toy_scenario(cal, duration_s=600.0, arrivals={"kind": "periodic", "rate_hz": 0.2},
                          service={"noise": True},
                          policies=[{"policy": "static", "params": {"point": point}}])  # fmt: skip
        cols, _, _ = run_policy(sc, sc.policies[0], 3)
        law = {1: 150_528.0, 2: 300_000.0}[point] * 8 / 8e6  # the toy's bytes at 8 Mbit/s
        return np.log(np.asarray(cols["uplink_s"]) / law)

    own, pooled = ratios(1), ratios(2)
    assert np.abs(own).max() <= 0.03 + 1e-9
    assert np.abs(pooled).max() > 0.5


@pytest.mark.parametrize(
    "name",
    ["calibration_own_2core_xeon.json", "calibration_own_2core.json",
     "calibration_own_slowedge.json"],
)  # fmt: skip
def test_the_shipped_calibration_gives_the_raw_input_the_large_probes_spread(name):
    """The own calibrations (the Xeon's is idle3's twin): ResNet50's raw input (602 kB)
    crosses within a few % of the law on the testbed's link (docs/validation.md: per
    message the median ratio 0.996, the worst 1.036; idle3's all-cloud frames 0.99-1.08),
    and the profiles' large probes agree; the pooled probes gave it x2.25 (Xeon) and
    x1.27 (EPYC) at p95. Fails on the calibrations before the fix."""
    cal = json.loads((ROOT / "src" / "adaptsim" / "data" / name).read_text())
    model = cal["models"]["resnet50"]
    comm = model["spread"]["comm"]
    first = min(model["points"], key=lambda p: p["ordinal"])  # all-cloud: the raw input
    assert first["output_bytes"] > 500_000
    own = comm["by_point"][str(first["ordinal"])]
    assert _p(own, P95, comm["probs"]) < np.log(1.1)
    assert _p(own, 0.05, comm["probs"]) > np.log(0.9)
