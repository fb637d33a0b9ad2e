"""``adaptsim models`` and ``adaptsim points``: the model zoo and its partition points."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adaptsim.cli.app import OutputFormat, app, emit, guard

ModelFile = Annotated[
    Path | None, typer.Option("--model-file", help="A .keras/.h5 model (loaded in safe mode).")
]
Format = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]


@app.command()
@guard
def models(fmt: Format = OutputFormat.table) -> None:
    """List the model zoo: layers, parameters, size, partition points, type."""
    import pandas as pd

    from adaptsim.models import ZOO_NAMES, analyse, build_model
    from adaptsim.models.catalog import model_row

    rows = [model_row(name, analyse(build_model(name))) for name in ZOO_NAMES]
    emit(pd.DataFrame(rows), fmt, "adaptsim model zoo (type: S sequential, N non-sequential)")


@app.command()
@guard
def points(
    model: Annotated[str | None, typer.Argument(help="A zoo model name.")] = None,
    model_file: ModelFile = None,
    fmt: Format = OutputFormat.table,
) -> None:
    """List a model's partition points, from all-cloud to all-edge."""
    from adaptsim.models import analyse, resolve_model
    from adaptsim.models.catalog import points_frame

    graph = analyse(resolve_model(model, model_file))
    emit(points_frame(graph), fmt, f"{graph.name}: {len(graph.cut_points)} cut points + ends")
