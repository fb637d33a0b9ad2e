"""Admission control: hand-computed event tables with stale and tail drops, both engines.

The toy calibration (tests/simkit.py) on an idle edge, 8 Mbit/s (1 MB/s): point 2
computes ``edge`` s on the edge, puts 300 kB on the wire (0.3 s) and computes
0.5 s on the one cloud server. Frames arrive at 0, 0.1, ..., 0.5 s. Each row was
worked out on paper from those numbers and the admission rules alone (the working
is in its comment), not read off the simulator; the times are chosen so that no
two events the rules compare fall on the same instant.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from adaptsim.errors import UserError
from adaptsim.simulator import scenario_from_dict
from adaptsim.simulator.engine import run_policy
from adaptsim.simulator.naive import run_policy_naive
from simkit import toy_calibration, toy_scenario

INF = math.inf
PARTS = ("edge_wait_s", "edge_s", "uplink_wait_s", "uplink_s", "cloud_wait_s", "cloud_s", "done_s")
ENGINES = pytest.mark.parametrize("engine", [run_policy, run_policy_naive], ids=["fast", "naive"])

# drop: stale, deadline 0.95 s, edge 0.2 s. (parts..., done, drop_stage, payload bytes)
STALE = [
    # edge 0-0.2, link 0.2-0.5, cloud 0.5-1.0: back at 1.0, late (1.0 > 0.95) but never
    # stale when a stage started it
    (0.0, 0.2, 0.0, 0.3, 0.0, 0.5, 1.0, "", 300_000),
    # deadline 1.05: edge 0.2-0.4, link 0.5-0.8, cloud waits to 1.0 (<= 1.05): 1.0-1.5
    (0.1, 0.2, 0.1, 0.3, 0.2, 0.5, 1.5, "", 300_000),
    # deadline 1.15: edge 0.4-0.6, link 0.8-1.1, the cloud would start it at 1.5: dropped
    # there after 0.4 s of waiting; its tensor was sent
    (0.2, 0.2, 0.2, 0.3, 0.4, 0.0, INF, "cloud", 300_000),
    # deadline 1.25: edge 0.6-0.8, link 1.1-1.4, the cloud (free at 1.5, frame 2 never
    # took it) would start it at 1.5: dropped after 0.1 s
    (0.3, 0.2, 0.3, 0.3, 0.1, 0.0, INF, "cloud", 300_000),
    # deadline 1.35: edge 0.8-1.0, the link would start it at 1.4: dropped at the uplink
    # after 0.4 s, nothing sent
    (0.4, 0.2, 0.4, 0.0, 0.0, 0.0, INF, "uplink", 0),
    # deadline 1.45: edge 1.0-1.2, link free at 1.4 (frame 4 never took it): 1.4-1.7; the
    # cloud is free (since 1.5) but only reached at 1.7: too late to start, dropped there
    (0.5, 0.2, 0.2, 0.3, 0.0, 0.0, INF, "cloud", 300_000),
]

# drop: stale, deadline 0.75 s, edge CPU at 100 %: 0.4 s a frame.
STALE_EDGE = [
    # edge 0-0.4, link 0.4-0.7, cloud 0.7-1.2 (started before 0.75)
    (0.0, 0.4, 0.0, 0.3, 0.0, 0.5, 1.2, "", 300_000),
    # deadline 0.85: edge 0.4-0.8, link 0.8-1.1, the cloud would start it at 1.2: dropped
    (0.3, 0.4, 0.0, 0.3, 0.1, 0.0, INF, "cloud", 300_000),
    # deadline 0.95: edge 0.8-1.2; the link (free) would start it at 1.2: dropped there
    (0.6, 0.4, 0.0, 0.0, 0.0, 0.0, INF, "uplink", 0),
    # deadlines 1.05 and 1.15: the edge would start them at 1.2: dropped at the edge
    (0.9, 0.0, 0.0, 0.0, 0.0, 0.0, INF, "edge", 0),
    (0.8, 0.0, 0.0, 0.0, 0.0, 0.0, INF, "edge", 0),
    # deadline 1.25: edge 1.2-1.6 (frames 3 and 4 never took it); the link at 1.6: dropped
    (0.7, 0.4, 0.0, 0.0, 0.0, 0.0, INF, "uplink", 0),
]

# drop: never, queue_limit edge 1, uplink 0, cloud 0; edge 0.23 s.
TAIL = [
    # edge 0-0.23, link 0.23-0.53, cloud 0.53-1.03
    (0.0, 0.23, 0.0, 0.3, 0.0, 0.5, 1.03, "", 300_000),
    # waits for the edge (nobody else waiting): 0.23-0.46; at the uplink at 0.46 frame 0 is
    # still sending (to 0.53) and no frame may wait there: dropped
    (0.13, 0.23, 0.0, 0.0, 0.0, 0.0, INF, "uplink", 0),
    # at 0.2 frame 1 waits for the edge (it starts at 0.23), the edge's one place: dropped
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, INF, "edge", 0),
    # at 0.3 frame 1 has started: waits alone, edge 0.46-0.69; the link is free:
    # 0.69-0.99; the cloud is busy with frame 0 until 1.03: dropped there, tensor sent
    (0.16, 0.23, 0.0, 0.3, 0.0, 0.0, INF, "cloud", 300_000),
    # at 0.4 frame 3 waits (it starts at 0.46): dropped at the edge
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, INF, "edge", 0),
    # at 0.5 frame 3 has started: edge 0.69-0.92; the link sends frame 3 until 0.99: dropped
    (0.19, 0.23, 0.0, 0.0, 0.0, 0.0, INF, "uplink", 0),
]


def _scenario(tmp_path, edge_s, admission, deadline_s, cpu=0.0):
    cal = toy_calibration(tmp_path / "toy.json", edge_s=(edge_s, 0.4))
    return toy_scenario(
        cal,
        duration_s=0.55,
        arrivals={"kind": "periodic", "rate_hz": 10.0},
        deadline_s=deadline_s,
        admission=admission,
        traces={"bandwidth_mbps": {"constant": 8.0}, "edge_cpu_pct": {"constant": cpu}},
    )


@ENGINES
@pytest.mark.parametrize(
    "edge_s, cpu, admission, deadline_s, table",
    [
        (0.2, 0.0, {"drop": "stale"}, 0.95, STALE),
        (0.2, 100.0, {"drop": "stale"}, 0.75, STALE_EDGE),
        (0.23, 0.0, {"queue_limit": {"edge": 1, "uplink": 0, "cloud": 0}}, 10.0, TAIL),
    ],
    ids=["stale-cloud-uplink", "stale-edge", "tail-drops"],
)
def test_drop_event_table_by_hand(tmp_path, engine, edge_s, cpu, admission, deadline_s, table):
    sc = _scenario(tmp_path, edge_s, admission, deadline_s, cpu)
    cols, _, _ = engine(sc, sc.policies[0], 0)
    assert cols["request"] == list(range(6))
    want = np.array([row[:7] for row in table], dtype=float)
    got = np.column_stack([cols[c] for c in PARTS])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert cols["drop_stage"] == [row[7] for row in table]
    assert cols["dropped"] == [bool(row[7]) for row in table]
    assert cols["payload_bytes"] == [float(row[8]) for row in table]
    lat = np.array(cols["latency_s"])
    np.testing.assert_allclose(lat, want[:, 6] - np.arange(6) / 10, atol=1e-9)


@ENGINES
def test_without_admission_no_frame_is_dropped(tmp_path, engine):
    """The same overloaded toy with the default (drop: never, no limits) keeps every frame."""
    sc = _scenario(tmp_path, 0.2, {}, 0.25, 100.0)
    cols, _, _ = engine(sc, sc.policies[0], 0)
    assert not any(cols["dropped"]) and set(cols["drop_stage"]) == {""}
    assert all(math.isfinite(d) for d in cols["done_s"])
    # every frame queues behind the last on the 0.4 s edge: the sixth starts at 2.0
    assert cols["edge_wait_s"][5] == pytest.approx(2.0 - 0.5, abs=1e-9)


@pytest.mark.parametrize(
    "admission, message",
    [
        ({"drop": "sometimes"}, r"field admission\.drop: .*'never' or 'stale'"),
        ({"queue_limit": {"edge": -1}}, r"field admission\.queue_limit\.edge: .*0"),
        ({"queue_limit": {"uplink": 1.5}}, r"field admission\.queue_limit\.uplink: "),
        ({"queue_limit": {"gpu": 3}}, r"field admission\.queue_limit\.gpu: "),
        ({"stale": True}, r"field admission\.stale: "),
        ("stale", r"field admission: "),
    ],
)
def test_a_bad_admission_block_is_one_line_naming_the_field(tmp_path, admission, message):
    with pytest.raises(UserError, match=r"^toy scenario: " + message) as info:
        _scenario(tmp_path, 0.2, admission, 1.0)
    assert "\n" not in str(info.value)


def test_the_testbed_refuses_admission_rules_in_one_line(tmp_path):
    """The real run keeps every frame, so ``adaptsim validate`` refuses a scenario that
    drops frames (before starting anything), and accepts ``drop: never`` without limits."""
    from typer.testing import CliRunner

    from adaptsim.cli import app
    from adaptsim.simulator.scenario import refuse_admission
    from test_robust_cli import REPO, base_doc

    doc = base_doc()  # test_robust_cli's small valid scenario, with admission rules
    doc["admission"] = {"drop": "stale", "queue_limit": {"uplink": 3}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    r = CliRunner().invoke(app, ["validate", str(path), "--out", str(tmp_path / "out")])
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1, r.stderr
    assert "field admission (drop stale, queue limit uplink 3)" in lines[0]
    assert "the testbed keeps every frame" in lines[0] and str(path) in lines[0]
    assert not (tmp_path / "out").exists()
    doc["admission"] = {"drop": "never"}
    path.write_text(yaml.safe_dump(doc))
    sc = scenario_from_dict(doc, "s.yaml", REPO / "scenarios")
    refuse_admission(sc, "the testbed")  # no error
