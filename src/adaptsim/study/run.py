"""``adaptsim study``: run every analysis and write its files into one folder.

Files are written under a temporary name and renamed into place, so an
interrupted study leaves complete files only.
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim import __version__
from adaptsim.atomic import write_atomic
from adaptsim.calibration import load_calibration
from adaptsim.errors import UserError
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

__all__ = ["Source", "StudyResult", "load_grids", "run_study"]


class Source(StrEnum):
    """Where the study's latencies come from."""

    measured = "measured"
    calibrated = "calibrated"


class StudyResult(dict):
    """The study's tables by name (``best_points``, ``gains``, ...), plus ``files``."""


def load_grids(path: str | Path | None, source: Source | None, models: list[str] | None):
    """Latency grids per model from a store (.parquet) or a calibration (.json / default)."""
    from adaptsim.calibration.fit import calibration_rows, fit_calibration
    from adaptsim.store import read_store

    is_store = path is not None and str(path).endswith(".parquet")
    source = source or (Source.measured if is_store else Source.calibrated)
    if source is Source.measured and not is_store:
        raise UserError(
            "--source measured needs a measurement store (.parquet); "
            "a calibration only has predictions"
        )
    if is_store:
        frame, _ = read_store(path)
        rows = calibration_rows(frame, models)
        if source is Source.measured:
            return [
                from_store_rows(m, rows[rows["model"] == m]) for m in sorted(rows["model"].unique())
            ], source
        cal = fit_calibration(rows, {"store": str(path)})
    else:
        cal = load_calibration(path)
    names = sorted(cal.models)
    if models:
        unknown = sorted(set(models) - set(names))
        if unknown:
            raise UserError(f"--models: {unknown} not in the calibration; it has {names}")
        names = [n for n in names if n in models]
    return [from_calibration(cal, n) for n in names], source


def run_study(
    path: str | Path | None,
    out_dir: str | Path,
    *,
    source: Source | None = None,
    models: list[str] | None = None,
    plots: bool = True,
) -> StudyResult:
    """Run the study and write its files into ``out_dir``; returns the tables."""
    t0 = time.perf_counter()
    grids, source = load_grids(path, source, models)
    if not grids:
        raise UserError("no models to study")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    best = pd.concat([best_points(g) for g in grids], ignore_index=True)
    dist = pd.concat(
        [distribution(g, best[best["model"] == g.model]) for g in grids], ignore_index=True
    )
    sens = pd.DataFrame([r for g in grids for r in sensitivity(g, best[best["model"] == g.model])])
    diversity = best.groupby("model")["best_point"].nunique()
    sens["distinct_best_points_all"] = sens["model"].map(diversity)
    sens = sens.sort_values(
        ["distinct_best_points_all", "model"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)
    gain = pd.concat([gains(g) for g in grids], ignore_index=True)
    combined = pd.concat([combined_gains(g) for g in grids], ignore_index=True)
    latency = to_frame(grids)
    missing = sum(_missing(g) for g in grids)
    header = {
        "source": str(path) if path else "shipped AdaptiveDNN calibration",
        "kind": str(source),
        "models": [g.model for g in grids],
        "conditions": int(sum(len(g.conditions) for g in grids)),
        "missing": missing,
        "version": __version__,
    }

    write_atomic(out / "latency.parquet", lambda p: latency.to_parquet(p, index=False))
    write_atomic(out / "best_points.csv", lambda p: best.to_csv(p, index=False))
    write_atomic(out / "best_point_distribution.csv", lambda p: dist.to_csv(p, index=False))
    write_atomic(out / "sensitivity.csv", lambda p: sens.to_csv(p, index=False))
    write_atomic(out / "gains.csv", lambda p: gain.to_csv(p, index=False, float_format="%.10g"))
    files = [
        out / n
        for n in (
            "latency.parquet",
            "best_points.csv",
            "best_point_distribution.csv",
            "sensitivity.csv",
            "gains.csv",
        )
    ]
    if plots:
        files += plot_distribution(dist, out)
    header["elapsed_s"] = time.perf_counter() - t0
    text = write_summary(header, best, sens, gain, combined)
    write_atomic(out / "summary.md", lambda p: p.write_text(text))
    files.append(out / "summary.md")
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


def _missing(grid: LatencyGrid) -> int:
    """Conditions of the full level grid that have no measurement at all."""
    full = int(np.prod([grid.conditions[c].nunique() for c in grid.conditions.columns]))
    measured = int(np.isfinite(grid.latency_s).any(axis=1).sum())
    return full - measured
