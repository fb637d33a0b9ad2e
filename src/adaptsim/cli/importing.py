"""``adaptsim import``: real published measurements into a store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adaptsim.cli.app import app, err, guard
from adaptsim.cli.flags import as_flags, model_list, store_output

import_app = typer.Typer(
    help="Import real published measurements into a store.", no_args_is_help=True
)
app.add_typer(import_app, name="import")
StoreOut = Annotated[Path, typer.Option("--out", "-o", help="The store (Parquet) to write into.")]


@import_app.command("adaptivednn")
@guard
def import_adaptivednn_cmd(
    dirs: Annotated[list[Path], typer.Argument(help="Folders holding outputs_<model>/ folders.")],
    out: StoreOut,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--models",
            "-m",
            help="Only these models, comma-separated or repeated (other folders are not read).",
        ),
    ] = None,
    cut_points: Annotated[
        Path | None, typer.Option(help="cut_points.csv (default: found beside the folders).")
    ] = None,
) -> None:
    """Import AdaptiveDNN per-partition measurements (ARM edge, Xeon cloud, stress)."""
    import time

    from adaptsim.importers import import_adaptivednn

    store_output(out)
    t0 = time.perf_counter()
    with as_flags():
        _, summaries = import_adaptivednn(dirs, out, model_list(models), cut_points)
    for s in summaries.values():
        flagged = ", ".join(f"{k} {v}" for k, v in s.flags.items() if v) or "none"
        out_models = ", ".join(f"{m} {n}" for m, n in s.models.items())
        err.print(f"{s.source}: {s.files} files, {s.rows} rows ({out_models})", markup=False)
        err.print(f"  flagged (kept): {flagged}", markup=False)
        for note in s.notes:
            err.print(f"  note: {note}", markup=False)
    err.print(f"wrote {out} in {time.perf_counter() - t0:.2f} s", markup=False)


@import_app.command("scission")
@guard
def import_scission_cmd(
    csv_path: Annotated[Path, typer.Argument(help="scission_benchmark_blocks.csv")],
    out: StoreOut,
) -> None:
    """Import Scission per-block latencies (five real systems, no stress)."""
    from adaptsim.importers import import_scission

    store_output(out)
    _, summary = import_scission(csv_path, out)
    err.print(
        f"scission: {summary['rows']} block rows, {len(summary['models'])} models, "
        f"systems {', '.join(summary['systems'])}; wrote {out}",
        markup=False,
    )
