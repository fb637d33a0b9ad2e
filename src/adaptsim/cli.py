"""The ``adaptsim`` command line: a thin typer app, every command calls the library.

Bad input raises :class:`adaptsim.errors.UserError`; :func:`_guard` prints it as
one line on stderr and exits with code 2. Ctrl-C exits with 130 after the library
has kept what it finished.
"""

from __future__ import annotations

import functools
import json
import math
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
        list[str] | None,
        typer.Option("--models", "-m", help="Only these models (other folders are not read)."),
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


def _levels(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{option} {text!r}: give comma-separated numbers, e.g. 0,50,100") from None


class Role(StrEnum):
    edge = "edge"
    cloud = "cloud"
    link = "link"


@app.command()
@_guard
def profile(
    host: Annotated[Role, typer.Option("--host", help="What this host is measured as.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="The store (Parquet) to write into.")
    ] = Path("profiles.parquet"),
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--models", "-m", help="Zoo models, repeated or comma-separated (default: all)."
        ),
    ] = None,
    cpu_stress: Annotated[str, typer.Option(help="CPU stress levels, % per core.")] = "0,50,100",
    mem_stress: Annotated[
        str, typer.Option(help="Memory stress levels, % of --mem-budget-bytes.")
    ] = "0,50,100",
    mem_budget_bytes: Annotated[
        int | None,
        typer.Option(help="Bytes that 100 % memory stress holds (default: 1/8 of RAM, <= 2 GiB)."),
    ] = None,
    cpu_quota: Annotated[
        float | None,
        typer.Option(help="Edge only: throttle to this many cores (cgroup v1), e.g. 0.5."),
    ] = None,
    cpus: Annotated[
        str | None,
        typer.Option(help="Pin the profile and its stress to these CPUs, e.g. 0 (a 1-core edge)."),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="TensorFlow intra-op threads (default: usable cores).")
    ] = None,
    repeats: Annotated[int, typer.Option(help="Timings per point and condition.")] = 10,
    rounds: Annotated[
        int,
        typer.Option(
            help="Edge/cloud: split the repeats over this many visits of every condition, "
            "each under a fresh stress-ng run."
        ),
    ] = 1,
    bandwidth: Annotated[
        str, typer.Option(help="Link only: bandwidth levels, Mbit/s.")
    ] = "5,10,25,50",
    max_transfer_s: Annotated[
        float, typer.Option(help="Link only: the largest payload takes about this long.")
    ] = 0.5,
    host_name: Annotated[
        str | None, typer.Option(help="Name recorded for this host (default: hostname).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the order points are timed in.")] = 0,
) -> None:
    """Measure this host: per-point times under real stress (edge/cloud), or the link."""
    import time

    from adaptsim.profiler import ComputePlan, LinkPlan, profile_compute, profile_link

    t0 = time.perf_counter()
    say = lambda line: err.print(line, markup=False, highlight=False)  # noqa: E731
    if host is Role.link:
        rows = profile_link(
            LinkPlan(_levels(bandwidth, "--bandwidth"), repeats, max_transfer_s, host=host_name,
                     seed=seed),
            out,
            say,
        )  # fmt: skip
    else:
        from adaptsim.models import ZOO_NAMES
        from adaptsim.profiler.host import parse_cpus

        names = [m.strip() for v in (models or ZOO_NAMES) for m in v.split(",") if m.strip()]
        plan = ComputePlan(
            host.value,
            names,
            _levels(cpu_stress, "--cpu-stress"),
            _levels(mem_stress, "--mem-stress"),
            repeats,
            mem_budget_bytes if mem_budget_bytes is not None else _default_mem_budget(),
            cpu_quota,
            threads,
            host_name,
            seed,
            parse_cpus(cpus) if cpus else None,
            rounds,
        )
        rows = profile_compute(plan, out, say)
    n = int((rows["stat"] == "median").sum())
    say(f"wrote {n} medians (+ samples) to {out} in {time.perf_counter() - t0:.1f} s")


def _default_mem_budget() -> int:
    from adaptsim.profiler.host import host_facts

    ram = host_facts()["memory_bytes"]
    return 1 << 30 if math.isnan(ram) else int(min(ram / 8, 2 << 30))


@app.command()
@_guard
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
    _emit(quality, OutputFormat.table, f"calibration fit quality (in-sample), wrote {out}")
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
    _emit(
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
    _emit(
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


class StudySource(StrEnum):
    measured = "measured"
    calibrated = "calibrated"


@app.command()
@_guard
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


def _summary_table(summary) -> None:
    from adaptsim.report.build import pretty_summary

    _emit(pretty_summary(summary), OutputFormat.table, "policy comparison (all seeds pooled)")


@app.command()
@_guard
def run(
    scenario: Annotated[Path, typer.Argument(help="A scenario YAML file.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Results folder (default results/NAME).")
    ] = None,
    report: Annotated[bool, typer.Option(help="Also write report.html and report.md.")] = False,
    duration: Annotated[
        float | None, typer.Option(help="Simulate only this many seconds (a quick look).")
    ] = None,
    seeds: Annotated[
        list[int] | None, typer.Option("--seed", help="Override the scenario's seeds.")
    ] = None,
) -> None:
    """Simulate the scenario's policies over its traces and compare them."""
    from rich.progress import Progress

    from adaptsim.simulator import load_scenario, run_scenario, write_results

    sc = load_scenario(scenario)
    if duration is not None or seeds:
        sc = sc.shortened(duration or sc.duration_s, tuple(seeds) if seeds else None)
    target = out or Path("results") / sc.name
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(f"simulating {sc.name}", total=len(sc.policies) * len(sc.seeds))
        results = run_scenario(
            sc,
            progress=lambda name, done, total: bar.update(
                task, completed=done, description=f"{sc.name}: {name}"
            ),
        )
    if results.records.empty:
        err.print("adaptsim: interrupted before any run finished; nothing written", markup=False)
        raise typer.Exit(130)
    write_results(results, target)
    _summary_table(results.summary)
    n = len(results.records)
    err.print(f"{n} requests simulated in {results.wall_s:.2f} s; wrote {target}", markup=False)
    if report:
        from adaptsim.report import build_report

        paths = build_report(target)
        err.print(f"report: {paths[0]}", markup=False)
    if results.interrupted:
        err.print("adaptsim: interrupted; the runs that finished were written", markup=False)
        raise typer.Exit(130)


@app.command("report")
@_guard
def report_cmd(
    results: Annotated[Path, typer.Argument(help="A results folder from `adaptsim run`.")],
) -> None:
    """Build report.html and report.md (CDF, timeline, summary) from a results folder."""
    import pandas as pd

    from adaptsim.report import build_report

    paths = build_report(results)
    _summary_table(pd.read_csv(results / "summary.csv"))
    err.print(f"wrote {paths[0]} and {paths[1]}", markup=False)


@app.command()
@_guard
def bench(
    repeats: Annotated[int, typer.Option(min=1, help="Runs of each engine.")] = 3,
) -> None:
    """Simulated requests per second: the fast engine vs a naive SimPy one, side by side."""
    from adaptsim.simulator.bench import bench as run_bench

    result = run_bench(repeats, progress=lambda r, n: err.print(f"  repeat {r}/{n}", markup=False))
    sys.stdout.write(json.dumps(result, indent=1) + "\n")


def main() -> None:
    """Console-script entry point."""
    app()
