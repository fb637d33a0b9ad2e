"""Scenarios: YAML -> defaults -> validation (cross-file too) -> frozen objects.

Every field is documented in ``scenarios/README.md``. Loading validates the YAML
with pydantic, reads the traces, loads the calibration and checks they fit
together (the calibration has the model; stress traces stay within its measured
levels; static points exist). Any problem is one :class:`UserError` line naming
the file and the field. The simulator itself never reads files.

What a run would cost is bounded before it starts (``limits``): the frames over
all runs, the decisions and monitor readings of one run, and the trace steps it
would record; a scenario over a limit is refused with the estimated size and the
field that raises the limit, rather than ending in a MemoryError.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, get_args

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from adaptsim.calibration import DEFAULT_CALIBRATION, ModelCalibration, load_calibration
from adaptsim.errors import UserError
from adaptsim.files import FileKind, input_file, kind_of, load_yaml, read_text
from adaptsim.simulator.admission import UNBOUNDED, Admission, Drop
from adaptsim.simulator.hedge import Hedge
from adaptsim.simulator.traces import (
    MAX_TIME_S,
    MAX_TRACE_STEPS,
    MAX_VALUE,
    End,
    Trace,
    TraceFormat,
    read_trace,
)

__all__ = [
    "ArrivalKind",
    "Belief",
    "Scenario",
    "check_limits",
    "load_scenario",
    "plain_folder_name",
    "refuse_admission",
    "refuse_hedge",
    "scenario_from_dict",
]


def _has_bool(value) -> bool:
    if isinstance(value, bool):
        return True
    return isinstance(value, (list, tuple)) and any(_has_bool(v) for v in value)


def _leaf_types(tp) -> set:
    """The plain types an annotation is built of (``float | None`` -> {float, NoneType})."""
    args = get_args(tp)
    if not args:
        return {tp} if isinstance(tp, type) else set()
    return set().union(*(_leaf_types(a) for a in args))


def _wants_number(tp) -> bool:
    """Whether a field takes numbers but not true/false (a bool would be read as 0 or 1)."""
    leaves = _leaf_types(tp)
    return bool(leaves & {int, float}) and bool not in leaves


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value, info):
        """pydantic reads true as 1: ``duration_s: yes`` would run for one second."""
        if _wants_number(cls.model_fields[info.field_name].annotation) and _has_bool(value):
            raise ValueError(
                "true/false where a number belongs (YAML reads yes/no/on/off as true/false); "
                "give a number"
            )
        return value


# YAML 1.2 floats that PyYAML (YAML 1.1) reads as strings: an exponent without a dot.
_YAML12_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
# A scenario's name becomes a folder under results/: one plain path component.
_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$"


def plain_folder_name(name: str, parent: str) -> str:
    """``name`` if it is one plain folder name (it becomes ``parent/NAME``), else a
    ValueError saying so: no ``/``, no ``..``, not empty, at most 120 characters."""
    if not re.match(_NAME, name) or len(name) > 120:
        raise ValueError(
            f"{name!r} must be one plain folder name (letters, digits, _ . + -; "
            f"no '/' or '..'): results go to {parent}/NAME"
        )
    return name


class ArrivalKind(StrEnum):
    periodic = "periodic"
    poisson = "poisson"


class ArrivalsSpec(_Strict):
    kind: ArrivalKind = ArrivalKind.periodic
    rate_hz: Annotated[float, Field(gt=0)]


class TraceSpec(_Strict):
    constant: Annotated[float, Field(ge=0)] | None = None
    steps: list[tuple[float, float]] | None = None
    file: str | None = None
    format: TraceFormat = TraceFormat.two_column
    scale: Annotated[float, Field(gt=0)] = 1.0
    end: End = End.loop
    time_column: str = "time_s"
    value_column: str | None = None
    bin_ms: Annotated[int, Field(gt=0)] = 100
    label: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _a_number_is_a_constant(cls, data):
        """``bandwidth_mbps: 25`` is short for ``bandwidth_mbps: {constant: 25}``."""
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return {"constant": data}
        return data

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in ("constant", "steps", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of constant, steps or file")
        if self.steps is not None and not self.steps:
            raise ValueError("steps must not be empty")
        return self


class TracesSpec(_Strict):
    bandwidth_mbps: TraceSpec
    edge_cpu_pct: TraceSpec = TraceSpec(constant=0.0)
    edge_mem_pct: TraceSpec = TraceSpec(constant=0.0)


class CloudSpec(_Strict):
    servers: Annotated[int, Field(ge=1)] = 1
    cpu_pct: Annotated[float, Field(ge=0)] = 0.0
    mem_pct: Annotated[float, Field(ge=0)] = 0.0


class RepartitionSpec(_Strict):
    pause_s: Annotated[float, Field(ge=0, le=MAX_TIME_S)] = 0.0


class ObserveSpec(_Strict):
    period_s: Annotated[float, Field(gt=0, le=MAX_TIME_S)] = 1.0
    delay_s: Annotated[float, Field(ge=0, le=MAX_TIME_S)] = 0.0
    noise: Annotated[float, Field(ge=0, le=10)] = 0.0  # log-normal sigma


class ServiceSpec(_Strict):
    noise: bool = True


class PolicySpec(_Strict):
    policy: str
    label: str | None = None
    params: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _a_name_is_a_policy(cls, data):
        """``- oracle`` in the list is short for ``- {policy: oracle}``."""
        return {"policy": data} if isinstance(data, str) else data

    @field_validator("params")
    @classmethod
    def _yaml12_numbers(cls, params: dict[str, Any]) -> dict[str, Any]:
        """``5e-1`` is a number in YAML 1.2; PyYAML reads it as a string: make it one."""
        return {
            k: float(v) if isinstance(v, str) and _YAML12_FLOAT.match(v.strip()) else v
            for k, v in params.items()
        }


class QueueLimitSpec(_Strict):
    """The most frames that may wait at each stage (left out: unbounded)."""

    edge: Annotated[int, Field(ge=0)] | None = None
    uplink: Annotated[int, Field(ge=0)] | None = None
    cloud: Annotated[int, Field(ge=0)] | None = None


class AdmissionSpec(_Strict):
    drop: Drop = Drop.never
    queue_limit: QueueLimitSpec = QueueLimitSpec()


class HedgePath(StrEnum):
    edge = "edge"
    cloud = "cloud"
    either = "either"


class HedgeSpec(_Strict):
    """Race each frame of a practical policy on a second path (simulator/hedge.py)."""

    path: HedgePath
    gate: bool = True


class LimitsSpec(_Strict):
    """Bounds on what a run may cost, checked before it starts (raise them here)."""

    max_frames: Annotated[int, Field(ge=1)] = 2_000_000  # over all policies x seeds
    max_decisions: Annotated[int, Field(ge=1)] = 1_000_000  # per run: decisions, readings
    max_trace_steps: Annotated[int, Field(ge=1)] = MAX_TRACE_STEPS  # per trace, over the run
    # faster is a unit mistake (a trace in bit/s or bytes/s read as Mbit/s), not a link
    max_bandwidth_mbps: Annotated[float, Field(gt=0)] = 100_000.0


class ScenarioSpec(_Strict):
    name: str
    description: str = ""
    model: str
    calibration: str = DEFAULT_CALIBRATION
    duration_s: Annotated[float, Field(gt=0, le=MAX_TIME_S)]
    arrivals: ArrivalsSpec
    deadline_s: Annotated[float, Field(gt=0, le=MAX_TIME_S)]
    one_way_latency_s: Annotated[float, Field(ge=0, le=MAX_TIME_S)] = 0.0
    cloud: CloudSpec = CloudSpec()
    traces: TracesSpec
    repartition: RepartitionSpec = RepartitionSpec()
    observe: ObserveSpec = ObserveSpec()
    service: ServiceSpec = ServiceSpec()
    policies: Annotated[list[PolicySpec], Field(min_length=1)]
    seeds: Annotated[list[Annotated[int, Field(ge=0, lt=2**63)]], Field(min_length=1)] = [0]
    limits: LimitsSpec = LimitsSpec()
    admission: AdmissionSpec = AdmissionSpec()
    hedge: HedgeSpec | None = None

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        return plain_folder_name(name, "results")

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds repeat; give each seed once")
        return seeds


_DEFAULT_LIMITS = LimitsSpec()
MIN_RATE_MBPS = 1e-6  # a slower positive rate is zero or a unit mistake (and breaks float sums)


@dataclass(frozen=True)
class Belief:
    """What the policies predict with, where it is not the world.

    A validation twin with a fold-back (:mod:`adaptsim.testbed.foldback`) simulates
    a world adjusted to what a real run measured, but the real run's policies
    decided with the calibration and switch cost they were given: its twin's
    policies must decide with those too, or the twin scores other decisions than
    the real run made (mpc on ``combined``, docs/validation.md). The oracle's
    look-ahead still sees the world.

    The conditions too: a real run's monitor reads the traces as written (the
    testbed's :class:`~adaptsim.simulator.monitor.Monitor` over the scenario), while
    the real conditions come into place late (``FoldBack.*_lag_s``); a twin whose
    world follows them late keeps the traces as written in ``traces``, for its
    monitor, its deployment decision and its records' conditions at arrival.
    """

    model: ModelCalibration  # the calibration the policies predict with
    pause_s: float  # the switch cost they count on
    # (bandwidth, edge CPU, edge memory) as the monitor reads them; None: the world's
    traces: tuple[Trace, Trace, Trace] | None = None


@dataclass(frozen=True)
class Scenario:
    """A validated scenario, ready to simulate (no file access needed)."""

    name: str
    description: str
    source: str
    model: ModelCalibration
    calibration_name: str
    duration_s: float
    arrival_kind: ArrivalKind
    rate_hz: float
    deadline_s: float
    one_way_latency_s: float
    cloud_servers: int
    cloud_cpu_pct: float
    cloud_mem_pct: float
    bandwidth: Trace
    edge_cpu: Trace
    edge_mem: Trace
    pause_s: float
    observe_period_s: float
    observe_delay_s: float
    observe_noise: float
    service_noise: bool
    policies: tuple[PolicySpec, ...]
    seeds: tuple[int, ...]
    base_dir: str = "."
    limits: LimitsSpec = _DEFAULT_LIMITS
    admission: Admission = UNBOUNDED
    # Which stream of service noise a seed draws: 0 is the seed's own; k > 0 redraws
    # only the per-frame service noise (arrivals and monitor noise stay the seed's),
    # as the validation twin's extra noise draws do (adaptsim.testbed.twin).
    noise_stream: int = 0
    # What every policy's View predicts with when it differs from ``model`` and
    # ``pause_s`` (a folded-back validation twin: static-best too, so it keeps the real
    # run's point; only the oracle's look-ahead sees the world); None: the world.
    belief: Belief | None = None
    # The cloud slowed by the edge's own load where the two share a machine (a 2-core
    # testbed: the edge's stress-ng beside the cloud's core): (edge CPU stress %, factor)
    # pairs, the cloud stage's seconds times the factor at the edge CPU stress in force
    # when the stage starts (interpolated between the levels, the nearest held beyond);
    # empty: 1. Set by a validation fold-back (adaptsim.testbed.foldback), not by YAML.
    cloud_scale_by_edge_cpu: tuple[tuple[float, float], ...] = ()
    # The host's speed as a function of time, (edge, cloud) multipliers: each frame's
    # edge and cloud service seconds times the trace's value at the frame's arrival
    # (drawn with its service noise: adaptsim.simulator.draws). None: 1. Set by a
    # validation twin from the host-speed probes of a real run
    # (adaptsim.testbed.speed_track), not by YAML.
    host_speed: tuple[Trace, Trace] | None = None
    # Race each frame of every non-clairvoyant policy on a second path (the ``hedge`` key,
    # adaptsim.simulator.hedge); None: one path per frame, the records as they always were.
    hedge: Hedge | None = None

    def seen_traces(self) -> tuple[Trace, Trace, Trace]:
        """(bandwidth, edge CPU, edge memory) as the policies' monitor reads them: the
        belief's where it keeps them (a world whose conditions come late), else the world's."""
        if self.belief is not None and self.belief.traces is not None:
            return self.belief.traces
        return self.bandwidth, self.edge_cpu, self.edge_mem

    def cloud_factor(self, edge_cpu_pct: float) -> float:
        """The cloud's seconds factor at an edge CPU stress level (see
        ``cloud_scale_by_edge_cpu``; 1 without it)."""
        pairs = self.cloud_scale_by_edge_cpu
        if not pairs:
            return 1.0
        cpu, scale = zip(*pairs, strict=True)
        return float(np.interp(edge_cpu_pct, cpu, scale))

    def shortened(self, duration_s: float, seeds: tuple[int, ...] | None = None) -> Scenario:
        """The same scenario over a shorter time (and optionally fewer seeds), for tests."""
        return replace(self, duration_s=min(duration_s, self.duration_s), seeds=seeds or self.seeds)

    def overridden(
        self, duration_s: float | None = None, seeds: tuple[int, ...] | None = None
    ) -> Scenario:
        """The scenario with the command line's ``--duration`` / ``--seed``, validated.

        They go through the same rules as the YAML fields: a duration is a finite
        number of seconds > 0, and no longer than the scenario's (``--duration``
        shortens a run; edit ``duration_s`` to lengthen it); seeds are distinct
        integers >= 0. The limits are checked again for the new size.
        """
        out = self
        if duration_s is not None:
            d = float(duration_s)
            if not (math.isfinite(d) and d > 0):
                raise UserError(f"--duration {duration_s}: give a number of seconds > 0")
            if d > self.duration_s:
                raise UserError(
                    f"--duration {d:g} is longer than {self.source}'s duration_s "
                    f"{self.duration_s:g}; --duration only shortens a run (edit duration_s)"
                )
            out = replace(out, duration_s=d)
        if seeds:
            bad = [x for x in seeds if not 0 <= x < 2**63]
            if bad:
                raise UserError(f"--seed {bad[0]}: seeds are integers from 0 to 2**63 - 1")
            if len(set(seeds)) != len(seeds):
                raise UserError(f"--seed: seed {_first_repeat(seeds)} is given twice")
            out = replace(out, seeds=tuple(seeds))
        if out is not self:
            check_limits(out, "--duration/--seed")
        return out


def refuse_admission(sc: Scenario, what: str) -> None:
    """Refuse, in one line, a scenario whose admission rules or hedge ``what`` cannot
    carry out.

    The testbed's real processes queue every frame (no admission control), so a
    real run of a scenario that drops frames would not be the same experiment; nor
    can they race a frame on two paths (no cancellation, one transfer at a time).
    """
    refuse_hedge(sc, what)
    if sc.admission.active:
        raise UserError(
            f"{sc.source}: field admission ({sc.admission.describe()}): {what} keeps every "
            "frame; remove the admission block (or set drop: never and no queue_limit) "
            "to run it there"
        )


def refuse_hedge(sc: Scenario, what: str) -> None:
    """Refuse, in one line, a scenario that hedges where ``what`` cannot race a frame."""
    if sc.hedge is not None:
        raise UserError(
            f"{sc.source}: field hedge ({sc.hedge.describe()}): {what} cannot race a frame "
            "on two paths yet; remove the hedge block to run it there"
        )


def _first_repeat(values) -> object:
    seen = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    return None


def _trace(spec: TraceSpec, base: Path, field: str, source: str, limits: LimitsSpec) -> Trace:
    label = spec.label
    if spec.constant is not None:
        t = Trace.constant(spec.constant)
    elif spec.steps is not None:
        t = Trace.steps(spec.steps, spec.end, where_=f"{source}: traces.{field}.steps")
    else:
        path = Path(spec.file)
        path = path if path.is_absolute() else base / path
        input_file(path, f"{source}: field traces.{field}: trace file")
        t = read_trace(
            path,
            spec.format,
            end=spec.end,
            time_column=spec.time_column,
            value_column=spec.value_column,
            bin_ms=spec.bin_ms,
            max_steps=limits.max_trace_steps,
        )
    t = t.scaled(spec.scale) if spec.scale != 1.0 else t
    if max(t.values) > MAX_VALUE:
        raise UserError(
            f"{source}: field traces.{field}: value {max(t.values):g} (after scale "
            f"{spec.scale:g}) exceeds {MAX_VALUE:g}; check the units and scale"
        )
    tiny = [v for v in t.values if 0 < v < MIN_RATE_MBPS]
    if field == "bandwidth_mbps" and tiny:
        raise UserError(
            f"{source}: field traces.{field}: {tiny[0]:g} Mbit/s (after scale {spec.scale:g}) "
            f"is below {MIN_RATE_MBPS:g} Mbit/s (1 bit/s), too slow to carry a frame: write 0 "
            "for no link, or check the units and scale"
        )
    if field == "bandwidth_mbps" and max(t.values) > limits.max_bandwidth_mbps:
        raise UserError(
            f"{source}: field traces.{field}: {max(t.values):g} Mbit/s (after scale "
            f"{spec.scale:g}) is faster than {limits.max_bandwidth_mbps:g} Mbit/s: a trace in "
            "bit/s needs scale: 1e-6 (kbit/s: 1e-3, bytes/s: 8e-6); for a faster link raise "
            "limits.max_bandwidth_mbps"
        )
    if label:
        t = Trace(t.times, t.values, t.duration_s, t.end, label)
    return t


def _pydantic_line(exc: ValidationError, source: str) -> str:
    # An unknown field first: a misspelt field (deadlin_s) also leaves the real one
    # missing, and "deadline_s: Field required" alone hid the typo that caused it.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    e = errors[0]
    loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    why = " (no such field: misspelt?)" if e["type"] == "extra_forbidden" else ""
    return f"{source}: field {loc}: {e['msg'].removeprefix('Value error, ')}{why}{more}"


def scenario_from_dict(
    doc: dict,
    source: str = "<scenario>",
    base_dir: Path | None = None,
    calibration_cache: dict | None = None,
) -> Scenario:
    """Validate a scenario document and resolve its traces and calibration."""
    if not isinstance(doc, dict):
        raise UserError(f"{source}: a scenario is a YAML mapping of fields")
    try:
        spec = ScenarioSpec.model_validate(doc)
    except ValidationError as exc:
        raise UserError(_pydantic_line(exc, source)) from None
    base = base_dir or Path(".")
    cal_path = spec.calibration
    if cal_path != DEFAULT_CALIBRATION and not Path(cal_path).is_absolute():
        cal_path = str(base / cal_path)
    cache = calibration_cache if calibration_cache is not None else {}
    if cal_path not in cache:
        cache[cal_path] = _calibration(cal_path, source)
    cal = cache[cal_path]
    if spec.model not in cal.models:
        raise UserError(
            f"{source}: field model: {spec.model!r} is not in calibration "
            f"{spec.calibration}; it calibrates {', '.join(sorted(cal.models))}"
        )
    m = cal.models[spec.model]
    _check_model(m, f"calibration {spec.calibration}, model {spec.model}")
    traces = {
        f: _trace(getattr(spec.traces, f), base, f, source, spec.limits)
        for f in ("bandwidth_mbps", "edge_cpu_pct", "edge_mem_pct")
    }
    _within(traces["edge_cpu_pct"].values, m.edge_blocks.cpu_levels, "traces.edge_cpu_pct", source)
    _within(traces["edge_mem_pct"].values, m.edge_blocks.mem_levels, "traces.edge_mem_pct", source)
    _within([spec.cloud.cpu_pct], m.cloud_blocks.cpu_levels, "cloud.cpu_pct", source)
    _within([spec.cloud.mem_pct], m.cloud_blocks.mem_levels, "cloud.mem_pct", source)
    if max(traces["bandwidth_mbps"].values) <= 0:
        raise UserError(
            f"{source}: field traces.bandwidth_mbps: the trace is zero throughout; "
            "no transfer could ever finish"
        )
    from adaptsim.simulator.policies import resolve_policy  # the registry checks names/params

    names: dict[str, int] = {}
    periods: list[float | None] = []
    for i, p in enumerate(spec.policies):
        at = f"{source}: field policies.{i}"
        policy = resolve_policy(p, m, where=at, base_dir=base)
        periods.append(_period(policy, at))
        name = str(policy.name)
        if name in names:
            raise UserError(
                f"{at}: policy name {name!r} is also policies.{names[name]}'s; "
                "give one of them a label"
            )
        names[name] = i
    sc = Scenario(
        name=spec.name,
        description=spec.description,
        source=source,
        model=m,
        calibration_name=spec.calibration,
        duration_s=spec.duration_s,
        arrival_kind=spec.arrivals.kind,
        rate_hz=spec.arrivals.rate_hz,
        deadline_s=spec.deadline_s,
        one_way_latency_s=spec.one_way_latency_s,
        cloud_servers=spec.cloud.servers,
        cloud_cpu_pct=spec.cloud.cpu_pct,
        cloud_mem_pct=spec.cloud.mem_pct,
        bandwidth=traces["bandwidth_mbps"],
        edge_cpu=traces["edge_cpu_pct"],
        edge_mem=traces["edge_mem_pct"],
        pause_s=spec.repartition.pause_s,
        observe_period_s=spec.observe.period_s,
        observe_delay_s=spec.observe.delay_s,
        observe_noise=spec.observe.noise,
        service_noise=spec.service.noise,
        policies=tuple(spec.policies),
        seeds=tuple(spec.seeds),
        base_dir=str(base),
        limits=spec.limits,
        admission=Admission(
            drop=spec.admission.drop,
            edge_limit=spec.admission.queue_limit.edge,
            uplink_limit=spec.admission.queue_limit.uplink,
            cloud_limit=spec.admission.queue_limit.cloud,
        ),
        hedge=None if spec.hedge is None else Hedge(spec.hedge.path.value, spec.hedge.gate),
    )
    ends = (m.kinds[0], m.kinds[-1]) if len(m.kinds) else ()
    if sc.hedge is not None and ends != ("all_cloud", "all_edge"):
        raise UserError(
            f"{source}: field hedge: model {spec.model} in {spec.calibration} has no "
            f"all-cloud and all-edge point at its ends (it has {', '.join(map(str, ends))}); "
            "a second path runs the whole model on one host: calibrate both ends, or remove "
            "the hedge"
        )
    if sc.hedge is not None and sc.admission.active:
        raise UserError(
            f"{source}: field hedge: racing with admission control ({sc.admission.describe()}) "
            "is not built (a drop would have to cancel one path, not the frame); remove the "
            "hedge or the admission block"
        )
    check_limits(sc, source, min((x for x in periods if x), default=None))
    return sc


def _calibration(path: str, source: str):
    """Load a scenario's calibration, recognising a file by its content first."""
    if path == DEFAULT_CALIBRATION:
        return load_calibration(None)
    what = f"{source}: field calibration:"
    kind = kind_of(path, what)
    if kind is FileKind.parquet:
        raise UserError(
            f"{what} {path} is a Parquet measurement store, not a calibration; build one "
            f"with `adaptsim calibrate {path} --out cal.json` and name cal.json here"
        )
    if kind is not FileKind.json:
        read_text(path, what)  # binary or not UTF-8: say so
        raise UserError(
            f"{what} {path} is not a JSON calibration (it does not start with '{{'); "
            "build one with `adaptsim calibrate`"
        )
    try:
        return load_calibration(path)
    except UnicodeDecodeError:
        read_text(path, what)
        raise
    except (KeyError, AttributeError, TypeError, ValueError, IndexError) as exc:
        raise UserError(
            f"{what} {path} is not a valid adaptsim calibration ({type(exc).__name__}: "
            f"{exc}); rebuild it with `adaptsim calibrate`"
        ) from None


def _check_model(m: ModelCalibration, where: str) -> None:
    """Every value of the calibration the simulator uses is finite and >= 0."""
    arrays = {
        "output_bytes": m.output_bytes,
        "edge blocks": m.edge_cum.values,
        "cloud blocks": m.cloud_cum.values,
        "link law": m.link.values,
    }
    for name, values in arrays.items():
        v = np.asarray(values, dtype=float)
        bad = ~np.isfinite(v) | (v < 0)
        if bad.any():
            raise UserError(
                f"{where}: {name} holds {v[bad][0]:g}; times and bytes must be finite and "
                ">= 0: rebuild the calibration with `adaptsim calibrate`"
            )
    for part, q in (m.spread or {}).items():
        probs = np.asarray(q.get("probs", []), dtype=float)
        rows = [("", q.get("log_ratio", []))]
        rows += [(f".by_point.{p}", r) for p, r in q.get("by_point", {}).items()]
        for name, row in rows:
            ratio = np.asarray(row, dtype=float)
            if (
                len(probs) != len(ratio)
                or not np.isfinite(ratio).all()
                or np.abs(ratio).max(initial=0.0) > 20
                or not np.isfinite(probs).all()
                or (np.diff(probs) < 0).any()
            ):
                raise UserError(
                    f"{where}: spread.{part}{name} is not a finite quantile table (probs "
                    "rising, log_ratio within +-20); rebuild the calibration with "
                    "`adaptsim calibrate`"
                )


def _period(policy, where: str) -> float | None:
    """A policy's decision period: ``None`` (every request) or a finite number > 0."""
    period = policy.period_s  # resolve_policy declared it (policies.conform)
    if period is None:
        return None
    ok = isinstance(period, numbers.Real) and not isinstance(period, bool)
    if not ok or not math.isfinite(period) or period <= 0:
        raise UserError(
            f"{where}: period_s {period!r} must be a number of seconds > 0 "
            "(or leave it out to decide at every request)"
        )
    return float(period)


def check_limits(sc: Scenario, source: str, period_s: float | None = None) -> None:
    """Refuse, up front, a run too big for memory (with the estimate and the limit): after
    loading, and again after anything that resizes a scenario (a command line's
    ``--duration``, ``--seed``, ``--rate-hz``, ``--time-scale``)."""
    lim = sc.limits
    runs = len(sc.policies) * len(sc.seeds)
    frames = sc.duration_s * sc.rate_hz * runs
    if frames > lim.max_frames:
        raise UserError(
            f"{source}: {sc.duration_s:g} s at {sc.rate_hz:g} frames/s x {runs} runs is about "
            f"{frames:.3g} frames (about {frames * 300 / 1e9:.3g} GB of records; limit "
            f"{lim.max_frames:g}): shorten duration_s or lower arrivals.rate_hz, "
            "or raise limits.max_frames"
        )
    if sc.cloud_servers > lim.max_frames:
        raise UserError(
            f"{source}: field cloud.servers: {sc.cloud_servers:g} servers (each held in memory) "
            f"are more than limits.max_frames ({lim.max_frames:g}) frames could ever use: "
            "give fewer servers"
        )
    readings = sc.duration_s / sc.observe_period_s
    if readings > lim.max_decisions:
        raise UserError(
            f"{source}: field observe.period_s: {sc.observe_period_s:g} s over "
            f"{sc.duration_s:g} s is {readings:.3g} monitor readings per run (limit "
            f"{lim.max_decisions:g}): lengthen the period or raise limits.max_decisions"
        )
    if period_s is not None and sc.duration_s / period_s > lim.max_decisions:
        raise UserError(
            f"{source}: a policy's period_s {period_s:g} s over {sc.duration_s:g} s is "
            f"{sc.duration_s / period_s:.3g} decisions per run (limit {lim.max_decisions:g}): "
            "lengthen period_s or raise limits.max_decisions"
        )
    for name, t in (
        ("bandwidth_mbps", sc.bandwidth),
        ("edge_cpu_pct", sc.edge_cpu),
        ("edge_mem_pct", sc.edge_mem),
    ):
        steps = len(t.times) * (sc.duration_s / t.duration_s + 1 if t.end is End.loop else 1)
        if steps > lim.max_trace_steps:
            raise UserError(
                f"{source}: field traces.{name}: {len(t.times)} steps looped over "
                f"{sc.duration_s:g} s are {steps:.3g} steps to record (limit "
                f"{lim.max_trace_steps:g}): shorten duration_s or raise limits.max_trace_steps"
            )


def _within(values, levels, field: str, source: str) -> None:
    lo, hi = float(min(levels)), float(max(levels))
    bad = [v for v in values if v < lo - 1e-9 or v > hi + 1e-9]
    if bad:
        raise UserError(
            f"{source}: field {field}: value {bad[0]:g} lies outside the calibrated "
            f"levels {lo:g}..{hi:g}; adaptsim does not extrapolate stress"
        )


def load_scenario(path: str | Path, calibration: str | Path | None = None) -> Scenario:
    """Read, validate and resolve a scenario YAML file (recognised by its content).

    ``calibration`` replaces the scenario's own (``run``/``validate --calibration``:
    the calibration of the hosts that really ran it).
    """
    p = input_file(path, "scenario")
    if kind_of(p, "scenario") is FileKind.parquet:
        raise UserError(f"scenario {p} is a Parquet file (a measurement store?), not YAML")
    doc = load_yaml(p, "scenario")
    if calibration is not None and isinstance(doc, dict):
        doc["calibration"] = str(input_file(calibration, "--calibration").resolve())
    return scenario_from_dict(doc, str(p), p.parent)
