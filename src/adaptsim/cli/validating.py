"""``adaptsim validate`` and ``serve``: real runs of a scenario, held against the simulator."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from adaptsim.cli.app import app, err, guard
from adaptsim.cli.flags import check_seeds
from adaptsim.errors import UserError


def _say(line: str) -> None:
    err.print(line, markup=False, highlight=False)


def _is_validation_folder(path: Path) -> bool:
    """An empty folder, or one a validation wrote (it replaces only those)."""
    return not any(path.iterdir()) or (path / "validation.json").is_file()


def _check_out(target: Path, what: str, make_parent: bool) -> None:
    """The folder a validation will replace, checked before minutes of real run: not a
    file, not '.', not a folder of something else (it would be deleted), and writable
    (a staging folder is made there and removed again)."""
    from adaptsim.atomic import StagedFolder

    with StagedFolder(target, what, _is_validation_folder, make_parent=make_parent):
        pass


@app.command()
@guard
def validate(
    scenario: Annotated[Path, typer.Argument(help="A scenario YAML file.")],
    calibration: Annotated[
        Path | None,
        typer.Option(help="This host's calibration (replaces the scenario's, in both runs)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder (default results/NAME-validation).")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Real seconds per run (after --time-scale).")
    ] = None,
    time_scale: Annotated[
        float, typer.Option(help="Traces run this many times faster (trace time / F).")
    ] = 1.0,
    policies: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated policy names (default: all but oracle; `all` = the "
            "scenario's); built-ins it lacks (neurosurgeon, mpc, changepoint) join with "
            "default parameters, e.g. all,neurosurgeon,mpc,changepoint."
        ),
    ] = None,
    rate_hz: Annotated[
        float | None,
        typer.Option(help="Frames a second, replacing the scenario's (more frames per run)."),
    ] = None,
    seeds: Annotated[
        list[int] | None, typer.Option("--seed", help="Override the scenario's seeds.")
    ] = None,
    fold_back: Annotated[
        Path | None,
        typer.Option(help="Another validation folder: fold what it measured into a second twin."),
    ] = None,
    cloud: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT of `adaptsim serve --role cloud` on another machine: only the edge "
            "runs here (no namespaces, no tc), frames authenticated."
        ),
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option(help="With --cloud: file holding the shared secret (else $ADAPTSIM_SECRET)."),
    ] = None,
    cloud_wait_s: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="With --cloud: seconds to keep retrying while the server is not up yet "
            "(it listens once its tails are compiled).",
        ),
    ] = 300.0,
    noise_draws: Annotated[
        int,
        typer.Option(
            min=1,
            max=1000,
            help="Service-noise draws of the twin; compared by their median, spread shown.",
        ),
    ] = 9,
    edge_cpu_quota: Annotated[
        float | None,
        typer.Option(
            help="Cores of CPU time for the edge (cgroup quota, with its stress-ng), e.g. 0.25 "
            "for an edge 4x slower; the calibration's edge must be profiled with the same "
            "`profile --cpu-quota`.",
        ),
    ] = None,
    probe_frames: Annotated[
        int,
        typer.Option(
            help="Host-speed probe: before and after each policy run (no stress, link idle) "
            "time this many calls of the whole model on the edge and of its whole tail on "
            "the cloud; a twin at each run's probed speed (comparison_probed.csv) and a "
            "fold-back relative to the host's speed. 0: no probe.",
        ),
    ] = 5,
    probe_every: Annotated[
        float,
        typer.Option(
            help="Also probe DURING each run, in the edge's idle gaps (no frame queued or "
            "in flight, the next not due within 2x the probe's predicted time): one call "
            "on the edge and one in the cloud about every this many seconds of the run's "
            "real time (the records' clock), under the run's conditions; skipped ones "
            "counted. The host speed then follows the run's time. 0: none.",
        ),
    ] = 0.0,
    probe_pool: Annotated[
        str,
        typer.Option(
            help="run: each policy run's host speed from its own probes (over time, with "
            "--probe-every); seed: every run of a seed at the speed of all the seed's probes "
            "pooled (one number); ends: each run's probes before and after it alone.",
        ),
    ] = "run",
) -> None:
    """Run the scenario for real (root: namespaces, tc, stress-ng) and beside its simulated twin."""
    import pandas as pd

    from adaptsim.testbed import scenario_for_testbed
    from adaptsim.testbed import validate as run_validation

    check_seeds(seeds or [])
    from adaptsim.testbed.host_speed import check_probe_frames
    from adaptsim.testbed.speed_track import check_probe_every, check_probe_pool

    check_probe_frames(probe_frames)  # before any scenario is read or folder checked
    check_probe_every(probe_every)
    check_probe_pool(probe_pool)
    if policies is not None and not policies.replace(",", "").strip():
        raise UserError(f"--policies {policies!r}: name at least one policy, e.g. all,mpc")
    if secret_file is not None and cloud is None:
        raise UserError("--secret-file: only with --cloud HOST:PORT (a local run makes its own)")
    wanted = [p.strip() for p in policies.split(",") if p.strip()] if policies else None
    sc = scenario_for_testbed(scenario, calibration, duration, time_scale, rate_hz=rate_hz)
    if cloud is None:  # the local run shapes the trace with tc: every rate must be one tc takes
        from adaptsim.emulation import check_rate

        for v in sorted(set(sc.bandwidth.values)):
            check_rate(v, f"{scenario}: field traces.bandwidth_mbps:", zero_ok=True)
    target = out or Path("results") / f"{sc.name}-validation"
    _check_out(target, "--out" if out else "results folder", make_parent=out is None)
    folder = run_validation(
        scenario, calibration, target, duration_s=duration, time_scale=time_scale,
        policies=wanted, seeds=tuple(seeds) if seeds else None, rate_hz=rate_hz,
        fold_back=fold_back,
        cloud=cloud, secret_file=secret_file, cloud_wait_s=cloud_wait_s, noise_draws=noise_draws,
        edge_cpu_quota=edge_cpu_quota, probe_frames=probe_frames, probe_every_s=probe_every,
        probe_pool=probe_pool, progress=_say,
    )  # fmt: skip
    table = pd.read_csv(folder / "comparison.csv")
    cols = ["policy", "measured_mean_s", "simulated_mean_s", "mean_error_pct",
            "measured_p95_s", "simulated_p95_s", "p95_error_pct"]  # fmt: skip
    from adaptsim.cli.app import OutputFormat, emit

    emit(table[cols].round(4), OutputFormat.table, "measured vs simulated")
    _say(f"wrote {folder} (report.html, report.md, comparison.csv, stages.csv, real/, "
         "simulated/)")  # fmt: skip
    facts = json.loads((folder / "validation.json").read_text())
    if facts.get("cloud_lost"):  # the remote cloud went away: what finished is written
        _say(f"adaptsim: {facts['cloud_lost']}; the frames and runs that finished were "
             "compared and written")  # fmt: skip
        raise typer.Exit(1)
    if facts["interrupted"]:
        _say("adaptsim: interrupted; the runs that finished were compared and written")
        raise typer.Exit(130)


class ServeRole(StrEnum):
    cloud = "cloud"


@app.command()
@guard
def serve(
    role: Annotated[ServeRole, typer.Option("--role", help="What this host serves.")],
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on.")],
    models: Annotated[
        str, typer.Option("--models", "-m", help="Zoo models to serve, comma-separated.")
    ] = "alexnet",
    workers: Annotated[
        int, typer.Option(min=1, max=256, help="Tails run at once (cloud servers).")
    ] = 1,
    one_way_latency_s: Annotated[
        float, typer.Option(min=0.0, help="Latency added to each frame before it queues.")
    ] = 0.0,
    secret_file: Annotated[
        Path | None,
        typer.Option(help="File holding the shared secret (else $ADAPTSIM_SECRET)."),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="TensorFlow threads (default: its own choice); the local testbed's cloud "
            "and the profiler use 1: match the calibration's profile.",
        ),
    ] = None,
) -> None:
    """Serve the cloud half of every split on a real address, every frame authenticated."""
    import threading

    from adaptsim.models import canonical_name
    from adaptsim.testbed.protocol import load_secret, parse_address

    host, port = parse_address(listen, "--listen", port_zero=True)
    from adaptsim.simulator.traces import MAX_TIME_S

    if not one_way_latency_s <= MAX_TIME_S:  # NaN passes typer's min=0
        raise UserError(
            f"--one-way-latency-s {one_way_latency_s}: give seconds from 0 to {MAX_TIME_S:g}"
        )
    key = load_secret(secret_file)
    names = [canonical_name(m.strip()) for m in models.split(",") if m.strip()]
    from adaptsim.testbed.server import (
        CloudServer,
        bind,
        build_tails,
        reach_hint,
        set_tf_threads,
    )

    try:  # bound before compiling: a wrong address is said now, not minutes later
        sock = bind(host, port)
    except OSError as exc:
        raise UserError(f"--listen {listen}: cannot listen there ({exc.strerror})") from None
    if threads is not None:
        set_tf_threads(threads)
    server = CloudServer(build_tails(names, _say), workers=workers, key=key,
                         one_way_latency_s=one_way_latency_s, bound_socket=sock)  # fmt: skip
    server.start()
    bound = f"{server.address[0]}:{server.address[1]}"
    _say(f"serving {', '.join(names)} on {bound}{reach_hint(server.address[0])}; Ctrl-C stops")
    threading.Event().wait()
