"""A slower edge: ``validate --edge-cpu-quota`` (a real cgroup quota on the real edge).

The quota is the profiler's (:class:`adaptsim.emulation.CpuQuota`); these tests
hold the testbed to the same emulated host: the edge's heads and its stress-ng
run throttled, the group goes when the run ends, and a twin whose calibration
was profiled under another quota is refused before anything runs. The real
parts run as root here and in CI; elsewhere they skip with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adaptsim.calibration import Calibration, load_calibration
from adaptsim.cli import app
from adaptsim.emulation import CpuQuota, Stress, cpu_quota_available
from adaptsim.errors import UserError
from adaptsim.store import read_store, write_store
from adaptsim.testbed import real_run_available, validate
from adaptsim.testbed.edge_quota import calibration_edge_quota
from test_profiler import _halves_store

REPO = Path(__file__).resolve().parents[1]
CALIBRATION = REPO / "src" / "adaptsim" / "data" / "calibration_own_2core.json"
LENET = Path(__file__).parent / "data" / "testbed_lenet.yaml"
ALEXNET = REPO / "scenarios" / "norway_metro_2.yaml"  # AlexNet: heads of tens of ms

needs_quota = pytest.mark.skipif(cpu_quota_available() is not None,
                                 reason=f"a CPU quota: {cpu_quota_available()}")  # fmt: skip
needs_testbed = pytest.mark.skipif(real_run_available() is not None,
                                   reason=f"a real run {real_run_available()}")  # fmt: skip


def _slow_edge_calibration(path: Path, factor: float, quota: float | None) -> Path:
    """The shipped own calibration with every edge time x ``factor``, claiming ``quota``:
    what a profile of this host's edge under a quota of 1/factor cores would roughly say."""
    doc = json.loads(CALIBRATION.read_text())
    for m in doc["models"].values():
        for key in ("edge_block_s", "edge_extra_s"):
            m[key]["values"] = (np.asarray(m[key]["values"]) * factor).tolist()
    doc["provenance"]["edge_cpu_quota"] = quota
    path.write_text(json.dumps(doc))
    return path


def _quiet(_line: str) -> None:
    pass


def test_the_quota_the_calibrations_edge_was_profiled_under():
    def cal(prov):
        return Calibration({}, prov, name="c.json")

    def edge(host, model, quota):
        return {f"profile:edge:{host}:{model}": {"cpu_quota": quota}}

    assert calibration_edge_quota(cal({"edge_cpu_quota": 0.25}), "vgg16") == 0.25
    # the shipped own calibration: every edge profile without a quota
    assert calibration_edge_quota(load_calibration(CALIBRATION), "resnet50") == 1.0
    two = {**edge("vm", "vgg16", None), **edge("vm-q0.25", "vgg16", 0.25),
           **edge("vm-q0.5", "alexnet", 0.5)}  # fmt: skip
    assert calibration_edge_quota(cal({"sources": two}), "vgg16") is None  # two hosts disagree
    assert calibration_edge_quota(cal({"sources": two, "edge_host": "vm-q0.25"}), "vgg16") == 0.25
    assert calibration_edge_quota(cal({"sources": two, "edge_host": "vm"}), "vgg16") == 1.0
    assert calibration_edge_quota(cal({"sources": two}), "alexnet") == 0.5  # only its model's
    # imported data (no own edge profile) does not say
    assert calibration_edge_quota(load_calibration(None), "resnet50") is None


def test_calibrate_records_the_edge_hosts_quota(tmp_path):
    frame, _ = read_store(_halves_store(tmp_path / "s.parquet"))
    edge = frame["host_role"] == "edge"
    frame.loc[edge, "edge_cpu_quota"] = 0.25
    frame.loc[edge, "edge_host"] = "vm-q0.25"
    frame.loc[edge, "source"] = "profile:edge:vm-q0.25:lenet"
    # a second edge in the same store (as own.parquet's unthrottled `vm`), its repeats
    # far apart: the calibration of the other edge must not take its spread
    wild = frame[edge].assign(edge_host="wild", source="profile:edge:wild:lenet",
                              edge_cpu_quota=1.0)  # fmt: skip
    wild["edge_s"] *= np.resize([0.5, 2.0], len(wild))
    frame = pd.concat([frame, wild], ignore_index=True)
    store = tmp_path / "q.parquet"
    write_store(store, frame, {s: {} for s in frame["source"].unique()})
    res = CliRunner().invoke(app, ["calibrate", str(store), "--out", str(tmp_path / "c.json"),
                                   "--edge-host", "vm-q0.25", "--cloud-host", "c"])  # fmt: skip
    assert res.exit_code == 0, res.output
    cal = load_calibration(tmp_path / "c.json")
    prov = cal.provenance
    assert prov["edge_cpu_quota"] == 0.25 and prov["edge_host"] == "vm-q0.25"
    assert prov["cloud_host"] == "c"
    assert "profile:link:x" in prov["sources"]  # the link fitted, though not the edge's host
    spread = np.abs(cal.model("lenet").spread["edge"]["log_ratio"])
    assert spread.max() < 0.01  # its own repeats (1 % apart), not the wild edge's (x4)


def test_a_twin_profiled_under_another_quota_is_refused_before_anything_runs(tmp_path):
    out = tmp_path / "v"
    # the shipped calibration's edge had no quota: a throttled real edge would not match
    with pytest.raises(UserError, match=r"without a CPU quota.*--cpu-quota 0\.25"):
        validate(LENET, CALIBRATION, out, edge_cpu_quota=0.25, progress=_quiet)
    slow = _slow_edge_calibration(tmp_path / "slow.json", 4.0, 0.25)
    with pytest.raises(UserError, match=r"no --edge-cpu-quota.*give --edge-cpu-quota 0\.25"):
        validate(LENET, slow, out, progress=_quiet)
    with pytest.raises(UserError, match=r"--edge-cpu-quota 0\.5.*under a CPU quota of 0\.25"):
        validate(LENET, slow, out, edge_cpu_quota=0.5, progress=_quiet)
    for bad in (0.0, -1.0, float("nan"), 1.5):  # the edge has one core
        with pytest.raises(UserError, match="--edge-cpu-quota"):
            validate(LENET, slow, out, edge_cpu_quota=bad, progress=_quiet)
    res = CliRunner().invoke(app, ["validate", str(LENET), "--calibration", str(CALIBRATION),
                                   "--edge-cpu-quota", "0.25", "--out", str(out)])  # fmt: skip
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert not out.exists()


@pytest.mark.needs_root
@needs_quota
@pytest.mark.skipif(shutil.which("stress-ng") is None, reason="needs stress-ng")
def test_the_edges_stress_joins_its_quota_and_the_group_goes():
    with CpuQuota(0.5, join=False) as q:
        group = q.group
        assert str(os.getpid()) not in q.procs_file.read_text().split()  # only the edge's
        with Stress(50, 0, settle_s=0.0, cpu_cpus=[0], cgroup_procs=q.procs_file) as s:
            members = q.procs_file.read_text().split()
            assert s.pids and all(str(p) in members for p in s.pids)
            assert (group / "cpu.cfs_quota_us").read_text().strip() == "5000"  # of 10 ms
    assert not group.exists()


@pytest.mark.needs_root
@pytest.mark.slow
@needs_quota
@needs_testbed
def test_the_quota_slows_the_real_edges_heads_by_its_factor(tmp_path):
    """AlexNet all-edge under a quota of 0.25 cores: its real heads take ~4x the
    unthrottled edge's calibrated time (a wide band: a shared machine slows both), the
    quota ran out again and again (its cgroup's own count, which load cannot fake), the
    run says so, and its cgroup is gone afterwards."""
    quota = 0.25
    slow = _slow_edge_calibration(tmp_path / "slow.json", 1 / quota, quota)
    out = validate(ALEXNET, slow, tmp_path / "v", duration_s=3.0, policies=["all-edge"],
                   seeds=(1,), edge_cpu_quota=quota, noise_draws=1,
                   progress=_quiet)  # fmt: skip
    real = pd.read_parquet(out / "real" / "records.parquet")
    assert len(real) == 6 and np.isfinite(real["latency_s"]).all()
    free = load_calibration(CALIBRATION).model("alexnet")
    free_s = float(free.predict(edge_cpu_pct=[0.0], bandwidth_mbps=10.0).edge_s[0, -1])
    ratio = float(real["edge_s"].median()) / free_s
    # idle, x4; a loaded machine takes more from the throttled edge too (up to x12)
    assert 2.5 < ratio < 12.0, (ratio, free_s)  # without the quota: ~1 idle
    facts = json.loads((out / "validation.json").read_text())
    # whatever else loads the machine, the quota itself ran out: every head of AlexNet
    # (>= 25 ms of CPU) outlasts ~10 of its 2.5 ms slices; a run outside the group, none
    stat = facts["edge_cpu_stat"]
    assert stat["nr_throttled"] >= 5 * len(real) and stat["throttled_time"] > 0, stat
    assert facts["edge_cpu_quota"] == quota and facts["placement"]["edge_cpu_quota"] == quota
    assert "CPU quota of 0.25 cores" in (out / "report.md").read_text()
    assert not Path(facts["edge_cgroup"]).exists()
