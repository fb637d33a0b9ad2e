"""Was the calibration profiled on a machine like this one?

The twin predicts the hosts its calibration was profiled on. A calibration made on
another kind of CPU predicts another machine, and not by one factor: this
project's VMs changed from AMD EPYC to Intel Xeon between sessions, and the
whole model on the edge's core went x1.89 slower for AlexNet, x1.25 for ResNet50
and x0.75 (faster) for MobileNet (docs/own_profiles/README.md). ``validate``
says so before the run starts and in the report's notes; it does not refuse (a
user may compare hosts on purpose).

A calibration built from own profiles names its hosts' facts in its provenance
(``sources``: ``profile:<role>:<host>:<model>``, each with the ``host`` facts of
:func:`adaptsim.profiler.host.host_facts`); an imported one does not, and is not
checked.

Without ``--calibration``, ``validate`` takes the shipped own calibration profiled on
this host's kind of CPU for the scenario's model (:data:`SHIPPED_OWN`, in that order),
else the first that has the model, and warns: never the scenario's own calibration,
which describes the published study's ARM edge and Xeon cloud, not this machine.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

from adaptsim.calibration import Calibration, load_calibration
from adaptsim.errors import UserError

__all__ = ["SHIPPED_OWN", "calibration_for_host", "host_mismatch_note", "profile_sources"]

# The shipped calibrations of this project's own 2-core machines (adaptsim/data), by
# preference when more than one was profiled on this host's kind of CPU.
SHIPPED_OWN = ("calibration_own_2core.json", "calibration_own_2core_xeon.json")


def profile_sources(cal: Calibration, role: str, model: str) -> Iterator[tuple[str, object]]:
    """``(host, source)`` of every ``role`` profile source of ``model`` in the
    calibration's provenance, of the provenance's ``<role>_host`` where it names one."""
    prov = cal.provenance if isinstance(cal.provenance, dict) else {}
    host = prov.get(f"{role}_host")
    sources = prov.get("sources")
    for key, src in (sources if isinstance(sources, dict) else {}).items():
        parts = str(key).split(":")
        if len(parts) < 4 or parts[:2] != ["profile", role] or parts[-1] != model:
            continue
        name = ":".join(parts[2:-1])
        if host is None or name == host:
            yield name, src


def host_mismatch_note(
    cal: Calibration, model: str, here: dict, roles: Sequence[str] = ("edge", "cloud")
) -> str | None:
    """A note when ``model``'s edge or cloud (``roles``: the ones that run on this host)
    was profiled on another CPU model or architecture than ``here`` (this host's facts);
    None when they match or the calibration does not say."""
    differ = []
    for role in roles:
        for name, src in profile_sources(cal, role, model):
            facts = src.get("host") if isinstance(src, dict) else None
            if not isinstance(facts, dict):
                continue
            theirs = (str(facts.get("cpu", "")), str(facts.get("arch", "")))
            if theirs != (str(here.get("cpu", "")), str(here.get("arch", ""))):
                differ.append(f"its {model} {role} on {theirs[0]} ({theirs[1]}, host {name})")
                break
    if not differ:
        return None
    return (
        f"calibration {cal.name}: {' and '.join(differ)}, this host is "
        f"{here.get('cpu', '?')} ({here.get('arch', '?')}): the twin predicts that other "
        "machine, and not by one factor per model; profile this host "
        "(scripts/profile_here.sh) and give its calibration with --calibration"
    )


def calibration_for_host(
    model: str, here: dict, roles: Sequence[str] = ("edge", "cloud"), names=SHIPPED_OWN
) -> tuple[Path, bool]:
    """The shipped own calibration to validate ``model`` on this host with, and whether
    it was profiled on this host's kind of CPU (:func:`host_mismatch_note` finds
    nothing): the first of ``names`` that was, else the first that has the model."""
    have = []
    for name in names:
        path = Path(str(resources.files("adaptsim").joinpath("data", name)))
        cal = load_calibration(path)
        if model not in cal.models:
            continue
        if host_mismatch_note(cal, model, here, roles) is None:
            return path, True
        have.append(path)
    if not have:
        raise UserError(
            f"no shipped calibration of this project's machines has {model} ({', '.join(names)}):"
            f" profile this host (scripts/profile_here.sh OUT {model}) and give --calibration"
        )
    return have[0], False
