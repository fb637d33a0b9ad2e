"""``adaptsim study``: the exhaustive analysis of best points and gains."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from adaptsim.cli.app import app, err, guard, progress_bar
from adaptsim.cli.calibrating import CLOUD_HOST_HELP, EDGE_HOST_HELP, SUMMARY_HELP
from adaptsim.cli.flags import as_flags, model_list


class StudySource(StrEnum):
    measured = "measured"
    calibrated = "calibrated"


@app.command()
@guard
def study(
    source_path: Annotated[
        Path | None,
        typer.Argument(
            help="A measurement store (Parquet) or a calibration (JSON), told apart by "
            "content; default: the shipped AdaptiveDNN calibration."
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the study's files.")] = Path(
        "study"
    ),
    models: Annotated[
        list[str] | None,
        typer.Option("--models", "-m", help="Only these models (comma-separated or repeated)."),
    ] = None,
    source: Annotated[
        StudySource | None,
        typer.Option(
            help="measured (raw data; needs a store) or calibrated (predictions); default: "
            "measured for a store with end-to-end or profiled data, else calibrated."
        ),
    ] = None,
    plots: Annotated[bool, typer.Option(help="Write the PNG bar charts.")] = True,
    edge_host: Annotated[str | None, typer.Option(help=EDGE_HOST_HELP)] = None,
    cloud_host: Annotated[str | None, typer.Option(help=CLOUD_HOST_HELP)] = None,
    summary: Annotated[str | None, typer.Option(help=SUMMARY_HELP)] = None,
) -> None:
    """The exhaustive study: best points, their distribution, sensitivity, gains.

    A store is read by the same rules as `adaptsim calibrate` (per-partition data,
    own profiles, or per-block data with --edge-host and --cloud-host).
    """
    from adaptsim.study import Source, run_study

    with as_flags(), progress_bar() as bar:
        task = bar.add_task("study", total=None)
        result = run_study(
            source_path,
            out,
            source=Source(source.value) if source else None,
            models=model_list(models),
            plots=plots,
            edge_host=edge_host,
            cloud_host=cloud_host,
            summary=summary,
            progress=lambda step, done, total: bar.update(
                task, description=f"study: {step}", completed=done, total=total
            ),
        )
    err.print(
        f"wrote {len(result['files'])} files to {out} in {result['elapsed_s']:.2f} s", markup=False
    )
    sys.stdout.write(result["summary"])
