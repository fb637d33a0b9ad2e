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
from adaptsim.simulator.traces import Trace

__all__ = [
    "MAX_PROBE_FRAMES",
    "PROBE_FRAMES",
    "HostSpeed",
    "at_host_speed",
    "check_host_probes",
    "check_probe_frames",
    "host_speeds",
    "predicted_probe_s",
    "probe_spread",
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
    (None: that role was not probed, e.g. a server without probe frames); with probes
    during the run, also as a function of the run's time (``*_steps``: ``(t_from,
    speed)``, :func:`~adaptsim.testbed.speed_track.speed_steps`; empty: ``edge`` /
    ``cloud`` at every time)."""

    edge: float | None
    cloud: float | None
    edge_probe_s: float | None = None  # the median probe
    cloud_probe_s: float | None = None
    edge_predicted_s: float = math.nan  # the calibration's, at no stress
    cloud_predicted_s: float = math.nan
    edge_steps: tuple[tuple[float, float], ...] = ()
    cloud_steps: tuple[tuple[float, float], ...] = ()

    def factors(self) -> tuple[float, float]:
        """(edge, cloud) multipliers: 1 for a role not probed."""
        return (1.0 if self.edge is None else self.edge, 1.0 if self.cloud is None else self.cloud)

    @property
    def varies(self) -> bool:
        """Does the speed follow the run's time (probes during the run)?"""
        return bool(self.edge_steps or self.cloud_steps)

    def at(self, t_s) -> tuple[np.ndarray, np.ndarray]:
        """(edge, cloud) multipliers at run times ``t_s`` (1 for a role not probed)."""
        from adaptsim.testbed.speed_track import speed_at

        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        edge, cloud = self.factors()
        return tuple(
            speed_at(steps, t) if steps else np.full(len(t), f)
            for steps, f in ((self.edge_steps, edge), (self.cloud_steps, cloud))
        )


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
        # probes during the run: a run time and (edge) the levels in place, per probe
        for name, role, what in (("t_s", "edge_s", "run times"),
                                 ("cloud_t_s", "cloud_s", "run times"),
                                 ("edge_cpu", "edge_s", "stress levels (%)"),
                                 ("edge_mem", "edge_s", "stress levels (%)")):  # fmt: skip
            v = p.get(name)
            if v is None:
                continue
            if not isinstance(v, list) or len(v) != len(p[role]) or not all(
                isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
                and x >= 0 for x in v
            ):  # fmt: skip
                raise UserError(f"{where}: field host_speed.{key}.{name}: not a list of "
                                f"{len(p[role])} {what} >= 0, one per {role} probe ({v!r}); "
                                f"{fix}")  # fmt: skip
    return probes


def _samples(p: dict, model, role: str, ends: bool = False) -> list[tuple[float | None, float]]:
    """A run's probes of ``role`` (``edge`` or ``cloud``) as (run time or None, measured /
    predicted): the edge's at the levels in place when it ran (``edge_cpu``,
    ``edge_mem``; none logged: no stress), the cloud's at no cloud stress. ``ends``:
    the probes before and after the run alone (none of those during it)."""
    from adaptsim.testbed.speed_track import edge_whole_s

    seconds = p.get(f"{role}_s") or []
    times = p.get("t_s" if role == "edge" else "cloud_t_s") or [None] * len(seconds)
    at = p.get("at" if role == "edge" else "cloud_at") or []
    at = at if len(at) == len(seconds) else [None] * len(seconds)  # not named: not during
    keep = [not (ends and a == "during") for a in at]
    if role == "cloud":
        pred = predicted_probe_s(model)[1]
        return [(t, s / pred) for t, s, k in zip(times, seconds, keep, strict=True) if k]
    cpu = p.get("edge_cpu") or [0.0] * len(seconds)
    mem = p.get("edge_mem") or [0.0] * len(seconds)
    cache: dict = {}
    out = []
    for t, s, c, m, k in zip(times, seconds, cpu, mem, keep, strict=True):
        if not k:
            continue
        if (c, m) not in cache:
            cache[(c, m)] = edge_whole_s(model, c, m)
        out.append((t, s / cache[(c, m)]))
    return out


def probe_spread(p: dict, model) -> tuple[float | None, float | None]:
    """How unsteady a policy run's host was, per role (edge, cloud): the interquartile
    range over the median of its probes' measured / predicted (each priced at the
    conditions it ran under), those during the run where it has 3 or more, else all of
    them; None for a role with fewer than 3 probes."""
    out = []
    for role in ("edge", "cloud"):
        got = _samples(p, model, role)
        at = (p.get("at") if role == "edge" else p.get("cloud_at")) or []
        during = [r for (_, r), a in zip(got, at, strict=False) if a == "during"]
        ratios = np.asarray(during if len(during) >= 3 else [r for _, r in got], dtype=float)
        if len(ratios) < 3:
            out.append(None)
            continue
        q1, med, q3 = np.percentile(ratios, [25, 50, 75])
        out.append(float((q3 - q1) / med) if med > 0 else None)
    return out[0], out[1]


def host_speeds(probes: dict, model, pool: str = "run") -> dict[str, HostSpeed]:
    """Per policy run (``"policy/seed"``): the host speed of ``probes`` (a validation's
    ``host_speed`` facts, checked) against ``model``'s predictions (the calibration
    the twin is given): per role the median of measured / predicted over its probes
    (each priced at the conditions it ran under: before and after a run, no stress);
    with probes during the run (``at`` "during", each with its run time ``t_s``) also
    a speed that follows the run's time
    (:func:`~adaptsim.testbed.speed_track.speed_steps`). ``pool`` "seed": every run of
    a seed at the one speed of all that seed's probes (a constant); ``ends``: each run
    at the median of its before and after probes alone (as without probes during it,
    for comparison on the same run)."""
    from adaptsim.testbed.speed_track import check_probe_pool, speed_steps

    check_probe_pool(pool)
    edge_pred, cloud_pred = predicted_probe_s(model)
    samples = {key: {role: _samples(p, model, role, pool == "ends") for role in ("edge", "cloud")}
               for key, p in probes.items()}  # fmt: skip
    if pool == "seed":  # every run of a seed: all its runs' probes
        by_seed: dict[str, dict] = {}
        for key, got in samples.items():
            mine = by_seed.setdefault(key.rsplit("/", 1)[-1], {"edge": [], "cloud": []})
            for role in ("edge", "cloud"):
                mine[role] += [(None, r) for _, r in got[role]]
        samples = {key: by_seed[key.rsplit("/", 1)[-1]] for key in samples}
    out = {}
    for key, p in probes.items():
        got = samples[key]
        speed, steps = {}, {}
        for role in ("edge", "cloud"):
            ratios = [r for _, r in got[role]]
            speed[role] = float(np.median(ratios)) if ratios else None
            timed = [(t, r) for t, r in got[role] if t is not None]
            during = (p.get("at") if role == "edge" else p.get("cloud_at")) or []
            varies = pool == "run" and "during" in during and len(timed) == len(ratios)
            steps[role] = speed_steps(timed) if varies else ()
        if speed["edge"] is None:  # ends: a run probed only during it
            continue
        edge = float(np.median(p["edge_s"])) if p.get("edge_s") else None
        cloud = float(np.median(p["cloud_s"])) if p.get("cloud_s") else None
        out[key] = HostSpeed(
            edge=speed["edge"],
            cloud=speed["cloud"],
            edge_probe_s=edge,
            cloud_probe_s=cloud,
            edge_predicted_s=edge_pred,
            cloud_predicted_s=cloud_pred,
            edge_steps=steps["edge"],
            cloud_steps=steps["cloud"],
        )
    return out


def record_speeds(probes: dict, speeds: dict[str, HostSpeed]) -> dict:
    """``probes`` (a run's ``host_speed`` facts) with each run's derived speeds beside its
    raw probes (``edge``, ``cloud``, the medians and the predictions), for the report."""
    for key, v in speeds.items():
        probes[key].update(edge=v.edge, cloud=v.cloud, edge_median_s=v.edge_probe_s,
                           cloud_median_s=v.cloud_probe_s, edge_predicted_s=v.edge_predicted_s,
                           cloud_predicted_s=v.cloud_predicted_s)  # fmt: skip
        if v.varies:  # the speed over the run's time, as the twin takes it
            probes[key].update(edge_speed_steps=[list(s) for s in v.edge_steps],
                               cloud_speed_steps=[list(s) for s in v.cloud_steps])  # fmt: skip
    return probes


def _times(grid, factor: float):
    return replace(grid, values=grid.values * factor)


def at_host_speed(sc: Scenario, speed: HostSpeed) -> Scenario:
    """``sc`` whose world computes at ``speed``: every edge time times its edge speed,
    every cloud time times its cloud speed; the link, the switch cost and what the
    policies predict with (:class:`Belief`) unchanged. A speed that follows the run's
    time (``speed.varies``) scales each frame's edge and cloud seconds by its value at
    the frame's arrival (``Scenario.host_speed``; a role without steps: its constant)."""
    edge, cloud = speed.factors()
    m = sc.model
    belief = sc.belief or Belief(model=m, pause_s=sc.pause_s)
    if speed.varies:
        from adaptsim.testbed.speed_track import speed_trace

        traces = tuple(
            speed_trace(steps, f"probed {role} speed") if steps else Trace.constant(f)
            for role, steps, f in (("edge", speed.edge_steps, edge),
                                   ("cloud", speed.cloud_steps, cloud))
        )  # fmt: skip
        return replace(sc, host_speed=traces, belief=belief)
    model = replace(
        m,
        edge_blocks=_times(m.edge_blocks, edge),
        edge_extra=_times(m.edge_extra, edge),
        cloud_blocks=_times(m.cloud_blocks, cloud),
        cloud_extra=_times(m.cloud_extra, cloud),
        notes=(*m.notes, f"at the probed host speed: edge x{edge:.4g}, cloud x{cloud:.4g}"),
    )
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
    (over the run's time where it probed during the run; a run without probes: as the
    plain twin)."""
    return twin_per_run(
        sc, lambda key: at_host_speed(sc, speeds[key]) if key in speeds else sc, draws
    )
