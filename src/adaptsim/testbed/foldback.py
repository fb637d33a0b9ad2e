"""Folding what a real run measured back into the simulator's inputs.

A calibration from profiles cannot know what the real pipeline adds around the
compute it timed: the edge and cloud slowed by everything else on their cores
(Python threads, sockets, other users of a shared host), the per-frame cost of
serialising and sending beyond the probe's, the result's way back, and the real
cost of a switch. :func:`fit_foldback` measures these on one validation (real
records beside the twin's, frame by frame: the same arrivals and policies) and
:func:`apply_foldback` makes the adjusted scenario: edge and cloud block times
scaled, the link's per-message overhead raised, the way back added to the
cloud's per-point extra, ``pause_s`` set to the measured switch cost. Fit on
one run, score on another (another seed): never on the run you score. The
world changes, not what the policies know: the twin's policies still
predict with the calibration and switch cost the real run's policies were given
(:class:`~adaptsim.simulator.scenario.Belief`).

The edge's scale is also fitted per CPU stress level the run visited
(``edge_scale_by_cpu``; a frame's level: the stress really in place, by the run's
``applied`` log, when its edge stage started, as the folded twin applies it by its
world's level then; a run without the log: the trace's level at arrival): a
profile whose stressed rows were taken on a busier machine than the run's needs
one scale per level, not one for all (busy_edge's first ResNet50V2 edge rows
were: the real edge at 100 % stress took 0.60x their time and 1.05-1.09x at 0
and 50 %; re-profiled on the idle machine, the levels fit 0.97-1.07;
docs/validation.md). The cloud's scale is fitted per edge CPU
stress level too (``cloud_scale_by_cpu``): on a 2-core testbed the cloud shares
the machine with the edge's stress-ng (real / simulated cloud seconds x1.12-1.19
with no edge stress, x1.34 at edge CPU 100 % on ``combined``). A frame's level
is the edge CPU stress really in place (the run's ``applied`` log) when its
cloud stage started, and the engines apply the factor by the world's edge CPU
stress when the cloud stage starts (``Scenario.cloud_scale_by_edge_cpu``).

The conditions' own lag: the real conditions take effect after the trace's step
(a memory stressor is in place only once its bytes are resident: seconds; CPU
stress and tc are faster; stopping a stressor is fast), and the run's ``applied``
log says when. The median lag per kind and direction (``mem_up_lag_s`` for a
step to a higher memory stress, ``mem_down_lag_s`` to a lower one, the same for
``link`` and ``cpu``: applied time minus the step's time, in run seconds, i.e.
after ``--time-scale``; a step never in place before the run ended counts as in
place at its end) shifts the folded twin's world steps that much later
(:meth:`~adaptsim.simulator.traces.Trace.delayed`),
while its monitor still reads the traces as written, as the real run's monitor
does (it reads the trace, not the applied state): ``Belief.traces``.

Relative to the host's speed: where the fit run probed its host's speed around each
policy run (:mod:`~adaptsim.testbed.host_speed`), each real frame's edge and cloud
seconds are divided by its own run's host speed before the scales are fitted, so
``edge_scale``, ``cloud_scale`` and their per-level scales say what the pipeline
adds beyond the host's speed (``host_relative``). Applied to a run that probed its
host too, they are multiplied by that run's host speed, per policy run
(:meth:`FoldBack.at_host`, :func:`folded_twin`): a host whose speed drifts between
the fit run and the scored one (docs/validation.md) no longer carries the fit run's
speed into the scored run's twin. Applied to a run without probes, they are
multiplied by the fit run's own (median) host speed, which gives back about the
fold-back fitted without them. A fit run without probes fits as before.

One run does not make the fit (``centre``, ``validate --fold-centre``): the edge and
cloud scales (and per level), the link's overhead, the way back and the switch cost
are fitted on each policy run of the fit folder alone and their median across the
runs is taken (``median``; ``steady``, the default: the scales' median weighted by
1 / spread² of each run's host-speed probes, so a run whose host wandered, and whose
probes, taken only in idle gaps, missed its slowest moments, weighs little;
``trimmed``: their mean without the lowest and highest; ``pooled``: every frame pooled,
as before). Pooled, one disturbed run of five
moved the whole fit: norway_train_1's seed 1, whose reactive and neurosurgeon runs
something beyond the probes slowed, gave edge x1.22 and its folded seed 2 met 0 of 5
targets (docs/validation.md). Each run's own scales stay in the fold-back
(``run_scales``), relative to its host's speed where the fit is, and
:meth:`FoldBack.outliers` names those more than :data:`OUTLIER_PCT` % from the fit.

A fold-back written before a term existed (``fold_back`` in an older
``validation.json``) reads with that term's neutral default (:meth:`FoldBack.from_dict`).
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.errors import UserError
from adaptsim.simulator import Scenario
from adaptsim.simulator.scenario import Belief
from adaptsim.testbed.folder import HOW
from adaptsim.testbed.host_speed import HostSpeed, check_host_probes, host_speeds, probe_spread
from adaptsim.testbed.scenario import twin_scenario

__all__ = [
    "CENTRES",
    "FOLD_CENTRE",
    "FoldBack",
    "apply_foldback",
    "centre_of",
    "check_centre",
    "fit_foldback",
    "fold_back_facts",
    "folded_twin",
]


# how the policy runs' own fits make the fold-back (fit_foldback's ``centre``)
CENTRES = ("median", "steady", "trimmed", "pooled")
FOLD_CENTRE = "steady"
# a run whose own edge or cloud scale is this far from the fitted one is named in the notes
OUTLIER_PCT = 10.0
CENTRE_WORDS = {"median": "the median of", "pooled": "pooled over every frame of",
                "steady": "the median, weighted by how steady each run's host was, of",
                "trimmed": "the mean, without the lowest and highest, of"}  # fmt: skip
FOLD_NOTE = "fold-back fitted on"  # how its notes begin (a re-fold replaces them)


def check_centre(centre) -> str:
    """``--fold-centre``: one of :data:`CENTRES`."""
    if centre not in CENTRES:
        raise UserError(f"--fold-centre {centre!r}: give one of {', '.join(CENTRES)} "
                        f"(default {FOLD_CENTRE})")  # fmt: skip
    return centre


@dataclass(frozen=True)
class FoldBack:
    """What one validation measured beyond its calibration."""

    edge_scale: float  # real edge seconds / simulated, on the frames that compute there
    cloud_scale: float  # the same for the cloud's tails
    uplink_extra_s: float  # real minus simulated uplink seconds per frame (median)
    return_s: float  # the result's way back beyond the added latency (median)
    pause_s: float  # measured switch cost per re-partition (0 when none happened)
    frames: int  # finished real frames it was fitted on
    # (edge CPU stress %, real / simulated edge seconds) per level with enough frames
    edge_scale_by_cpu: tuple[tuple[float, float], ...] = ()
    # (edge CPU stress % in place when the cloud stage started, real / simulated cloud
    # seconds) per level with enough frames
    cloud_scale_by_cpu: tuple[tuple[float, float], ...] = ()
    # median seconds from a trace's step to its level really in place, per kind and
    # direction (up: to a higher level, a stressor starting; down: to a lower one)
    link_up_lag_s: float = 0.0
    link_down_lag_s: float = 0.0
    cpu_up_lag_s: float = 0.0
    cpu_down_lag_s: float = 0.0
    mem_up_lag_s: float = 0.0
    mem_down_lag_s: float = 0.0
    # the edge and cloud scales (and per level) are relative to the fit run's host speed
    # (each frame divided by its run's probed speed); the fit run's median host speed
    host_relative: bool = False
    fit_edge_speed: float = 1.0
    fit_cloud_speed: float = 1.0
    # how the runs' fits make one (CENTRES; an older file: pooled, as it was fitted), and
    # each policy run's own (edge, cloud) scale: ("policy/seed", edge or None, cloud or None)
    centre: str = "pooled"
    run_scales: tuple[tuple[str, float | None, float | None], ...] = ()

    def outliers(self, pct: float = OUTLIER_PCT) -> list[tuple[str, str, float, float]]:
        """(run, role, its own scale, the fitted scale) for each policy run whose own edge
        or cloud scale is more than ``pct`` % from the one fitted (the centre across the
        runs, or the pooled scale)."""
        out = []
        for key, *own in self.run_scales:
            for role, s, c in zip(("edge", "cloud"), own, (self.edge_scale, self.cloud_scale),
                                  strict=True):  # fmt: skip
                if s is not None and c > 0 and abs(s / c - 1) * 100 > pct:
                    out.append((key, role, s, c))
        return out

    def outlier_notes(self, source: str | Path) -> list[str]:
        """A line per run :meth:`outliers` names, for a validation's notes."""
        rel = " beyond its probed host speed" if self.host_relative else ""
        how = CENTRE_WORDS.get(self.centre, self.centre)
        held = ("pooled, it is in the fold-back" if self.centre == "pooled"
                else "the fold-back's centre holds against it")  # fmt: skip
        return [
            f"{FOLD_NOTE} {source}: run {key}'s own {role} scale x{s:.3g}{rel} is "
            f"{(s / c - 1) * 100:+.0f} % from the fold-back's x{c:.3g} ({self.centre}: {how} "
            f"the {len(self.run_scales)} runs' own): something beyond the model and the "
            f"probes slowed or sped that run; {held}"
            for key, role, s, c in self.outliers()
        ]

    def at_host(self, speed: HostSpeed | None) -> FoldBack:
        """The fold-back for a run at ``speed`` (its probed host speed; None: not probed):
        a host-relative fold-back's edge and cloud scales, and their per-level scales,
        times that speed (None, or a role not probed: the fit run's own); any other
        fold-back as it is."""
        if not self.host_relative:
            return self
        edge, cloud = self.fit_edge_speed, self.fit_cloud_speed
        if speed is not None:
            edge = speed.edge if speed.edge is not None else edge
            cloud = speed.cloud if speed.cloud is not None else cloud
        return replace(
            self,
            edge_scale=self.edge_scale * edge,
            cloud_scale=self.cloud_scale * cloud,
            edge_scale_by_cpu=tuple((c, s * edge) for c, s in self.edge_scale_by_cpu),
            cloud_scale_by_cpu=tuple((c, s * cloud) for c, s in self.cloud_scale_by_cpu),
            host_relative=False,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_dict(cls, d: dict) -> FoldBack:
        """A fold-back from its JSON (``to_json``, or ``fold_back`` in a validation.json:
        other keys such as ``from`` ignored); a term missing from an older file is its
        default (no lag, no per-level scale)."""
        if not isinstance(d, dict):
            raise UserError(f"field fold_back: not an object ({d!r})")
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        need = [f.name for f in fields(cls) if f.default is MISSING]
        for k in need:
            if k not in kw:
                raise UserError(f"field fold_back.{k}: missing")
        for k, v in kw.items():
            if k in ("edge_scale_by_cpu", "cloud_scale_by_cpu"):
                pairs = v or ()
                if not isinstance(pairs, list | tuple) or not all(
                    isinstance(e, list | tuple) and len(e) == 2 and all(_numeric(x) for x in e)
                    for e in pairs
                ):  # fmt: skip
                    raise UserError(f"field fold_back.{k}: not a list of [level, scale] "
                                    f"pairs of numbers ({v!r})")  # fmt: skip
                kw[k] = tuple((float(a), float(b)) for a, b in pairs)
            elif k == "centre":
                if v not in CENTRES:
                    raise UserError(f"field fold_back.{k}: {v!r}: give one of "
                                    f"{', '.join(CENTRES)}")  # fmt: skip
            elif k == "run_scales":
                kw[k] = _run_scales_of(v)
            elif k == "host_relative":  # JSON's true (a string "True" from a numpy bool once)
                if v not in (True, False, "True", "False"):
                    raise UserError(f"field fold_back.{k}: not true or false ({v!r})")
                kw[k] = v in (True, "True")
            elif not _numeric(v):
                raise UserError(f"field fold_back.{k}: not a number ({v!r})")
        return cls(**kw)


def _run_scales_of(v) -> tuple:
    """``run_scales`` from JSON: ``[["policy/seed", edge or null, cloud or null], ...]``."""
    rows = v or ()
    if not isinstance(rows, list | tuple) or not all(
        isinstance(e, list | tuple) and len(e) == 3 and isinstance(e[0], str)
        and all(x is None or _number(x) for x in e[1:]) for e in rows
    ):  # fmt: skip
        raise UserError(f"field fold_back.run_scales: not a list of [run, edge scale or null, "
                        f"cloud scale or null] ({v!r})")  # fmt: skip
    return tuple((e[0], *(None if x is None else float(x) for x in e[1:])) for e in rows)


def _ratio(real: pd.Series, sim: pd.Series) -> float:
    keep = (sim > 0) & np.isfinite(real)
    return float(real[keep].sum() / sim[keep].sum()) if keep.any() else 1.0


# Frames a stress level needs before it gets its own scale.
MIN_FRAMES_PER_LEVEL = 5


def _by_level(same: pd.DataFrame, level: str, part: str) -> tuple[tuple[float, float], ...]:
    """Real / simulated seconds of ``part`` (``edge_s``, ``cloud_s``) per value of the
    ``level`` column, over the frames that compute there."""
    if level not in same:
        return ()
    comp = same[(same[f"{part}_sim"] > 0) & np.isfinite(same[part])]
    out = []
    for cpu, g in comp.groupby(level):
        if len(g) >= MIN_FRAMES_PER_LEVEL:
            out.append((float(cpu), _ratio(g[part], g[f"{part}_sim"])))
    return tuple(out)


def _level_factor(cpu_levels, by_level: tuple, default: float) -> np.ndarray:
    """A per-level fit at ``cpu_levels``: interpolated between the levels the run visited
    and held beyond them; ``default`` everywhere without one."""
    if len(by_level) == 0:
        return np.full(len(cpu_levels), default)
    cpu, scale = (np.array(x, dtype=float) for x in zip(*by_level, strict=True))
    return np.interp(np.asarray(cpu_levels, dtype=float), cpu, scale)


# (kind: FoldBack fields ``<kind>_up_lag_s`` / ``<kind>_down_lag_s``, the trace it lags,
# its column in an ``applied`` entry (t, bw, cpu, mem))
LAG_KINDS = (("link", "bandwidth", 1), ("cpu", "edge_cpu", 2), ("mem", "edge_mem", 3))
_STEP_SLACK_S = 1e-3  # an applied time this much before its step still counts (rounding)


def step_lags(trace, applied: list, column: int, until_s: float) -> list[tuple[str, float]]:
    """(``up`` or ``down``, seconds) from each level-changing step of ``trace`` in ``(0,
    until_s]`` to the first entry of ``applied`` (``(t, bw, cpu, mem)``, time order) with
    that level, at or after the step and after the previous step's entry (the follower
    takes a kind's steps one after the other); ``up``: to a higher level.

    A step never seen in place (the run ended first: a memory stressor still making
    its bytes resident), and every step after it, counts as in place at ``until_s``
    (the run's duration: after every arrival), so the median is not biased towards
    the steps that did come in time. A column the run did not apply (all ``None``:
    the bandwidth with a remote cloud) gives none."""
    if all(e[column] is None for e in applied):
        return []
    lags, prev, j = [], trace.at(0.0), 0
    for t in sorted({b for b in trace.breakpoints(until_s) if b > 0}):
        level = trace.at(t)
        if level == prev:
            continue
        way, prev = ("up" if level > prev else "down"), level
        while j < len(applied) and not (
            applied[j][0] >= t - _STEP_SLACK_S
            and applied[j][column] is not None
            and abs(float(applied[j][column]) - level) <= 1e-9 * max(1.0, abs(level))
        ):
            j += 1
        at = float(applied[j][0]) if j < len(applied) else until_s
        lags.append((way, max(0.0, at - t)))
        j += 1
    return lags


def fit_lags(sc: Scenario, applied: dict) -> dict[str, float]:
    """Median lag per kind and direction over every run's ``applied`` log
    (``{"policy/seed": [(t, bw, cpu, mem), ...]}``) against ``sc``'s traces (the
    run's: time-scaled); 0 where no step was taken. Keys: the FoldBack fields."""
    out = {}
    for kind, trace, column in LAG_KINDS:
        lags = [x for log in applied.values()
                for x in step_lags(getattr(sc, trace), sorted(log, key=lambda e: e[0]), column,
                                   sc.duration_s)]  # fmt: skip
        for way in ("up", "down"):
            mine = [s for w, s in lags if w == way]
            out[f"{kind}_{way}_lag_s"] = float(np.median(mine)) if mine else 0.0
    return out


# the stage times before each stage of a real frame's, from its arrival
_BEFORE_EDGE = ("edge_wait_s",)
_BEFORE_CLOUD = ("edge_wait_s", "edge_s", "uplink_wait_s", "uplink_s", "cloud_wait_s")


def _applied_cpu_at(same: pd.DataFrame, facts: dict, before: tuple[str, ...]) -> pd.Series:
    """Per real frame: the edge CPU stress in place (the ``applied`` log) when one of its
    stages started: at arrival plus ``before`` (its stage times before that one); for
    the cloud stage plus the outward latency the cloud held it too
    (``clock.cloud_latency_s``, 0 where not recorded: ms against steps of seconds). The
    trace's level at arrival for a run without a log."""
    start = same["arrival_s"].to_numpy(dtype=float).copy()
    for c in before:
        start += same[c].to_numpy(dtype=float)
    level = same["edge_cpu_pct"].to_numpy(dtype=float).copy()
    keys = same["policy"].astype(str) + "/" + same["seed"].astype(str)
    for key in keys.unique():
        log = sorted(facts.get("applied", {}).get(key) or [], key=lambda e: e[0])
        if not log:
            continue
        rows = (keys == key).to_numpy()
        owl = 0.0
        if "cloud_wait_s" in before:
            owl = (facts.get("clock", {}).get(key) or {}).get("cloud_latency_s") or 0.0
        times = np.array([e[0] for e in log], dtype=float)
        cpus = np.array([np.nan if e[2] is None else e[2] for e in log], dtype=float)
        at = np.searchsorted(times, start[rows] + owl, side="right") - 1
        level[rows] = cpus[np.maximum(at, 0)]
    return pd.Series(level, index=same.index)


def _scaled(grid, factor: np.ndarray):
    """A stress grid with each CPU level's values times its factor."""
    shape = (-1,) + (1,) * (grid.values.ndim - 1)
    return replace(grid, values=grid.values * factor.reshape(shape))


def _number(x) -> bool:
    return _numeric(x) and math.isfinite(x)


def _numeric(x) -> bool:
    """A JSON number (NaN included, as Python writes it), not true/false."""
    return isinstance(x, int | float) and not isinstance(x, bool)


def _facts(path: Path) -> dict:
    """A validation folder's facts (``{}`` without the file), its ``applied`` log checked
    (per run, ``[t, bw, cpu, mem]`` entries: seconds, then a level or null): a file
    not as ``adaptsim validate`` wrote it is refused in one line."""
    if not path.is_file():
        return {}
    fix = "give a folder that `adaptsim validate --out` wrote"
    try:
        facts = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not JSON ({exc}); {fix}") from None
    if not isinstance(facts, dict):
        raise UserError(f"{path}: not a validation's facts (a JSON object); {fix}")
    applied = facts.get("applied") or {}
    if not isinstance(applied, dict):
        raise UserError(f"{path}: field applied: not a log per run ({{\"policy/seed\": "
                        f"[...]}}); {fix}")  # fmt: skip
    for key, log in applied.items():
        if not (isinstance(log, list) and all(
            isinstance(e, list) and len(e) == 4 and _number(e[0])
            and all(v is None or _number(v) for v in e[1:]) for e in log
        )):  # fmt: skip
            raise UserError(f"{path}: field applied.{key}: not a log of [t, bw, cpu, mem] "
                            f"entries (seconds, then a level or null); {fix}")  # fmt: skip
    check_host_probes(facts.get("host_speed"), str(path))
    return facts


def fit_foldback(
    folder: Path,
    simulated: pd.DataFrame | None = None,
    scenario: Scenario | None = None,
    *,
    host_speed: bool = True,
    pool: str | None = None,
    centre: str = FOLD_CENTRE,
) -> FoldBack:
    """Fit the fold-back on a validation folder (``adaptsim validate --out``).

    Args:
        folder: the validation folder whose real run is fitted.
        simulated: the twin's records to fit against, when the twin has changed
            since the run (a new calibration or model: the folder's saved twin is
            then stale, and a fold-back fitted on it would carry the old twin's
            error into the new one); default the folder's own ``simulated/``.
        scenario: the run's scenario, as its twin was simulated (its traces time the
            steps the lags are measured from); default rebuilt from the folder's
            ``validation.json`` (:func:`~adaptsim.testbed.scenario.twin_scenario`),
            only where the run logged conditions applied after t = 0 or probed its host.
        host_speed: False fits as before the probes (the scales absolute, carrying
            the fit run's host speed), for comparison.
        pool: how the probes give a run's speed (``run`` or ``seed``,
            :mod:`~adaptsim.testbed.speed_track`); default the folder's own
            ``probe_pool`` (``run`` for a folder written before it).
        centre: how the policy runs' fits make one (:data:`CENTRES`): ``median``
            fits the edge and cloud scales (and per level), the link overhead, the way
            back and the switch cost on each policy run alone and takes their median
            across the runs; ``steady`` (default) the same, the scales' median weighted
            by how steady each run's host-speed probes were (:func:`centre_of`; without
            probes: the median);
            ``trimmed`` their mean without the lowest and highest; ``pooled`` fits them
            over every frame pooled (as before: one disturbed run of five moved the
            whole fit, docs/validation.md).
            Each run's own scales are kept (``run_scales``), and
            :meth:`FoldBack.outliers` names the runs far from the centre.

    Where every policy run of the folder probed its host's speed, the scales are
    fitted on each frame's seconds divided by its run's host speed at the frame's
    arrival (against ``scenario``'s calibration): relative to the host's speed
    (``host_relative``).

    Where a lag is fitted, the scales are fitted against the twin simulated again
    with its world that late (``simulated`` and the saved twin are not): else the
    frames in a lag window (a stressor not yet in place, computed for real as
    without it) would count as the edge being faster than its profile at the
    trace's level, and the folded twin, late too, would have it twice.
    """
    real = pd.read_parquet(folder / "real" / "records.parquet")
    facts_path = folder / "validation.json"
    facts = _facts(facts_path)
    applied = facts.get("applied") or {}
    lags = {}
    if any(e[0] > 0 for log in applied.values() for e in log):  # steps to time
        if scenario is None:
            scenario = _scenario_of(folder, facts_path, "times the conditions' lag")
        lags = fit_lags(scenario, applied)
    if any(lags.values()):
        from adaptsim.simulator import run_scenario

        simulated = run_scenario(_late(scenario, **lags)).records
    sim = (
        simulated
        if simulated is not None
        else pd.read_parquet(folder / "simulated" / "records.parquet")
    )
    runs = pd.read_csv(folder / "real" / "summary.csv")
    check_centre(centre)
    key = ["policy", "seed", "request"]
    both = real.merge(sim, on=key, suffixes=("", "_sim"))
    both = both[np.isfinite(both["latency_s"])]
    same = both[both["point"] == both["point_sim"]]  # where both ran the same split
    same = same.assign(edge_level=_applied_cpu_at(same, facts, _BEFORE_EDGE),
                       cloud_level=_applied_cpu_at(same, facts, _BEFORE_CLOUD))  # fmt: skip
    probes = facts.get("host_speed") or {}
    speeds = {}
    if host_speed and probes:
        if scenario is None:
            scenario = _scenario_of(folder, facts_path, "its calibration prices the probes")
        speeds = host_speeds(probes, scenario.model, pool or facts.get("probe_pool", "run"))
    keys = _run_key(same)
    relative = bool(speeds) and len(same) > 0 and bool(keys.isin(list(speeds)).all())
    fit_speed = (1.0, 1.0)
    if relative:  # each frame's seconds at its own run's host speed, at its arrival
        edge_f, cloud_f = np.ones(len(same)), np.ones(len(same))
        for k in keys.unique():
            rows = (keys == k).to_numpy()
            edge_f[rows], cloud_f[rows] = speeds[k].at(same["arrival_s"].to_numpy()[rows])
        same = same.assign(edge_s=same["edge_s"] / edge_f, cloud_s=same["cloud_s"] / cloud_f)
        factors = {k: v.factors() for k, v in speeds.items()}
        runs_in = [factors[k] for k in keys.unique()]
        fit_speed = tuple(float(np.median([f[j] for f in runs_in])) for j in (0, 1))
    spreads = {}
    if relative:  # how steady each run's host was, from its probes
        spreads = {k: probe_spread(probes[k], scenario.model) for k in keys.unique()}
    scales = _run_scales(same)
    terms = (_pooled_terms(same, both, runs) if centre == "pooled"
             else _centred_terms(same, both, runs, centre, spreads, scales))  # fmt: skip
    return FoldBack(
        **terms,
        frames=len(both),
        **lags,
        host_relative=relative,
        fit_edge_speed=fit_speed[0],
        fit_cloud_speed=fit_speed[1],
        centre=centre,
        run_scales=scales,
    )


def _pooled_terms(same: pd.DataFrame, both: pd.DataFrame, runs: pd.DataFrame) -> dict:
    """The terms over every frame of the fit folder pooled (``centre`` ``pooled``: as
    before the per-run fit; a run with more, or slower, frames weighs more)."""
    reparts = runs["repartitions"].sum()
    return dict(
        edge_scale=_ratio(same["edge_s"], same["edge_s_sim"]),
        cloud_scale=_ratio(same["cloud_s"], same["cloud_s_sim"]),
        uplink_extra_s=float(np.median(same["uplink_s"] - same["uplink_s_sim"]))
        if len(same)
        else 0.0,
        return_s=float(both["return_s"].median()) if len(both) else 0.0,
        pause_s=float(runs["switching_s"].sum() / reparts) if reparts else 0.0,
        edge_scale_by_cpu=_by_level(same, "edge_level", "edge_s"),
        cloud_scale_by_cpu=_by_level(same, "cloud_level", "cloud_s"),
    )


def _run_key(frame: pd.DataFrame) -> pd.Series:
    return frame["policy"].astype(str) + "/" + frame["seed"].astype(str)


def _run_scales(same: pd.DataFrame) -> tuple[tuple[str, float | None, float | None], ...]:
    """Per policy run (``"policy/seed"``): its own (edge, cloud) scale, real / simulated
    seconds over its frames that compute there (relative to its host speed where the
    fit is); None where it has fewer than :data:`MIN_FRAMES_PER_LEVEL` such frames."""
    out = []
    for key, g in same.groupby(_run_key(same), sort=True):
        scales = []
        for part in ("edge_s", "cloud_s"):
            comp = g[(g[f"{part}_sim"] > 0) & np.isfinite(g[part])]
            ok = len(comp) >= MIN_FRAMES_PER_LEVEL
            scales.append(_ratio(comp[part], comp[f"{part}_sim"]) if ok else None)
        out.append((str(key), *scales))
    return tuple(out)


# the spread of a run's probes (IQR / median) below which a run counts as steady as any
SPREAD_FLOOR = 0.05


def centre_of(values, centre: str, spreads=None) -> float:
    """The centre of per-run values: ``median``; ``trimmed`` (the mean once the lowest
    and the highest are dropped, with 4 runs or more; the median below); ``steady``
    (the median weighted by 1 / spread² of each run's host-speed probes,
    :func:`~adaptsim.testbed.host_speed.probe_spread`, floored at :data:`SPREAD_FLOOR`;
    a run without a spread at the median spread; none known: the median)."""
    v = np.asarray(values, dtype=float)
    if centre == "steady" and spreads is not None:
        known = [s for s in spreads if s is not None]
        if known:
            fill = float(np.median(known))
            w = np.array([1.0 / max(fill if s is None else s, SPREAD_FLOOR) ** 2
                          for s in spreads])  # fmt: skip
            return _weighted_median(v, w)
    v = np.sort(v)
    if centre == "trimmed" and len(v) >= 4:
        return float(v[1:-1].mean())
    return float(np.median(v))


def _weighted_median(v: np.ndarray, w: np.ndarray) -> float:
    """The value where half the weight lies on either side (equal weights: the median)."""
    order = np.argsort(v)
    v, w = v[order], w[order]
    cum, half = np.cumsum(w), w.sum() / 2
    i = int(np.searchsorted(cum, half - 1e-12 * w.sum()))
    if abs(cum[i] - half) <= 1e-12 * w.sum() and i + 1 < len(v):
        return float((v[i] + v[i + 1]) / 2)
    return float(v[i])


def _centred_terms(same: pd.DataFrame, both: pd.DataFrame, runs: pd.DataFrame,
                   centre: str, spreads: dict, scales: tuple) -> dict:  # fmt: skip
    """The terms fitted on each policy run alone, then their centre across the runs
    (:func:`centre_of`; ``spreads``: per run its probes' (edge, cloud) spread, for
    ``steady``; ``scales``: each run's own, :func:`_run_scales`): one disturbed run
    among several does not move them."""

    def across(j: int) -> float:
        got = [(s[j], spreads.get(s[0], (None, None))[j - 1]) for s in scales
               if s[j] is not None]  # fmt: skip
        if not got:
            return 1.0
        values, spread = zip(*got, strict=True)
        return centre_of(values, centre, spread)

    def per_level(level: str, part: str) -> tuple[tuple[float, float], ...]:
        j = 0 if part == "edge_s" else 1
        levels: dict[float, list[tuple[float, float | None]]] = {}
        for key, g in same.groupby(_run_key(same)):
            for cpu, s in _by_level(g, level, part):
                levels.setdefault(cpu, []).append((s, spreads.get(key, (None, None))[j]))
        return tuple((cpu, centre_of([s for s, _ in v], centre, [w for _, w in v]))
                     for cpu, v in sorted(levels.items()))  # fmt: skip

    def per_run_median(frame: pd.DataFrame, values: pd.Series) -> float:
        meds = values.groupby(_run_key(frame)).median().dropna()
        return centre_of(meds, centre) if len(meds) else 0.0

    moved = runs[runs["repartitions"] > 0]
    pauses = moved["switching_s"] / moved["repartitions"]
    return dict(
        edge_scale=across(1),
        cloud_scale=across(2),
        uplink_extra_s=per_run_median(same, same["uplink_s"] - same["uplink_s_sim"]),
        return_s=per_run_median(both, both["return_s"]),
        pause_s=centre_of(pauses, centre) if len(pauses) else 0.0,
        edge_scale_by_cpu=per_level("edge_level", "edge_s"),
        cloud_scale_by_cpu=per_level("cloud_level", "cloud_s"),
    )


def _scenario_of(folder: Path, facts_path: Path, why: str) -> Scenario:
    """The run's scenario rebuilt from its facts, or one line saying why not."""
    try:
        return twin_scenario(folder)
    except UserError as exc:
        raise UserError(
            f"{facts_path}: the scenario it names {why}: {exc} "
            "(run from the folder the validation was run in, or correct its path there)"
        ) from None


def folded_twin(sc: Scenario, fb: FoldBack, speeds: dict[str, HostSpeed], draws: int) -> list:
    """The twin of ``sc`` with ``fb`` folded back, ``draws`` noise draws: a host-relative
    fold-back at each policy run's own host speed (``speeds``, the scored run's probes;
    over the run's time where it probed during the run; a run without: the fit run's
    speed), any other as one world for every run."""
    from adaptsim.testbed.host_speed import at_host_speed, twin_per_run
    from adaptsim.testbed.twin import twin_draws

    if not fb.host_relative or not speeds:
        return twin_draws(apply_foldback(sc, fb), draws)

    def world(key: str) -> Scenario:
        speed = speeds.get(key)
        if speed is None or not speed.varies:
            return apply_foldback(sc, fb.at_host(speed))
        # the scales relative to the host, then the run's speed at each frame's arrival
        # (a role it did not probe: the fit run's)
        unit = apply_foldback(sc, fb.at_host(HostSpeed(edge=1.0, cloud=1.0)))
        edge = speed.edge if speed.edge is not None else fb.fit_edge_speed
        cloud = speed.cloud if speed.cloud is not None else fb.fit_cloud_speed
        return at_host_speed(unit, replace(speed, edge=edge, cloud=cloud))

    return twin_per_run(sc, world, draws)


def apply_foldback(sc: Scenario, fb: FoldBack) -> Scenario:
    """The scenario with its calibration, switch cost and world adjusted by ``fb``.

    The model's cloud is scaled by the run's one ``cloud_scale``; where the run
    visited edge CPU levels with enough frames, the scenario's
    ``cloud_scale_by_edge_cpu`` carries each level's scale relative to it (so the
    cloud at a level is its fitted scale; the way back, folded into the cloud's
    extra, is scaled along: a few percent of half a millisecond). The world's
    conditions follow the traces ``*_lag_s`` late; the monitor reads them as written.
    A host-relative fold-back is applied at the fit run's own host speed here
    (:meth:`FoldBack.at_host`); :func:`folded_twin` applies it at each scored run's.
    """
    fb = fb.at_host(None)
    m = sc.model
    # the law's per-message overhead and the measured medians it is corrected to
    extra = max(fb.uplink_extra_s, -float(m.link.values[..., 0].min()))
    link_values = m.link.values.copy()
    link_values[..., 0] += extra
    cloud_extra = m.cloud_extra.values * fb.cloud_scale + fb.return_s

    def edge(grid):  # each calibrated CPU level's edge times by its fitted scale
        return _scaled(grid, _level_factor(grid.cpu_levels, fb.edge_scale_by_cpu, fb.edge_scale))

    model = replace(
        m,
        edge_blocks=edge(m.edge_blocks),
        edge_extra=edge(m.edge_extra),
        cloud_blocks=replace(m.cloud_blocks, values=m.cloud_blocks.values * fb.cloud_scale),
        cloud_extra=replace(m.cloud_extra, values=cloud_extra),
        link=replace(m.link, values=link_values),
        link_table=replace(m.link_table, values=m.link_table.values + extra),
        notes=(*m.notes, f"folded back: {asdict(fb)}"),
    )
    # the world changes; the practical policies still decide as the real run's did
    belief = sc.belief or Belief(model=m, pause_s=sc.pause_s)
    lags = {f.name: getattr(fb, f.name) for f in fields(fb) if f.name.endswith("_lag_s")}
    cloud_by_cpu = tuple((cpu, s / fb.cloud_scale) for cpu, s in fb.cloud_scale_by_cpu
                         if fb.cloud_scale > 0)  # fmt: skip
    world = replace(sc, model=model, pause_s=fb.pause_s, belief=belief,
                    cloud_scale_by_edge_cpu=cloud_by_cpu)  # fmt: skip
    return _late(world, **lags)


def _late(sc: Scenario, **lags: float) -> Scenario:
    """``sc`` with its world's conditions late by ``lags`` (FoldBack's ``*_lag_s``
    fields; missing: 0), its monitor still on the traces as written (``Belief.traces``)."""
    late = {trace: getattr(sc, trace).delayed(lags.get(f"{kind}_up_lag_s", 0.0),
                                              lags.get(f"{kind}_down_lag_s", 0.0), sc.duration_s)
            for kind, trace, _ in LAG_KINDS}  # fmt: skip
    if all(late[t] is getattr(sc, t) for t in late):
        return sc
    belief = sc.belief or Belief(model=sc.model, pause_s=sc.pause_s)
    if belief.traces is None:
        belief = replace(belief, traces=sc.seen_traces())  # the monitor reads them as written
    return replace(sc, belief=belief, **late)


def fold_back_facts(folder: str | Path, d) -> FoldBack:
    """The fold-back a folder's facts hold (``fold_back``), or one line naming the field."""
    path = Path(folder) / "validation.json"
    try:
        return FoldBack.from_dict(d)
    except UserError as exc:
        raise UserError(f"{path}: {exc}; {HOW}") from None
