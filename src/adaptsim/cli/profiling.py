"""``adaptsim profile``: measure this host under real stress, or the real link."""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from adaptsim.cli.app import app, err, guard
from adaptsim.cli.flags import model_list, store_output
from adaptsim.errors import UserError


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
@guard
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

    if out.is_dir():
        raise UserError(
            f"--out {out} is a folder; give the store's file name, e.g. {out}/own.parquet"
        )
    store_output(out)  # a file there that is not a store: said now, not after the first condition
    t0 = time.perf_counter()
    say = lambda line: err.print(line, markup=False, highlight=False)  # noqa: E731
    if host is Role.link:
        link = LinkPlan(_levels(bandwidth, "--bandwidth"), repeats, max_transfer_s,
                        host=host_name, seed=seed)  # fmt: skip
        link.validate()  # before any namespace (profile_link checks again)
        rows = profile_link(link, out, say)
    else:
        from adaptsim.emulation import parse_cpus

        names = model_list(models) or []
        plan = ComputePlan(
            role=host.value,
            models=names,  # empty: every zoo model
            cpu_levels_pct=_levels(cpu_stress, "--cpu-stress"),
            mem_levels_pct=_levels(mem_stress, "--mem-stress"),
            repeats=repeats,
            mem_budget_bytes=(
                mem_budget_bytes if mem_budget_bytes is not None else _default_mem_budget()
            ),
            cpu_quota=cpu_quota,
            threads=threads,
            host=host_name,
            seed=seed,
            cpus=parse_cpus(cpus) if cpus else None,
            rounds=rounds,
        )
        plan.validate()  # before TensorFlow starts: it aborts on some bad values
        rows = profile_compute(plan, out, say)
    n = int((rows["stat"] == "median").sum())
    say(f"wrote {n} medians (+ samples) to {out} in {time.perf_counter() - t0:.1f} s")


def _default_mem_budget() -> int:
    from adaptsim.profiler.host import host_facts

    ram = host_facts()["memory_bytes"]
    return 1 << 30 if math.isnan(ram) else int(min(ram / 8, 2 << 30))
