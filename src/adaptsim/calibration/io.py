"""A calibration's file: JSON written atomically, read with every value checked.

The simulator trusts what :func:`load_calibration` returns, so everything it
reads is checked here, once, with the file and the key named in one line: every
number finite and non-negative (stress levels, block times and extras, at most
:data:`MAX_BLOCK_S`, link laws and tables, output bytes, bandwidth levels
positive), every required key present
and of the right type, ordinals whole and increasing, and each part's spread a
proper quantile function (probabilities increasing in [0, 1], log ratios
non-decreasing and within :data:`MAX_LOG_SPREAD`). A file edited by hand to hold
a NaN, a negative time, a missing key or an absurd spread is refused before a
simulation can turn it into a wrong number.

The format (``format: adaptsim-calibration``, ``version: 4``) is described in
:mod:`adaptsim.calibration.model`; versions 1 to 3 are still read.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import NoReturn

import numpy as np

from adaptsim.atomic import write_atomic
from adaptsim.calibration.grid import StressGrid
from adaptsim.calibration.model import (
    DEFAULT_CALIBRATION,
    FORMAT,
    LINK_KEYS,
    LINK_PARAMS,
    STRESS_KEYS,
    VERSION,
    Calibration,
    ModelCalibration,
    link_grid,
)
from adaptsim.calibration.spread import PARTS
from adaptsim.errors import UserError
from adaptsim.files import FileKind, kind_of, read_text

__all__ = ["MAX_BLOCK_S", "MAX_LOG_SPREAD", "READS", "load_calibration", "save_calibration"]

READS = (1, 2, 3, 4)  # versions load_calibration accepts
# A spread's log ratio beyond this (a factor of 10,000 either way per sample) is not
# variation but a broken file: the shipped calibration's widest is 6.8 (the link's 1 %).
MAX_LOG_SPREAD = math.log(1e4)
# A block (or a sub-model's extra) of more than a day is not a measurement but a broken
# file: 1e308 s passed as "finite" and made every frame of a run never finish.
MAX_BLOCK_S = 86_400.0
_KINDS = {"all_cloud", "cut", "all_edge"}
_FIX = "; correct it or rebuild the file with `adaptsim calibrate`"


def save_calibration(cal: Calibration, path: str | Path) -> None:
    """Write the calibration as JSON, atomically."""
    p = Path(path)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "provenance": cal.provenance,
        "models": {name: m.to_dict() for name, m in sorted(cal.models.items())},
    }
    write_atomic(p, lambda tmp: tmp.write_text(json.dumps(doc, separators=(",", ":"))))


class _Reader:
    """Reads one calibration document, naming the file and key of whatever is wrong."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, problem: str) -> NoReturn:
        raise UserError(f"{self.where}: {key} {problem}{_FIX}")

    def get(self, d, key: str, path: str, kind: type | tuple = object, default=...):
        """``d[key]`` checked to be a ``kind``; ``default`` when missing, if given."""
        if not isinstance(d, dict):
            self.fail(path, f"must be a JSON object, not {_json_type(d)}")
        full = f"{path}.{key}" if path else key
        if key not in d:
            if default is not ...:
                return default
            self.fail(full, "is missing")
        value = d[key]
        numeric = int in _tuple(kind) or float in _tuple(kind)
        if not isinstance(value, kind) or (numeric and isinstance(value, bool)):
            names = "a number" if numeric else " or ".join(_KIND_NAMES[k] for k in _tuple(kind))
            self.fail(full, f"must be {names}, not {_json_type(value)}")
        return value

    def numbers(self, value, key: str, *, positive: bool = False) -> np.ndarray:
        """``value`` as a float array whose entries are finite and >= 0 (> 0 if ``positive``)."""
        try:
            a = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            self.fail(key, "must hold numbers only, in lists of equal length")
        if _has_bool(value):
            self.fail(key, "must hold numbers only, not true/false")
        for bad, problem in (
            (~np.isfinite(a), "must be finite"),
            (a <= 0 if positive else a < 0, "must be positive" if positive else "must be >= 0"),
        ):
            if bad.any():
                idx = np.argwhere(bad)[0]
                self.fail(
                    key + "".join(f"[{int(i)}]" for i in idx), f"is {a[tuple(idx)]:g}; {problem}"
                )
        return a

    def levels(self, d, key: str, path: str) -> np.ndarray:
        a = self.numbers(self.get(d, key, path, list), f"{path}.{key}")
        if a.ndim != 1 or not len(a):
            self.fail(f"{path}.{key}", "must be a non-empty list of numbers")
        if (np.diff(a) <= 0).any():
            self.fail(f"{path}.{key}", "must be strictly increasing")
        return a

    def grid(
        self, d, path: str, shape: tuple[int, ...], keys=STRESS_KEYS, most: float = math.inf
    ) -> StressGrid:
        d = self.get(d, path.rsplit(".", 1)[-1], path.rsplit(".", 1)[0], dict)
        cpu, mem = self.levels(d, keys[0], path), self.levels(d, keys[1], path)
        values = self.numbers(self.get(d, "values", path, list), f"{path}.values")
        if (values > most).any():
            idx = np.argwhere(values > most)[0]
            self.fail(
                f"{path}.values" + "".join(f"[{int(i)}]" for i in idx),
                f"is {values[tuple(idx)]:g}; more than {most:g} is not a measurement",
            )
        expected = (len(cpu), len(mem), *shape)
        if values.shape != expected:
            self.fail(
                f"{path}.values",
                f"has shape {values.shape}, expected {expected} for its levels and points",
            )
        return StressGrid(cpu, mem, values)

    def spread(self, d, path: str) -> dict:
        spread = self.get(d, "spread", path, dict)
        for part in PARTS:
            q = self.get(spread, part, f"{path}.spread", dict)
            key = f"{path}.spread.{part}"
            probs = self.numbers(self.get(q, "probs", key, list), f"{key}.probs")
            log_ratio = self.get(q, "log_ratio", key, list)
            try:
                lr = np.asarray(log_ratio, dtype=np.float64)
            except (TypeError, ValueError):
                self.fail(f"{key}.log_ratio", "must hold numbers only")
            if probs.ndim != 1 or lr.shape != probs.shape or len(probs) < 2:
                self.fail(key, "needs probs and log_ratio: lists of equal length, at least 2")
            if (probs > 1).any() or (np.diff(probs) <= 0).any():
                self.fail(f"{key}.probs", "must increase strictly within 0..1")
            self.quantile_row(lr, f"{key}.log_ratio")
            self.persistence(q, key)
            own = q.get("by_point", {})
            if not isinstance(own, dict):
                self.fail(f"{key}.by_point", "must be a JSON object: point ordinal -> log_ratio")
            for point, row in own.items():
                where = f"{key}.by_point.{point}"
                if not point.lstrip("-").isdigit():
                    self.fail(where, "is keyed by a point ordinal (a whole number)")
                try:
                    row = np.asarray(row, dtype=np.float64)
                except (TypeError, ValueError):
                    self.fail(where, "must hold numbers only")
                if row.shape != probs.shape:
                    self.fail(where, f"has {row.size} values; needs one per prob ({len(probs)})")
                self.quantile_row(row, where)
        return spread

    def persistence(self, q: dict, key: str) -> None:
        """Refuse a ``persistence_s`` (seconds a slow spell's correlation lasts, see
        :mod:`adaptsim.simulator.draws`) that is not a number >= 0, and a
        ``persistence_share`` outside 0..1."""
        for name, top in (("persistence_s", math.inf), ("persistence_share", 1.0)):
            if name not in q:
                continue
            v = q[name]
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= top:
                limit = "a number of seconds >= 0" if top == math.inf else "a number in 0..1"
                self.fail(f"{key}.{name}", f"must be {limit}, not {v!r}")
            if not math.isfinite(v):
                self.fail(f"{key}.{name}", f"must be finite, not {v!r}")

    def quantile_row(self, lr: np.ndarray, where: str) -> None:
        """Refuse log-ratio quantiles that are not finite, absurd or decreasing."""
        bad = ~np.isfinite(lr) | (np.abs(lr) > MAX_LOG_SPREAD)
        if bad.any():
            i = int(np.argmax(bad))
            self.fail(
                f"{where}[{i}]",
                f"is {lr[i]:g}; must be finite and within ±{MAX_LOG_SPREAD:.2f} "
                "(a factor of 10,000 either way)",
            )
        if (np.diff(lr) < 0).any():
            self.fail(where, "must not decrease (they are quantiles)")


_KIND_NAMES = {dict: "a JSON object", list: "a list", str: "a string"}


def _tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _json_type(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true/false"
    return {dict: "an object", list: "a list", str: "a string"}.get(type(v), "a number")


def _has_bool(value) -> bool:
    if isinstance(value, bool):
        return True
    return isinstance(value, list) and any(_has_bool(v) for v in value)


def _points(r: _Reader, d: dict, w: str):
    points = r.get(d, "points", w, list)
    if not points:
        r.fail(f"{w}.points", "is empty; a model needs its partition points")
    ordinals, kinds, names, out_bytes = [], [], [], []
    for i, p in enumerate(points):
        key = f"{w}.points[{i}]"
        o = r.get(p, "ordinal", key, (int, float))
        if not float(o).is_integer() or o < 0:
            r.fail(f"{key}.ordinal", f"is {o}; must be a whole number >= 0")
        kind = r.get(p, "kind", key, str)
        if kind not in _KINDS:
            r.fail(f"{key}.kind", f"is {kind!r}; must be one of {', '.join(sorted(_KINDS))}")
        ordinals.append(int(o))
        kinds.append(kind)
        names.append(r.get(p, "layer_name", key, str))
        b = float(r.get(p, "output_bytes", key, (int, float)))
        if not math.isfinite(b) or b < 0:
            r.fail(f"{key}.output_bytes", f"is {b:g}; must be finite and >= 0")
        out_bytes.append(b)
    if (np.diff(ordinals) <= 0).any():
        r.fail(f"{w}.points", "ordinals must increase")
    return (
        np.array(ordinals, dtype=np.int64),
        tuple(kinds),
        tuple(names),
        np.array(out_bytes, dtype=np.float64),
    )


def _model_from_dict(r: _Reader, name: str, d, version: int) -> ModelCalibration:
    w = f"models.{name}"
    ordinals, kinds, names, out_bytes = _points(r, d, w)
    n = len(ordinals)
    edge = r.grid(d, f"{w}.edge_block_s", (n,), most=MAX_BLOCK_S)
    cloud = r.grid(d, f"{w}.cloud_block_s", (n,), most=MAX_BLOCK_S)
    extras = {}  # version 1 files have none: zeros
    sides = (("edge_extra_s", "edge", edge), ("cloud_extra_s", "cloud", cloud))
    for key, side, g in sides if version >= 2 else ():
        x = extras[f"{side}_extra"] = r.grid(d, f"{w}.{key}", (n,), most=MAX_BLOCK_S)
        if not (
            np.array_equal(x.cpu_levels, g.cpu_levels)
            and np.array_equal(x.mem_levels, g.mem_levels)
        ):
            r.fail(f"{w}.{key}", f"has other levels than {side}_block_s; they must be the same")
    table = r.get(d, "link_table", w, dict)
    bw_levels = tuple(
        r.numbers(
            r.get(table, "bandwidth_levels_mbps", f"{w}.link_table", list),
            f"{w}.link_table.bandwidth_levels_mbps",
            positive=True,
        ).tolist()
    )
    if not bw_levels or list(bw_levels) != sorted(set(bw_levels)):
        r.fail(f"{w}.link_table.bandwidth_levels_mbps", "must be a non-empty increasing list")
    keys = LINK_KEYS if version >= 3 else STRESS_KEYS
    n_params = len(LINK_PARAMS) if version >= 4 else 2  # before 4: no host_s (zero)
    lk = r.grid(d, f"{w}.link", (n, n_params), keys)
    if version < 4:
        host = np.zeros((*lk.values.shape[:-1], 1))
        lk = StressGrid(lk.cpu_levels, lk.mem_levels, np.concatenate([lk.values, host], axis=-1))
    lt = r.grid(d, f"{w}.link_table", (n, len(bw_levels)), keys)
    if not np.array_equal(lt.cpu_levels, lk.cpu_levels) or not np.array_equal(
        lt.mem_levels, lk.mem_levels
    ):
        r.fail(f"{w}.link_table", "has other levels than link; they must be the same")
    if version < 3:  # per edge (CPU, memory) level: the first memory level, at every cloud CPU
        n_cloud = len(cloud.cpu_levels)
        lk, lt = (
            link_grid(g.cpu_levels, cloud.cpu_levels, np.repeat(g.values[:, :1], n_cloud, axis=1))
            for g in (lk, lt)
        )
    else:
        lk, lt = (link_grid(g.cpu_levels, g.mem_levels, g.values) for g in (lk, lt))
    if not (
        np.array_equal(edge.cpu_levels, lk.cpu_levels)
        and np.array_equal(cloud.cpu_levels, lk.mem_levels)
    ):
        r.fail(
            f"{w}.link",
            "has other CPU levels than edge_block_s and cloud_block_s; the link is kept at "
            "every (edge CPU, cloud CPU) level the compute is",
        )
    notes = r.get(d, "notes", w, list, default=[])
    if not all(isinstance(x, str) for x in notes):
        r.fail(f"{w}.notes", "must be a list of strings")
    return ModelCalibration(
        model=name,
        ordinals=ordinals,
        kinds=kinds,
        layer_names=names,
        output_bytes=out_bytes,
        edge_blocks=edge,
        cloud_blocks=cloud,
        link=lk,
        link_table=lt,
        bandwidth_levels=bw_levels,
        spread=r.spread(d, w),
        quality=r.get(d, "quality", w, dict),
        notes=tuple(notes),
        **extras,
    )


def _text(path: str | Path | None) -> tuple[str, str]:
    """The document's text and how messages name it."""
    if path is None or str(path) == DEFAULT_CALIBRATION:
        ref = resources.files("adaptsim").joinpath("data/calibration_adaptivednn.json")
        return ref.read_text(), f"shipped calibration {DEFAULT_CALIBRATION}"
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        raise UserError(f"calibration {p} does not exist: build one with `adaptsim calibrate`")
    kind = kind_of(p, "calibration")
    if kind is FileKind.parquet:
        raise UserError(
            f"calibration {p} is a measurement store (Parquet), not a calibration: "
            f"build one from it with `adaptsim calibrate {p} --out cal.json`"
        )
    return read_text(p, "calibration"), str(p)


def load_calibration(path: str | Path | None = None) -> Calibration:
    """Load and validate a calibration file; ``None`` loads the shipped default.

    Raises:
        UserError: one line naming the file and the key of the first problem.
    """
    text, where = _text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise UserError(f"{where}: nested too deeply to be a calibration") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UserError(f"{where}: not an adaptsim calibration (format must be {FORMAT!r})")
    version = doc.get("version")
    if isinstance(version, bool) or version not in READS:
        raise UserError(
            f"{where}: calibration version {version!r}, this adaptsim reads "
            f"{', '.join(map(str, READS))}: re-run `adaptsim calibrate`"
        )
    r = _Reader(where)
    models = r.get(doc, "models", "", dict)
    if not models:
        r.fail("models", "is empty: no model is calibrated")
    provenance = r.get(doc, "provenance", "", dict, default={})
    cal_models = {n: _model_from_dict(r, n, m, version) for n, m in models.items()}
    return Calibration(cal_models, provenance, name=where)
