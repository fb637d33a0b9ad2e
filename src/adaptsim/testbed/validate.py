"""``adaptsim validate``: a scenario run for real, and its simulated twin beside it.

The twin is the same scenario (this host's calibration, the same compressed
traces, duration, seeds and so the same arrivals, noise and monitor readings)
simulated with the same policies. The folder holds ``real/`` and
``simulated/`` (each a results folder ``adaptsim report`` reads),
``comparison.csv`` (per policy), ``stages.csv`` (per policy and stage),
``validation.json`` (the run's facts) and ``report.html`` + ``report.md``
(:mod:`~adaptsim.testbed.report`, built from those files). It is written beside
its place and renamed into it at the end: whole or absent.

Ctrl-C, SIGTERM and SIGHUP keep what finished: policy runs that finished before
are compared and written (``interrupted``); an interrupt while the twin is
simulated writes the real runs alone, in a folder whose ``validation.json`` says
``incomplete`` (:func:`write_incomplete`; every reader refuses it in one line).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from adaptsim.atomic import StagedFolder, sigint_deferred, write_atomic
from adaptsim.calibration import load_calibration
from adaptsim.emulation.cleanup import Terminated, terminating_as_interrupt
from adaptsim.errors import UserError
from adaptsim.profiler.host import host_facts
from adaptsim.simulator import Results, write_results
from adaptsim.simulator.draws import draw
from adaptsim.simulator.results import interrupts_propagate
from adaptsim.testbed.calibration_host import calibration_for_host, host_mismatch_note
from adaptsim.testbed.compare import compare_stages, ranking
from adaptsim.testbed.edge_quota import (
    check_edge_quota,
    check_quota_matches,
    scenario_calibration_path,
)
from adaptsim.testbed.foldback import (
    FOLD_CENTRE,
    FOLD_NOTE,
    apply_foldback,
    check_centre,
    fit_foldback,
    fold_back_facts,
    folded_twin,
)
from adaptsim.testbed.folder import (
    fold_back_source,
    scored_source,
    validation_facts,
)
from adaptsim.testbed.host_speed import (
    PROBE_FRAMES,
    check_probe_frames,
    host_speeds,
    probed_twin,
    record_speeds,
)
from adaptsim.testbed.protocol import load_secret
from adaptsim.testbed.report import write_validation_report
from adaptsim.testbed.run import RealRunPlan, check_cloud, real_run, scratch_dir
from adaptsim.testbed.scenario import (
    ALL_POLICIES,
    scenario_for_testbed,
    select_policies,
    twin_scenario,
)
from adaptsim.testbed.speed_track import (
    PROBE_EVERY_S,
    PROBE_POOL,
    check_probe_every,
    check_probe_pool,
)
from adaptsim.testbed.twin import NOISE_DRAWS, compare_draws, twin_draws

__all__ = [
    "ALL_POLICIES",
    "incomplete_line",
    "refold",
    "resume",
    "select_policies",
    "shared_core_note",
    "validate",
    "write_incomplete",
    "write_validation",
]


def shared_core_note(mem_cpus: list[int], cloud_cpus: list[int], edge_mem_pct) -> str | None:
    """A note when the edge's memory stressor shares a core with the local cloud.

    On a 2-core machine the stressor runs where the edge was profiled to have it,
    the cloud's core; under edge memory stress the real cloud is then slower than
    the twin's, which was profiled alone (``combined``: x2.1-2.3, docs/validation.md).
    """
    shared = sorted(set(mem_cpus) & set(cloud_cpus))
    if not shared or max(edge_mem_pct, default=0.0) <= 0:
        return None
    return (
        f"the edge's memory stressor ran on CPU {shared}, the local cloud's: under edge "
        "memory stress the cloud shares its core, which its profile did not (a cloud "
        "slower than the twin's there is the testbed's, not the model's; "
        "docs/validation.md, combined)"
    )


def validate(
    scenario: Path,
    calibration: Path | None,
    out: Path,
    *,
    duration_s: float | None = None,
    time_scale: float = 1.0,
    policies: list[str] | None = None,
    seeds: tuple[int, ...] | None = None,
    rate_hz: float | None = None,
    fold_back: Path | None = None,
    cloud: str | None = None,
    secret_file: Path | None = None,
    cloud_wait_s: float = 300.0,
    noise_draws: int = NOISE_DRAWS,
    edge_cpu_quota: float | None = None,
    probe_frames: int = PROBE_FRAMES,
    probe_every_s: float = PROBE_EVERY_S,
    probe_pool: str = PROBE_POOL,
    fold_centre: str = FOLD_CENTRE,
    progress: Callable[[str], None] = print,
) -> Path:
    """Run the scenario for real and simulated; write the comparison into ``out``.

    With ``fold_back`` (another validation folder), a second twin runs with what
    that run measured folded back (:mod:`~adaptsim.testbed.foldback`), and the
    comparison is written before and after. ``rate_hz`` replaces the scenario's
    arrival rate and ``policies`` may name built-ins the scenario lacks (see
    :func:`~adaptsim.testbed.scenario_for_testbed`). With ``cloud`` (``HOST:PORT`` of an
    ``adaptsim serve --role cloud`` on another machine) only the edge runs here,
    in this host's own network, every frame authenticated with the shared secret
    (``$ADAPTSIM_SECRET`` or ``secret_file``; a server not up yet is waited for up to
    ``cloud_wait_s``): no namespaces and no tc, so the
    bandwidth trace is not applied (the real network is what it is; said in the
    report); the edge stress traces still are. The twin is simulated with
    ``noise_draws`` service-noise draws and compared by their median
    (:mod:`~adaptsim.testbed.twin`); ``simulated/`` holds draw 0.
    ``edge_cpu_quota`` runs the edge process in a cgroup CPU quota of that many
    cores (:mod:`~adaptsim.testbed.edge_quota`); a calibration whose edge was
    profiled under another quota is refused before anything runs.
    Without ``calibration`` (and a quota) the twin takes the shipped own calibration
    profiled on this host's kind of CPU (:func:`~adaptsim.testbed.calibration_host.
    calibration_for_host`), never the scenario's; one profiled on another kind is
    warned of, before the run and in the report's notes.
    ``probe_frames`` (0: none) times the host's speed before and after each policy run
    (:mod:`~adaptsim.testbed.host_speed`): a third twin, each policy run's edge and
    cloud at its probed host speed (``comparison_probed.csv``), and a fold-back from a
    run that probed too is fitted relative to its host speed and applied at each run's
    (``comparison_folded.csv``; as without probes: ``comparison_folded_plain.csv``).
    ``probe_every_s`` (0: none) adds a probe in the edge's idle gaps every that many
    seconds of the run, under the run's conditions, and the host speed then follows the
    run's time; ``probe_pool`` ``seed`` gives every run of a seed the speed of all the
    seed's probes pooled (:mod:`~adaptsim.testbed.speed_track`). ``fold_centre``: how
    the fold-back makes one fit of its policy runs' own (``steady`` by default: their
    median weighted by how steady each run's probes were;
    :func:`~adaptsim.testbed.foldback.fit_foldback`); a run far from it is
    named in the report's notes.
    """
    with terminating_as_interrupt() as signals:  # kill keeps what finished, as Ctrl-C
        check_probe_frames(probe_frames)
        check_probe_every(probe_every_s)
        check_probe_pool(probe_pool)
        check_centre(fold_centre)
        if noise_draws < 1:
            raise UserError(f"--noise-draws {noise_draws}: give at least 1")
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} is a file; give a folder")
        fb = fb_plain = None
        if fold_back is not None:
            fold_back_source(fold_back, "--fold-back")  # one line now, not a traceback
            if fold_back.resolve() == out.resolve():
                raise UserError("--fold-back: fit on another run than the one you score (--out)")
            try:
                fb = fit_foldback(fold_back, pool=probe_pool, centre=fold_centre)
                if fb.host_relative:  # as it was fitted before the probes, for comparison
                    fb_plain = fit_foldback(fold_back, host_speed=False, centre=fold_centre)
            except UserError as exc:
                raise UserError(f"--fold-back {fold_back}: {exc}") from None
        sc = scenario_for_testbed(scenario, calibration, duration_s, time_scale, seeds, rate_hz,
                                  policies)  # fmt: skip
        here, roles = host_facts(), ("edge",) if cloud is not None else ("edge", "cloud")
        if calibration is None and edge_cpu_quota is None:  # this host's, not the scenario's
            calibration, alike = calibration_for_host(sc.model.model, here, roles)
            progress(
                f"calibration {calibration.name} (no --calibration given; "
                f"{'profiled on this kind of host' if alike else 'the nearest shipped'})"
            )
            sc = scenario_for_testbed(scenario, calibration, duration_s, time_scale, seeds,
                                      rate_hz, policies)  # fmt: skip
        keep, notes = select_policies(sc, policies)
        if fb is not None:  # the fit runs far from the fold-back's centre
            notes += fb.outlier_notes(fold_back)
        plan = RealRunPlan(scenario, calibration, sc.duration_s, time_scale, keep,
                           rate_hz=rate_hz, added_policies=list(policies or []),
                           edge_cpu_quota=edge_cpu_quota, probe_frames=probe_frames,
                           probe_every_s=probe_every_s)  # fmt: skip
        check_edge_quota(edge_cpu_quota, plan.edge_cpus)
        cal = load_calibration(scenario_calibration_path(calibration, sc))
        unchecked = check_quota_matches(cal, sc.model.model, edge_cpu_quota)
        if unchecked:
            notes.append(unchecked)
        if cloud is not None:
            plan.cloud_address = check_cloud(cloud, sc.model.model, secret_file, cloud_wait_s,
                                             progress)  # fmt: skip
            plan.secret = load_secret(secret_file)
        other_host = host_mismatch_note(cal, sc.model.model, here, roles)
        if other_host:  # once the run can start (an error is its one line), before it runs
            progress(f"adaptsim: warning: {other_host}")
            notes.append(other_host)
        work = scratch_dir()
        failed = False
        try:
            real, facts = real_run(sc, plan, work, progress)
        except UserError:  # a child failed: the log its one line names stays to be read
            failed = True
            raise
        finally:
            logs = {n: (work / n).read_text()[-4000:] for n in ("edge.log", "cloud.log")
                    if (work / n).exists()}  # fmt: skip
            if not (failed and logs):  # else the next run removes it (its owner is gone)
                shutil.rmtree(work, ignore_errors=True)
        if real.records.empty:
            if facts.get("cloud_lost"):
                lost = facts["cloud_lost"]
                raise UserError(f"--cloud {cloud}: {lost}; no run finished, nothing written")
            raise Terminated(signals[0]) if signals else KeyboardInterrupt
        twin_sc = replace(sc, policies=tuple(sc.policies[i] for i in keep))
        remote = plan.cloud_address is not None
        if remote:
            held = {c.get("cloud_latency_s") for c in facts.get("clock", {}).values()}
            notes.append(
                f"remote cloud {cloud}: the bandwidth trace is not applied; the server added "
                f"{', '.join(f'{x:g}' for x in held if x is not None) or '?'} s on the way out, "
                f"the edge {sc.one_way_latency_s:g} s on the way back (the scenario's one-way "
                "latency), and the real network's latency comes on top"
            )
            notes.append(_clock_note(facts.get("clock", {})))
        shared = shared_core_note(plan.mem_cpus, plan.cloud_cpus, sc.edge_mem.values)
        if shared and not remote:
            notes.append(shared)
        facts.update(
            scenario=str(scenario),
            calibration=str(calibration) if calibration else sc.calibration_name,
            time_scale=time_scale, duration_s=sc.duration_s, seeds=list(sc.seeds),
            rate_hz=sc.rate_hz, frames_per_run=len(draw(sc, sc.seeds[0]).arrivals_s),
            placement={"edge_cpus": plan.edge_cpus,
                       "cloud_cpus": f"remote {cloud}" if remote else plan.cloud_cpus,
                       "edge_tf_threads": 1, "cloud_tf_threads": None if remote else 1,
                       "cloud_workers": "the server's" if remote else sc.cloud_servers,
                       "memory_stress_cpus": plan.mem_cpus,
                       "edge_cpu_quota": edge_cpu_quota},
            edge_cpu_quota=edge_cpu_quota,
            one_way_latency="added in the application (the kernel has no netem)",
            zero_rate=("not emulated: the real network between the two machines carries the "
                       "frames" if remote else "tbf at its smallest rate (8 kbit/s), not an "
                       "exact stall"),
            notes=notes, noise_draws=noise_draws, real_wall_s=real.wall_s,
            interrupted=real.interrupted,
            interrupted_by=_interrupted_by(real.interrupted, facts, signals),
            runs_planned=len(keep) * len(sc.seeds), runs_finished=len(real.runs),
            logs_tail=logs, load_average=os.getloadavg(), cloud=cloud,
            fold_back=None if fb is None else {"from": str(fold_back), **asdict(fb)},
            fold_back_plain=None if fb_plain is None else {"from": str(fold_back),
                                                           **asdict(fb_plain)},
            probe_frames=probe_frames, probe_every_s=probe_every_s, probe_pool=probe_pool,
        )  # fmt: skip
        return _twin_and_write(out, twin_sc, real, facts, fb, fb_plain, noise_draws, progress)


def _twin_and_write(out: Path, twin_sc, real: Results, facts: dict, fb, fb_plain,
                    noise_draws: int, progress: Callable[[str], None]) -> Path:  # fmt: skip
    """Simulate the twins of ``real`` and write the folder; an interrupt meanwhile (the
    minutes of real runs are done) writes the real runs alone (:func:`write_incomplete`)."""
    try:
        progress(f"simulating the twin ({noise_draws} noise draws)")
        # a draw cut short by Ctrl-C is not compared as whole, nor the next one started
        with interrupts_propagate():
            twin = twin_draws(twin_sc, noise_draws)
            probes = facts.get("host_speed") or {}
            speeds = host_speeds(probes, twin_sc.model, facts.get("probe_pool", PROBE_POOL))
            record_speeds(probes, speeds)  # beside the raw probes: what the twin makes of them
            twin_probed = probed_twin(twin_sc, speeds, noise_draws) if speeds else None
            twin_fb = folded_twin(twin_sc, fb, speeds, noise_draws) if fb is not None else None
            twin_fb_plain = None
            if fb_plain is not None:
                twin_fb_plain = twin_draws(apply_foldback(twin_sc, fb_plain), noise_draws)
        return write_validation(out, real, twin, facts, twin_fb, twin_probed, twin_fb_plain)
    except KeyboardInterrupt as exc:
        by = signal.Signals(getattr(exc, "signum", signal.SIGINT)).name
        with contextlib.suppress(KeyboardInterrupt):  # a second one: held until written
            write_incomplete(out, real, facts, by)
        return out


def resume(out: Path, progress: Callable[[str], None] = print) -> Path:
    """Finish an incomplete validation folder (:func:`write_incomplete`): its twin
    simulated for the real runs it holds, as the interrupted ``validate`` would have
    (its scenario, calibration, noise draws and fold-back from its facts), compared and
    written into it."""
    with terminating_as_interrupt():
        facts = validation_facts(out, incomplete_ok=True)
        if not facts.get("incomplete"):
            raise UserError(
                f"--resume {out}: not an incomplete validation, nothing to finish "
                "(to fold another run into it again: --resume --fold-back FOLDER)"
            )
        facts = {k: v for k, v in facts.items() if k not in ("incomplete", "incomplete_by")}
        scored_source(out, incomplete_ok=True)
        twin_sc = twin_scenario(out, incomplete_ok=True)
        real = _saved_real(out, twin_sc, facts)
        fb = fold_back_facts(out, facts["fold_back"]) if facts.get("fold_back") else None
        fb_plain = None
        if facts.get("fold_back_plain"):
            fb_plain = fold_back_facts(out, facts["fold_back_plain"])
        return _twin_and_write(out, twin_sc, real, facts, fb, fb_plain, _draws(out, facts),
                               progress)  # fmt: skip


def refold(out: Path, fold_back: Path, centre: str = FOLD_CENTRE,
           progress: Callable[[str], None] = print) -> Path:  # fmt: skip
    """Fold ``fold_back`` (another validation folder) into the saved validation ``out``
    again, without its real runs: the fold-back fitted on ``fold_back``'s real run
    against its twin simulated now (``centre``:
    :func:`~adaptsim.testbed.foldback.fit_foldback`), and ``out``'s twins (plain,
    probed, folded) simulated now beside its saved real run and written into it whole
    (its scenario, calibration, noise draws and probes from its facts). The fold-back's
    notes of an earlier fold replaced. An incomplete ``out``: :func:`resume` first."""
    from adaptsim.testbed.rescore import fit_fresh

    with terminating_as_interrupt():
        check_centre(centre)
        facts = validation_facts(out)  # complete: an incomplete one is refused, naming resume
        scored_source(out)
        fold_back_source(fold_back, "--fold-back")
        if fold_back.resolve() == out.resolve():
            raise UserError("--fold-back: fit on another run than the one you score (--out)")
        draws = _draws(out, facts)
        twin_sc = twin_scenario(out)
        real = _saved_real(out, twin_sc, facts)
        progress(f"fitting the fold-back on {fold_back} ({centre} of its policy runs)")
        try:
            fb = fit_fresh(fold_back, pool=facts.get("probe_pool"), centre=centre)
            fb_plain = None
            if fb.host_relative:  # as it was fitted before the probes, for comparison
                fb_plain = fit_fresh(fold_back, host_speed=False, centre=centre)
        except UserError as exc:
            raise UserError(f"--fold-back {fold_back}: {exc}") from None
        notes = [n for n in facts.get("notes", []) if not str(n).startswith(FOLD_NOTE)]
        facts = {**facts, "notes": notes + fb.outlier_notes(fold_back),
                 "fold_back": {"from": str(fold_back), **asdict(fb)},
                 "fold_back_plain": None if fb_plain is None else {"from": str(fold_back),
                                                                   **asdict(fb_plain)}}  # fmt: skip
        for line in fb.outlier_notes(fold_back):
            progress(f"adaptsim: note: {line}")
        return _twin_and_write(out, twin_sc, real, facts, fb, fb_plain, draws, progress)


def _saved_real(out: Path, twin_sc, facts: dict) -> Results:
    """A saved validation's real runs (``real/``) as the twin's Results."""
    d = out / "real"
    return Results(twin_sc, pd.read_parquet(d / "records.parquet"),
                   pd.read_csv(d / "summary.csv"), pd.DataFrame(),
                   float(facts.get("real_wall_s") or 0.0),
                   bool(facts.get("interrupted")))  # fmt: skip


def _draws(out: Path, facts: dict) -> int:
    """The noise draws a saved validation's twin was simulated with (its facts)."""
    draws = facts.get("noise_draws") or NOISE_DRAWS
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise UserError(f"{out / 'validation.json'}: noise_draws {draws!r}: not a count")
    return draws


def _interrupted_by(interrupted: bool, facts: dict, signals: list[int]) -> str | None:
    """What stopped the real runs early: a signal's name, the remote cloud, or None."""
    if not interrupted:
        return None
    if signals:
        return signal.Signals(signals[0]).name
    return "the cloud went away" if facts.get("cloud_lost") else "SIGINT"


def incomplete_line(folder: Path, facts: dict, by: str) -> str:
    """What an incomplete validation folder holds and how to go on, in one line."""
    return (
        f"interrupted ({by}) while the twin was simulated: the "
        f"{facts.get('runs_finished', '?')} real policy run(s) that finished are in "
        f"{Path(folder) / 'real'} (`adaptsim report {Path(folder) / 'real'}` shows them), "
        f"not compared; `adaptsim validate SCENARIO --out {folder} --resume` compares them"
    )


def write_incomplete(out: Path, real: Results, facts: dict, by: str) -> Path:
    """The folder of a validation interrupted after its real runs, before its comparison
    was written: the real runs (``real/``), ``validation.json`` with ``incomplete`` saying
    so (every reader refuses the folder in one line naming it; :func:`resume` finishes
    it) and a ``report.md`` that says it; written whole (Ctrl-C and SIGTERM held back
    meanwhile). ``by``: the signal's name."""
    facts = {**facts, "incomplete": incomplete_line(out, facts, by), "incomplete_by": by}
    with (
        StagedFolder(out, "--out", lambda _: True, make_parent=True) as staged,
        sigint_deferred(also=(signal.SIGTERM, signal.SIGHUP)),
    ):
        write_results(real, staged.path / "real")
        write_atomic(staged.path / "validation.json",
                     lambda p: p.write_text(json.dumps(facts, indent=1, default=str)))  # fmt: skip
        page = f"# Validation incomplete\n\n{facts['incomplete']}.\n"
        write_atomic(staged.path / "report.md", lambda p: p.write_text(page))
        staged.commit()
    return out


def write_validation(
    out: Path,
    real: Results,
    twin: Results | list[Results],
    facts: dict,
    twin_folded: Results | list[Results] | None = None,
    twin_probed: list[Results] | None = None,
    twin_folded_plain: list[Results] | None = None,
) -> Path:
    """Compare ``real`` with ``twin`` (and the folded twin) and write the folder ``out``.

    ``twin`` is one simulation or a list of noise draws (draw 0 first, see
    :mod:`~adaptsim.testbed.twin`): the comparison is against their median, with
    their spread and draw 0's numbers beside it; ``simulated/`` and the stages hold
    draw 0. ``twin_probed``: the draws of the twin at each run's probed host speed
    (``comparison_probed.csv``); ``twin_folded_plain``: of the fold-back fitted
    without the probes (``comparison_folded_plain.csv``). ``facts`` says how the real
    run was made (see :func:`validate`); the ranking is added here. Everything goes
    into a scratch folder beside ``out`` that is renamed into place at the end: the
    folder is whole or absent.
    """
    twins = twin if isinstance(twin, list) else [twin]
    twin = twins[0]
    table = compare_draws(real.summary, twins)
    stages = compare_stages(real.records, twin.records)
    facts = {**facts, "ranking": ranking(table)}
    # built beside ``out`` and swapped in whole (Ctrl-C held back for the swap); what a
    # killed process left beside it is removed by the next write there
    with StagedFolder(out, "--out", lambda _: True, make_parent=True) as staged:
        tmp = staged.path
        write_results(real, tmp / "real")
        write_results(twin, tmp / "simulated")
        write_atomic(tmp / "comparison.csv", lambda p: table.to_csv(p, index=False))
        write_atomic(tmp / "stages.csv", lambda p: stages.to_csv(p, index=False))
        if twin_folded is not None:
            folded_draws = twin_folded if isinstance(twin_folded, list) else [twin_folded]
            folded = compare_draws(real.summary, folded_draws)
            write_results(folded_draws[0], tmp / "simulated_folded")
            write_atomic(tmp / "comparison_folded.csv", lambda p: folded.to_csv(p, index=False))
        for name, draws in (("comparison_probed.csv", twin_probed),
                            ("comparison_folded_plain.csv", twin_folded_plain)):  # fmt: skip
            if draws is not None:
                extra = compare_draws(real.summary, draws)
                write_atomic(tmp / name, lambda p, t=extra: t.to_csv(p, index=False))
        write_atomic(tmp / "validation.json",
                     lambda p: p.write_text(json.dumps(facts, indent=1, default=str)))  # fmt: skip
        write_validation_report(tmp)
        staged.commit()
    return out


def comparison_frame(out: Path) -> pd.DataFrame:
    """The per-policy comparison of a validation folder."""
    return pd.read_csv(out / "comparison.csv")


def _clock_note(clocks: dict) -> str:
    """What the remote cloud's clock means for the stages, in the run's own numbers."""
    got = [c for c in clocks.values() if c.get("clock_uncertainty_s") is not None]
    unc_ms = max((c["clock_uncertainty_s"] for c in got), default=float("nan")) * 1e3
    moved = [abs(c["clock_offset_end_s"] - c["clock_offset_s"]) for c in got
             if c.get("clock_offset_end_s") is not None]  # fmt: skip
    drift = f"; it moved by at most {max(moved) * 1e3:.3f} ms over a run" if moved else ""
    return (
        "the cloud's clock is not the edge's: its stamps were brought onto the edge's clock "
        f"with an offset measured before each run (uncertainty at most {unc_ms:.3f} ms{drift}), "
        "so uplink and way-back times are good to that; latencies are the edge's clock alone"
    )
