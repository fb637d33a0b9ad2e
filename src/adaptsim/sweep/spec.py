"""SWEEP.yaml: a base scenario and the axes to sweep it over, validated with pydantic.

A sweep file names a base scenario (a scenario YAML file, or the scenario inline)
and axes: trace files or folders of them, models, policies with parameter grids,
any scenario field by its dotted path (``repartition.pause_s``), and seeds. Every
field is documented in ``docs/sweep.md``. Problems are one :class:`UserError` line
naming the file and the field, like scenarios.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adaptsim.errors import UserError
from adaptsim.files import load_yaml
from adaptsim.simulator.scenario import plain_folder_name

__all__ = ["PolicyAxis", "SweepSpec", "TraceField", "TracesAxis", "read_sweep"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TraceField(StrEnum):
    """Which of the scenario's traces the trace files replace."""

    bandwidth_mbps = "bandwidth_mbps"
    edge_cpu_pct = "edge_cpu_pct"
    edge_mem_pct = "edge_mem_pct"


class TracesAxis(_Strict):
    """Trace files (or folders of them) that replace one trace of the base scenario.

    ``spec`` holds the other trace fields (``format``, ``scale``, ``end``, ...); where
    it is silent the base scenario's trace spec for ``field`` applies.
    """

    field: TraceField = TraceField.bandwidth_mbps
    files: Annotated[list[str], Field(min_length=1)]
    pattern: str = "*"
    spec: dict[str, Any] = {}


class PolicyAxis(_Strict):
    """A policy, its fixed ``params`` and a ``grid`` of parameter values to sweep."""

    policy: str
    label: str | None = None
    params: dict[str, Any] = {}
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}

    @field_validator("grid")
    @classmethod
    def _grid_apart(cls, grid, info):
        both = set(grid) & set(info.data.get("params", {}))
        if both:
            raise ValueError(f"{sorted(both)} given in both params and grid; keep one")
        return grid


_Replicate = Annotated[int, Field(ge=0)]


class SweepSpec(_Strict):
    name: str
    description: str = ""
    base: str | dict[str, Any]
    seed: Annotated[int, Field(ge=0)] = 0
    seeds: (
        Annotated[int, Field(ge=1)]
        | Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
    ) = 1
    traces: TracesAxis | Annotated[list[TracesAxis], Field(min_length=1)] | None = None
    models: Annotated[list[str], Field(min_length=1)] | None = None
    policies: Annotated[list[PolicyAxis], Field(min_length=1)] | None = None
    fields: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        return plain_folder_name(name, "sweeps-out")

    @field_validator("fields")
    @classmethod
    def _fields_free(cls, fields):
        for path in fields:
            top = path.split(".")[0]
            if top in ("name", "model", "policies", "seeds", "calibration"):
                raise ValueError(
                    f"{path!r} cannot be swept as a field; use the sweep's own "
                    "models/policies/seeds axes (calibration: one per sweep, in the base)"
                )
        return fields

    def trace_axes(self) -> list[TracesAxis]:
        if self.traces is None:
            return []
        return self.traces if isinstance(self.traces, list) else [self.traces]

    def replicate_ids(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def replicates(self) -> int:
        """How many replicates (seeds per cell and policy), without listing them."""
        return self.seeds if isinstance(self.seeds, int) else len(self.seeds)


def _yaml(path: Path, what: str) -> Any:
    return load_yaml(path, what)  # one line with the line number; a key given twice refused


def read_sweep(path: str | Path) -> tuple[SweepSpec, dict, Path]:
    """Read and validate a sweep file; returns (spec, base scenario document, base folder)."""
    p = Path(path)
    doc = _yaml(p, "sweep file")
    if not isinstance(doc, dict):
        raise UserError(f"{p}: a sweep is a YAML mapping of fields (name, base, axes)")
    try:
        spec = SweepSpec.model_validate(doc)
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise UserError(f"{p}: field {loc}: {e['msg']}{more}") from None
    if isinstance(spec.base, dict):
        return spec, dict(spec.base), p.parent
    base_path = Path(spec.base)
    base_path = base_path if base_path.is_absolute() else p.parent / base_path
    if not base_path.is_file():
        raise UserError(f"{p}: field base: scenario {base_path} does not exist")
    base_doc = _yaml(base_path, "base scenario")
    if not isinstance(base_doc, dict):
        raise UserError(f"{base_path}: a scenario is a YAML mapping of fields")
    return spec, base_doc, base_path.parent
