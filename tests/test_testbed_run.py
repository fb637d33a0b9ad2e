"""Real runs on the testbed: namespaces, tc, stress-ng, TensorFlow edge and cloud (as root).

``tests/data/testbed_lenet.yaml`` is a 9 s LeNet scenario whose uplink drops
from 20 to 1 Mbit/s and back; it runs with this machine's shipped calibration.
These tests run for real here and in CI (root, 2 cores); elsewhere they skip
with the reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adaptsim.cli import app
from adaptsim.emulation import cpu_quota_available
from adaptsim.errors import UserError
from adaptsim.simulator.draws import draw
from adaptsim.testbed import real_run_available, scenario_for_testbed, validate
from adaptsim.testbed.scenario import time_scaled

DATA = Path(__file__).parent / "data"
SCENARIO = DATA / "testbed_lenet.yaml"
CALIBRATION = Path(__file__).parents[1] / "src" / "adaptsim" / "data" / "calibration_own_2core.json"

needs_testbed = pytest.mark.skipif(
    real_run_available() is not None, reason=f"a real run {real_run_available()}"
)


def _netns() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _children() -> set[str]:
    out = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True)
    return set(out.stdout.split())


@pytest.fixture(autouse=True)
def _leaves_nothing_behind():
    """Every test here: no namespace, scratch folder or child process of this run is left
    (children that other test modules started before, e.g. a Dask cluster, are theirs)."""
    before = _children()
    yield
    assert not [n for n in _netns() if n.startswith(f"as{os.getpid()}-")]
    assert not list(Path(tempfile.gettempdir()).glob(f"adaptsim-testbed-{os.getpid()}-*"))
    assert _children() - before == set()


def test_time_scale_compresses_traces_not_arrivals():
    sc = scenario_for_testbed(SCENARIO, CALIBRATION)
    fast = time_scaled(sc, 4.0)
    assert fast.duration_s == sc.duration_s / 4
    assert fast.bandwidth.times == (0.0, 0.75, 1.5) and fast.bandwidth.values == (20.0, 1.0, 20.0)
    assert fast.bandwidth.at(1.0) == sc.bandwidth.at(4.0) == 1.0
    assert fast.rate_hz == sc.rate_hz  # frames per real second are unchanged
    assert len(draw(fast, 1).arrivals_s) == np.ceil(sc.duration_s / 4 * sc.rate_hz)  # 0..2.2 s


def test_a_shipped_scenario_shortened_runs_every_policy_at_the_asked_rate():
    """What scripts/validate_shipped.sh asks of vehicle_trace: every policy, more frames."""
    from adaptsim.testbed.validate import select_policies

    shipped = Path(__file__).parents[1] / "scenarios" / "vehicle_trace.yaml"
    wanted = ["all", "neurosurgeon", "mpc", "changepoint"]
    sc = scenario_for_testbed(shipped, CALIBRATION, duration_s=20.0, time_scale=30.0,
                              rate_hz=1.5, policies=wanted)  # fmt: skip
    keep, notes = select_policies(sc, wanted)
    names = [sc.policies[i].policy for i in keep]
    # the scenario's own five but the oracle, then the three built-ins it lacks, in order
    assert names == ["static-best", "reactive", "all-edge", "all-cloud", "neurosurgeon", "mpc",
                     "changepoint"]  # fmt: skip
    assert len(notes) == 1 and "oracle" in notes[0]
    assert sc.rate_hz == 1.5 and len(draw(sc, 1).arrivals_s) == 30  # 20 s at 1.5 frames/s
    assert sc.bandwidth.duration_s == pytest.approx(
        scenario_for_testbed(shipped, CALIBRATION).bandwidth.duration_s / 30
    )
    # the edge builds it from what run.py hands it: the same policies in the same places
    again = scenario_for_testbed(shipped, CALIBRATION, 20.0, 30.0, rate_hz=1.5, policies=wanted)
    assert again.policies == sc.policies
    with pytest.raises(UserError, match="--rate-hz"):
        scenario_for_testbed(shipped, CALIBRATION, rate_hz=0.0)


def test_calibration_override_replaces_the_scenarios(tmp_path):
    sc = scenario_for_testbed(SCENARIO, CALIBRATION, duration_s=3.0)
    assert sc.calibration_name == str(CALIBRATION.resolve()) and sc.duration_s == 3.0
    r = CliRunner().invoke(app, ["validate", str(SCENARIO), "--calibration",
                                 str(tmp_path / "none.json")])  # fmt: skip
    assert r.exit_code == 2 and "none.json does not exist" in r.output
    r = CliRunner().invoke(app, ["validate", str(SCENARIO), "--calibration", str(CALIBRATION),
                                 "--policies", "nosuch"])  # fmt: skip
    assert r.exit_code == 2 and "static-best" in r.output
    r = CliRunner().invoke(app, ["validate", str(SCENARIO), "--calibration", str(CALIBRATION),
                                 "--time-scale", "0"])  # fmt: skip
    assert r.exit_code == 2 and "--time-scale" in r.output


def test_run_takes_a_calibration_override(tmp_path):
    out = tmp_path / "res"
    r = CliRunner().invoke(app, ["run", str(SCENARIO), "--calibration", str(CALIBRATION),
                                 "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads((out / "run.json").read_text())["calibration"] == str(CALIBRATION.resolve())
    r = CliRunner().invoke(app, ["run", str(SCENARIO), "--out", str(tmp_path / "x")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "x" / "run.json").read_text())["calibration"] == "adaptivednn"
    own = pd.read_csv(out / "summary.csv").set_index("policy")["mean_s"]
    arm = pd.read_csv(tmp_path / "x" / "summary.csv").set_index("policy")["mean_s"]
    assert (abs(arm / own - 1) > 0.05).all()  # other hosts, other latencies


@pytest.mark.needs_root
@pytest.mark.slow
@needs_testbed
def test_short_real_validation_of_lenet(tmp_path):
    """The CI validation: three policies for 4.5 s each, real, beside the twin; under 60 s.

    mpc is there because it reads what the edge knows of its queue, the switch cost and
    the latest arrival through the simulator's own View: a real run must fill them.
    """
    t0 = time.perf_counter()
    # traces x2 faster: 4.5 s per policy, the same steps, every frame at 10 Hz
    policies = ["static-best", "all-cloud", "mpc"]
    out = validate(SCENARIO, CALIBRATION, tmp_path / "v", policies=policies, time_scale=2.0,
                   progress=lambda _: None)  # fmt: skip
    took = time.perf_counter() - t0
    real = pd.read_parquet(out / "real" / "records.parquet")
    sim = pd.read_parquet(out / "simulated" / "records.parquet")
    sc = scenario_for_testbed(SCENARIO, CALIBRATION, time_scale=2.0)
    arrivals = draw(sc, 1).arrivals_s
    assert len(arrivals) == 45
    for policy in policies:
        r, s = real[real["policy"] == policy], sim[sim["policy"] == policy]
        # the same frames at the same arrival times as the twin, every one finished
        np.testing.assert_array_equal(r["arrival_s"].to_numpy(), arrivals)
        np.testing.assert_array_equal(s["arrival_s"].to_numpy(), arrivals)
        assert np.isfinite(r["latency_s"]).all()
        parts = r[["edge_wait_s", "edge_s", "uplink_wait_s", "uplink_s", "cloud_wait_s",
                   "cloud_s", "return_s"]].sum(axis=1) + 2 * sc.one_way_latency_s  # fmt: skip
        np.testing.assert_allclose(parts, r["latency_s"], atol=1e-6)  # stages add up
        assert (r[["edge_s", "uplink_s", "cloud_s"]] >= 0).all().all()
    cloud = real[real["policy"] == "all-cloud"]
    slow = cloud[(cloud["arrival_s"] >= 1.75) & (cloud["arrival_s"] < 3)]["uplink_s"].median()
    fast = cloud[cloud["arrival_s"] < 1.5]["uplink_s"].median()
    # the raw input (3,136 bytes) at 1 Mbit/s, less the 1,514-byte bucket that leaves at
    # once, takes >= 13 ms on the wire; at 20 Mbit/s ~1.3 ms (11.7 ms less): tc followed
    # the trace live (8 ms of the 11.7 asked: a loaded host adds a few ms to both)
    assert slow > (3136 - 1514) * 8 / 1e6 and slow > fast + 0.008, (slow, fast)
    table = pd.read_csv(out / "comparison.csv")
    assert sorted(table["policy"]) == ["all-cloud", "mpc", "static-best"]
    assert (table["frames"] == len(arrivals)).all()
    facts = json.loads((out / "validation.json").read_text())
    applied = facts["applied"]["all-cloud/1"]
    # (t, bandwidth, edge CPU, memory) put in place at t = 0 and at each step: 1.5, 2.25, 3 s
    assert [a[1:] for a in applied] == [[20, 0, 0], [1, 0, 0], [1, 50, 0], [20, 50, 0]]
    assert all(abs(a[0] - t) < 0.25 for a, t in zip(applied, (0, 1.5, 2.25, 3), strict=True))
    # tbf dropped nothing while the rate fell and rose (no retransmission stalls)
    assert facts["tbf_dropped_packets"] == {f"{p}/1": 0 for p in policies}
    # and the sender's TCP counters per run, none of them ever negative (deltas of one run)
    assert sorted(facts["edge_tcp"]) == sorted(f"{p}/1" for p in policies)
    assert all(v >= 0 for c in facts["edge_tcp"].values() for v in c.values())
    # one connection for every policy, warmed before the clock by one raw input (3,136 B)
    assert facts["warm_up_bytes"] == 28 * 28 * 4 and facts["warm_up_s"] > 0
    assert "Kendall" in (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    assert "static-best measured" in page and "all-cloud simulated" in page  # overlaid
    assert f'data-value="{float(table.iloc[0]["measured_mean_s"])!r}"' in page
    assert not any(n.startswith(f"as{os.getpid()}-") for n in _netns())
    assert took < 60, f"the CI validation took {took:.0f} s"  # the CI budget


@pytest.mark.needs_root
@pytest.mark.slow
@needs_testbed
def test_the_link_law_holds_on_the_emulated_link_through_a_trace():
    """The twin's uplink against the testbed's: ResNet50's raw input (602 kB) once a second
    through the car trace x4 as ConditionFollower applies it live, each message timed from
    its first byte to the peer's acknowledgement, against the simulator's Link with the
    calibration's law. The connection is warmed first by one unrecorded message, as the
    testbed's edge warms its one connection before the clock (EdgeRunner.connect):
    without it the first message on a fresh connection took 19 % more than the law (the
    receiver's window still growing). Measured here: mean within 0.4 %, each message within
    5 %, the first one included; on the slower host (1 Dec) 0.7 % idle and 0.2 % under
    `stress-ng --cpu 4 --io 2`, where the rates landed a median 15 ms (at most 28 ms)
    after the trace's steps."""
    from adaptsim.emulation import CLOUD_IP, NetnsPair
    from adaptsim.simulator.engine import Tables
    from adaptsim.simulator.link import Link
    from adaptsim.simulator.traces import Trace
    from adaptsim.testbed.conditions import ConditionFollower

    peer = str(DATA / "link_peer.py")

    shipped = Path(__file__).parents[1] / "scenarios" / "vehicle_trace.yaml"
    sc = scenario_for_testbed(shipped, CALIBRATION, duration_s=16.0, time_scale=4.0)
    _, over, wire, host = Tables(sc).at(0.0, 0.0)
    col = int(np.argmin(sc.model.ordinals))  # the all-cloud point: the raw input
    size = int(sc.model.output_bytes[col])
    assert size == 224 * 224 * 3 * 4
    port = 50000 + os.getpid() % 10000
    with NetnsPair(sc.bandwidth.at(0.0), burst_s=0.002, min_burst_bytes=1514) as pair:
        server = subprocess.Popen(
            [*pair.exec_in(pair.cloud), sys.executable, peer, "serve", str(port)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert server.stdout.readline().strip() == "ready"
            with ConditionFollower(sc, pair, [0], None, 0) as follow:
                t0 = time.monotonic() + 0.2
                follow.start(t0)
                client = subprocess.run(
                    [*pair.exec_in(pair.edge), sys.executable, peer, "send", CLOUD_IP,
                     str(port), str(size), "1.0", "15", "1"],
                    capture_output=True, text=True, timeout=120,
                )  # fmt: skip
                dropped = pair.dropped_packets()
        finally:
            server.kill()
            server.wait()
    assert len(follow.applied) > 40  # the rate followed the trace, ~4 changes a second
    rows = [json.loads(line) for line in client.stdout.splitlines()]
    assert len(rows) == 15 and dropped == 0
    # The law over the rates as tc really had them: each level from when the follower
    # had it in place (``applied``), not from the trace's step time. Under load a `tc qdisc
    # change` lands tens of ms late, a good part of a 0.25 s step; against the trace's own
    # times a loaded run's messages met rates the law had not yet reached and the mean was
    # off by 6.6 % (a CI failure on this host). The follower's lag is its own finding.
    steps = [(0.0 if t <= 0 else t, bw) for t, bw, _, _ in follow.applied if bw is not None]
    steps = [s for i, s in enumerate(steps) if i == len(steps) - 1 or steps[i + 1][0] > s[0]]
    link = Link(Trace.steps(steps))
    measured = np.array([r["seconds"] for r in rows])
    # each start on the follower's clock (the host's monotonic clock, shared by namespaces)
    starts = np.array([r["start_monotonic"] - t0 for r in rows])
    law = np.array([max(link.finish(s + over[col], wire[col]), s + host[col]) - s
                    for s in starts])  # fmt: skip
    # what a failure needs to be read: the rates' lag behind the trace and each ratio
    why = (law.mean(), measured.mean(), follow.applied[:8], list(np.round(law / measured, 3)))
    assert abs(law.mean() / measured.mean() - 1) < 0.03, why
    # the first recorded message too: the warm-up took the fresh connection's cost
    assert abs(law[0] / measured[0] - 1) < 0.10, (law[0], measured[0])
    assert np.all(np.abs(law / measured - 1) < 0.15), law / measured


def _kill_when_under_way(first: subprocess.Popen, group: Path | None = None) -> None:
    """SIGKILL ``first`` once its namespaces and its edge process exist (and its edge's
    quota ``group``, when given), well into its run."""
    deadline = time.monotonic() + 240
    # wait until its run is under way: namespaces made and its edge process running
    while time.monotonic() < deadline:
        kids = subprocess.run(["pgrep", "-f", "adaptsim.testbed.edge"], capture_output=True,
                              text=True).stdout.split()  # fmt: skip
        if (
            any(n.startswith(f"as{first.pid}-") for n in _netns())
            and kids
            and (group is None or group.exists())
        ):
            break
        assert first.poll() is None, first.stderr.read().decode()
        time.sleep(0.5)
    time.sleep(8)  # well into the compile or the run
    first.send_signal(signal.SIGKILL)
    first.wait()


@pytest.mark.needs_root
@pytest.mark.slow
@needs_testbed
def test_sigkill_mid_run_leaves_nothing_after_the_next_run(tmp_path):
    cmd = [sys.executable, "-c", "from adaptsim.cli import main; main()"]
    argv = [*cmd, "validate", str(SCENARIO), "--calibration", str(CALIBRATION),
            "--policies", "all-cloud", "--out", str(tmp_path / "first")]  # fmt: skip
    # the edge in a CPU quota of a whole core (the shipped calibration's edge: no quota,
    # the same host), so that its cgroup is there to be left by the SIGKILL
    quota = cpu_quota_available() is None
    argv += ["--edge-cpu-quota", "1"] if quota else []
    first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    group = Path(f"/sys/fs/cgroup/cpu/adaptsim-{first.pid}")
    try:
        _kill_when_under_way(first, group if quota else None)
    finally:  # whatever failed, the first run does not outlive the test
        if first.poll() is None:
            first.kill()
        first.wait()
    time.sleep(2)
    mine = [p for p in subprocess.run(["pgrep", "-f", f"as{first.pid}-"], capture_output=True,
                                      text=True).stdout.split()]  # fmt: skip
    assert mine == []  # the edge and cloud processes died with their parent
    # a second run starts, finishes, and removes what the first left
    out = validate(SCENARIO, CALIBRATION, tmp_path / "second", duration_s=3.0,
                   policies=["all-cloud"], progress=lambda _: None)  # fmt: skip
    assert (out / "comparison.csv").exists()
    left = [n for n in _netns() if n.startswith((f"as{first.pid}-", f"as{os.getpid()}-"))]
    assert left == []
    assert not group.exists()  # the quota's group, removed by the second run
    assert not list(Path(tempfile.gettempdir()).glob(f"adaptsim-testbed-{first.pid}-*"))
    assert not (tmp_path / "first").exists()  # a killed validation leaves no half folder


def test_fold_back_scales_what_the_simulator_charges():
    from adaptsim.simulator.engine import Tables
    from adaptsim.testbed.foldback import FoldBack, apply_foldback

    sc = scenario_for_testbed(SCENARIO, CALIBRATION)
    fb = FoldBack(edge_scale=2.0, cloud_scale=3.0, uplink_extra_s=0.004, return_s=0.001,
                  pause_s=0.05, frames=10)  # fmt: skip
    after = apply_foldback(sc, fb)
    e0, over0, _, _ = Tables(sc).at(0.0, 0.0)
    e1, over1, _, _ = Tables(after).at(0.0, 0.0)
    np.testing.assert_allclose(e1, 2.0 * e0)  # every head twice as long
    np.testing.assert_allclose(over1, over0 + 0.004)  # every message 4 ms more
    c0, c1 = Tables(sc).cloud_s, Tables(after).cloud_s
    np.testing.assert_allclose(c1, 3.0 * c0 + 0.001, rtol=1e-9)
    assert after.pause_s == 0.05 and sc.model.notes != after.model.notes


def test_the_report_says_when_the_memory_stressor_shares_the_clouds_core():
    """combined's miss (docs/validation.md): the default plan puts the edge's memory
    stressor on the local cloud's core; a run with edge memory stress says so, one
    without it or with the stressor elsewhere does not."""
    from adaptsim.testbed.run import RealRunPlan
    from adaptsim.testbed.validate import shared_core_note

    combined = Path(__file__).parents[1] / "scenarios" / "combined.yaml"
    sc = scenario_for_testbed(combined, CALIBRATION, duration_s=30.0, time_scale=20.0)
    plan = RealRunPlan(combined, CALIBRATION, sc.duration_s)
    note = shared_core_note(plan.mem_cpus, plan.cloud_cpus, sc.edge_mem.values)
    assert note is not None and f"CPU {plan.cloud_cpus}" in note
    assert shared_core_note(plan.mem_cpus, plan.cloud_cpus, (0.0, 0.0)) is None
    assert shared_core_note([2], plan.cloud_cpus, sc.edge_mem.values) is None
