"""Service noise that persists in time: the draws, their marginal, and what a policy may see.

Checked against what the design says, not against the code's own output: the old
i.i.d. formula written out again here, the uniform marginal (scipy's KS test over
independent seeds), the AR correlation ``exp(-gap / tau)`` and its Poisson mean
``rate / (rate + 1 / tau)``, the oracle as a per-request bound, and the
conditional expectation of the next factor worked out by quadrature here.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtri

from adaptsim.calibration import load_calibration
from adaptsim.errors import UserError
from adaptsim.simulator import run_scenario, scenario_from_dict
from adaptsim.simulator.draws import arrival_times, draw
from adaptsim.simulator.engine import Tables
from adaptsim.simulator.forecast import RecentService, mean_factors
from adaptsim.simulator.policies import Conditions, Observation, View

REPO = Path(__file__).resolve().parent.parent
CAL_CACHE: dict = {}
PARTS = ("edge", "comm", "cloud")
# A spread whose factor is exp(2u - 1): u is read back exactly from a factor.
LINEAR = {"probs": [0.0, 1.0], "log_ratio": [-1.0, 1.0]}


def scenario(**overrides):
    doc = {
        "name": "t",
        "model": "alexnet",
        "duration_s": 200.0,
        "arrivals": {"kind": "periodic", "rate_hz": 1.0},
        "deadline_s": 5.0,
        "traces": {"bandwidth_mbps": {"constant": 20.0}},
        "service": {"noise": True},
        "policies": [{"policy": "static", "params": {"point": 6}}],
    }
    doc.update(overrides)
    return scenario_from_dict(doc, "test scenario", REPO / "scenarios", CAL_CACHE)


def with_spread(sc, **per_part):
    """``sc`` with each named part's spread replaced (``comm`` for the link)."""
    spread = {p: dict(sc.model.spread[p]) for p in PARTS}
    for part, q in per_part.items():
        spread[part] = q
    return replace(sc, model=replace(sc.model, spread=spread))


def persistent(q: dict, tau_s: float, share: float | None = None) -> dict:
    out = {**q, "persistence_s": tau_s}
    if share is not None:
        out["persistence_share"] = share
    return out


def test_without_persistence_the_draws_are_the_old_iid_formula_bit_for_bit():
    sc = scenario(arrivals={"kind": "poisson", "rate_hz": 3.0}, duration_s=60.0)
    rng = np.random.default_rng(11)
    arrivals = arrival_times(sc, rng)
    u = rng.random((len(arrivals), 3))
    expected = np.column_stack(
        [
            np.exp(np.interp(u[:, j], sc.model.spread[p]["probs"], sc.model.spread[p]["log_ratio"]))
            for j, p in enumerate(PARTS)
        ]
    )
    zero = with_spread(sc, **{p: persistent(sc.model.spread[p], 0.0) for p in PARTS})
    for case in (sc, zero):
        d = draw(case, 11)
        np.testing.assert_array_equal(d.arrivals_s, arrivals)
        for k, o in enumerate(sc.model.ordinals):
            if not any(str(int(o)) in sc.model.spread[p].get("by_point", {}) for p in PARTS):
                np.testing.assert_array_equal(d.noise[k], expected)


def test_persistence_of_one_part_moves_only_that_part_and_nothing_else():
    sc = with_spread(
        scenario(arrivals={"kind": "poisson", "rate_hz": 2.0}), comm=LINEAR, edge=LINEAR
    )
    on = with_spread(sc, edge=persistent(LINEAR, 4.0))
    a, b = draw(sc, 5), draw(on, 5)
    np.testing.assert_array_equal(a.arrivals_s, b.arrivals_s)
    np.testing.assert_array_equal(a.monitor_noise, b.monitor_noise)
    np.testing.assert_array_equal(a.noise[0][:, 1:], b.noise[0][:, 1:])
    assert not np.array_equal(a.noise[0][:, 0], b.noise[0][:, 0])


def _uniforms(sc, seed: int, frame: int, column: int) -> float:
    """The uniform behind one frame's factor of a LINEAR part (exp(2u - 1))."""
    return (math.log(draw(sc, seed).noise[0][frame, column]) + 1.0) / 2.0


@pytest.mark.parametrize("frame", [0, 150])
def test_each_frames_factor_keeps_the_spreads_marginal(frame):
    """KS over 400 independent seeds (one frame each, so the draws are independent):
    refused at the 0.1 % level. A process started at 0 rather than its stationary
    law, or a mix whose variance is not 1 (share * a + (1 - share) * e), fails it."""
    sc = with_spread(
        scenario(),
        edge=persistent(LINEAR, 5.0),
        cloud=persistent(LINEAR, 5.0, share=0.5),
        comm=LINEAR,
    )
    for column in (0, 2):
        u = [_uniforms(sc, seed, frame, column) for seed in range(400)]
        assert stats.kstest(u, "uniform").pvalue > 1e-3, (frame, column)


def _lag1(z: np.ndarray) -> float:
    return float(np.corrcoef(z[:-1], z[1:])[0, 1])


@pytest.mark.parametrize(("tau_s", "share"), [(3.0, 1.0), (3.0, 0.5), (0.4, 1.0)])
def test_a_planted_persistence_is_recovered_from_the_draws(tau_s, share):
    """Periodic frames 1 s apart: the latent's lag-1 correlation is share * exp(-1/tau);
    the estimate must lie within 3 standard errors (sqrt(1/n), above AR(1)'s
    sqrt((1 - rho^2) / n)), and tau read back from it within its delta-method error."""
    sc = with_spread(
        scenario(duration_s=20_000.0), edge=persistent(LINEAR, tau_s, share), comm=LINEAR
    )
    u = (np.log(draw(sc, 3).noise[0][:, 0]) + 1.0) / 2.0
    z = ndtri(u)
    n, r, rho = len(z), _lag1(z), share * math.exp(-1.0 / tau_s)
    se = math.sqrt(1.0 / n)
    assert abs(r - rho) < 3 * se
    if share == 1.0:
        tau_hat = -1.0 / math.log(r)
        se_tau = se / (r * math.log(r) ** 2)
        assert abs(tau_hat - tau_s) < 3 * se_tau


def test_poisson_frames_correlate_by_their_gaps():
    """Exponential gaps at rate 1 and tau 3 s: E[exp(-gap/tau)] = 1 / (1 + 1/3) = 0.75."""
    sc = with_spread(
        scenario(duration_s=20_000.0, arrivals={"kind": "poisson", "rate_hz": 1.0}),
        cloud=persistent(LINEAR, 3.0),
    )
    z = ndtri((np.log(draw(sc, 4).noise[0][:, 2]) + 1.0) / 2.0)
    assert abs(_lag1(z) - 0.75) < 3 * math.sqrt(1.0 / len(z))


def test_the_oracle_stays_a_per_request_bound_with_persistent_noise():
    """Frames far apart (no queues): the oracle sees each frame's own persistent draws,
    so no policy, service feedback on, is faster on any request."""
    base = scenario(
        model="alexnet",
        duration_s=120.0,
        arrivals={"kind": "periodic", "rate_hz": 0.25},
        traces={
            "bandwidth_mbps": {"steps": [[0, 2.0], [20, 40.0], [50, 5.0]], "end": "loop"},
            "edge_cpu_pct": {"steps": [[0, 0.0], [30, 100.0]], "end": "loop"},
        },
        observe={"period_s": 1.0, "delay_s": 0.5, "noise": 0.2},
        repartition={"pause_s": 0.0},
        policies=[
            {"policy": "oracle"},
            {"policy": "static-best"},
            {"policy": "neurosurgeon", "params": {"service_feedback": True}},
            {"policy": "mpc", "params": {"service_feedback": True}},
            {"policy": "changepoint", "params": {"service_feedback": True}},
            {"policy": "reactive"},
        ],
        seeds=[1, 2, 3],
    )
    sc = with_spread(base, **{p: persistent(base.model.spread[p], 20.0) for p in PARTS})
    rec = run_scenario(sc).records
    assert (rec["edge_wait_s"] == 0).all() and (rec["uplink_wait_s"] == 0).all()
    key = ["seed", "request"]
    oracle = rec[rec["policy"] == "oracle"].set_index(key)["latency_s"]
    for policy, r in rec.groupby("policy"):
        diff = r.set_index(key)["latency_s"] - oracle
        assert (diff >= -1e-9).all(), policy


def _view(sc, finished, now_s=10.0):
    v = View(model=sc.model, tables=Tables(sc), cloud_cpu_pct=0.0, cloud_mem_pct=0.0)
    v.now_s, v.finished, v.arrival_rate_hz = now_s, finished, 1.0
    v.monitor = Conditions(20.0, 0.0, 0.0)
    return v


def _expected_factor(q: dict, z: float, rho: float) -> float:
    """E[exp(q(Phi(rho z + sqrt(1 - rho^2) e)))], e standard normal, by fine quadrature."""
    e = np.linspace(-8, 8, 40_001)
    w = stats.norm.pdf(e)
    u = stats.norm.cdf(rho * z + math.sqrt(1 - rho * rho) * e)
    f = np.exp(np.interp(u, q["probs"], q["log_ratio"]))
    return float((f * w).sum() / w.sum())


def test_recent_service_expects_the_conditional_mean_of_the_next_factor():
    """A frame seen finishing at its 90th-percentile edge time, 2 s before the next
    frame, tau 4 s: the next frame's expected factor is the conditional mean at
    rho = exp(-1/2), worked out here by quadrature; far later, the plain mean."""
    spread = {"probs": [0.0, 0.5, 1.0], "log_ratio": [-0.5, 0.0, 1.5]}
    sc = with_spread(scenario(), edge=persistent(spread, 4.0))
    k = 3
    point = int(sc.model.ordinals[k])
    typical = Tables(sc).at(0.0, 0.0)[0][k]
    lr90 = float(np.interp(0.9, spread["probs"], spread["log_ratio"]))
    obs = Observation(9.0, point, 1.0, typical * math.exp(lr90), 0.1, 1000.0)  # arrived at 8 s
    view = _view(sc, [obs])
    recent = RecentService()
    recent.observe(view)
    base = mean_factors(view)
    got = recent.factors(view, base, at_s=10.0)
    want = _expected_factor(spread, float(ndtri(0.9)), math.exp(-2.0 / 4.0))
    assert got[0][k] == pytest.approx(want, rel=2e-3)
    assert got[0][k] > base[0][k] * 1.1  # a slow spell is expected to go on
    np.testing.assert_array_equal(got[1:], base[1:])  # link and cloud untouched
    later = recent.factors(view, base, at_s=8.0 + 4.0 * 20)
    assert later[0][k] == pytest.approx(base[0][k], rel=1e-6)


def test_recent_service_reads_only_finished_frames_and_nothing_without_persistence():
    sc = scenario()
    spread = {"probs": [0.0, 1.0], "log_ratio": [-1.0, 1.0]}
    on = with_spread(sc, edge=persistent(spread, 4.0))
    recent = RecentService()
    view = _view(on, [])
    recent.observe(view)
    base = mean_factors(view)
    assert recent.factors(view, base, at_s=10.0) is base  # nothing finished: nothing known
    off = RecentService()
    obs = Observation(9.0, int(sc.model.ordinals[3]), 1.0, 5.0, 0.1, 1000.0)
    v_off = _view(sc, [obs])
    off.observe(v_off)
    assert not off.active and off.factors(v_off, base, at_s=10.0) is base


def test_a_bad_persistence_in_a_calibration_is_one_clear_line(tmp_path):
    doc = json.loads((REPO / "src/adaptsim/data/calibration_adaptivednn.json").read_text())
    model = next(iter(doc["models"]))
    doc["models"][model]["spread"]["cloud"]["persistence_s"] = -2
    bad = tmp_path / "cal.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"spread\.cloud\.persistence_s must be a number"):
        load_calibration(bad)
    doc["models"][model]["spread"]["cloud"]["persistence_s"] = 2.5
    doc["models"][model]["spread"]["cloud"]["persistence_share"] = 1.5
    bad.write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"persistence_share must be a number in 0\.\.1"):
        load_calibration(bad)
    doc["models"][model]["spread"]["cloud"]["persistence_share"] = 0.5
    bad.write_text(json.dumps(doc))
    spread = load_calibration(bad).models[model].spread["cloud"]
    assert spread["persistence_s"] == 2.5 and spread["persistence_share"] == 0.5


@pytest.mark.parametrize("policy", ["neurosurgeon", "mpc", "changepoint"])
def test_feedback_is_on_by_default_changes_nothing_without_persistence_and_acts_with_it(policy):
    """The default (feedback on) and ``service_feedback: false`` serve the same frames
    bit for bit on the i.i.d. replay; with the cloud persisting (share 0.8, 20 s) they
    part, the default reading its own finished frames."""
    base = scenario(
        model="resnet50",
        duration_s=300.0,
        arrivals={"kind": "periodic", "rate_hz": 1.0},
        traces={"bandwidth_mbps": {"steps": [[0, 3.0], [60, 30.0], [150, 8.0]], "end": "loop"}},
        policies=[
            {"policy": policy},
            {"policy": policy, "params": {"service_feedback": False}, "label": "off"},
        ],
        seeds=[1, 2],
    )
    for sc, same in (
        (base, True),
        (with_spread(base, cloud=persistent(base.model.spread["cloud"], 20.0, 0.8)), False),
    ):
        rec = run_scenario(sc).records
        on = rec[rec["policy"] == policy].reset_index(drop=True)
        off = rec[rec["policy"] == "off"].reset_index(drop=True)
        assert on["point"].equals(off["point"]) is same


@pytest.mark.parametrize("policy", ["mpc", "neurosurgeon", "reactive"])
def test_the_naive_engine_replays_the_same_persistent_frames(policy):
    """The independent SimPy engine reads the same draws module: with every part
    persistent and feedback on, its records equal the fast engine's."""
    from adaptsim.simulator import load_scenario
    from adaptsim.simulator.engine import RECORD_COLUMNS, run_policy
    from adaptsim.simulator.naive import run_policy_naive
    from adaptsim.simulator.scenario import PolicySpec

    sc = load_scenario(REPO / "scenarios/busy_edge.yaml").shortened(300.0)
    sc = with_spread(sc, **{p: persistent(sc.model.spread[p], 15.0, 0.7) for p in PARTS})
    spec = PolicySpec(policy=policy)
    a, sa, _ = run_policy(sc, spec, 3)
    b, sb, _ = run_policy_naive(sc, spec, 3)
    assert sa == sb and a["point"] == b["point"]
    for col in RECORD_COLUMNS:
        if col != "drop_stage":
            np.testing.assert_allclose(
                np.asarray(a[col], float), np.asarray(b[col], float), rtol=1e-9, atol=1e-9
            )


def test_calibrate_writes_persistence_only_when_asked(tmp_path):
    """`adaptsim calibrate --persistence` on this machine's own profiles: every model's
    edge and cloud spread gets a correlation time and share (the repeats in time order
    show slow spells, docs/policies.md), the link none (its repeats are not stored in
    time order), and the file loads; without the flag, no persistence at all."""
    from typer.testing import CliRunner

    from adaptsim.cli import app

    own = REPO / "docs" / "own_profiles" / "own.parquet"
    args = ["calibrate", str(own), "--edge-host", "vm", "--cloud-host", "vm-cloud1", "-m", "lenet"]
    for flag, out in (
        ("--persistence", tmp_path / "p.json"),
        ("--no-persistence", tmp_path / "i.json"),
    ):
        r = CliRunner().invoke(app, [*args, flag, "--out", str(out)])
        assert r.exit_code == 0, r.output
    spread = load_calibration(tmp_path / "p.json").models["lenet"].spread
    for part in ("edge", "cloud"):
        assert spread[part]["persistence_s"] > 0 and 0 < spread[part]["persistence_share"] <= 1
    assert "persistence_s" not in spread["comm"]
    plain = load_calibration(tmp_path / "i.json").models["lenet"].spread
    assert not any(k.startswith("persistence") for q in plain.values() for k in q)
    assert {p: plain[p]["log_ratio"] for p in PARTS} == {p: spread[p]["log_ratio"] for p in PARTS}
