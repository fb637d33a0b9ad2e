"""``adaptsim study``: the exhaustive analysis of best points and gains."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from adaptsim.cli.app import app, err, guard


class StudySource(StrEnum):
    measured = "measured"
    calibrated = "calibrated"


@app.command()
@guard
def study(
    source_path: Annotated[
        Path | None,
        typer.Argument(
            help="A store (.parquet) or calibration (.json); default: the shipped "
            "AdaptiveDNN calibration."
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the study's files.")] = Path(
        "study"
    ),
    models: Annotated[
        list[str] | None, typer.Option("--models", "-m", help="Only these models.")
    ] = None,
    source: Annotated[
        StudySource | None,
        typer.Option(help="measured (raw data; needs a store) or calibrated (predictions)."),
    ] = None,
    plots: Annotated[bool, typer.Option(help="Write the PNG bar charts.")] = True,
) -> None:
    """The exhaustive study: best points, their distribution, sensitivity, gains."""
    from adaptsim.study import Source, run_study

    result = run_study(
        source_path,
        out,
        source=Source(source.value) if source else None,
        models=models,
        plots=plots,
    )
    err.print(
        f"wrote {len(result['files'])} files to {out} in {result['elapsed_s']:.2f} s", markup=False
    )
    sys.stdout.write(result["summary"])
