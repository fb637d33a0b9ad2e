"""``adaptsim calibrate``: latency models from measurements, and their check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adaptsim.cli.app import OutputFormat, app, emit, err, guard
from adaptsim.errors import UserError


@app.command()
@guard
def calibrate(
    store: Annotated[Path, typer.Argument(help="A measurement store (Parquet).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Calibration file to write (JSON).")],
    models: Annotated[
        list[str] | None, typer.Option("--models", "-m", help="Only these models.")
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Leave-one-level-out cross-validation against the noise floor.")
    ] = False,
    check_out: Annotated[
        Path | None, typer.Option(help="CSV for the check (default: OUT with .check.csv).")
    ] = None,
    edge_host: Annotated[
        str | None, typer.Option(help="Per-block data: the host that plays the edge.")
    ] = None,
    cloud_host: Annotated[
        str | None, typer.Option(help="Per-block data: the host that plays the cloud.")
    ] = None,
    summary: Annotated[
        str | None,
        typer.Option(
            help="Own profiles: how a point's repeats become its time, trimmed-mean "
            "(10 % cut at each end; the default) or median."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the check's bootstrap intervals.")] = 0,
) -> None:
    """Fit latency models (per block x stress, link) from measurements.

    Per-partition data (AdaptiveDNN) gives per-block times by NNLS at every stress
    level; own profiles (`adaptsim profile` edge, cloud and link) are composed per
    condition first (--edge-host/--cloud-host pick hosts when several were
    profiled); per-block data (Scission) needs --edge-host and --cloud-host.
    """
    import time

    import pandas as pd

    from adaptsim.calibration import save_calibration
    from adaptsim.calibration.fit import calibration_rows, fit_calibration
    from adaptsim.store import read_store

    t0 = time.perf_counter()
    frame, meta = read_store(store)
    from adaptsim.calibration.profiles import DEFAULT_SUMMARY, has_profiles

    if has_profiles(frame) and not (frame["host_role"] == "edge+cloud").any():
        _calibrate_profiles(
            frame, meta, store, out, models, check, check_out, edge_host, cloud_host,
            summary or DEFAULT_SUMMARY, seed,
        )  # fmt: skip
        return
    if summary:
        raise UserError("--summary applies to own profiles (adaptsim profile); this store has none")
    if edge_host or cloud_host:
        if not (edge_host and cloud_host) or check:
            raise UserError(
                "per-block calibration needs both --edge-host and --cloud-host, "
                "and has no --check (it has a single condition)"
            )
        from adaptsim.calibration.blocks import fit_from_blocks

        network = [r for src in meta["sources"].values() for r in src.get("network", [])]
        cal = fit_from_blocks(frame, edge_host, cloud_host, network, models)
        save_calibration(cal, out)
        err.print(
            f"calibrated {len(cal.models)} models ({', '.join(sorted(cal.models))}) "
            f"from per-block data; wrote {out}",
            markup=False,
        )
        return
    left_out: dict[str, int] = {}
    rows = calibration_rows(frame, models, left_out)
    for flag, n in left_out.items():
        err.print(f"left out {n} rows flagged {flag} (see the import summary)", markup=False)
    provenance = {
        "store": str(Path(store).resolve()),
        "sources": {
            k: {"citation": v.get("citation", ""), "paths": v.get("paths", [])}
            for k, v in meta["sources"].items()
            if k in set(rows["source"])
        },
        "runs": rows.groupby(["model", "source"])
        .size()
        .rename("rows")
        .reset_index()
        .to_dict(orient="records"),
        "selection": "per model, a later source replaces an earlier one where it covers >= 50 %"
        " of the conditions (adaptsim.store.select_runs)",
        "left_out": left_out,
        "method": "adaptsim.calibration.fit (medians, NNLS per block, speed interpolation)",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    cal = fit_calibration(
        rows, provenance, models, progress=lambda m: err.print(f"  fitted {m}", markup=False)
    )
    save_calibration(cal, out)
    quality = pd.DataFrame([{"model": n, **m.quality} for n, m in sorted(cal.models.items())])
    emit(quality, OutputFormat.table, f"calibration fit quality (in-sample), wrote {out}")
    err.print(
        f"calibrated {len(cal.models)} models in {time.perf_counter() - t0:.2f} s", markup=False
    )
    if not check:
        return
    _check(rows, sorted(cal.models), out, check_out, None, "the near-repeat noise floor", seed)


def _check(
    rows, names, out: Path, check_out: Path | None, floor, floor_name: str, seed: int
) -> None:
    """Run the leave-one-level-out check, write its CSVs and print the summary."""
    import numpy as np

    from adaptsim.atomic import write_atomic
    from adaptsim.calibration.check import CheckInterrupted, by_factor, check_calibration

    path = check_out or out.with_suffix(".check.csv")

    def write(summary, detail) -> None:
        for p, frame in (
            (path, summary),
            (path.with_name(path.stem + "-detail.csv"), detail),
            (path.with_name(path.stem + "-by-factor.csv"), by_factor(detail)),
        ):
            write_atomic(p, lambda tmp, frame=frame: frame.to_csv(tmp, index=False))

    try:
        summary, detail = check_calibration(
            rows,
            names,
            progress=lambda m: err.print(f"  checked {m}", markup=False),
            floor=floor,
            rng=np.random.default_rng(seed),
        )
    except CheckInterrupted as stop:
        write(stop.summary, stop.detail)
        err.print(
            f"check interrupted: {path} holds the {len(stop.models)} of {len(names)} models "
            f"checked ({', '.join(stop.models)})",
            markup=False,
        )
        raise KeyboardInterrupt from None
    write(summary, detail)
    gains = [c for c in summary.columns if c.startswith("gain_")]
    emit(
        summary.drop(columns=gains),
        OutputFormat.table,
        f"leave-one-level-out check vs {floor_name} "
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


def _calibrate_profiles(
    frame, meta, store, out, models, check, check_out, edge_host, cloud_host, summary, seed
):
    """``calibrate`` on own profiles: compose edge, cloud and link, fit, optionally check."""
    import dataclasses
    import time

    from adaptsim.calibration import save_calibration
    from adaptsim.calibration.fit import fit_calibration
    from adaptsim.calibration.profiles import compose, profile_spread, split_half_floor

    t0 = time.perf_counter()
    rows = compose(frame, models, edge_host, cloud_host, summary)
    names = sorted(rows["model"].unique())
    used = {f"profile:link:{h}" for h in rows["edge_host"].unique()} | {
        s for s in meta["sources"] if s.startswith("profile:") and s.split(":")[-1] in names
    }
    provenance = {
        "store": str(Path(store).resolve()),
        "sources": {k: v for k, v in meta["sources"].items() if k in used},
        "method": f"adaptsim.calibration.profiles: the {summary} of each point's repeats, "
        "edge, cloud and link composed per condition, then adaptsim.calibration.fit "
        "(NNLS per block, speed interpolation); spread from the repeats",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    cal = fit_calibration(rows, provenance, names)
    spread = profile_spread(frame, names, summary)
    cal.models.update({n: dataclasses.replace(m, spread=spread) for n, m in cal.models.items()})
    save_calibration(cal, out)
    err.print(
        f"calibrated {len(names)} models ({', '.join(names)}) from own profiles "
        f"({len(rows)} composed rows) in {time.perf_counter() - t0:.2f} s; wrote {out}",
        markup=False,
    )
    if not check:
        return
    floor = lambda m, _rows: split_half_floor(frame, m, edge_host, cloud_host, summary)  # noqa: E731
    _check(rows, names, out, check_out, floor, "the split-half floor of the repeats", seed)
