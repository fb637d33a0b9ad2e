"""``adaptsim study``: run every analysis and write its files into one folder.

Files are written under a temporary name and renamed into place, so an
interrupted study leaves complete files only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim import __version__
from adaptsim.atomic import StagedFolder, write_atomic
from adaptsim.calibration import load_calibration
from adaptsim.calibration.build import (
    StoreKind,
    build_calibration,
    measured_rows,
    read_measurements,
    store_kind,
)
from adaptsim.errors import UserError
from adaptsim.files import FileKind, kind_of
from adaptsim.store import ChoiceError, choose_models
from adaptsim.study.analysis import (
    best_points,
    combined_gains,
    distribution,
    gains,
    sensitivity,
)
from adaptsim.study.latency import LatencyGrid, from_calibration, from_store_rows, to_frame
from adaptsim.study.plots import plot_distribution
from adaptsim.study.summary import write_summary

__all__ = ["Source", "StudyInput", "StudyResult", "load_grids", "run_study"]


class Source(StrEnum):
    """Where the study's latencies come from."""

    measured = "measured"
    calibrated = "calibrated"


class StudyResult(dict):
    """The study's tables by name (``best_points``, ``gains``, ...), plus ``files``."""


@dataclass(frozen=True)
class StudyInput:
    """The latencies a study analyses, and what was left out of them.

    Attributes:
        grids: one latency grid per model.
        source: measured or calibrated.
        left_out: rows left out by an importer's flags (when a store was read).
        left_out_counts: lines left out per flag (from the rows or the
            calibration's provenance).
        name: where the latencies came from, for the summary's header.
    """

    grids: list[LatencyGrid]
    source: Source
    left_out: pd.DataFrame
    left_out_counts: dict[str, int]
    name: str


_NONE = pd.DataFrame(columns=["model"])


def load_grids(
    path: str | Path | None,
    source: Source | None = None,
    models: list[str] | None = None,
    *,
    edge_host: str | None = None,
    cloud_host: str | None = None,
    summary: str | None = None,
) -> StudyInput:
    """Latency grids per model from a store or a calibration, recognised by content.

    A store is read by the same rules as ``adaptsim calibrate``
    (:mod:`adaptsim.calibration.build`): measured latencies are its per-partition
    rows (own profiles composed), calibrated ones its calibration. Per-block data
    has no end-to-end measurement: its study is calibrated. ``None``: the shipped
    calibration.

    Raises:
        ChoiceError: a choice the input cannot meet; UserError: an unreadable input.
    """
    if path is not None and kind_of(path, "study input") is FileKind.parquet:
        return _from_store(path, source, models, edge_host, cloud_host, summary)
    if path is not None and kind_of(path, "study input") is FileKind.other:
        raise UserError(
            f"study input {path} is neither a measurement store (Parquet) nor a calibration "
            "(JSON): give one of them"
        )
    if source is Source.measured:
        raise ChoiceError(
            "{source} measured needs a measurement store; a calibration only has predictions"
        )
    if edge_host or cloud_host or summary:
        raise ChoiceError(
            "the {edge_host}, {cloud_host} and {summary} choose how a store is calibrated; "
            "a calibration is already built"
        )
    cal = load_calibration(path)
    names = choose_models(models, sorted(cal.models), "the calibration")
    counts = cal.provenance.get("left_out", {})
    counts = counts if isinstance(counts, dict) else {}
    return StudyInput(
        grids=[from_calibration(cal, n) for n in names],
        source=Source.calibrated,
        left_out=_NONE,
        left_out_counts=counts,
        name=str(path) if path else "shipped AdaptiveDNN calibration",
    )


def _from_store(path, source, models, edge_host, cloud_host, summary) -> StudyInput:
    m = read_measurements(path)
    kind = store_kind(m.frame, hosts_given=bool(edge_host or cloud_host))
    if source is None:
        source = Source.calibrated if kind is StoreKind.blocks else Source.measured
    if source is Source.calibrated:
        built = build_calibration(
            m, models, edge_host=edge_host, cloud_host=cloud_host, summary=summary
        )
        fit = built.fit_rows
        grids = [from_calibration(built.calibration, n) for n in built.models]
    else:
        if kind is StoreKind.blocks:
            raise ChoiceError(
                "{source} measured needs end-to-end or profiled measurements; per-block data "
                "times each block alone: study its calibration (the default for it)"
            )
        fit = measured_rows(m, models, edge_host=edge_host, cloud_host=cloud_host, summary=summary)
        rows = fit.rows
        grids = [
            from_store_rows(n, rows[rows["model"] == n]) for n in sorted(rows["model"].unique())
        ]
    left_out = fit.left_out if fit is not None else _NONE
    counts = fit.left_out_counts() if fit is not None else {}
    return StudyInput(
        grids=grids, source=source, left_out=left_out, left_out_counts=counts, name=str(path)
    )


def run_study(
    path: str | Path | None,
    out_dir: str | Path,
    *,
    source: Source | None = None,
    models: list[str] | None = None,
    plots: bool = True,
    edge_host: str | None = None,
    cloud_host: str | None = None,
    summary: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> StudyResult:
    """Run the study and write its files into ``out_dir``; returns the tables.

    ``edge_host``, ``cloud_host`` and ``summary`` choose how a store is read, as
    for ``adaptsim calibrate`` (see :func:`load_grids`). ``progress(step, done,
    total)`` is told each step as it starts (a study of the full AdaptiveDNN data
    takes half a minute).
    """
    steps = ["reading the data", "best points", "sensitivity", "gains", "writing the files"]

    def step(name: str) -> None:
        if progress is not None:
            progress(name, steps.index(name), len(steps))

    t0 = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"study folder {out} is a file; give a folder for the study's files")
    if out.is_dir() and not is_study_folder(out):  # said now, not after reading the store
        raise UserError(
            f"study folder {out} holds other files; give a new folder name (a study "
            "replaces only its own folder)"
        )
    step("reading the data")
    study_input = load_grids(
        path, source, models, edge_host=edge_host, cloud_host=cloud_host, summary=summary
    )
    grids, source = study_input.grids, study_input.source
    if not grids:
        raise UserError("no models to study")
    staged = StagedFolder(out, "study folder", is_study_folder, make_parent=True)
    step("best points")
    best = pd.concat([best_points(g) for g in grids], ignore_index=True)
    dist = pd.concat(
        [distribution(g, best[best["model"] == g.model]) for g in grids], ignore_index=True
    )
    step("sensitivity")
    sens = pd.DataFrame([r for g in grids for r in sensitivity(g, best[best["model"] == g.model])])
    diversity = best.groupby("model")["best_point"].nunique()
    sens["distinct_best_points_all"] = sens["model"].map(diversity)
    sens = sens.sort_values(
        ["distinct_best_points_all", "model"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)
    step("gains")
    gain = pd.concat([gains(g, study_input.left_out) for g in grids], ignore_index=True)
    combined = pd.concat([combined_gains(g) for g in grids], ignore_index=True)
    latency = to_frame(grids)
    missing = sum(_missing(g) for g in grids)
    header = {
        "source": study_input.name,
        "kind": str(source),
        "models": [g.model for g in grids],
        "conditions": int(sum(len(g.conditions) for g in grids)),
        "missing": missing,
        "version": __version__,
    }

    step("writing the files")
    with staged:  # built beside the folder and swapped in whole: Ctrl-C keeps the old one
        d = staged.path
        write_atomic(d / "latency.parquet", lambda p: latency.to_parquet(p, index=False))
        write_atomic(d / "best_points.csv", lambda p: best.to_csv(p, index=False))
        write_atomic(d / "best_point_distribution.csv", lambda p: dist.to_csv(p, index=False))
        write_atomic(d / "sensitivity.csv", lambda p: sens.to_csv(p, index=False))
        write_atomic(d / "gains.csv", lambda p: gain.to_csv(p, index=False, float_format="%.10g"))
        names = [
            "latency.parquet",
            "best_points.csv",
            "best_point_distribution.csv",
            "sensitivity.csv",
            "gains.csv",
        ]
        if plots:
            names += [f.name for f in plot_distribution(dist, d)]
        header["elapsed_s"] = time.perf_counter() - t0
        caveats = {
            "counts": study_input.left_out_counts,
            "left_out": study_input.left_out,
            "measured": source is Source.measured,
        }
        text = write_summary(header, best, sens, gain, combined, caveats)
        write_atomic(d / "summary.md", lambda p: p.write_text(text))
        names.append("summary.md")
        staged.commit()
    files = [out / n for n in names]
    result = StudyResult(
        latency=latency,
        best_points=best,
        distribution=dist,
        sensitivity=sens,
        gains=gain,
        combined=combined,
        summary=text,
    )
    result["files"] = files
    result["elapsed_s"] = time.perf_counter() - t0
    return result


def is_study_folder(path: Path) -> bool:
    """An empty folder, or one a study wrote (its summary.md and best_points.csv)."""
    if not any(path.iterdir()):
        return True
    return (path / "summary.md").is_file() and (path / "best_points.csv").is_file()


def _missing(grid: LatencyGrid) -> int:
    """Conditions of the full level grid that have no measurement at all."""
    full = int(np.prod([grid.conditions[c].nunique() for c in grid.conditions.columns]))
    measured = int(np.isfinite(grid.latency_s).any(axis=1).sum())
    return full - measured
