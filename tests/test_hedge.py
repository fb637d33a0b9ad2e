"""Hedged execution (the scenario key ``hedge``; adaptsim.simulator.hedge).

The toy calibration (tests/simkit.py: 1 all-cloud, 2 a cut, 3 all-edge; no noise)
makes every time computable by hand, so each race below is checked against the
numbers worked out in its comment: the shared edge prefix, the uplink's priority
(a preempted transfer resumes after the deeper one), the loser's load on the
edge and the uplink, the cloud's order and the gate. A scenario without the key
gives the records it always gave (no new columns, the same values), and the
clairvoyant bounds are never hedged.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from adaptsim.cli import app
from adaptsim.errors import UserError
from adaptsim.report.verdict import run_warnings
from adaptsim.simulator import run_scenario
from adaptsim.simulator.engine import RECORD_COLUMNS, run_policy
from adaptsim.simulator.hedge import HEDGE_COLUMNS, Hedge
from adaptsim.simulator.naive import run_policy_naive
from adaptsim.simulator.scenario import PolicySpec, refuse_admission
from simkit import exponential_spread, toy_calibration, toy_doc, toy_scenario

STATIC_2 = PolicySpec(policy="static", params={"point": 2})


def _frames(sc, spec=STATIC_2, seed=0) -> pd.DataFrame:
    cols, _, _ = run_policy(sc, spec, seed)
    return pd.DataFrame(cols)


@pytest.fixture
def cal(tmp_path):
    return toy_calibration(tmp_path / "toy.json")


def test_edge_race_shares_the_prefix_and_preempts_the_primarys_tensor(cal):
    # Point 2: edge 0.2 s, 0.3 MB up (0.2..0.5), cloud 0.5 s: 1.0 s alone. All-edge:
    # edge 0.3 s in all (the first 0.2 shared), then 4 kB up at 0.3, preempting point
    # 2's tensor (0.1 MB of it sent): back at 0.304. Point 2's tensor aborts then,
    # a third of it carried; the edge held nothing beyond the winner's 0.3 s.
    sc = toy_scenario(cal, duration_s=1.0, hedge={"path": "edge", "gate": False})
    f = _frames(sc).iloc[0]
    assert f["latency_s"] == pytest.approx(0.304)
    assert f["edge_s"] == pytest.approx(0.3) and f["uplink_s"] == pytest.approx(0.004)
    assert (f["point"], f["hedge_winner"], f["hedge_primary_point"]) == (3, "second", 2)
    assert f["hedge_raced"] and f["hedge_second_point"] == 3
    assert f["hedge_loser_edge_s"] == pytest.approx(0.0)
    assert f["hedge_loser_uplink_bytes"] == pytest.approx(100_000.0)


def test_a_preempted_transfer_resumes_and_the_loser_holds_the_uplink(cal):
    # 2 Mbit/s (0.25 MB/s). Cloud race of point 2, frames at 0 and 1 s. Frame 0: the raw
    # input (0.150528 MB) goes up at 0; point 2's tensor (0.3 MB) is ready at 0.2 and
    # preempts it: 0.2..1.4; the raw input resumes (0.05 MB sent) and ends at 1.802112.
    # At the cloud point 2 goes first (1.4..1.9) and wins at 1.9; the raw input's
    # request, due to start at 1.9, is cancelled. Frame 1: the uplink is the loser's
    # until 1.802112, so point 2's tensor goes then (first: the deeper one) until 3.002112,
    # the cloud 3.002112..3.502112.
    sc = toy_scenario(
        cal,
        duration_s=2.0,
        traces={"bandwidth_mbps": {"constant": 2.0}},
        hedge={"path": "cloud", "gate": False},
    )
    f = _frames(sc)
    assert f["latency_s"].tolist() == pytest.approx([1.9, 2.502112])
    assert f["uplink_wait_s"].tolist() == pytest.approx([0.0, 0.602112])
    assert f["hedge_winner"].tolist() == ["primary", "primary"]
    assert f["hedge_second_point"].tolist() == [1, 1]
    # frame 1's raw input aborts at 3.502, 0.5 s (0.125 MB) into its transfer from 3.002
    assert f["hedge_loser_uplink_bytes"].tolist() == pytest.approx([150_528.0, 125_000.0])


def test_the_losers_cloud_request_runs_until_the_cancel_reaches_the_cloud(tmp_path):
    # As above (2 Mbit/s, cloud race of point 2), with 2 s of cloud for point 2 (2.1 s
    # all-cloud) and 50 ms one way. Frame 0: point 2 at the cloud 1.45..3.45, back at
    # 3.5; the raw input's request starts after it at 3.45 and is cut when the cancel
    # arrives at 3.55. Frame 1: point 2's tensor is up at 3.002112 (behind the loser's
    # transfer, as above), at the cloud at 3.052112, which is the loser's until 3.55:
    # 3.55..5.55, back at 5.6.
    slow = toy_calibration(tmp_path / "cloudy.json", cloud_s=2.0, cloud_all_s=2.1)
    sc = toy_scenario(
        slow,
        duration_s=2.0,
        one_way_latency_s=0.05,
        traces={"bandwidth_mbps": {"constant": 2.0}},
        hedge={"path": "cloud", "gate": False},
    )
    f = _frames(sc)
    assert f["latency_s"].tolist() == pytest.approx([3.5, 4.6])
    assert f["cloud_wait_s"].tolist() == pytest.approx([0.0, 3.55 - 3.052112])


def test_the_edge_computes_on_for_the_loser_until_the_winner_is_back(cal, tmp_path):
    # All-edge takes 2 s on the edge. Frame 0 (t = 0): point 2 wins at 1.0 (0.2 edge,
    # 0.2..0.5 up, 0.5..1.0 cloud); the edge computed on for all-edge until then (0.8 s
    # beyond the winner's 0.2). Frame 1 (t = 0.8) waits for the edge until 1.0.
    slow = toy_calibration(tmp_path / "slow.json", edge_all_s=(2.0, 2.0))
    sc = toy_scenario(
        slow,
        duration_s=1.6,
        arrivals={"kind": "periodic", "rate_hz": 1.25},
        hedge={"path": "edge", "gate": False},
    )
    f = _frames(sc)
    assert f["latency_s"].tolist() == pytest.approx([1.0, 1.2])
    assert f["edge_wait_s"].tolist() == pytest.approx([0.0, 0.2])
    assert f["hedge_loser_edge_s"].tolist() == pytest.approx([0.8, 0.8])
    assert f["hedge_winner"].tolist() == ["primary", "primary"]
    assert f["hedge_loser_uplink_bytes"].tolist() == pytest.approx([0.0, 0.0])


def test_the_gate_races_only_in_the_idle_time_before_the_next_frame(cal):
    # All-edge's whole model takes 0.3 s: at 1 frame/s it fits before the next frame, at
    # 5 frames/s (0.2 s apart) it never does, and then the run is the primary's alone.
    fast = toy_scenario(cal, duration_s=2.0, hedge={"path": "edge"})
    assert _frames(fast)["hedge_raced"].all()
    busy = {"arrivals": {"kind": "periodic", "rate_hz": 5.0}, "duration_s": 2.0}
    gated = _frames(toy_scenario(cal, hedge={"path": "edge", "gate": True}, **busy))
    alone = _frames(toy_scenario(cal, **busy))
    assert not gated["hedge_raced"].any()
    assert (gated["hedge_winner"] == "primary").all()
    pd.testing.assert_frame_equal(gated[list(RECORD_COLUMNS)], alone)
    raced = _frames(toy_scenario(cal, hedge={"path": "edge", "gate": False}, **busy))
    assert raced["hedge_raced"].all()


def test_without_the_key_the_records_are_as_before_and_bounds_are_never_hedged(cal):
    specs = [STATIC_2, PolicySpec(policy="oracle"), PolicySpec(policy="static-best")]
    sc = toy_scenario(
        cal,
        duration_s=20.0,
        arrivals={"kind": "poisson", "rate_hz": 2.0},
        service={"noise": True},
        policies=[s.model_dump() for s in specs],
    )
    plain = run_scenario(sc)
    hedged = run_scenario(replace(sc, hedge=Hedge("either", gate=False)))
    assert not set(HEDGE_COLUMNS) & set(plain.records.columns)
    assert "raced_share" not in plain.summary
    for name in ("oracle", "static-best"):
        mine = hedged.records[hedged.records["policy"] == name]
        theirs = plain.records[plain.records["policy"] == name]
        assert np.array_equal(
            mine[list(RECORD_COLUMNS)].to_numpy(), theirs[list(RECORD_COLUMNS)].to_numpy()
        )
        assert not mine["hedge_raced"].any()
    s = hedged.summary.set_index("policy")
    assert s.loc["oracle", "hedge"].startswith("none")
    assert s.loc["static", "hedge"] == "either, always"
    assert s.loc["static", "raced_share"] == pytest.approx(1.0)
    assert s.loc["static", "extra_uplink_bytes_per_frame"] > 0
    assert {"gap_closed_vs_oracle_mean_s", "gap_closed_vs_oracle_free_mean_s"} <= set(s.columns)


@pytest.mark.parametrize(
    "hedge, says",
    [
        ({"path": "sideways"}, "field hedge.path"),
        ({"path": "edge", "gate": "maybe"}, "field hedge.gate"),
        ({"pth": "edge"}, "no such field"),
        ("edge", "field hedge"),
    ],
)
def test_a_bad_hedge_is_one_line_naming_the_field(cal, hedge, says):
    with pytest.raises(UserError, match=says):
        toy_scenario(cal, hedge=hedge)


def test_a_model_without_both_ends_cannot_hedge(cal, tmp_path):
    doc = json.loads(cal.read_text())
    doc["models"]["toy"]["points"][-1]["kind"] = "cut"  # no all-edge point to race to
    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(doc))
    toy_scenario(cut)  # without a hedge it loads
    with pytest.raises(UserError, match=r"field hedge: model toy .* no all-cloud and all-edge"):
        toy_scenario(cut, hedge={"path": "cloud"})


def test_hedge_with_admission_is_refused(cal):
    with pytest.raises(UserError, match="field hedge: racing with admission control"):
        toy_scenario(cal, hedge={"path": "edge"}, admission={"drop": "stale"})


def test_the_testbed_refuses_a_hedge_in_one_line_and_the_naive_engine_races(cal):
    sc = toy_scenario(cal, hedge={"path": "either"})
    assert all(run_policy_naive(sc, STATIC_2, 0)[0]["hedge_raced"])  # tests/test_naive_hedge.py
    with pytest.raises(UserError, match="field hedge \\(either, gated\\): the testbed cannot"):
        refuse_admission(sc, "the testbed")


def test_cli_run_and_validate_of_a_hedged_scenario(cal, tmp_path):
    doc = toy_doc(
        cal,
        duration_s=5.0,
        service={"noise": True},
        policies=["static-best", "oracle", "oracle-free", "neurosurgeon"],
        seeds=[1, 2],
        hedge={"path": "either"},
    )
    path = tmp_path / "h.yaml"
    path.write_text(yaml.safe_dump(doc))
    r = CliRunner().invoke(app, ["validate", str(path), "--out", str(tmp_path / "v")])
    assert r.exit_code == 2 and "field hedge" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "v").exists()
    r = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.stderr
    assert "no bound for a hedged policy" in r.stderr and "neurosurgeon:" in r.stderr
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert summary.loc[summary["policy"] == "neurosurgeon", "raced_share"].item() > 0
    meta = json.loads((tmp_path / "out" / "run.json").read_text())
    assert meta["hedge"] == {"path": "either", "gate": True, "loser": "charge"}
    records = pd.read_parquet(tmp_path / "out" / "records.parquet")
    assert any("no bound for them" in w for w in run_warnings(records, meta))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**doc, "hedge": {"path": "up"}}))
    r = CliRunner().invoke(app, ["run", str(bad), "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "field hedge.path" in r.stderr and "Traceback" not in r.stderr


def test_the_racing_oracle_races_and_foresees_its_own_race(tmp_path):
    # Noisy service, Poisson frames, a bandwidth that moves the best point and a 0.5 s
    # pause (so that staying put and racing the free second path often beats switching):
    # per frame, what oracle-race's look-ahead says its chosen point's race returns is
    # when the served race does return (the look-ahead is the race's own, pause
    # included, not the one-path oracle's); it races; without a hedge it is the oracle.
    from adaptsim.simulator import engine

    noisy = toy_calibration(
        tmp_path / "noisy.json",
        edge_all_s=(1.5, 1.5),
        spread={part: exponential_spread(200) for part in ("edge", "comm", "cloud")},
    )
    sc = toy_scenario(
        noisy,
        duration_s=60.0,
        arrivals={"kind": "poisson", "rate_hz": 1.0},
        service={"noise": True},
        repartition={"pause_s": 0.5},
        traces={"bandwidth_mbps": {"steps": [[0, 20.0], [7, 0.5], [15, 3.0]], "end": "loop"}},
        hedge={"path": "cloud"},
    )
    run = engine._Run(sc, PolicySpec(policy="oracle-race"), 3, None)
    decide, foreseen = run.policy.decide, []

    def spy(view):
        foreseen.append(float(view.lookahead().min()))
        return decide(view)

    run.policy.decide = spy
    engine._drive(run)
    done = [r.done_s for r in run.records]
    assert len(done) > 30 and done == foreseen
    assert any(row[0] for row in run.hedge_rows) and run.stats.repartitions > 0
    plain = replace(sc, hedge=None)
    a = _frames(plain, PolicySpec(policy="oracle-race"), seed=3)
    b = _frames(plain, PolicySpec(policy="oracle"), seed=3)
    pd.testing.assert_frame_equal(a, b)


def test_a_transfer_preempted_in_its_overhead_carries_no_bytes_until_it_resumes(tmp_path):
    # 2 Mbit/s, 0.3 s of overhead per transfer, cloud race of point 2. The raw input starts
    # at 0 (overhead until 0.3); point 2's tensor is ready at 0.2 and preempts it: 0.2..0.5
    # overhead, 0.5..1.7 its 0.3 MB; the cloud 1.7..2.2, back at 2.2. The raw input resumes
    # at 1.7 with 0.1 s of overhead left, sends from 1.8 and aborts at 2.2: 0.4 s x 0.25
    # MB/s = 100 kB carried (not 125 kB: no bytes move in the resumed overhead).
    cal = toy_calibration(tmp_path / "over.json", overhead_s=0.3)
    sc = toy_scenario(
        cal,
        duration_s=1.0,
        traces={"bandwidth_mbps": {"constant": 2.0}},
        hedge={"path": "cloud", "gate": False},
    )
    f = _frames(sc).iloc[0]
    assert f["latency_s"] == pytest.approx(2.2) and f["hedge_winner"] == "primary"
    assert f["hedge_loser_uplink_bytes"] == pytest.approx(100_000.0)
