"""One way from any measurement store to a calibration.

A store holds one of three kinds of measurements (:class:`StoreKind`), told apart
by its rows, not by its name or the options given:

- per-partition: end-to-end timings of every split under every condition
  (AdaptiveDNN): the rows an importer flagged as not measuring what they are
  labelled are left out, one run per model and condition is kept
  (:func:`adaptsim.store.select_runs`), and :mod:`adaptsim.calibration.fit` fits them;
- own profiles (``adaptsim profile``): edge, cloud and link halves, composed per
  condition from each point's repeats (:mod:`adaptsim.calibration.profiles`) and
  fitted the same way, the spread taken from the repeats;
- per-block: each block timed alone on named hosts (Scission): the caller picks
  the edge host and the cloud host (:mod:`adaptsim.calibration.blocks`).

:func:`build_calibration` decides the kind, builds the provenance once and
returns the calibration with what a caller reports about it (:class:`Built`);
``adaptsim calibrate`` and ``adaptsim study`` both go through it, so the same
store gives the same calibration and the same errors in both. Errors about the
caller's choices are :class:`adaptsim.store.ChoiceError`: a CLI renders them with
its own flags.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.calibration.blocks import fit_from_blocks
from adaptsim.calibration.check import check_calibration, noise_floor
from adaptsim.calibration.fit import fit_calibration
from adaptsim.calibration.model import Calibration
from adaptsim.calibration.profiles import (
    Summary,
    compose,
    has_profiles,
    parse_summary,
    profile_spread,
    split_half_floor,
)
from adaptsim.calibration.spread import SpreadSource, near_repeat_spread
from adaptsim.errors import UserError
from adaptsim.store import ChoiceError, choose_models, read_store, select_runs
from adaptsim.store.flags import UNUSABLE_FLAGS

__all__ = [
    "Built",
    "FitRows",
    "Measurements",
    "StoreKind",
    "build_calibration",
    "measured_rows",
    "read_measurements",
    "store_kind",
]


class StoreKind(StrEnum):
    """What a store's measurements are (see the module docstring)."""

    partition = "per-partition data"
    profiles = "own profiles"
    blocks = "per-block data"


@dataclass(frozen=True)
class Measurements:
    """A store's rows and metadata, and where they were read (None: given in memory)."""

    frame: pd.DataFrame
    meta: dict
    path: Path | None = None

    @property
    def name(self) -> str:
        """The store as provenance names it."""
        return str(self.path.resolve()) if self.path is not None else "(in memory)"


def read_measurements(store: str | Path | Measurements) -> Measurements:
    """``store`` read (a path, recognised by content) or passed through."""
    if isinstance(store, Measurements):
        return store
    frame, meta = read_store(store)
    return Measurements(frame=frame, meta=meta, path=Path(store))


def store_kind(frame: pd.DataFrame, hosts_given: bool = False) -> StoreKind:
    """The kind of measurements in ``frame``.

    A store with per-block rows beside end-to-end ones is read as per-block data
    when hosts are given (they only mean something there), else per-partition.

    Raises:
        ChoiceError: per-block data without hosts; UserError: nothing to calibrate from.
    """
    end_to_end = (frame["record"] == "partition") & (frame["host_role"] == "edge+cloud")
    blocks = frame["record"] == "block"
    if has_profiles(frame) and not end_to_end.any():
        return StoreKind.profiles
    if blocks.any() and (hosts_given or not end_to_end.any()):
        if not hosts_given:
            hosts = sorted(
                set(frame.loc[blocks, "edge_host"]) | set(frame.loc[blocks, "cloud_host"])
            )
            raise ChoiceError(
                "the store has per-block data: choose the hosts with the {edge_host} and the "
                "{cloud_host} (hosts: {hosts})",
                hosts=", ".join(h for h in hosts if h),
            )
        return StoreKind.blocks
    if end_to_end.any():
        return StoreKind.partition
    raise UserError(
        "the store has no measurements to calibrate from (no per-partition, profile or "
        "per-block rows)"
    )


@dataclass(frozen=True)
class FitRows:
    """Per-partition rows to fit, and those left out of them.

    Attributes:
        rows: one run per model and condition (store columns).
        left_out: rows of the chosen models an importer flagged as not measuring
            what they are labelled (``UNUSABLE_FLAGS``); their ``flags`` say why.
    """

    rows: pd.DataFrame
    left_out: pd.DataFrame

    def left_out_counts(self) -> dict[str, int]:
        """Rows left out per flag, in ``UNUSABLE_FLAGS`` order (a row counts once)."""
        counts, rest = {}, self.left_out
        for flag in UNUSABLE_FLAGS:
            hit = _flagged(rest, flag)
            if hit.any():
                counts[flag] = int(hit.sum())
                rest = rest[~hit]
        return counts


def _flagged(rows: pd.DataFrame, flag: str) -> pd.Series:
    return rows["flags"].str.contains(rf"(?:^|,){flag}(?:,|$)")


def _partition_rows(frame: pd.DataFrame, models: list[str] | None) -> FitRows:
    rows = select_runs(frame)
    names = choose_models(models, sorted(rows["model"].unique()), "the store's measurements")
    rows = rows[rows["model"].isin(names)]
    bad = np.zeros(len(rows), dtype=bool)
    for flag in UNUSABLE_FLAGS:  # after the model choice: count only what is left out of it
        bad |= _flagged(rows, flag).to_numpy()
    return FitRows(rows[~bad], rows[bad])


def _fitting_rows(
    m: Measurements, kind: StoreKind, models, edge_host, cloud_host, summary: Summary
) -> FitRows:
    """The per-partition rows a calibration of ``kind`` is fitted on (not per-block data)."""
    if kind is StoreKind.profiles:
        rows = compose(m.frame, models, edge_host, cloud_host, summary)
        return FitRows(rows, rows.iloc[0:0])
    return _partition_rows(m.frame, models)


def _kind(m: Measurements, edge_host, cloud_host, summary, check: bool) -> StoreKind:
    """The store's kind, once the caller's choices are known to fit it."""
    kind = store_kind(m.frame, hosts_given=bool(edge_host or cloud_host))
    if summary is not None and kind is not StoreKind.profiles:
        raise ChoiceError(
            "{summary} applies to own profiles (adaptsim profile); {kind} has none", kind=kind
        )
    if kind is StoreKind.partition and (edge_host or cloud_host):
        raise ChoiceError(
            "the {edge_host} and {cloud_host} apply to per-block data and own profiles; "
            "this store has per-partition data, measured on one host pair"
        )
    if kind is StoreKind.blocks:
        if not (edge_host and cloud_host):
            raise ChoiceError("per-block data needs both the {edge_host} and the {cloud_host}")
        if check:
            raise ChoiceError("{check}: per-block data has a single condition to hold out")
    return kind


def measured_rows(
    store: str | Path | Measurements,
    models: list[str] | None = None,
    *,
    edge_host: str | None = None,
    cloud_host: str | None = None,
    summary: str | Summary | None = None,
) -> FitRows:
    """The per-partition rows :func:`build_calibration` would fit, without fitting them.

    The measured latencies of a store (own profiles composed), chosen by the
    same rules; per-block data has none (UserError).
    """
    m = read_measurements(store)
    kind = _kind(m, edge_host, cloud_host, summary, check=False)
    if kind is StoreKind.blocks:
        raise UserError("per-block data has no end-to-end measurements, only blocks timed alone")
    return _fitting_rows(m, kind, models, edge_host, cloud_host, parse_summary(summary))


@dataclass(frozen=True)
class Built:
    """A calibration built from a store, with what a caller reports about it.

    Attributes:
        calibration: the calibration.
        kind: the kind of store it came from.
        fit_rows: the rows it was fitted on (None for per-block data).
        floor: ``floor(model, rows)`` the check scores the fit against; None: no check.
        floor_name: the floor in words.
        elapsed_s: seconds the build took.
    """

    calibration: Calibration
    kind: StoreKind
    fit_rows: FitRows | None
    floor: Callable[[str, pd.DataFrame], pd.DataFrame] | None
    floor_name: str
    elapsed_s: float

    @property
    def models(self) -> list[str]:
        return sorted(self.calibration.models)

    def quality(self) -> pd.DataFrame:
        """In-sample fit quality, a row per model."""
        return pd.DataFrame(
            [{"model": n, **m.quality} for n, m in sorted(self.calibration.models.items())]
        )

    def describe(self) -> str:
        """One line: what was calibrated from what, and how long it took."""
        rows = f", {len(self.fit_rows.rows)} rows" if self.fit_rows is not None else ""
        if self.kind is StoreKind.profiles:
            rows = f", {len(self.fit_rows.rows)} composed rows"
        return (
            f"calibrated {len(self.models)} models ({', '.join(self.models)}) from "
            f"{self.kind}{rows} in {self.elapsed_s:.2f} s"
        )

    def check(self, rng: np.random.Generator, progress=None):
        """The leave-one-level-out check against the floor; see :func:`check_calibration`.

        Returns:
            (summary, detail) frames; Ctrl-C raises ``CheckInterrupted`` with what finished.
        """
        if self.floor is None or self.fit_rows is None:
            raise ChoiceError("{check}: {kind} has a single condition to hold out", kind=self.kind)
        return check_calibration(
            self.fit_rows.rows, self.models, progress=progress, floor=self.floor, rng=rng
        )


_SELECTION = (
    "per model, a later source replaces an earlier one where it covers >= 50 % of the "
    "conditions (adaptsim.store.select_runs)"
)


def _provenance(m: Measurements, kind: StoreKind, fit: FitRows, summary: Summary) -> dict:
    """Where a fitted calibration came from, written into its file."""
    rows, sources = fit.rows, m.meta.get("sources", {})
    if kind is StoreKind.profiles:
        names = set(rows["model"])
        # every link profile of the store is fitted (profiles.compose), whatever its host
        used = {s for s in sources if s.startswith("profile:link:")} | {
            s for s in sources if s.startswith("profile:") and s.split(":")[-1] in names
        }
        quota = rows["edge_cpu_quota"].dropna().unique() if "edge_cpu_quota" in rows else []
        prov = {
            "store": m.name,
            # the hosts composed, and the edge's CPU quota (1.0: none): what `validate
            # --edge-cpu-quota` holds a real run's edge to (adaptsim.testbed.edge_quota)
            "edge_host": str(rows["edge_host"].iloc[0]),
            "cloud_host": str(rows["cloud_host"].iloc[0]),
            "sources": {k: v for k, v in sources.items() if k in used},
            "method": f"adaptsim.calibration.profiles: the {summary} of each point's repeats, "
            "edge, cloud and link composed per condition, then adaptsim.calibration.fit "
            "(NNLS per block, speed interpolation); spread from the repeats",
        }
        if len(quota) == 1:
            prov["edge_cpu_quota"] = float(quota[0])
        return prov
    return {
        "store": m.name,
        "sources": {
            k: {"citation": v.get("citation", ""), "paths": v.get("paths", [])}
            for k, v in sources.items()
            if k in set(rows["source"])
        },
        "runs": rows.groupby(["model", "source"])
        .size()
        .rename("rows")
        .reset_index()
        .to_dict(orient="records"),
        "selection": _SELECTION,
        "left_out": fit.left_out_counts(),
        "method": "adaptsim.calibration.fit (medians, NNLS per block, speed interpolation)",
    }


def _created() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def build_calibration(
    store: str | Path | Measurements,
    models: list[str] | None = None,
    *,
    edge_host: str | None = None,
    cloud_host: str | None = None,
    summary: str | Summary | None = None,
    check: bool = False,
    progress: Callable[[str], None] | None = None,
    spread: SpreadSource | str | None = None,
    persistence: bool = False,
) -> Built:
    """Calibrate from any store; see the module docstring.

    Args:
        store: a store's path (recognised by content) or its :class:`Measurements`.
        models: only these models (all when None).
        edge_host, cloud_host: per-block data: the hosts that play edge and cloud
            (required); own profiles: which hosts' profiles, when several were taken.
        summary: own profiles: how a point's repeats become its time (default:
            the trimmed mean).
        check: the caller will run :meth:`Built.check`: refused up front where
            the store has nothing to hold out, before any fitting.
        progress: called with each model's name once it is fitted.
        spread: per-partition data: where the spread comes from (default: the
            fit's residuals; see :mod:`adaptsim.calibration.spread`).
        persistence: also measure how long a slow spell lasts, per part, where the
            store keeps its values in time order (own profiles, per-partition files;
            :mod:`adaptsim.calibration.persistence`), and write it into the spread
            (``persistence_s``, ``persistence_share``); off: i.i.d. replay, as before.

    Raises:
        ChoiceError: a choice the store cannot meet (in the library's words).
        UserError: a store with nothing to calibrate from.
    """
    t0 = time.perf_counter()
    m = read_measurements(store)
    kind = _kind(m, edge_host, cloud_host, summary, check)
    source = _spread_source(spread, kind)
    if kind is StoreKind.blocks:
        if persistence:
            raise UserError(
                "--persistence: per-block data keeps no time order to measure it from; "
                "calibrate own profiles or per-partition data, or leave it out"
            )
        network = [r for src in m.meta["sources"].values() for r in src.get("network", [])]
        cal = fit_from_blocks(m.frame, edge_host, cloud_host, network, models)
        cal = Calibration(cal.models, {"store": m.name, **cal.provenance, "created": _created()})
        return Built(
            calibration=cal,
            kind=kind,
            fit_rows=None,
            floor=None,
            floor_name="",
            elapsed_s=time.perf_counter() - t0,
        )
    summary = parse_summary(summary)
    fit = _fitting_rows(m, kind, models, edge_host, cloud_host, summary)
    names = sorted(fit.rows["model"].unique())
    spreads, floor, floor_name = None, noise_floor, "the near-repeat noise floor"
    if kind is StoreKind.profiles:
        spreads = profile_spread(_composed_hosts(m.frame, fit.rows), names, summary)
        floor = functools.partial(_split_half, m.frame, edge_host, cloud_host, summary)
        floor_name = "the split-half floor of the repeats"
    provenance = {**_provenance(m, kind, fit, summary), "created": _created()}
    if source is SpreadSource.near_repeats:
        spreads = near_repeat_spread(fit.rows)
    if source is not None:
        provenance["spread"] = str(source)
    cal = fit_calibration(fit.rows, provenance, names, progress=progress, spreads=spreads)
    if persistence:
        cal = _with_persistence(cal, m, kind, fit)
    return Built(
        calibration=cal,
        kind=kind,
        fit_rows=fit,
        floor=floor,
        floor_name=floor_name,
        elapsed_s=time.perf_counter() - t0,
    )


def _spread_source(spread: SpreadSource | str | None, kind: StoreKind) -> SpreadSource | None:
    """The spread source asked for, where the store's kind has a choice (None: default)."""
    if spread is None:
        return None
    try:
        source = SpreadSource(spread)
    except ValueError:
        choices = ", ".join(s.value for s in SpreadSource)
        raise UserError(
            f"spread {spread!r}: not a spread source; choose one of {choices}"
        ) from None
    if kind is not StoreKind.partition:
        raise ChoiceError(
            "the spread source {which} applies to per-partition data without repeats "
            "(AdaptiveDNN); this store has {kind}, whose spread comes from its own data",
            which=source.value,
            kind=kind,
        )
    return source


def _composed_hosts(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The store's rows of the edge and cloud hosts ``rows`` were composed from, and the
    link: a store holding two edges (``vm`` and the throttled ``vm-q0.2``) must not pool
    the other edge's repeats into this calibration's spread."""
    role = frame["host_role"]
    edge = (role == "edge") & (frame["edge_host"] == rows["edge_host"].iloc[0])
    cloud = (role == "cloud") & (frame["cloud_host"] == rows["cloud_host"].iloc[0])
    return frame[edge | cloud | ~role.isin(["edge", "cloud"])]


def _split_half(frame, edge_host, cloud_host, summary, model: str, _rows) -> pd.DataFrame:
    """The own profiles' floor for one model (the check passes the fitted rows too)."""
    return split_half_floor(frame, model, edge_host, cloud_host, summary)


def _with_persistence(cal: Calibration, m: Measurements, kind: StoreKind, fit) -> Calibration:
    """``cal`` with each part's measured persistence in every model's spread (one value
    per part, pooled over the store's models, as the correlation is)."""
    from adaptsim.calibration.persistence import (
        measured_persistence,
        profile_series,
        within_file_series,
    )

    if kind is StoreKind.profiles:
        series = profile_series(m.frame[m.frame["model"].isin(cal.models)], m.meta)
        how = "own profiles' repeats in time order, per visit"
    else:
        series = within_file_series(fit.rows)
        how = "per-partition files' within-file rest, next lines (3 x a line's total apart)"
    per_part = measured_persistence(series)
    models = {}
    for name, model in cal.models.items():
        spread = {p: dict(q) for p, q in model.spread.items()}
        for part, values in per_part.items():
            if part in spread:
                spread[part].update(values)
        models[name] = replace(model, spread=spread)
    provenance = {**cal.provenance, "persistence": f"{how} (adaptsim.calibration.persistence)"}
    return Calibration(models, provenance)
