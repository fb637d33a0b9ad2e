"""``adaptsim validate`` and ``serve``: real runs of a scenario, held against the simulator."""

from __future__ import annotations

import json
import signal
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
    file, not '.', not a folder of something else (it would be deleted), not an
    interrupted validation's (its real runs would be lost), and writable (a staging
    folder is made there and removed again)."""
    from adaptsim.atomic import StagedFolder
    from adaptsim.files import load_json

    facts = target / "validation.json"
    if target.is_dir() and facts.is_file():
        try:
            incomplete = load_json(facts, "validation facts").get("incomplete")
        except (UserError, AttributeError):  # damaged or not an object: replaceable
            incomplete = None
        if incomplete:
            raise UserError(
                f"{what} {target} holds an incomplete validation ({facts}: {incomplete}); "
                "replacing it would lose its real runs: give --resume to finish it, another "
                "--out, or move it away"
            )
    with StagedFolder(target, what, _is_validation_folder, make_parent=make_parent):
        pass


def _warn_if_others_read(secret_file: Path | None) -> None:
    """A secret file other users of this host can read (ssh refuses such keys): said once
    on stderr, not refused (a file made with the default umask is 644)."""
    if secret_file is None:
        return
    try:
        mode = secret_file.stat().st_mode & 0o777
    except OSError:
        return  # load_secret says why it cannot be read
    if mode & 0o044:
        _say(f"adaptsim: warning: --secret-file {secret_file} is readable by other users "
             f"of this host (mode {mode:o}): they can forge frames; chmod 600 "
             f"{secret_file}")  # fmt: skip


def _exit_code(by: str | None) -> int:
    """128 + the signal that stopped the run (130: Ctrl-C; 1 for anything else)."""
    return 128 + signal.Signals[by] if by in signal.Signals.__members__ else 1


@app.command()
@guard
def validate(
    scenario: Annotated[Path, typer.Argument(help="A scenario YAML file.")],
    calibration: Annotated[
        Path | None,
        typer.Option(
            help="This host's calibration (replaces the scenario's, in both runs; default: "
            "the shipped one profiled on this kind of CPU, else the nearest, with a warning)."
        ),
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
        typer.Option(
            help="Another validation folder: fold what it measured into a second twin. With "
            "--resume and a complete --out: fold it into that saved validation again (its "
            "real runs kept, its twins simulated now)."
        ),
    ] = None,
    fold_centre: Annotated[
        str,
        typer.Option(
            help="How the fold-back makes one fit of its policy runs' own: median (of the "
            "runs: one disturbed run does not move it), steady (their median weighted by how "
            "steady each run's host-speed probes were), trimmed (their mean without the "
            "lowest and highest), pooled (every frame pooled, as before; docs/validation.md)."
        ),
    ] = "steady",
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
    resume: Annotated[
        bool,
        typer.Option(
            help="Finish the incomplete validation in --out (interrupted while its twin "
            "was simulated): its saved real runs compared, nothing run again; the other "
            "options are the folder's own. With --fold-back: re-fold a complete --out."
        ),
    ] = False,
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
    from adaptsim.testbed import scenario_for_testbed
    from adaptsim.testbed import validate as run_validation
    from adaptsim.testbed.foldback import check_centre

    check_centre(fold_centre)
    if resume:
        if out is None:
            raise UserError("--resume: give the incomplete folder as --out")
        if fold_back is not None:  # re-fold a saved validation: no real run
            from adaptsim.testbed.validate import refold

            _report_validation(refold(out, fold_back, fold_centre, progress=_say))
            return
        from adaptsim.testbed.validate import resume as finish

        _report_validation(finish(out, progress=_say))
        return
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
    _warn_if_others_read(secret_file)
    wanted = [p.strip() for p in policies.split(",") if p.strip()] if policies else None
    sc = scenario_for_testbed(scenario, calibration, duration, time_scale, rate_hz=rate_hz)
    if cloud is None:  # the local run shapes the trace with tc: every rate must be one tc takes
        from adaptsim.emulation import check_rate

        for v in sorted(set(sc.bandwidth.values)):
            check_rate(v, f"{scenario}: field traces.bandwidth_mbps:", zero_ok=True)
    target = out or Path("results") / f"{sc.name}-validation"
    _check_out(target, "--out" if out else "results folder", make_parent=out is None)
    try:
        folder = run_validation(
            scenario, calibration, target, duration_s=duration, time_scale=time_scale,
            policies=wanted, seeds=tuple(seeds) if seeds else None, rate_hz=rate_hz,
            fold_back=fold_back, cloud=cloud, secret_file=secret_file,
            cloud_wait_s=cloud_wait_s, noise_draws=noise_draws,
            edge_cpu_quota=edge_cpu_quota, probe_frames=probe_frames,
            probe_every_s=probe_every, probe_pool=probe_pool, fold_centre=fold_centre,
            progress=_say,
        )  # fmt: skip
    except KeyboardInterrupt as exc:  # Ctrl-C or kill before a policy run finished
        by = signal.Signals(getattr(exc, "signum", signal.SIGINT)).name
        _say(f"adaptsim: interrupted ({by}) before any policy run finished; nothing written")
        raise typer.Exit(_exit_code(by)) from None
    _report_validation(folder)


def _report_validation(folder: Path) -> None:
    """The comparison table and what was written; an interrupted run's one line and exit."""
    import pandas as pd

    facts = json.loads((folder / "validation.json").read_text())
    if facts.get("incomplete"):
        _say(f"adaptsim: {folder}: {facts['incomplete']}")
        raise typer.Exit(_exit_code(facts.get("incomplete_by")))
    table = pd.read_csv(folder / "comparison.csv")
    cols = ["policy", "measured_mean_s", "simulated_mean_s", "mean_error_pct",
            "measured_p95_s", "simulated_p95_s", "p95_error_pct"]  # fmt: skip
    from adaptsim.cli.app import OutputFormat, emit

    emit(table[cols].round(4), OutputFormat.table, "measured vs simulated")
    _say(f"wrote {folder} (report.html, report.md, comparison.csv, stages.csv, real/, "
         "simulated/)")  # fmt: skip
    if facts.get("cloud_lost"):  # the remote cloud went away: what finished is written
        _say(f"adaptsim: {facts['cloud_lost']}; the frames and runs that finished were "
             "compared and written")  # fmt: skip
        raise typer.Exit(1)
    if facts["interrupted"]:
        _say(f"adaptsim: interrupted ({facts.get('interrupted_by')}): the "
             f"{facts.get('runs_finished')} of {facts.get('runs_planned')} policy runs that "
             "finished were compared and written")  # fmt: skip
        raise typer.Exit(_exit_code(facts.get("interrupted_by")))


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
    _warn_if_others_read(secret_file)
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
