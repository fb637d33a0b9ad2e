"""``adaptsim calibrate``: latency models from measurements, and their check.

The work is :func:`adaptsim.calibration.build.build_calibration`; this module holds
the options and prints. The library's choices reach the user as this command's
flags through :func:`adaptsim.cli.flags.as_flags`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adaptsim.cli.app import OutputFormat, app, emit, err, guard
from adaptsim.cli.flags import as_flags, check_seeds, model_list, output_file

__all__ = ["CLOUD_HOST_HELP", "EDGE_HOST_HELP", "SUMMARY_HELP", "calibrate"]

EDGE_HOST_HELP = "Per-block data: the host that plays the edge (own profiles: when several)."
CLOUD_HOST_HELP = "Per-block data: the host that plays the cloud (own profiles: when several)."
SUMMARY_HELP = (
    "Own profiles: how a point's repeats become its time, trimmed-mean "
    "(10 % cut at each end; the default) or median."
)


@app.command()
@guard
def calibrate(
    store: Annotated[Path, typer.Argument(help="A measurement store (Parquet).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Calibration file to write (JSON).")],
    models: Annotated[
        list[str] | None,
        typer.Option("--models", "-m", help="Only these models (comma-separated or repeated)."),
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Leave-one-level-out cross-validation against the noise floor.")
    ] = False,
    check_out: Annotated[
        Path | None, typer.Option(help="CSV for the check (default: OUT with .check.csv).")
    ] = None,
    edge_host: Annotated[str | None, typer.Option(help=EDGE_HOST_HELP)] = None,
    cloud_host: Annotated[str | None, typer.Option(help=CLOUD_HOST_HELP)] = None,
    summary: Annotated[str | None, typer.Option(help=SUMMARY_HELP)] = None,
    seed: Annotated[int, typer.Option(help="Seed of the check's bootstrap intervals.")] = 0,
    spread: Annotated[
        str | None,
        typer.Option(
            help="Per-partition data: the spread from the fit's residuals ('residuals', the "
            "default) or from 'near-repeats' (files differing only in factors that do not "
            "act on a part; per point). See benchmarks/near_repeat_spread.py."
        ),
    ] = None,
    persistence: Annotated[
        bool,
        typer.Option(
            help="Also measure how long a slow spell lasts per part, where the store keeps "
            "its values in time order (own profiles, per-partition files), and write it into "
            "the spread (persistence_s, persistence_share; docs/calibration.md)."
        ),
    ] = False,
) -> None:
    """Fit latency models (per block x stress, link) from measurements.

    Per-partition data (AdaptiveDNN) gives per-block times by NNLS at every stress
    level; own profiles (`adaptsim profile` edge, cloud and link) are composed per
    condition first (--edge-host/--cloud-host pick hosts when several were
    profiled); per-block data (Scission) needs --edge-host and --cloud-host.
    """
    import numpy as np

    from adaptsim.calibration import save_calibration
    from adaptsim.calibration.build import StoreKind, build_calibration

    check_seeds([seed])  # the check draws with it after the calibration is written
    output_file(out, "--out")
    check_path = output_file(check_out or out.with_suffix(".check.csv"), "--check-out")
    with as_flags():
        built = build_calibration(
            store,
            model_list(models),
            edge_host=edge_host,
            cloud_host=cloud_host,
            summary=summary,
            check=check,
            spread=spread,
            persistence=persistence,
            progress=lambda m: err.print(f"  fitted {m}", markup=False),
        )
    save_calibration(built.calibration, out)
    if built.kind is StoreKind.partition:
        for flag, n in built.fit_rows.left_out_counts().items():
            err.print(f"left out {n} rows flagged {flag} (see the import summary)", markup=False)
        emit(
            built.quality(), OutputFormat.table, f"calibration fit quality (in-sample), wrote {out}"
        )
    err.print(f"{built.describe()}; wrote {out}", markup=False)
    if check:
        _check(built, check_path, np.random.default_rng(seed))


def _check(built, path: Path, rng) -> None:
    """Run the check, write its CSVs (what finished, on Ctrl-C) and print the summary."""
    from adaptsim.calibration.check import CheckInterrupted, write_check

    names = built.models
    try:
        summary, detail = built.check(rng, lambda m: err.print(f"  checked {m}", markup=False))
    except CheckInterrupted as stop:
        write_check(stop.summary, stop.detail, path)
        err.print(
            f"check interrupted: {path} holds the {len(stop.models)} of {len(names)} models "
            f"checked ({', '.join(stop.models)})",
            markup=False,
        )
        raise KeyboardInterrupt from None
    write_check(summary, detail, path)
    gains = [c for c in summary.columns if c.startswith("gain_")]
    emit(
        summary.drop(columns=gains),
        OutputFormat.table,
        f"leave-one-level-out check vs {built.floor_name} "
        f"(regret = measured time of predicted best / measured best - 1); wrote {path}",
    )
    table = summary[["model"]].copy()
    for name in dict.fromkeys(c.removesuffix("_lo").removesuffix("_hi") for c in gains):
        table[name.removeprefix("gain_")] = [
            f"{r[name]:+.4f} [{r[name + '_lo']:+.4f}, {r[name + '_hi']:+.4f}]"
            for _, r in summary.iterrows()
        ]
    emit(
        table,
        OutputFormat.table,
        "how much better than the floor (95 % bootstrap interval over the held-out "
        "conditions; an interval above 0 is more than resampling noise)",
    )
