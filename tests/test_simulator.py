"""The simulator's contract: determinism, Lindley, traces, properties, scenarios, CLI."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from adaptsim.calibration.model import law_s
from adaptsim.cli import app
from adaptsim.errors import UserError
from adaptsim.simulator import load_scenario, run_scenario, scenario_from_dict
from adaptsim.simulator.engine import RECORD_COLUMNS, run_policy
from adaptsim.simulator.naive import run_policy_naive
from adaptsim.simulator.scenario import Belief, PolicySpec

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))
CAL_CACHE: dict = {}
runner = CliRunner()


def scenario(**overrides):
    doc = {
        "name": "t",
        "model": "alexnet",
        "duration_s": 20.0,
        "arrivals": {"kind": "periodic", "rate_hz": 5.0},
        "deadline_s": 1.0,
        "one_way_latency_s": 0.01,
        "traces": {"bandwidth_mbps": {"constant": 20.0}},
        "service": {"noise": False},
        "policies": [{"policy": "static", "params": {"point": 6}}],
    }
    for key, value in overrides.items():
        doc[key] = value
    return scenario_from_dict(doc, "test scenario", REPO / "scenarios", CAL_CACHE)


def test_same_seed_same_records_bit_for_bit():
    sc = load_scenario(REPO / "scenarios/combined.yaml").shortened(120.0, (7,))
    a = run_scenario(sc).records
    b = run_scenario(sc).records
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    c = run_scenario(sc.shortened(120.0, (8,))).records
    assert not a["latency_s"].equals(c["latency_s"])


def test_departures_follow_the_lindley_recursion():
    # Constant conditions, deterministic service, frames faster than the link: queues form.
    # Point 3 (pool1, 280 kB) makes the uplink the bottleneck at 20 Mbit/s.
    sc = scenario(
        arrivals={"kind": "periodic", "rate_hz": 20.0},
        duration_s=5.0,
        cloud={"servers": 1},
        policies=[{"policy": "static", "params": {"point": 3}}],
    )
    cols, _, _ = run_policy(sc, sc.policies[0], 0)
    m = sc.model
    k = int(np.flatnonzero(m.ordinals == 3)[0])
    e = m.edge_cum.at(0, 0)[0][0, k]
    link_s = law_s(m.link.at(0, 0)[0][0, k], 8 / 20e6)
    c = m.cloud_cum.at(0, 0)[0][0, k]
    owl = 0.01
    edge_free = link_free = cloud_free = 0.0
    expected = []
    for a in np.arange(0.0, 5.0, 1 / 20.0):
        edge_free = max(a, edge_free) + e
        link_free = max(edge_free, link_free) + link_s
        cloud_free = max(link_free + owl, cloud_free) + c
        expected.append(cloud_free + owl)
    assert max(cols["uplink_wait_s"]) > 1.0  # the link really queues
    # Equal up to float rounding of the link's capacity integral (1e-9 s).
    np.testing.assert_allclose(cols["done_s"], expected, rtol=0, atol=1e-9)


def _assert_same_records(a, b):
    assert list(a) == list(b) == list(RECORD_COLUMNS)
    assert a["request"] == b["request"] and a["point"] == b["point"]
    assert a["switched"] == b["switched"]
    assert a["dropped"] == b["dropped"] and a["drop_stage"] == b["drop_stage"]
    for col in RECORD_COLUMNS:
        if col == "drop_stage":
            continue
        np.testing.assert_allclose(
            np.asarray(a[col], float), np.asarray(b[col], float), rtol=1e-9, atol=1e-9, err_msg=col
        )


SHIPPED_POLICIES = [
    (p.stem, i)
    for p in SCENARIOS
    for i, spec in enumerate(load_scenario(p).policies)
    if spec.policy != "oracle"
]


@pytest.mark.parametrize("name, index", SHIPPED_POLICIES)
def test_fast_engine_matches_naive_simpy(name, index):
    """Two independent implementations (analytic queues vs one SimPy process per frame,
    sharing only the scenario and the random draws) agree record by record, on every
    shipped scenario and policy but the oracle (its look-ahead is the fast engine's)."""
    sc = load_scenario(REPO / f"scenarios/{name}.yaml").shortened(300.0, (3,))
    policy = sc.policies[index]
    a, sa, _ = run_policy(sc, policy, 3)
    b, sb, _ = run_policy_naive(sc, policy, 3)
    assert sa == sb
    _assert_same_records(a, b)
    if name == "busy_edge" and policy.policy == "reactive":
        # From the idle edge's best split (point 10) to another as the edge fills.
        assert a["point"][0] == 10 and len(set(a["point"])) > 1


@pytest.mark.parametrize("period_s", [1.0, 0])
def test_engines_agree_on_a_per_request_reactive_policy(period_s):
    sc = load_scenario(REPO / "scenarios/busy_edge.yaml").shortened(300.0)
    policy = PolicySpec(
        policy="reactive", params={"period_s": period_s, "hysteresis": 1, "threshold": 0.02}
    )
    a, sa, _ = run_policy(sc, policy, 5)
    b, sb, _ = run_policy_naive(sc, policy, 5)
    assert sa == sb and sa.repartitions > 0
    _assert_same_records(a, b)


def test_transfer_straddling_a_bandwidth_step_in_a_run():
    # All-cloud sends the raw input (alexnet: 602112 B). 8 Mbit/s until t=0.1, then 0
    # until t=1, then 80 Mbit/s: the first frame's bytes cross both changes.
    sc = scenario(
        traces={"bandwidth_mbps": {"steps": [[0, 8], [0.1, 0], [1.0, 80]], "end": "hold"}},
        arrivals={"kind": "periodic", "rate_hz": 0.1},
        duration_s=1.0,
        policies=[{"policy": "all-cloud"}],
    )
    cols, _, _ = run_policy(sc, sc.policies[0], 0)
    m = sc.model
    over, wire_bytes, host = m.link.at(0, 0)[0][0, 0]
    start = over  # frame 0 starts sending after the overhead
    sent_by_stall = max(0.1 - start, 0) * 1e6
    expected_fin = 1.0 + (wire_bytes - sent_by_stall) / 10e6
    assert host < expected_fin  # the wire binds here, not the hosts
    assert cols["uplink_s"][0] == pytest.approx(expected_fin, rel=1e-9)
    assert cols["uplink_s"][0] > 0.9  # stalled through the zero interval


def _worst_case_s(sc, min_bw):
    m = sc.model
    edge = m.edge_cum.values.max()
    link = law_s(m.link.values, 8 / (min_bw * 1e6)).max()
    return edge + link + m.cloud_cum.values.max() + 2 * sc.one_way_latency_s


steps_st = st.lists(st.tuples(st.floats(0.5, 5.0), st.floats(1.0, 60.0)), min_size=1, max_size=6)


def _steps(pairs):
    t, out = 0.0, []
    for dur, v in pairs:
        out.append([round(t, 3), round(v, 3)])
        t += dur
    return out


@settings(max_examples=20, deadline=None)
@given(
    bw=steps_st,
    cpu=st.lists(st.sampled_from([0.0, 25.0, 50.0, 100.0]), min_size=1, max_size=4),
    model=st.sampled_from(["lenet", "alexnet", "mobilenet"]),
    seed=st.integers(0, 50),
)
def test_no_policy_beats_the_oracle_without_queueing(bw, cpu, model, seed):
    base = scenario(
        model=model,
        traces={
            "bandwidth_mbps": {"steps": _steps(bw), "end": "loop"},
            "edge_cpu_pct": {"steps": [[3.0 * i, c] for i, c in enumerate(cpu)], "end": "loop"},
        },
    )
    gap = 2.0 * _worst_case_s(base, 1.0)
    sc = scenario(
        model=model,
        duration_s=12 * gap,
        arrivals={"kind": "periodic", "rate_hz": 1.0 / gap},
        traces={
            "bandwidth_mbps": {"steps": _steps(bw), "end": "loop"},
            "edge_cpu_pct": {"steps": [[3.0 * i, c] for i, c in enumerate(cpu)], "end": "loop"},
        },
        observe={"period_s": 1.0, "delay_s": 0.5, "noise": 0.2},
        repartition={"pause_s": 0.0},
        policies=[
            {"policy": "oracle"},
            {"policy": "static-best"},
            {"policy": "all-edge"},
            {"policy": "all-cloud"},
            {"policy": "reactive", "params": {"period_s": 0}},
            {"policy": "static", "params": {"point": 3}},
        ],
        seeds=[seed],
    )
    rec = run_scenario(sc).records
    assert (rec["edge_wait_s"] == 0).all() and (rec["uplink_wait_s"] == 0).all()
    oracle = rec[rec["policy"] == "oracle"].set_index("request")["latency_s"]
    for policy, r in rec.groupby("policy"):
        diff = r.set_index("request")["latency_s"] - oracle
        assert (diff >= -1e-9).all(), policy


limit_st = st.one_of(st.none(), st.integers(0, 3))
admission_st = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {
            "drop": st.sampled_from(["never", "stale"]),
            "queue_limit": st.fixed_dictionaries(
                {"edge": limit_st, "uplink": limit_st, "cloud": limit_st}
            ),
        }
    ),
)


@settings(max_examples=25, deadline=None)
@given(
    bw=steps_st,
    rate=st.floats(0.2, 40.0),
    model=st.sampled_from(["lenet", "alexnet"]),
    poisson=st.booleans(),
    servers=st.integers(1, 3),
    seed=st.integers(0, 1000),
    admission=admission_st,
    deadline_s=st.floats(0.05, 2.0),
    lags=st.tuples(st.sampled_from([0.0, 0.3, 1.7]), st.sampled_from([0.0, 0.6, 2.5])),
    cloud_by_cpu=st.sampled_from([(), ((0.0, 1.0), (100.0, 2.5)), ((50.0, 0.7),)]),
)
def test_engines_agree_on_random_traces_rates_and_servers(
    bw, rate, model, poisson, servers, seed, admission, deadline_s, lags, cloud_by_cpu
):
    """Replaces an identity (latency = the sum of its parts, true by construction): the
    fast engine against the independent naive one, with noise, queues, a varying edge
    CPU, switching pauses, up to three cloud servers and admission control (stale drops,
    a queue limit per stage or none); and a validation fold-back's world: conditions
    that come in place late while the monitor reads the traces as written (``lags``:
    up and down, s), and the cloud slowed by the edge's CPU stress
    when its stage starts (``cloud_by_cpu``)."""
    sc = scenario(
        model=model,
        duration_s=15.0,
        deadline_s=deadline_s,
        admission=admission,
        arrivals={"kind": "poisson" if poisson else "periodic", "rate_hz": rate},
        cloud={"servers": servers},
        traces={
            "bandwidth_mbps": {"steps": _steps(bw), "end": "loop"},
            "edge_cpu_pct": {"steps": [[0, 0], [5, 100], [10, 50]]},
        },
        service={"noise": True},
        observe={"period_s": 0.5, "delay_s": 0.7, "noise": 0.2},
        repartition={"pause_s": 0.05},
        policies=[{"policy": "reactive", "params": {"period_s": 0.5, "hysteresis": 1}}],
        seeds=[seed],
    )
    if any(lags) or cloud_by_cpu:
        belief = Belief(model=sc.model, pause_s=sc.pause_s, traces=sc.seen_traces())
        sc = replace(sc, bandwidth=sc.bandwidth.delayed(lags[0], lags[1], sc.duration_s),
                     edge_cpu=sc.edge_cpu.delayed(lags[1], lags[0], sc.duration_s), belief=belief,
                     cloud_scale_by_edge_cpu=cloud_by_cpu)  # fmt: skip
    a, sa, _ = run_policy(sc, sc.policies[0], seed)
    b, sb, _ = run_policy_naive(sc, sc.policies[0], seed)
    assert sa == sb
    _assert_same_records(a, b)


@pytest.mark.parametrize("period_s", [1.0, 0])
@pytest.mark.parametrize(
    "admission",
    [{"drop": "stale"}, {"queue_limit": {"edge": 2, "uplink": 1, "cloud": 0}}],
    ids=["stale", "limits"],
)
def test_engines_agree_with_admission_on_a_shipped_scenario(period_s, admission):
    """busy_edge overloaded (three times its frame rate, a tight deadline), so that
    stages drop frames: both engines drop the same frames at the same stages, and a
    re-partitioning policy sees the same finished frames."""
    sc = load_scenario(REPO / "scenarios/busy_edge.yaml").shortened(200.0)
    sc = replace(sc, rate_hz=3 * sc.rate_hz, deadline_s=sc.deadline_s / 2)
    sc = replace(sc, admission=_admission(admission))
    policy = PolicySpec(
        policy="reactive", params={"period_s": period_s, "hysteresis": 1, "threshold": 0.02}
    )
    a, sa, _ = run_policy(sc, policy, 5)
    b, sb, _ = run_policy_naive(sc, policy, 5)
    assert sa == sb
    assert sum(a["dropped"]) > 0 and sum(not d for d in a["dropped"]) > 0
    _assert_same_records(a, b)


def _admission(block: dict):
    """The validated Admission of an ``admission:`` block (through the scenario loader)."""
    return scenario(admission=block).admission


def test_all_edge_sends_only_the_output():
    sc = scenario(model="vgg16", policies=[{"policy": "all-edge"}], duration_s=10.0)
    rec = run_scenario(sc).records
    assert (rec["payload_bytes"] == 1000 * 4).all()
    assert (rec["cloud_s"] == 0).all() and (rec["edge_s"] > 1.0).all()


def test_repartitions_follow_the_bandwidth_away_and_back():
    """Replaces ``switching_s == pause * repartitions`` (the bookkeeping's own identity):
    bandwidth 50 -> 3 -> 50 Mbit/s makes a reactive policy without smoothing or
    hysteresis switch exactly twice, away at 20 s and back at 40 s."""
    sc = scenario(
        model="resnet50",
        duration_s=60.0,
        arrivals={"kind": "periodic", "rate_hz": 0.25},
        traces={"bandwidth_mbps": {"steps": [[0, 50], [20, 3], [40, 50]]}},
        repartition={"pause_s": 0.5},
        policies=[{"policy": "reactive", "params": {"alpha": 1.0, "hysteresis": 1}}],
    )
    res = run_scenario(sc)
    rec, row = res.records, res.summary.iloc[0]
    assert row["repartitions"] == 2 and row["switching_s"] == pytest.approx(1.0)
    t, point = rec["arrival_s"], rec["point"]
    fast = set(point[t < 20]) | set(point[t > 40])
    slow = set(point[(t > 20) & (t < 40)])
    assert len(fast) == 1 and len(slow) == 1 and fast != slow
    assert rec["switched"].sum() == 2
    assert set(rec[rec["switched"]]["arrival_s"]) == {24.0, 44.0}  # the first frames after


def test_every_frame_is_accounted_for():
    """Every arrival has one record, in order; none is lost or served twice."""
    sc = scenario(duration_s=30.0, arrivals={"kind": "poisson", "rate_hz": 9.0}, seeds=[2])
    cols, _, _ = run_policy(sc, sc.policies[0], 2)
    from adaptsim.simulator.draws import draw

    np.testing.assert_array_equal(cols["arrival_s"], draw(sc, 2).arrivals_s)
    assert cols["request"] == list(range(len(cols["arrival_s"])))
    assert (np.asarray(cols["done_s"]) > np.asarray(cols["arrival_s"])).all()


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_shipped_scenario_runs(path):
    sc = load_scenario(path).shortened(60.0, (1,))
    res = run_scenario(sc)
    assert len(res.summary) == len(sc.policies)
    assert np.isfinite(res.records["latency_s"]).all()
    assert res.summary["mean_s"].gt(0).all()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("model"), "field model: Field required"),
        (lambda d: d.update(duration_s=-1), "field duration_s: Input should be greater than 0"),
        (lambda d: d.update(colour="red"), "field colour: Extra inputs are not permitted"),
        (lambda d: d.update(model="resnet152"), "'resnet152' is not in calibration"),
        (
            lambda d: d["traces"].update(edge_cpu_pct={"constant": 150}),
            "traces.edge_cpu_pct: value 150 lies outside the calibrated levels 0..100",
        ),
        (
            lambda d: d["traces"].update(bandwidth_mbps={"constant": 5, "file": "x.txt"}),
            "give exactly one of constant, steps or file",
        ),
        (lambda d: d.update(policies=[{"policy": "clever"}]), "policy 'clever' is neither"),
        (
            lambda d: d.update(policies=[{"policy": "static", "params": {"point": 99}}]),
            "point 99 is not a point of resnet50",
        ),
        (lambda d: d.update(policies=[{"policy": "nope.py:f"}]), "policy file .*nope.py does not"),
        (
            lambda d: d.update(policies=[{"policy": "reactive", "params": {"alpha": 3}}]),
            "bad params for 'reactive': alpha must be a number above 0 and at most 1",
        ),
    ],
)
def test_bad_scenarios_are_one_line_errors(tmp_path, change, message):
    doc = yaml.safe_load((REPO / "scenarios/vehicle_trace.yaml").read_text())
    change(doc)
    shutil.copytree(REPO / "scenarios/traces", tmp_path / "traces")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(UserError, match=message):
        load_scenario(path)
    r = runner.invoke(app, ["run", str(path)])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert str(path) in r.stderr


def test_user_policies_from_a_file():
    sc = load_scenario(REPO / "scenarios/user_policy.yaml").shortened(200.0, (1,))
    res = run_scenario(sc)
    assert set(res.summary["policy"]) >= {"bandwidth-rule", "cheapest-now"}
    rule = res.records[res.records["policy"] == "bandwidth-rule"]
    assert set(rule["point"]) <= {7, 12}


def test_cli_run_and_report(tmp_path):
    out = tmp_path / "res"
    r = runner.invoke(
        app,
        [
            "run",
            str(REPO / "scenarios/busy_edge.yaml"),
            "--duration",
            "100",
            "--seed",
            "4",
            "--out",
            str(out),
            "--report",
        ],
    )
    assert r.exit_code == 0, r.output
    for name in (
        "records.parquet",
        "summary.csv",
        "run.json",
        "report.html",
        "report.md",
        "latency_cdf.png",
        "timeline.png",
    ):
        assert (out / name).is_file(), name
    rec = pd.read_parquet(out / "records.parquet")
    assert set(rec["seed"]) == {4} and rec["arrival_s"].max() < 100
    assert 'class="plotly-graph-div' in (out / "report.html").read_text()
    meta = json.loads((out / "run.json").read_text())
    assert meta["model"] == "resnet50v2"
    again = runner.invoke(app, ["report", str(out)])
    assert again.exit_code == 0
    bad = runner.invoke(app, ["report", str(tmp_path)])
    assert bad.exit_code == 2 and "not an adaptsim results folder" in bad.stderr


def test_the_naive_engine_refuses_look_ahead_policies():
    sc = load_scenario(REPO / "scenarios/busy_edge.yaml").shortened(10.0)
    with pytest.raises(ValueError, match="does not support look-ahead"):
        run_policy_naive(sc, PolicySpec(policy="oracle"), 0)


def test_the_naive_engine_refuses_a_renamed_oracle_and_runs_a_policy_named_oracle():
    sc = load_scenario(REPO / "scenarios/busy_edge.yaml").shortened(10.0)
    with pytest.raises(ValueError, match="upper-bound: the naive engine does not support"):
        run_policy_naive(sc, PolicySpec(policy="oracle", label="upper-bound"), 0)
    named = PolicySpec(policy="static", label="oracle", params={"point": 6})
    cols, _, name = run_policy_naive(sc, named, 0)
    assert name == "oracle" and set(cols["point"]) == {6}


@pytest.mark.parametrize("period_s", [None, 1.0])
def test_engines_hand_policies_the_same_finished_frames(period_s):
    """A policy that decides from finished frames (their latency) sees the same ones,
    once each, in both engines, so both serve every frame at the same point."""
    sc = load_scenario(REPO / "scenarios/busy_edge.yaml").shortened(200.0, (1,))
    sc = replace(sc, base_dir=str(REPO / "tests" / "data" / "sim"))
    spec = PolicySpec(
        policy="probe_policy.py:FinishedWatch",
        params={"fast": 10, "slow": 6, "threshold_s": 1.0, "period_s": period_s},
    )
    a, sa, _ = run_policy(sc, spec, 2)
    b, sb, _ = run_policy_naive(sc, spec, 2)
    assert sa == sb and sa.repartitions >= 2
    _assert_same_records(a, b)
