"""validate warns when its calibration was profiled on another kind of CPU.

Real calibrations: the shipped one (profiled on an AMD EPYC VM), this project's
re-profile on an Intel Xeon VM (docs/own_profiles/calibration_host2.json), and one
imported from published data (no host facts, not checked).
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path

import pytest

from adaptsim.calibration import load_calibration
from adaptsim.errors import UserError
from adaptsim.testbed.calibration_host import calibration_for_host, host_mismatch_note
from adaptsim.testbed.edge_quota import calibration_edge_quota

ROOT = Path(__file__).parents[1]
SHIPPED = ROOT / "src/adaptsim/data/calibration_own_2core.json"
HOST2 = ROOT / "docs/own_profiles/calibration_host2.json"
AMD = {"cpu": "AMD EPYC", "arch": "x86_64"}
XEON = {"cpu": "Intel(R) Xeon(R) Processor", "arch": "x86_64"}


@pytest.fixture(scope="module")
def cals():
    return {"shipped": load_calibration(SHIPPED), "host2": load_calibration(HOST2),
            "imported": load_calibration(None)}  # fmt: skip


@pytest.mark.parametrize("which, here", [("shipped", AMD), ("host2", XEON)])
def test_the_host_it_was_profiled_on_passes(cals, which, here):
    for model in ("resnet50", "alexnet", "mobilenet"):
        assert host_mismatch_note(cals[which], model, here) is None


@pytest.mark.parametrize(
    "which, here, theirs", [("shipped", XEON, "AMD EPYC"), ("host2", AMD, XEON["cpu"])]
)
def test_another_cpu_is_named_with_both_roles_and_the_way_out(cals, which, here, theirs):
    note = host_mismatch_note(cals[which], "resnet50", here)
    assert note is not None
    assert f"resnet50 edge on {theirs} (x86_64" in note and "resnet50 cloud on" in note
    assert f"this host is {here['cpu']} (x86_64)" in note and "--calibration" in note


def test_another_architecture_with_the_same_cpu_name_is_another_host(cals):
    assert host_mismatch_note(cals["shipped"], "resnet50", {**AMD, "arch": "aarch64"})


def test_only_the_role_that_differs_is_named(cals):
    cal = copy.deepcopy(cals["host2"])
    src = cal.provenance["sources"]["profile:cloud:vm-h2-cloud1:alexnet"]
    src["host"]["cpu"] = "Ampere Altra"
    note = host_mismatch_note(cal, "alexnet", XEON)
    assert "alexnet cloud on Ampere Altra (x86_64, host vm-h2-cloud1)" in note
    assert "alexnet edge" not in note
    # another model's sources, and the provenance's other hosts, are not read for alexnet
    assert host_mismatch_note(cal, "mobilenet", XEON) is None


def test_the_calibration_s_own_hosts_are_the_ones_checked(cals):
    """The shipped calibration also holds the cloud profiled as host `vm` (both
    cores); only `vm-cloud1`, its provenance's cloud host, makes its twin."""
    cal = copy.deepcopy(cals["shipped"])
    cal.provenance["sources"]["profile:cloud:vm:resnet50"]["host"]["cpu"] = "Other"
    assert host_mismatch_note(cal, "resnet50", AMD) is None
    cal.provenance["sources"]["profile:cloud:vm-cloud1:resnet50"]["host"]["cpu"] = "Other"
    assert "resnet50 cloud on Other" in host_mismatch_note(cal, "resnet50", AMD)


def test_an_imported_calibration_says_nothing_and_the_quota_lookup_is_unchanged(cals):
    assert host_mismatch_note(cals["imported"], "resnet50", XEON) is None
    assert calibration_edge_quota(cals["host2"], "resnet50") == 1.0


@pytest.mark.parametrize(
    "model, here, file, alike",
    [
        ("resnet50", XEON, "calibration_own_2core_xeon.json", True),
        ("mobilenet", XEON, "calibration_own_2core_xeon.json", True),
        ("resnet50v2", XEON, "calibration_own_2core_xeon.json", True),
        ("resnet50", AMD, "calibration_own_2core.json", True),  # first by preference
        ("vgg19", XEON, "calibration_own_2core.json", False),  # not profiled on a Xeon
        ("alexnet", {"cpu": "Ampere Altra", "arch": "aarch64"}, "calibration_own_2core.json",
         False),
    ],
)  # fmt: skip
def test_without_a_calibration_validate_takes_the_one_of_this_kind_of_host(model, here, file,
                                                                          alike):  # fmt: skip
    path, same = calibration_for_host(model, here)
    assert (path.name, same) == (file, alike) and path.is_file()
    assert (host_mismatch_note(load_calibration(path), model, here) is None) is alike


def test_a_remote_cloud_s_host_is_not_this_host_s_business(cals):
    """With --cloud only the edge runs here: a calibration whose cloud was profiled
    elsewhere is still this edge's."""
    cal = copy.deepcopy(cals["host2"])
    cal.provenance["sources"]["profile:cloud:vm-h2-cloud1:resnet50"]["host"]["cpu"] = "EPYC"
    assert host_mismatch_note(cal, "resnet50", XEON) is not None
    assert host_mismatch_note(cal, "resnet50", XEON, roles=("edge",)) is None


def test_a_model_no_shipped_machine_calibration_has_is_one_line_with_the_way_out():
    with pytest.raises(UserError, match=r"densenet121 .*scripts/profile_here.sh OUT densenet121"):
        calibration_for_host("densenet121", XEON)


def _validate_until_the_run(calibration, tmp_path, monkeypatch) -> list:
    """What ``validate`` says up to its real run, on a Xeon: ``progress`` lines, then
    ("ran", the scenario's calibration, the plan's). The real run is replaced by a stop
    (the choices are made before it; a real run takes a minute and root), and this
    host's facts by a Xeon's, so that the tests mean the same on any machine."""
    tv = importlib.import_module("adaptsim.testbed.validate")  # the package exports validate()
    said = []

    def stop(sc, plan, work, progress):
        said.append(("ran", sc.calibration_name, str(plan.calibration)))
        raise KeyboardInterrupt

    monkeypatch.setattr(tv, "host_facts", lambda: dict(XEON))
    monkeypatch.setattr(tv, "real_run", stop)
    with pytest.raises(KeyboardInterrupt):
        tv.validate(ROOT / "scenarios/vehicle_trace.yaml", calibration, tmp_path / "v",
                    duration_s=5.0, progress=said.append)  # fmt: skip
    return said


def test_validate_without_a_calibration_runs_its_twin_on_this_host_s(tmp_path, monkeypatch):
    """Up to the real run: the calibration validate chose, for the host it says it runs
    on. The scenario's own calibration (the published study's ARM edge) is never it."""
    said = _validate_until_the_run(None, tmp_path, monkeypatch)
    assert any("calibration calibration_own_2core_xeon.json" in str(s) for s in said), said
    ran = said[-1]
    assert ran[0] == "ran" and ran[1].endswith("calibration_own_2core_xeon.json"), ran
    assert ran[2].endswith("calibration_own_2core_xeon.json"), ran


def test_validate_warns_of_another_host_s_calibration_before_the_run(tmp_path, monkeypatch):
    """The shipped AMD calibration given on a Xeon: one warning line, said before the real
    run starts, naming both CPUs."""
    said = _validate_until_the_run(SHIPPED, tmp_path, monkeypatch)
    warned = [s for s in said if str(s).startswith("adaptsim: warning: ")]
    assert len(warned) == 1 and said.index(warned[0]) < len(said) - 1, said
    assert said[-1][0] == "ran"
    assert "AMD EPYC" in warned[0] and XEON["cpu"] in warned[0]
