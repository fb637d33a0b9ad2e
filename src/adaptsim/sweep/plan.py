"""A sweep expanded into cells and runs, each run's scenario built like any scenario.

A *cell* is one (trace, model, field values) combination: one scenario document,
the base scenario with that trace, model and fields set. A *run* is one policy
variant on one cell with one replicate's seed. Every cell is validated with
:func:`adaptsim.simulator.scenario_from_dict` when the plan is made (so a bad
value fails before anything runs, naming the cell), and every run's scenario is
the document :meth:`Plan.run_doc` gives: ``adaptsim run`` of that document gives
the same records.

Seeds: a run's seed is drawn from ``numpy.random.SeedSequence(sweep seed,
spawn_key=(hash(trace), hash(model), replicate))`` with a stable hash (BLAKE2b) of
the coordinate names and values. Policies and swept fields do not enter it: every
policy of a cell sees the same seeds (common random numbers, so comparisons are
paired), and adding a policy, trace, model or field value changes no other run.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from adaptsim.calibration import DEFAULT_CALIBRATION
from adaptsim.errors import UserError
from adaptsim.simulator import scenario_from_dict
from adaptsim.simulator.policies import default_name
from adaptsim.sweep.spec import PolicyAxis, SweepSpec, TracesAxis, read_sweep

__all__ = [
    "BASELINES",
    "MAX_RUNS",
    "NOT_ADAPTIVE",
    "Cell",
    "Plan",
    "Run",
    "Variant",
    "derive_seed",
    "load_plan",
    "make_plan",
]

BASELINES = ("static-best", "oracle")
# The most runs one sweep may plan (the shipped one has 3,840): the plan holds every run
# in memory, so a typo (``seeds: 1000000000``) is refused before it is expanded.
MAX_RUNS = 1_000_000
NOT_ADAPTIVE = frozenset(
    {"static", "all-edge", "all-cloud", "static-best", "oracle", "oracle-free", "oracle-race"}
)
_SKIP_NAMES = ("README",)


def _stable_hash(text: str) -> int:
    """A 32-bit hash of ``text`` that is the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "little")


def derive_seed(sweep_seed: int, trace: str, model: str, replicate: int) -> int:
    """The seed of every run of (trace, model) with this replicate number (< 2**63)."""
    key = (_stable_hash(f"trace={trace}"), _stable_hash(f"model={model}"), int(replicate))
    ss = np.random.SeedSequence(entropy=int(sweep_seed), spawn_key=key)
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


@dataclass(frozen=True)
class Variant:
    """One policy with one set of parameters (a point of its grid)."""

    label: str
    policy: str
    params: dict[str, Any]

    @property
    def adaptive(self) -> bool:
        return self.policy not in NOT_ADAPTIVE

    def spec(self) -> dict[str, Any]:
        return {"policy": self.policy, "label": self.label, "params": dict(self.params)}


@dataclass(frozen=True)
class Cell:
    """One (trace, model, field values) combination and its scenario document."""

    trace: str
    model: str
    fields: tuple[tuple[str, Any], ...]
    doc_json: str  # the scenario without policies and seeds; file paths absolute

    def describe(self) -> str:
        parts = [f"trace={self.trace}", f"model={self.model}"]
        parts += [f"{k}={v}" for k, v in self.fields]
        return ", ".join(parts)


@dataclass(frozen=True)
class Run:
    run_id: str
    cell: int
    variant: int
    replicate: int
    seed: int


@dataclass
class Plan:
    """Every run of a sweep, in a fixed order (model, trace, fields, replicate, policy)."""

    name: str
    source: str
    sweep_seed: int
    cells: list[Cell]
    variants: list[Variant]
    runs: list[Run]
    field_names: list[str]
    notes: list[str] = field(default_factory=list)

    def run_doc(self, run: Run) -> dict[str, Any]:
        """The run's own scenario document: ``adaptsim run`` of it gives the run's records."""
        doc = json.loads(self.cells[run.cell].doc_json)
        doc["policies"] = [self.variants[run.variant].spec()]
        doc["seeds"] = [run.seed]
        return doc

    def coordinates(self, run: Run) -> dict[str, Any]:
        cell, variant = self.cells[run.cell], self.variants[run.variant]
        out: dict[str, Any] = {
            "run_id": run.run_id,
            "trace": cell.trace,
            "model": cell.model,
            "policy": variant.label,
            "policy_name": variant.policy,
            "params": json.dumps(variant.params, sort_keys=True),
            "adaptive": variant.adaptive,
        }
        out.update({f: _scalar(v) for f, v in cell.fields})
        out["replicate"] = run.replicate
        out["seed"] = run.seed
        return out


def _scalar(value: Any) -> Any:
    """A field value as a table cell: numbers, strings and booleans as they are, lists
    and mappings (a swept trace's steps) as JSON text."""
    if value is None or isinstance(value, int | float | str | bool):
        return value
    return json.dumps(value, sort_keys=True)


def _absolute(path: str, base: Path) -> str:
    p = Path(path)
    return str(p if p.is_absolute() else (base / p).resolve())


def _absolute_policy(policy: str, base: Path) -> str:
    mod, sep, attr = policy.rpartition(":")
    if sep and mod.endswith(".py"):
        return f"{_absolute(mod, base)}:{attr}"
    return policy


def _absolute_doc(doc: dict, base: Path) -> dict:
    """The scenario document with every file it names made absolute (runs anywhere)."""
    doc = copy.deepcopy(doc)
    for spec in (doc.get("traces") or {}).values():
        if isinstance(spec, dict) and isinstance(spec.get("file"), str):
            spec["file"] = _absolute(spec["file"], base)
    cal = doc.get("calibration")
    if isinstance(cal, str) and cal != DEFAULT_CALIBRATION:
        doc["calibration"] = _absolute(cal, base)
    for p in doc.get("policies") or []:
        if isinstance(p, dict) and isinstance(p.get("policy"), str):
            p["policy"] = _absolute_policy(p["policy"], base)
    return doc


def _trace_files(axis: TracesAxis, sweep_dir: Path, source: str) -> list[tuple[str, Path]]:
    """(name, file) of every trace: a file is named by its file name, a file found in a
    folder by its path inside the folder (names are coordinates: they seed the runs)."""
    files: list[tuple[str, Path]] = []
    for entry in axis.files:
        p = Path(entry)
        p = p if p.is_absolute() else sweep_dir / p
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob(axis.pattern)
                if f.is_file() and not f.name.startswith((".", *_SKIP_NAMES))
            )
            if not found:
                raise UserError(
                    f"{source}: field traces.files: no file matching {axis.pattern!r} in {p}"
                )
            files.extend((f.relative_to(p).as_posix(), f) for f in found)
        elif p.is_file():
            files.append((p.name, p))
        else:
            raise UserError(f"{source}: field traces.files: {p} does not exist")
    return files


def _trace_docs(spec: SweepSpec, base_doc: dict, sweep_dir: Path, source: str):
    """(trace name, field, trace spec document) for every trace file of the sweep."""
    out = []
    for axis in spec.trace_axes():
        base_trace = ((base_doc.get("traces") or {}).get(axis.field.value)) or {}
        keep = {
            k: v
            for k, v in (base_trace.items() if isinstance(base_trace, dict) else [])
            if k not in ("constant", "steps", "file", "label")
        }
        for name, f in _trace_files(axis, sweep_dir, source):
            doc = {**keep, **axis.spec, "file": str(f.resolve()), "label": name}
            out.append((name, axis.field.value, doc))
    names = [n for n, _, _ in out]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise UserError(
            f"{source}: field traces: two trace files are named {dup}; rename one "
            "(names are the runs' coordinates)"
        )
    return out


def _set_path(doc: dict, dotted: str, value: Any, source: str) -> None:
    keys = dotted.split(".")
    node = doc
    for k in keys[:-1]:
        nxt = node.setdefault(k, {})
        if not isinstance(nxt, dict):
            raise UserError(f"{source}: field fields.{dotted}: {k} is not a mapping in the base")
        node = nxt
    node[keys[-1]] = value


def _variants(axes: list[PolicyAxis], sweep_dir: Path, notes: list[str], source: str):
    out: list[Variant] = []
    for axis in axes:
        names = list(axis.grid)
        for combo in itertools.product(*(axis.grid[n] for n in names)):
            grid = dict(zip(names, combo, strict=True))
            label = axis.label if axis.label is not None else default_name(axis.policy)
            if grid:
                label += "(" + ", ".join(f"{k}={v}" for k, v in grid.items()) + ")"
            policy = _absolute_policy(axis.policy, sweep_dir)
            out.append(Variant(label, policy, {**axis.params, **grid}))
    have = {v.policy for v in out}
    for b in reversed(BASELINES):
        if b not in have:
            out.insert(0, Variant(b, b, {}))
            notes.append(f"added the baseline policy {b} (gap closed needs it)")
    labels = [v.label for v in out]
    if len(set(labels)) != len(labels):
        dup = next(x for x in labels if labels.count(x) > 1)
        raise UserError(f"{source}: field policies: two policies are labelled {dup!r}; give labels")
    return out


def _check_size(
    spec: SweepSpec, axes: list[PolicyAxis], traces: int, models: int, source: str
) -> None:
    """Refuse a sweep of more than :data:`MAX_RUNS` runs, counted before any is listed."""
    variants = sum(math.prod(len(v) for v in axis.grid.values()) for axis in axes)
    variants += sum(b not in {a.policy for a in axes} for b in BASELINES)
    combos = math.prod(len(v) for v in spec.fields.values())
    parts = {
        "traces": traces,
        "models": models,
        "field combinations": combos,
        "policies": variants,
        "seeds": spec.replicates(),
    }
    runs = math.prod(parts.values())
    if runs > MAX_RUNS:
        product = " x ".join(f"{n:,} {what}" for what, n in parts.items())
        raise UserError(
            f"{source}: {runs:,} runs ({product}) is more than the {MAX_RUNS:,} one sweep may "
            "hold; split it into several sweeps or give fewer values"
        )


def _run_id(doc: dict) -> str:
    text = json.dumps(doc, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def make_plan(
    spec: SweepSpec, base_doc: dict, base_dir: Path, source: str, sweep_dir: Path
) -> Plan:
    """Expand the axes, validate every cell as a scenario and derive every run's seed."""
    notes: list[str] = []
    base = _absolute_doc(base_doc, base_dir)
    if spec.policies is None:
        try:
            axes = [PolicyAxis.model_validate(p) for p in base.get("policies") or []]
        except ValidationError:
            raise UserError(
                f"{source}: field base: its policies are not valid; check the base scenario "
                "with `adaptsim run --duration 1` or list policies in the sweep"
            ) from None
        if not axes:
            raise UserError(f"{source}: field policies: neither the sweep nor its base names any")
        policy_dir = base_dir
    else:
        axes, policy_dir = spec.policies, sweep_dir
    traces = _trace_docs(spec, base, sweep_dir, source)
    if not traces:
        bw = (base.get("traces") or {}).get("bandwidth_mbps") or {}
        label = bw.get("label") if isinstance(bw, dict) else None
        traces = [(label or "base", None, None)]
    models = spec.models or [base.get("model")]
    if len(set(map(str, models))) != len(models):
        dup = next(m for m in models if models.count(m) > 1)
        raise UserError(f"{source}: field models: {dup} is given twice; give each model once")
    replaced = {axis.field.value for axis in spec.trace_axes()}
    for name, values in spec.fields.items():
        keys = [*name.split("."), "", ""]
        whole = keys[2] in ("", "file", "constant", "steps")  # the trace, not a part of it
        if keys[0] == "traces" and keys[1] in replaced and whole:
            raise UserError(
                f"{source}: field fields.{name}: the traces axis already gives "
                f"traces.{keys[1]} (its files); sweep one or the other, or a part of "
                f"it such as traces.{keys[1]}.scale"
            )
        texts = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(texts)) != len(texts):
            dup = next(v for v, t in zip(values, texts, strict=True) if texts.count(t) > 1)
            raise UserError(
                f"{source}: field fields.{name}: {dup!r} is given twice; give each value once"
            )
    _check_size(spec, axes, len(traces), len(models), source)
    variants = _variants(axes, policy_dir, notes, source)
    base.pop("policies", None)
    base.pop("seeds", None)
    field_names = list(spec.fields)
    combos = list(itertools.product(*(spec.fields[f] for f in field_names)))
    cal_cache: dict = {}
    cells: list[Cell] = []
    runs: list[Run] = []
    replicates = spec.replicate_ids()
    for model in models:
        for trace_name, trace_field, trace_doc in traces:
            seeds = [derive_seed(spec.seed, trace_name, str(model), r) for r in replicates]
            for combo in combos:
                doc = copy.deepcopy(base)
                doc["model"] = model
                if trace_field is not None:
                    doc.setdefault("traces", {})[trace_field] = trace_doc
                fields = tuple(zip(field_names, combo, strict=True))
                for path, value in fields:
                    _set_path(doc, path, value, source)
                cell = Cell(trace_name, str(model), fields, json.dumps(doc, sort_keys=True))
                check = {**doc, "policies": [v.spec() for v in variants], "seeds": seeds}
                scenario_from_dict(
                    check, f"{source} (cell {cell.describe()})", Path("/"), cal_cache
                )
                cells.append(cell)
                ci = len(cells) - 1
                for r, seed in zip(replicates, seeds, strict=True):
                    for vi, v in enumerate(variants):
                        run_doc = {**doc, "policies": [v.spec()], "seeds": [seed]}
                        runs.append(Run(_run_id(run_doc), ci, vi, r, seed))
    return Plan(spec.name, source, spec.seed, cells, variants, runs, field_names, notes)


def load_plan(path: str | Path) -> Plan:
    """Read a sweep file and expand it into a validated plan."""
    p = Path(path)
    spec, base_doc, base_dir = read_sweep(p)
    return make_plan(spec, base_doc, base_dir, str(p), p.parent)
