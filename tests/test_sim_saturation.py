"""Overload: a backlog that grows until the end is flagged; admission bounds it instead.

tests/data/sim/tunnel_held.yaml is the issue's case, small: a real Norway HSDPA
ride with a 60 s coverage hole cut in and its last value held to the end, where
sending the raw input (all-cloud) takes longer than the frame gap.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from adaptsim.report.verdict import run_warnings
from adaptsim.simulator import run_scenario, scenario_from_dict
from adaptsim.simulator.saturation import saturation

HERE = Path(__file__).resolve().parent / "data" / "sim"


def _tunnel(admission: dict | None = None, duration_s: float | None = None):
    doc = yaml.safe_load((HERE / "tunnel_held.yaml").read_text())
    if admission is not None:
        doc["admission"] = admission
    if duration_s is not None:
        doc["duration_s"] = duration_s
    return scenario_from_dict(doc, "tunnel_held.yaml", HERE)


def test_a_backlog_growing_until_the_end_is_flagged_with_when_and_how_long():
    res = run_scenario(_tunnel())
    s = res.summary.set_index("policy")
    assert s.loc["all-cloud", "saturated_seeds"] == 2
    # it kept up before the hole (60-120 s) and never caught up after it
    assert 50 <= s.loc["all-cloud", "saturated_at_s"] <= 130
    assert s.loc["all-cloud", "final_wait_s"] > 100
    for p in ("static-best", "all-edge"):  # the hole delays them too, but they drain
        assert s.loc[p, "saturated_seeds"] == 0 and math.isnan(s.loc[p, "saturated_at_s"])
    meta = {"duration_s": res.scenario.duration_s, "deadline_s": res.scenario.deadline_s}
    lines = [w for w in run_warnings(res.records, meta) if "saturated" in w]
    assert len(lines) == 1 and lines[0].startswith("all-cloud saturated at t=")
    assert "grew until the end (final wait" in lines[0]


def test_drop_stale_bounds_latency_where_never_lets_it_grow_with_the_run():
    """Without admission all-cloud's mean latency grows with the length of the run; with
    ``drop: stale`` it stays bounded (at most the deadline plus one frame's service), the
    drop rate is finite and the goodput is what got through in time."""
    short, long_ = 900.0, 1800.0
    never = [run_scenario(_tunnel({}, d)).summary.set_index("policy") for d in (short, long_)]
    stale = [
        run_scenario(_tunnel({"drop": "stale"}, d)).summary.set_index("policy")
        for d in (short, long_)
    ]
    grow = never[1].loc["all-cloud", "mean_s"] / never[0].loc["all-cloud", "mean_s"]
    assert grow > 1.5
    for s in stale:
        row = s.loc["all-cloud"]
        assert row["saturated_seeds"] == 0
        assert 0.3 < row["drop_rate"] < 1.0 and row["dropped"] > 0
        assert 0 < row["goodput_rps"] < 0.3  # frames every 3.3 s; some in time, not all
        assert row["mean_s"] < 3.0 + 7.0  # deadline + the slowest transfer at 0.89 Mbit/s
        # a dropped frame is a missed deadline: the miss rate is at least the drop rate
        assert row["deadline_miss_rate"] >= row["drop_rate"]
        # the policy that keeps up drops nothing and loses nothing
        assert s.loc["static-best", "dropped"] == 0
        assert s.loc["static-best", "goodput_rps"] == pytest.approx(0.3, rel=0.02)
    ratio = stale[1].loc["all-cloud", "mean_s"] / stale[0].loc["all-cloud", "mean_s"]
    assert 0.8 < ratio < 1.25


def _waits(rng, n, load):
    """Waits at a FIFO server fed every 1 s, exponential service of mean ``load[i]`` s."""
    service = rng.exponential(1.0, n) * load
    w = np.zeros(n)
    for i in range(1, n):
        w[i] = max(0.0, w[i - 1] + service[i - 1] - 1.0)
    return w


@pytest.mark.parametrize("seed", range(5))
def test_a_busy_but_stable_queue_is_not_saturated(seed):
    rng = np.random.default_rng(seed)
    n = 2000
    w = _waits(rng, n, np.full(n, 0.9))
    assert w.max() > 5  # busy: it does queue
    assert saturation(np.arange(n, dtype=float), w, float(n)) is None


@pytest.mark.parametrize("seed", range(5))
def test_an_overload_from_some_time_on_is_saturated_from_about_then(seed):
    rng = np.random.default_rng(seed)
    n = 2000
    load = np.where(np.arange(n) < 800, 0.6, 1.15)  # 15 % more than it serves from 800 s
    sat = saturation(np.arange(n, dtype=float), _waits(rng, n, load), float(n))
    assert sat is not None
    assert 700 <= sat.at_s <= 1000
    assert sat.final_wait_s > 100


def test_a_burst_that_drains_before_the_end_is_not_saturated():
    rng = np.random.default_rng(1)
    n = 2000
    load = np.where((np.arange(n) > 600) & (np.arange(n) < 1000), 1.5, 0.5)
    w = _waits(rng, n, load)
    assert w.max() > 100  # a big backlog once
    assert saturation(np.arange(n, dtype=float), w, float(n)) is None


def test_frames_that_never_get_through_are_unfinished_not_saturated():
    """A link dead for good leaves the last frames waiting forever: the summary calls
    them unfinished (its own warning), not a growing backlog."""
    n = 100
    w = np.r_[np.zeros(80), np.full(20, np.inf)]
    assert saturation(np.arange(n, dtype=float), w, float(n)) is None


def test_run_report_says_saturated_and_shows_drops_and_goodput(tmp_path):
    """Through the CLI: the saturation warning on stderr and in report.md, the new
    summary columns in the report's table, the admission rules among the facts."""
    from typer.testing import CliRunner

    from adaptsim.cli import app

    runner = CliRunner()
    never = tmp_path / "never"
    r = runner.invoke(app, ["run", str(HERE / "tunnel_held.yaml"), "--out", str(never), "--report"])
    assert r.exit_code == 0, r.stderr
    assert "adaptsim: warning: all-cloud saturated at t=" in r.stderr
    md = (never / "report.md").read_text()
    assert "all-cloud saturated at t=" in md and "drop never; unbounded queues" in md
    doc = yaml.safe_load((HERE / "tunnel_held.yaml").read_text())
    doc["admission"] = {"drop": "stale", "queue_limit": {"uplink": 2}}
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "train_1_tunnel.txt").write_text(
        (HERE.parent / "traces" / "train_1_tunnel.txt").read_text()
    )
    (tmp_path / "sim").mkdir()
    (tmp_path / "sim" / "s.yaml").write_text(yaml.safe_dump(doc))
    stale = tmp_path / "stale"
    r = runner.invoke(
        app, ["run", str(tmp_path / "sim" / "s.yaml"), "--out", str(stale), "--report"]
    )
    assert r.exit_code == 0, r.stderr
    assert "saturated at t=" not in r.stderr
    md = (stale / "report.md").read_text()
    assert "saturated at t=" not in md and "drop stale; queue limit uplink 2" in md
    assert "| drop rate |" in md and "| goodput (req/s) |" in md
    assert "all-cloud: " in md and "were dropped by admission control (at the " in md
