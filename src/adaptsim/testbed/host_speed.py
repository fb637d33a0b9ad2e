"""The host's own speed, probed around every policy run, and the twin at that speed.

The shipped calibration was profiled on another VM of the same kind; this one is
slower, and its speed drifts between runs minutes apart (docs/validation.md, "host
speed probe"). A fold-back fitted on one run carries that run's host speed in its
edge and cloud scales, and over- or under-corrects the next run. So every real run
times a few *probe frames* before each policy run (before its conditions are
applied) and after it (once they are removed: no stress, the link idle):

- on the edge, the whole model at the edge (the all-edge point's head), ``N`` calls;
- on the cloud, the whole model's tail (the all-cloud point, the raw input) ``N``
  times, the server's own compute seconds (as a record's cloud service time).

They are not records. ``validation.json`` keeps them per policy run
(``host_speed: {"policy/seed": {"edge_s": [...], "cloud_s": [...], "at": [...]}}``,
the before-probes first) with the speeds derived from them. A run's **host speed**
per role is ``median(probe seconds) / predicted``, the prediction being the
calibration's for the same work at no stress (the whole model at the edge at edge
CPU 0 and memory 0; the whole tail in the cloud at no cloud stress):
:func:`host_speeds`. Computed from the raw probes and the calibration the twin is
given, so a re-scoring with another calibration derives them again.

The **probed twin** (:func:`probed_twin`) simulates each policy run with the edge's
and the cloud's compute times that run's host speed: one scalar per role, nothing
else changed, the policies still predicting with the calibration they were given
(:class:`~adaptsim.simulator.scenario.Belief`). It is not fitted on the scored
frames: the probes are separate frames, timed when no frame runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.errors import UserError
from adaptsim.simulator import Results, Scenario, run_scenario, summarise
from adaptsim.simulator.policies import resolve_policy
from adaptsim.simulator.scenario import Belief

__all__ = [
    "MAX_PROBE_FRAMES",
    "PROBE_FRAMES",
    "HostSpeed",
    "at_host_speed",
    "check_host_probes",
    "check_probe_frames",
    "host_speeds",
    "predicted_probe_s",
    "probed_twin",
    "record_speeds",
    "run_keys",
    "twin_per_run",
]

PROBE_FRAMES = 5  # probe frames per role before and after each policy run (0: none)
MAX_PROBE_FRAMES = 100  # what a server runs for one probe request, at most


def check_probe_frames(frames) -> int:
    """``--probe-frames``: a whole number from 0 (no probe) to :data:`MAX_PROBE_FRAMES`."""
    if isinstance(frames, bool) or not isinstance(frames, int) or not (
        0 <= frames <= MAX_PROBE_FRAMES
    ):  # fmt: skip
        raise UserError(
            f"--probe-frames {frames!r}: give a whole number of probe frames from 0 (no probe) "
            f"to {MAX_PROBE_FRAMES}, e.g. {PROBE_FRAMES}"
        )
    return frames


@dataclass(frozen=True)
class HostSpeed:
    """One policy run's host speed: median probe seconds / the calibration's, per role
    (None: that role was not probed, e.g. a server without probe frames)."""

    edge: float | None
    cloud: float | None
    edge_probe_s: float | None = None  # the median probe
    cloud_probe_s: float | None = None
    edge_predicted_s: float = math.nan  # the calibration's, at no stress
    cloud_predicted_s: float = math.nan

    def factors(self) -> tuple[float, float]:
        """(edge, cloud) multipliers: 1 for a role not probed."""
        return (1.0 if self.edge is None else self.edge, 1.0 if self.cloud is None else self.cloud)


def predicted_probe_s(model) -> tuple[float, float]:
    """The calibration's seconds of what the probes run: the whole model at the edge
    (the all-edge point, edge CPU 0 and memory 0) and its whole tail in the cloud
    (the all-cloud point, no cloud stress)."""
    kinds = list(model.kinds)
    edge = model.edge_cum.at(0.0, 0.0)[0][0]
    cloud = model.cloud_cum.at(0.0, 0.0)[0][0]
    return float(edge[kinds.index("all_edge")]), float(cloud[kinds.index("all_cloud")])


def _positive(x) -> bool:
    return (
        isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x > 0
    )  # fmt: skip


def check_host_probes(probes, where: str) -> dict:
    """``host_speed`` of a validation's facts, checked (``{}`` when absent): per policy
    run an object whose ``edge_s`` and ``cloud_s`` are lists of positive seconds (the
    cloud's may be empty: a server without probe frames). One line naming it if not."""
    if probes is None:
        return {}
    fix = ("give a folder that `adaptsim validate --out` wrote, or delete host_speed from "
           "its validation.json (the run is then scored without its host speed)")  # fmt: skip
    if not isinstance(probes, dict):
        raise UserError(f"{where}: field host_speed: not an object per run "
                        f"({{\"policy/seed\": {{...}}}}); {fix}")  # fmt: skip
    for key, p in probes.items():
        if not isinstance(p, dict):
            raise UserError(f"{where}: field host_speed.{key}: not an object; {fix}")
        for role in ("edge_s", "cloud_s"):
            v = p.get(role)
            if not isinstance(v, list) or not all(_positive(s) for s in v) or (
                role == "edge_s" and not v
            ):  # fmt: skip
                raise UserError(f"{where}: field host_speed.{key}.{role}: not a list of "
                                f"positive seconds ({v!r}); {fix}")  # fmt: skip
    return probes


def host_speeds(probes: dict, model) -> dict[str, HostSpeed]:
    """Per policy run (``"policy/seed"``): the host speed of ``probes`` (a validation's
    ``host_speed`` facts, checked) against ``model``'s predictions (the calibration
    the twin is given): median probe seconds / predicted, per role."""
    edge_pred, cloud_pred = predicted_probe_s(model)
    out = {}
    for key, p in probes.items():
        edge = float(np.median(p["edge_s"])) if p.get("edge_s") else None
        cloud = float(np.median(p["cloud_s"])) if p.get("cloud_s") else None
        out[key] = HostSpeed(
            edge=None if edge is None else edge / edge_pred,
            cloud=None if cloud is None else cloud / cloud_pred,
            edge_probe_s=edge,
            cloud_probe_s=cloud,
            edge_predicted_s=edge_pred,
            cloud_predicted_s=cloud_pred,
        )
    return out


def record_speeds(probes: dict, speeds: dict[str, HostSpeed]) -> dict:
    """``probes`` (a run's ``host_speed`` facts) with each run's derived speeds beside its
    raw probes (``edge``, ``cloud``, the medians and the predictions), for the report."""
    for key, v in speeds.items():
        probes[key].update(edge=v.edge, cloud=v.cloud, edge_median_s=v.edge_probe_s,
                           cloud_median_s=v.cloud_probe_s, edge_predicted_s=v.edge_predicted_s,
                           cloud_predicted_s=v.cloud_predicted_s)  # fmt: skip
    return probes


def _times(grid, factor: float):
    return replace(grid, values=grid.values * factor)


def at_host_speed(sc: Scenario, speed: HostSpeed) -> Scenario:
    """``sc`` whose world computes at ``speed``: every edge time times its edge speed,
    every cloud time times its cloud speed; the link, the switch cost and what the
    policies predict with (:class:`Belief`) unchanged."""
    edge, cloud = speed.factors()
    m = sc.model
    model = replace(
        m,
        edge_blocks=_times(m.edge_blocks, edge),
        edge_extra=_times(m.edge_extra, edge),
        cloud_blocks=_times(m.cloud_blocks, cloud),
        cloud_extra=_times(m.cloud_extra, cloud),
        notes=(*m.notes, f"at the probed host speed: edge x{edge:.4g}, cloud x{cloud:.4g}"),
    )
    belief = sc.belief or Belief(model=m, pause_s=sc.pause_s)
    return replace(sc, model=model, belief=belief)


def run_keys(sc: Scenario) -> list[tuple[int, str]]:
    """(index of the policy, ``"policy/seed"``) per policy run of ``sc``, in its order."""
    base = Path(sc.base_dir)
    names = [resolve_policy(p, sc.model, base_dir=base).name for p in sc.policies]
    return [(i, f"{name}/{seed}") for i, name in enumerate(names) for seed in sc.seeds]


def twin_per_run(sc: Scenario, world: Callable[[str], Scenario], draws: int) -> list[Results]:
    """The twin of ``sc`` with each policy run simulated in its own world
    (``world("policy/seed")``: ``sc`` adjusted for that run), ``draws`` noise draws
    (draw 0 first, as :func:`~adaptsim.testbed.twin.twin_draws`); every run is
    simulated as ``run_scenario`` would (common random numbers: a world equal to
    ``sc`` gives its records exactly)."""
    from adaptsim.testbed.twin import noise_draw

    if draws < 1:
        raise UserError(f"--noise-draws {draws}: give at least 1")
    worlds = {}
    for i, key in run_keys(sc):
        seed = int(key.rsplit("/", 1)[1])
        worlds[key] = replace(world(key), policies=(sc.policies[i],), seeds=(seed,))
    out = []
    for k in range(draws):
        parts = [run_scenario(noise_draw(w, k)) for w in worlds.values()]
        frames = [p.records for p in parts if not p.records.empty]
        records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        runs = pd.concat([p.runs for p in parts], ignore_index=True)
        out.append(Results(sc, records, summarise(records, runs, sc),
                           runs, sum(p.wall_s for p in parts), any(p.interrupted for p in parts),
                           tuple(e for p in parts for e in p.errors)))  # fmt: skip
    return out


def probed_twin(sc: Scenario, speeds: dict[str, HostSpeed], draws: int) -> list[Results]:
    """The twin with each policy run's edge and cloud at that run's probed host speed
    (a run without probes: as the plain twin)."""
    return twin_per_run(
        sc, lambda key: at_host_speed(sc, speeds[key]) if key in speeds else sc, draws
    )
