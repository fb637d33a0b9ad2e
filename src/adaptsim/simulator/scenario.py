"""Scenarios: YAML -> defaults -> validation (cross-file too) -> frozen objects.

Every field is documented in ``scenarios/README.md``. Loading validates the YAML
with pydantic, reads the traces, loads the calibration and checks they fit
together (the calibration has the model; stress traces stay within its measured
levels; static points exist). Any problem is one :class:`UserError` line naming
the file and the field. The simulator itself never reads files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adaptsim.calibration import DEFAULT_CALIBRATION, ModelCalibration, load_calibration
from adaptsim.errors import UserError
from adaptsim.simulator.traces import End, Trace, TraceFormat, read_trace

__all__ = ["ArrivalKind", "Scenario", "load_scenario", "scenario_from_dict"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    pause_s: Annotated[float, Field(ge=0)] = 0.0


class ObserveSpec(_Strict):
    period_s: Annotated[float, Field(gt=0)] = 1.0
    delay_s: Annotated[float, Field(ge=0)] = 0.0
    noise: Annotated[float, Field(ge=0)] = 0.0


class ServiceSpec(_Strict):
    noise: bool = True


class PolicySpec(_Strict):
    policy: str
    label: str | None = None
    params: dict[str, Any] = {}


class ScenarioSpec(_Strict):
    name: str
    description: str = ""
    model: str
    calibration: str = DEFAULT_CALIBRATION
    duration_s: Annotated[float, Field(gt=0)]
    arrivals: ArrivalsSpec
    deadline_s: Annotated[float, Field(gt=0)]
    one_way_latency_s: Annotated[float, Field(ge=0)] = 0.0
    cloud: CloudSpec = CloudSpec()
    traces: TracesSpec
    repartition: RepartitionSpec = RepartitionSpec()
    observe: ObserveSpec = ObserveSpec()
    service: ServiceSpec = ServiceSpec()
    policies: Annotated[list[PolicySpec], Field(min_length=1)]
    seeds: Annotated[list[int], Field(min_length=1)] = [0]


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

    def shortened(self, duration_s: float, seeds: tuple[int, ...] | None = None) -> Scenario:
        """The same scenario over a shorter time (and optionally fewer seeds), for tests."""
        return replace(self, duration_s=min(duration_s, self.duration_s), seeds=seeds or self.seeds)


def _trace(spec: TraceSpec, base: Path, field: str, source: str) -> Trace:
    label = spec.label
    if spec.constant is not None:
        t = Trace.constant(spec.constant)
    elif spec.steps is not None:
        t = Trace.steps(spec.steps, spec.end, where_=f"{source}: traces.{field}.steps")
    else:
        path = Path(spec.file)
        path = path if path.is_absolute() else base / path
        t = read_trace(
            path,
            spec.format,
            end=spec.end,
            time_column=spec.time_column,
            value_column=spec.value_column,
            bin_ms=spec.bin_ms,
        )
    t = t.scaled(spec.scale) if spec.scale != 1.0 else t
    if label:
        t = Trace(t.times, t.values, t.duration_s, t.end, label)
    return t


def _pydantic_line(exc: ValidationError, source: str) -> str:
    e = exc.errors()[0]
    loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{source}: field {loc}: {e['msg']}{more}"


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
        cache[cal_path] = load_calibration(None if cal_path == DEFAULT_CALIBRATION else cal_path)
    cal = cache[cal_path]
    if spec.model not in cal.models:
        raise UserError(
            f"{source}: field model: {spec.model!r} is not in calibration "
            f"{spec.calibration}; it calibrates {', '.join(sorted(cal.models))}"
        )
    m = cal.models[spec.model]
    traces = {
        f: _trace(getattr(spec.traces, f), base, f, source)
        for f in ("bandwidth_mbps", "edge_cpu_pct", "edge_mem_pct")
    }
    _within(traces["edge_cpu_pct"].values, m.edge_blocks.cpu_levels, "traces.edge_cpu_pct", source)
    _within(traces["edge_mem_pct"].values, m.edge_blocks.mem_levels, "traces.edge_mem_pct", source)
    _within([spec.cloud.cpu_pct], m.cloud_blocks.cpu_levels, "cloud.cpu_pct", source)
    _within([spec.cloud.mem_pct], m.cloud_blocks.mem_levels, "cloud.mem_pct", source)
    if traces["bandwidth_mbps"].end is End.loop and max(traces["bandwidth_mbps"].values) <= 0:
        raise UserError(
            f"{source}: field traces.bandwidth_mbps: the trace is zero throughout; "
            "no transfer could ever finish"
        )
    from adaptsim.simulator.policies import resolve_policy  # the registry checks names/params

    for i, p in enumerate(spec.policies):
        resolve_policy(p, m, where=f"{source}: field policies.{i}", base_dir=base)
    return Scenario(
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
    )


def _within(values, levels, field: str, source: str) -> None:
    lo, hi = float(min(levels)), float(max(levels))
    bad = [v for v in values if v < lo - 1e-9 or v > hi + 1e-9]
    if bad:
        raise UserError(
            f"{source}: field {field}: value {bad[0]:g} lies outside the calibrated "
            f"levels {lo:g}..{hi:g}; adaptsim does not extrapolate stress"
        )


def load_scenario(path: str | Path) -> Scenario:
    """Read, validate and resolve a scenario YAML file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"scenario {p} does not exist")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{p}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return scenario_from_dict(doc, str(p), p.parent)
