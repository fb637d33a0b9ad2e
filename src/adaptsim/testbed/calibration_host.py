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
"""

from __future__ import annotations

from collections.abc import Iterator

from adaptsim.calibration import Calibration

__all__ = ["host_mismatch_note", "profile_sources"]


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


def host_mismatch_note(cal: Calibration, model: str, here: dict) -> str | None:
    """A note when ``model``'s edge or cloud was profiled on another CPU model or
    architecture than ``here`` (this host's facts); None when they match or the
    calibration does not say."""
    differ = []
    for role in ("edge", "cloud"):
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
