"""Hand-computed event tables: every stage queues, stress falls while a frame waits,
bandwidth steps inside a transfer, several cloud servers.

The toy calibration (tests/simkit.py) serves point 2 in 0.2 s on an idle edge and
0.4 s at 100 % CPU stress, puts 300 kB on the wire and computes 0.5 s (or 0.9 s)
in the cloud. Frames arrive at 0, 0.1, 0.2 and 0.3 s. Edge CPU stress is 100 %
until 0.5 s, then 0; bandwidth is 8 Mbit/s (1 MB/s) until 1.2 s, then 16 Mbit/s.
The tables below were worked out on paper from those numbers alone (the working
is in each row's comment), not read off the simulator.
"""

from __future__ import annotations

import numpy as np
import pytest

from adaptsim.simulator.engine import run_policy
from adaptsim.simulator.naive import run_policy_naive
from simkit import toy_calibration, toy_scenario

COLUMNS = (
    "edge_wait_s",
    "edge_s",
    "uplink_wait_s",
    "uplink_s",
    "cloud_wait_s",
    "cloud_s",
    "done_s",
)

# One cloud server, cloud 0.5 s, no one-way latency.
ONE_SERVER = [
    # edge 0-0.4 (stress 100); link 0.4-0.7; cloud 0.7-1.2
    (0.0, 0.4, 0.0, 0.3, 0.0, 0.5, 1.2),
    # edge waits to 0.4, stress still 100: 0.4-0.8; link 0.8-1.1; cloud waits to 1.2: 1.2-1.7
    (0.3, 0.4, 0.0, 0.3, 0.1, 0.5, 1.7),
    # arrived under stress, edge starts at 0.8 after it fell: 0.2 s, 0.8-1.0; link waits to 1.1,
    # 100 kB by 1.2 then 200 kB at 2 MB/s: 1.1-1.3; cloud waits to 1.7: 1.7-2.2
    (0.6, 0.2, 0.1, 0.2, 0.4, 0.5, 2.2),
    # edge 1.0-1.2; link waits to 1.3, 300 kB at 2 MB/s: 1.3-1.45; cloud waits to 2.2: 2.2-2.7
    (0.7, 0.2, 0.1, 0.15, 0.75, 0.5, 2.7),
]

# Two cloud servers, cloud 0.9 s, 0.05 s one-way latency each way.
TWO_SERVERS = [
    # link 0.4-0.7, at the cloud 0.75, server A 0.75-1.65, back 1.7
    (0.0, 0.4, 0.0, 0.3, 0.0, 0.9, 1.7),
    # link 0.8-1.1, at the cloud 1.15, server B free: 1.15-2.05, back 2.1
    (0.3, 0.4, 0.0, 0.3, 0.0, 0.9, 2.1),
    # link 1.1-1.3, at the cloud 1.35, both busy: A frees first at 1.65: 1.65-2.55, back 2.6
    (0.6, 0.2, 0.1, 0.2, 0.3, 0.9, 2.6),
    # link 1.3-1.45, at the cloud 1.5, B frees at 2.05: 2.05-2.95, back 3.0
    (0.7, 0.2, 0.1, 0.15, 0.55, 0.9, 3.0),
]


def _scenario(tmp_path, cloud_s, servers, owl):
    cal = toy_calibration(tmp_path / "toy.json", cloud_s=cloud_s, cloud_all_s=cloud_s + 0.1)
    return toy_scenario(
        cal,
        duration_s=0.35,
        arrivals={"kind": "periodic", "rate_hz": 10.0},
        one_way_latency_s=owl,
        cloud={"servers": servers},
        traces={
            "bandwidth_mbps": {"steps": [[0, 8], [1.2, 16]], "end": "hold"},
            "edge_cpu_pct": {"steps": [[0, 100], [0.5, 0]], "end": "hold"},
        },
    )


@pytest.mark.parametrize("engine", [run_policy, run_policy_naive], ids=["fast", "naive"])
@pytest.mark.parametrize(
    "cloud_s, servers, owl, table",
    [(0.5, 1, 0.0, ONE_SERVER), (0.9, 2, 0.05, TWO_SERVERS)],
    ids=["one-server", "two-servers"],
)
def test_event_table_by_hand(tmp_path, engine, cloud_s, servers, owl, table):
    sc = _scenario(tmp_path, cloud_s, servers, owl)
    cols, stats, _ = engine(sc, sc.policies[0], 0)
    assert cols["request"] == [0, 1, 2, 3]
    np.testing.assert_allclose(cols["arrival_s"], [0.0, 0.1, 0.2, 0.3], atol=1e-12)
    got = np.column_stack([cols[c] for c in COLUMNS])
    np.testing.assert_allclose(got, np.array(table), rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        cols["latency_s"], np.array(table)[:, -1] - [0.0, 0.1, 0.2, 0.3], atol=1e-9
    )
    assert cols["point"] == [2] * 4 and cols["payload_bytes"] == [300_000.0] * 4
    assert not any(cols["switched"]) and stats.repartitions == 0


def _busy_edge(tmp_path, bandwidth_steps, duration_s):
    """The toy at 100 % edge CPU (0.4 s at point 2), one frame a second, these steps."""
    return toy_scenario(
        toy_calibration(tmp_path / "toy.json"),
        duration_s=duration_s,
        traces={
            "bandwidth_mbps": {"steps": bandwidth_steps, "end": "hold"},
            "edge_cpu_pct": {"constant": 100},
        },
    )


@pytest.mark.parametrize("engine", [run_policy, run_policy_naive], ids=["fast", "naive"])
def test_a_zero_rate_interval_stalls_the_transfer(tmp_path, engine):
    # 300 kB at 1 MB/s from 0.4 s; the link drops to 0 at 0.5 s (100 kB sent) and comes
    # back at 16 Mbit/s at 2.0 s: the other 200 kB take 0.1 s more, the transfer ends at 2.1.
    sc = _busy_edge(tmp_path, [[0, 8], [0.5, 0], [2.0, 16]], duration_s=0.05)
    cols, _, _ = engine(sc, sc.policies[0], 0)
    assert cols["uplink_s"] == [pytest.approx(1.7, abs=1e-9)]
    assert cols["done_s"] == [pytest.approx(2.1 + 0.5, abs=1e-9)]


@pytest.mark.parametrize("engine", [run_policy, run_policy_naive], ids=["fast", "naive"])
def test_a_repartition_pause_holds_the_edge_behind_queued_frames(tmp_path, engine):
    """Switching costs ``pause_s`` of edge CPU, taken after the frames already queued.

    A policy file switches from point 2 to point 3 (all-edge: 0.3 s, 4 kB, no cloud)
    at the frame arriving at 1.0 s. Frames at 0, 0.5, 1.0, 1.5 s on an idle edge
    (0.2 s at point 2), 8 Mbit/s, 0.3 s pause.
    """
    cal = toy_calibration(tmp_path / "toy.json")
    sc = toy_scenario(
        cal,
        duration_s=2.0,
        arrivals={"kind": "periodic", "rate_hz": 2.0},
        repartition={"pause_s": 0.3},
        policies=[{"policy": "probe_policy.py:SwitchAt", "params": {"at_s": 1.0, "to": 3}}],
    )
    cols, stats, _ = engine(sc, sc.policies[0], 0)
    assert cols["point"] == [2, 2, 3, 3]
    assert cols["switched"] == [False, False, True, False]
    assert stats.repartitions == 1 and stats.switching_s == pytest.approx(0.3)
    # Frame 2 arrives at 1.0, the pause holds the edge 1.0-1.3, then 0.3 s all-edge: 1.3-1.6.
    # Frame 3 arrives at 1.5, waits to 1.6, runs 1.6-1.9; all-edge sends 4 kB in 4 ms.
    np.testing.assert_allclose(cols["edge_wait_s"], [0, 0, 0.3, 0.1], atol=1e-9)
    np.testing.assert_allclose(cols["edge_s"], [0.2, 0.2, 0.3, 0.3], atol=1e-9)
    np.testing.assert_allclose(cols["uplink_s"], [0.3, 0.3, 0.004, 0.004], atol=1e-9)
    np.testing.assert_allclose(cols["done_s"], [1.0, 1.5, 1.604, 1.904], atol=1e-9)


@pytest.mark.parametrize("engine", [run_policy, run_policy_naive], ids=["fast", "naive"])
def test_a_link_gone_for_good_leaves_frames_unfinished_not_lost(tmp_path, engine):
    # 8 Mbit/s until 0.5 s, then nothing for good: frame 0's 300 kB never all get through.
    sc = _busy_edge(tmp_path, [[0, 8], [0.5, 0]], duration_s=2.0)
    cols, _, _ = engine(sc, sc.policies[0], 0)
    assert cols["request"] == [0, 1]
    assert all(d == float("inf") for d in cols["done_s"] + cols["latency_s"])
