"""A slower edge: the testbed's edge process under a cgroup CPU quota, and the
calibration that must have been profiled the same way.

On this project's 2-core machines the edge (CPU 0) is as fast as the 1-core
cloud (CPU 1), so every policy runs all-edge and the split never matters. The
study adaptsim comes from had an ARM edge several times slower than its Xeon
cloud. ``validate --edge-cpu-quota Q`` emulates such an edge exactly as
``profile --host edge --cpu-quota Q`` does (:class:`~adaptsim.emulation.CpuQuota`,
one copy): the edge process, every thread of it, and the stress-ng it is given
run in one cgroup throttled to Q cores.

The twin must predict the edge that really ran, so the calibration's edge must
have been profiled under the same quota. A calibration built from own profiles
says so (``provenance.edge_cpu_quota``, or the ``cpu_quota`` of the model's edge
profile sources); one that does not (imported data) cannot be checked, which
the run's notes say.
"""

from __future__ import annotations

import math
from pathlib import Path

from adaptsim.calibration import DEFAULT_CALIBRATION, Calibration
from adaptsim.errors import UserError
from adaptsim.testbed.calibration_host import profile_sources

__all__ = [
    "NO_QUOTA",
    "calibration_edge_quota",
    "check_edge_quota",
    "check_quota_matches",
    "scenario_calibration_path",
]

NO_QUOTA = 1.0  # the store's edge_cpu_quota of an edge profiled without a quota


def check_edge_quota(quota: float | None, edge_cpus: list[int]) -> None:
    """A quota the edge's cores can give: above 0, at most one core per edge core."""
    if quota is None:
        return
    if not (math.isfinite(quota) and 0 < quota <= len(edge_cpus)):
        raise UserError(
            f"--edge-cpu-quota {quota:g}: give a number of cores in (0, {len(edge_cpus)}] "
            f"(the edge runs on CPU {edge_cpus}), e.g. 0.25 for an edge 4x slower"
        )


def _describe(quota: float) -> str:
    return "without a CPU quota" if quota == NO_QUOTA else f"under a CPU quota of {quota:g}"


def calibration_edge_quota(cal: Calibration, model: str) -> float | None:
    """The CPU quota the calibration's edge was profiled under (1.0: none); None if unknown.

    ``provenance.edge_cpu_quota`` where ``adaptsim calibrate`` wrote it; else the
    ``cpu_quota`` that every edge profile source of ``model`` (of the provenance's
    ``edge_host``, where named) recorded, when they agree.
    """
    prov = cal.provenance if isinstance(cal.provenance, dict) else {}
    if "edge_cpu_quota" in prov:
        q = prov["edge_cpu_quota"]
        return NO_QUOTA if q is None else float(q)
    found = set()
    for _, src in profile_sources(cal, "edge", model):
        if not isinstance(src, dict) or "cpu_quota" not in src:
            return None
        q = src["cpu_quota"]
        found.add(NO_QUOTA if q is None else float(q))
    return found.pop() if len(found) == 1 else None


def check_quota_matches(cal: Calibration, model: str, quota: float | None) -> str | None:
    """Refuse (UserError) a calibration whose edge was profiled under another quota.

    Returns a note when the calibration does not say (a quota was asked and
    cannot be checked), else None.
    """
    asked = NO_QUOTA if quota is None else float(quota)
    have = calibration_edge_quota(cal, model)
    if have is None:
        if quota is None:
            return None
        return (
            f"calibration {cal.name}: does not say under which CPU quota its {model} edge was "
            f"profiled; the edge ran {_describe(asked)}, unchecked against it"
        )
    if math.isclose(have, asked, rel_tol=1e-6):
        return None
    given = "no --edge-cpu-quota" if quota is None else f"--edge-cpu-quota {asked:g}"
    fix = "leave out --edge-cpu-quota" if have == NO_QUOTA else f"give --edge-cpu-quota {have:g}"
    profile = "--cpus 0" + ("" if quota is None else f" --cpu-quota {asked:g}")
    raise UserError(
        f"{given}: calibration {cal.name} has its {model} edge profiled {_describe(have)}, so "
        f"its twin would predict another edge; {fix}, or profile the edge with `adaptsim "
        f"profile --host edge {profile}` and calibrate from that"
    )


def scenario_calibration_path(calibration: Path | None, sc) -> Path | None:
    """The calibration file a testbed scenario uses (None: the shipped default)."""
    if calibration is not None:
        return calibration
    name = sc.calibration_name
    if name == DEFAULT_CALIBRATION:
        return None
    p = Path(name)
    return p if p.is_absolute() else Path(sc.base_dir) / p
