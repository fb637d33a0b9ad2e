"""The naive SimPy engine's race (simulator/naive_hedge.py) against the fast engine's
(simulator/hedge.py), frame by frame: two implementations of hedged execution written
apart, sharing only the scenario and the draws. Every record field and every hedge
column must agree, on the toy calibration (the hand-worked races of test_hedge.py, then
noisy, queued runs with bandwidth steps, one-way latency and up to three cloud servers)
and on shipped scenarios shortened, each path, gate on and off, several seeds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from adaptsim.errors import UserError
from adaptsim.simulator.engine import RECORD_COLUMNS, run_policy
from adaptsim.simulator.hedge import HEDGE_COLUMNS, Hedge
from adaptsim.simulator.naive import run_policy_naive
from adaptsim.simulator.scenario import PolicySpec, load_scenario
from simkit import exponential_spread, toy_calibration, toy_scenario

REPO = Path(__file__).resolve().parent.parent
STATIC_2 = PolicySpec(policy="static", params={"point": 2})
PATHS = ["edge", "cloud", "either"]
_TEXT = {"drop_stage", "hedge_winner"}


def assert_agree(sc, spec, seed):
    """Both engines' records and hedge columns, frame by frame; returns the fast ones."""
    a, sa, _ = run_policy(sc, spec, seed)
    b, sb, _ = run_policy_naive(sc, spec, seed)
    assert sa == sb
    assert list(a) == list(b) == list(RECORD_COLUMNS) + list(HEDGE_COLUMNS)
    for col in a:
        if col in _TEXT or isinstance(a[col][0] if a[col] else 0, (bool, np.bool_)):
            assert a[col] == b[col], col
        else:
            np.testing.assert_allclose(
                np.asarray(a[col], float), np.asarray(b[col], float), rtol=1e-9, atol=1e-9,
                err_msg=col,
            )  # fmt: skip
    return a


@pytest.fixture
def cal(tmp_path):
    return toy_calibration(tmp_path / "toy.json")


def test_the_hand_worked_races_agree(cal, tmp_path):
    """test_hedge.py's toy races, each worked out by hand there, in both engines."""
    two = {"traces": {"bandwidth_mbps": {"constant": 2.0}}}
    slow_cloud = toy_calibration(tmp_path / "cloudy.json", cloud_s=2.0, cloud_all_s=2.1)
    slow_edge = toy_calibration(tmp_path / "slow.json", edge_all_s=(2.0, 2.0))
    cases = [
        toy_scenario(cal, duration_s=1.0, hedge={"path": "edge", "gate": False}),
        toy_scenario(cal, duration_s=2.0, hedge={"path": "cloud", "gate": False}, **two),
        toy_scenario(
            slow_cloud,
            duration_s=2.0,
            one_way_latency_s=0.05,
            hedge={"path": "cloud", "gate": False},
            **two,
        ),
        toy_scenario(
            slow_edge,
            duration_s=1.6,
            arrivals={"kind": "periodic", "rate_hz": 1.25},
            hedge={"path": "edge", "gate": False},
        ),
    ]
    busy = {"arrivals": {"kind": "periodic", "rate_hz": 5.0}, "duration_s": 2.0}
    cases += [toy_scenario(cal, hedge={"path": "edge", "gate": g}, **busy) for g in (True, False)]
    for sc in cases:
        assert_agree(sc, STATIC_2, 0)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("gate", [True, False], ids=["gated", "always"])
@pytest.mark.parametrize(
    "servers, seed",
    [
        (1, 1),
        (2, 2),
        (3, 3),
    ],
)
def test_noisy_queued_toy_races_agree(tmp_path, path, gate, servers, seed):
    """Noise on every part, Poisson frames near the edge's capacity, a bandwidth that
    steps (and stalls), 20 ms one way, 1-3 cloud servers; the primary at each point
    (static at 1, 2, 3: all-cloud and all-edge race the other end under ``either``)."""
    noisy = toy_calibration(
        tmp_path / "noisy.json",
        overhead_s=0.01,
        host_s=0.02,
        spread={part: exponential_spread(200) for part in ("edge", "comm", "cloud")},
    )
    sc = toy_scenario(
        noisy,
        duration_s=40.0,
        arrivals={"kind": "poisson", "rate_hz": 2.5},
        service={"noise": True},
        one_way_latency_s=0.02,
        cloud={"servers": servers},
        traces={
            "bandwidth_mbps": {"steps": [[0, 8.0], [3, 0.0], [4, 30.0], [9, 1.5]], "end": "loop"}
        },
        hedge={"path": path, "gate": gate},
    )
    raced = 0
    for point in (1, 2, 3):
        a = assert_agree(sc, PolicySpec(policy="static", params={"point": point}), seed)
        raced += sum(a["hedge_raced"])
    assert raced > 0


SHIPPED = [("busy_edge", "static"), ("norway_bus_1", "reactive"),
           ("busy_edge", "reactive"), ("norway_car_3", "changepoint")]  # fmt: skip


@pytest.mark.parametrize("name, policy", SHIPPED)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("gate", [True, False], ids=["gated", "always"])
def test_shipped_scenarios_shortened_agree(name, policy, path, gate):
    sc = load_scenario(REPO / f"scenarios/{name}.yaml").shortened(120.0)
    sc = replace(sc, hedge=Hedge(path, gate=gate))
    spec = next(p for p in sc.policies if p.policy == policy)
    for seed in (1, 2):
        assert_agree(sc, spec, seed)


def test_a_policy_reading_the_backlog_or_a_diagnostic_load_is_refused_in_one_line(cal):
    sc = toy_scenario(cal, duration_s=5.0, hedge={"path": "edge"})
    with pytest.raises(UserError, match="cannot tell a policy when the edge CPU is free"):
        run_policy_naive(sc, PolicySpec(policy="mpc"), 0)
    fifo = replace(sc, hedge=Hedge("edge", loser="fifo"))
    with pytest.raises(UserError, match="races only with the loser's load charged"):
        run_policy_naive(fifo, STATIC_2, 0)
