"""The ``adaptsim`` command line: a thin typer app, every command calls the library.

Bad input raises :class:`adaptsim.errors.UserError`; :func:`_guard` prints it as
one line on stderr and exits with code 2. Ctrl-C exits with 130 after the library
has kept what it finished.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from adaptsim.errors import UserError

__all__ = ["app", "main"]

app = typer.Typer(
    name="adaptsim",
    help="Should this DNN's edge/cloud split adapt as conditions change, and what would it win?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console() if sys.stdout.isatty() else Console(width=240)  # pipes get whole tables
err = Console(stderr=True, soft_wrap=True)


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _guard(fn: Callable) -> Callable:
    """Turn UserError into one line + exit 2, and Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            err.print(f"adaptsim: error: {exc}", markup=False, highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("adaptsim: interrupted; finished work was kept", markup=False)
            raise typer.Exit(130) from None

    return wrapper


def _emit(frame, fmt: OutputFormat, title: str | None = None) -> None:
    """Print a DataFrame as a rich table, CSV or JSON records on stdout."""
    if fmt is OutputFormat.csv:
        sys.stdout.write(frame.to_csv(index=False))
    elif fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(frame.to_dict(orient="records"), indent=1) + "\n")
    else:
        table = Table(title=title)
        for col in frame.columns:
            table.add_column(
                str(col), justify="right" if frame[col].dtype.kind in "iuf" else "left"
            )
        for row in frame.itertuples(index=False):
            table.add_row(*(str(v) for v in row))
        out.print(table)


ModelFile = Annotated[
    Path | None, typer.Option("--model-file", help="A .keras/.h5 model (loaded in safe mode).")
]
Format = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]


@app.command()
@_guard
def models(fmt: Format = OutputFormat.table) -> None:
    """List the model zoo: layers, parameters, size, partition points, type."""
    import pandas as pd

    from adaptsim.models import ZOO_NAMES, analyse, build_model
    from adaptsim.models.catalog import model_row

    rows = [model_row(name, analyse(build_model(name))) for name in ZOO_NAMES]
    _emit(pd.DataFrame(rows), fmt, "adaptsim model zoo (type: S sequential, N non-sequential)")


@app.command()
@_guard
def points(
    model: Annotated[str | None, typer.Argument(help="A zoo model name.")] = None,
    model_file: ModelFile = None,
    fmt: Format = OutputFormat.table,
) -> None:
    """List a model's partition points, from all-cloud to all-edge."""
    from adaptsim.models import analyse, resolve_model
    from adaptsim.models.catalog import points_frame

    graph = analyse(resolve_model(model, model_file))
    _emit(points_frame(graph), fmt, f"{graph.name}: {len(graph.cut_points)} cut points + ends")


import_app = typer.Typer(
    help="Import real published measurements into a store.", no_args_is_help=True
)
app.add_typer(import_app, name="import")
StoreOut = Annotated[Path, typer.Option("--out", "-o", help="The store (Parquet) to write into.")]


@import_app.command("adaptivednn")
@_guard
def import_adaptivednn_cmd(
    dirs: Annotated[list[Path], typer.Argument(help="Folders holding outputs_<model>/ folders.")],
    out: StoreOut,
    models: Annotated[
        list[str] | None, typer.Option("--models", "-m", help="Only these models.")
    ] = None,
    cut_points: Annotated[
        Path | None, typer.Option(help="cut_points.csv (default: found beside the folders).")
    ] = None,
) -> None:
    """Import AdaptiveDNN per-partition measurements (ARM edge, Xeon cloud, stress)."""
    import time

    from adaptsim.importers import import_adaptivednn

    t0 = time.perf_counter()
    _, summaries = import_adaptivednn(dirs, out, models, cut_points)
    for s in summaries.values():
        flagged = ", ".join(f"{k} {v}" for k, v in s.flags.items() if v) or "none"
        out_models = ", ".join(f"{m} {n}" for m, n in s.models.items())
        err.print(f"{s.source}: {s.files} files, {s.rows} rows ({out_models})", markup=False)
        err.print(f"  flagged (kept): {flagged}", markup=False)
        for note in s.notes:
            err.print(f"  note: {note}", markup=False)
    err.print(f"wrote {out} in {time.perf_counter() - t0:.2f} s", markup=False)


@import_app.command("scission")
@_guard
def import_scission_cmd(
    csv_path: Annotated[Path, typer.Argument(help="scission_benchmark_blocks.csv")],
    out: StoreOut,
) -> None:
    """Import Scission per-block latencies (five real systems, no stress)."""
    from adaptsim.importers import import_scission

    _, summary = import_scission(csv_path, out)
    err.print(
        f"scission: {summary['rows']} block rows, {len(summary['models'])} models, "
        f"systems {', '.join(summary['systems'])}; wrote {out}",
        markup=False,
    )


def main() -> None:
    """Console-script entry point."""
    app()
