"""A real run of a scenario: edge and cloud processes, a shaped link, live stress.

Placement on this project's 2-core machines: the edge process (every head
compiled, one TensorFlow thread) and its CPU stress on core 0, as the
profiler's ``--cpus 0`` edge; the cloud process (every tail compiled,
``cloud.servers`` worker threads, one TensorFlow thread) on core 1, with the
memory stressor beside it, as the profiler placed it. The two run in their own
network namespaces joined by a veth pair whose edge side tbf shapes to the
bandwidth trace (:class:`~adaptsim.testbed.conditions.ConditionFollower`).

A slower edge (``edge_cpu_quota``): once every head is compiled, the edge
process is put in a cgroup CPU quota of that many cores
(:class:`~adaptsim.emulation.CpuQuota`, as the profiler's ``--cpu-quota``), and
the stress-ng that follows the edge's traces joins it, as the profiler's does.
Compiling outside the quota only saves minutes before the clock: no frame is
timed then. The quota's group belongs to this process (``adaptsim-<pid>``): it
is removed when the run ends, however it ends, and one a SIGKILL left is removed
by the next run, with the namespaces.

Around every policy run the edge probes the host's speed (``plan.probe_frames``
calls of the whole model on the edge and of its whole tail on the cloud, before the
run's conditions are applied and after they are removed: :mod:`~adaptsim.testbed.host_speed`),
and with ``plan.probe_every_s`` also during the run, in the edge's idle gaps, under
the run's conditions (:mod:`~adaptsim.testbed.speed_track`); kept in the facts'
``host_speed`` per run, with their run times; they are not records.

Every policy and seed is one run: the conditions at t = 0 are put in place,
then the edge is told to start at ``t0`` and the traces are followed from
``t0``. The records come back in the simulator's schema (plus ``return_s``:
the result's way back beside the added latency), as one :class:`~adaptsim.simulator.Results`.

Clean-up is certain: SIGTERM and Ctrl-C unwind the ``with`` blocks (children
killed by process group, stress-ng stopped, namespaces deleted); children die
with this process whatever kills it (``PR_SET_PDEATHSIG``); and what a SIGKILL
leaves (the namespaces) the next run removes before it starts
(:func:`~adaptsim.emulation.sweep_stale`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.emulation import (
    CLOUD_IP,
    CpuQuota,
    NetnsPair,
    cpu_quota_available,
    die_with_parent,
    link_available,
    require_stress_ng,
    terminating_as_exit,
)
from adaptsim.emulation.cleanup import owner_alive
from adaptsim.errors import UserError
from adaptsim.simulator import Results, Scenario, summarise
from adaptsim.simulator.engine import RECORD_COLUMNS
from adaptsim.simulator.results import add_conditions
from adaptsim.testbed.conditions import ConditionFollower
from adaptsim.testbed.protocol import SECRET_ENV

__all__ = ["RealRunPlan", "check_cloud", "real_run", "real_run_available"]

_PORT = 50100
_READY_TIMEOUT_S = 600.0


@dataclass
class RealRunPlan:
    """How a real run is placed and driven."""

    scenario_path: Path
    calibration: Path | None
    duration_s: float | None = None
    time_scale: float = 1.0
    policies: list[int] = field(default_factory=list)  # indices into the scenario's
    edge_cpus: list[int] = field(default_factory=lambda: [0])
    cloud_cpus: list[int] = field(default_factory=lambda: [1])
    mem_budget_bytes: int = 2 << 30
    drain_s: float = 30.0
    cloud_address: tuple[str, int] | None = None  # a remote ``adaptsim serve``: no namespaces
    secret: bytes | None = None  # the shared secret with the remote cloud
    rate_hz: float | None = None  # frames a second, replacing the scenario's
    added_policies: list[str] = field(default_factory=list)  # built-ins the scenario lacks
    edge_cpu_quota: float | None = None  # cores of CPU time the edge gets (None: its core)
    probe_frames: int = 5  # host-speed probe frames per role before and after each run (0: none)
    probe_every_s: float = 0.0  # a probe in the edge's idle gaps every this many run seconds

    @property
    def mem_cpus(self) -> list[int]:
        """Where the memory stressor runs: the core the local cloud would have."""
        return self.cloud_cpus


def real_run_available() -> str | None:
    """None when a real run can happen here, else why not."""
    why = link_available()
    if why:
        return why
    if len(os.sched_getaffinity(0)) < 2:
        return "needs 2 cores (the edge on one, the cloud on the other)"
    return None


# the errors of a server not up yet (refused: nothing listens; reset: a half-started
# listener; timeout: a host still booting or a hello not sent yet): worth waiting for
_NOT_UP_YET = (ConnectionRefusedError, ConnectionResetError, TimeoutError, EOFError)


def check_cloud(
    address: str,
    model: str,
    secret_file: Path | None = None,
    wait_s: float = 300.0,
    progress: Callable[[str], None] = print,
) -> tuple[str, int]:
    """``HOST:PORT`` of a remote cloud, checked before anything is compiled here.

    Connects once and exchanges the hellos: a wrong secret, an older server or a
    recorded session replayed (replies not bound to this edge's nonce), a server
    that does not serve ``model``, or nobody listening is one line here, not a failed
    edge process minutes later. A server still compiling its tails refuses
    connections (it listens only once ready): connecting is retried, backing off
    from 0.5 to 5 s, for at most ``wait_s`` seconds, said once in ``progress``.
    """
    from adaptsim.testbed.client import CloudClient
    from adaptsim.testbed.protocol import FrameError, Unauthenticated, load_secret, parse_address

    host, port = parse_address(address, "--cloud")
    key = load_secret(secret_file)
    deadline, pause, said = time.monotonic() + wait_s, 0.5, False
    while True:
        try:
            client = CloudClient(host, port, key, timeout_s=10.0)
            break
        except Unauthenticated as exc:
            raise UserError(
                f"--cloud {address}: the server's hello did not authenticate ({exc}); "
                f"give both sides the same ${SECRET_ENV} or --secret-file"
            ) from None
        except FrameError as exc:  # an older server, a replayed session, not a cloud
            raise UserError(f"--cloud {address}: {exc}") from None
        except _NOT_UP_YET as exc:
            why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            left = deadline - time.monotonic()
            if left <= 0:
                raise UserError(
                    f"--cloud {address}: cannot connect ({why}) for {wait_s:g} s; is `adaptsim "
                    f"serve --role cloud --listen {address}` up? (--cloud-wait-s waits longer)"
                ) from None
            if not said:
                progress(f"waiting for the cloud at {address} ({why}): retrying for up to "
                         f"{wait_s:g} s (--cloud-wait-s)")  # fmt: skip
                said = True
            time.sleep(min(pause, left))
            pause = min(2 * pause, 5.0)
        except OSError as exc:  # no route, unknown host: waiting does not help
            why = exc.strerror or type(exc).__name__
            raise UserError(
                f"--cloud {address}: cannot connect ({why}); is `adaptsim serve` up?"
            ) from None
    served = client.models
    client.close()
    if model not in served:
        raise UserError(
            f"--cloud {address}: the server serves {', '.join(served) or 'no model'}, not "
            f"{model}; start it with --models {model}"
        )
    return host, port


class _Child:
    """A child process in a namespace, pinned, in its own process group, JSON lines on stdio."""

    def __init__(self, argv: list[str], cpus: list[int], env: dict, log: Path):
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            env=env, preexec_fn=lambda: die_with_parent(cpus),
        )  # fmt: skip

    def send(self, obj: dict) -> None:
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def answer(self, timeout_s: float, what: str) -> dict:
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if sel.select(timeout=1.0):
                line = self.proc.stdout.readline()
                if not line:
                    break
                if line.startswith("{"):
                    return json.loads(line)
            elif self.proc.poll() is not None:
                break
        tail = Path(self.log.name).read_text()[-400:].strip().splitlines()
        raise UserError(
            f"{what} failed: {tail[-1] if tail else 'no message'} (log: {self.log.name})"
        )

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def _records(path: Path) -> pd.DataFrame:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    frame = pd.DataFrame(rows)
    for c in ("policy", "seed", *RECORD_COLUMNS, "return_s"):
        if c not in frame:
            frame[c] = np.nan
    return frame.sort_values("request", kind="stable").reset_index(drop=True)


def real_run(
    sc: Scenario, plan: RealRunPlan, work: Path, progress: Callable[[str], None] = print
) -> tuple[Results, dict]:
    """Run ``plan.policies`` x the scenario's seeds for real; (results, facts of the run).

    With ``plan.cloud_address`` the cloud is a remote ``adaptsim serve``: the edge
    runs here in the host's own network (no namespaces, no tc: the bandwidth trace
    is not applied), authenticated with ``plan.secret``.
    """
    remote = plan.cloud_address is not None
    why = None if remote else real_run_available()
    if why:
        raise UserError(f"a real run {why}")
    if plan.edge_cpu_quota is not None:
        why = cpu_quota_available()
        if why:
            raise UserError(f"--edge-cpu-quota needs cgroup v1 cpu: {why}")
    if sc.edge_cpu.values != (0.0,) or sc.edge_mem.values != (0.0,):
        require_stress_ng()
    work.mkdir(parents=True, exist_ok=True)
    if remote:
        key = (plan.secret or b"").decode("utf-8", "surrogateescape")
        host, port = plan.cloud_address
    else:
        key, host, port = secrets.token_hex(32), CLOUD_IP, _PORT
    env = {**os.environ, SECRET_ENV: key, "TF_CPP_MIN_LOG_LEVEL": "2"}
    mem_cpus = plan.mem_cpus
    t_start = time.perf_counter()
    frames, runs, facts = [], [], {"applied": {}}
    interrupted = False
    with contextlib.ExitStack() as stack:
        stack.enter_context(terminating_as_exit())
        quota = None
        if plan.edge_cpu_quota is not None:  # removed after the children stop (LIFO)
            quota = stack.enter_context(
                CpuQuota(plan.edge_cpu_quota, "--edge-cpu-quota", join=False)
            )
        link = None
        if not remote:
            link = stack.enter_context(
                NetnsPair(sc.bandwidth.at(0.0), burst_s=0.002, min_burst_bytes=1514)
            )
        py = [sys.executable, "-m"]
        cloud = None
        if link is not None:
            cloud = _Child([*link.exec_in(link.cloud), *py, "adaptsim.testbed.server"],
                           plan.cloud_cpus, env, work / "cloud.log")  # fmt: skip
        edge_argv = [*link.exec_in(link.edge)] if link is not None else []
        edge = _Child([*edge_argv, *py, "adaptsim.testbed.edge"], plan.edge_cpus, env,
                      work / "edge.log")  # fmt: skip
        try:
            if cloud is not None:
                cloud.send({"models": [sc.model.model], "host": host, "port": port,
                            "workers": sc.cloud_servers,
                            "one_way_latency_s": sc.one_way_latency_s})  # fmt: skip
            edge.send({"scenario": str(plan.scenario_path), "calibration":
                       str(plan.calibration) if plan.calibration else None,
                       "duration_s": plan.duration_s, "time_scale": plan.time_scale,
                       "cloud_host": host, "cloud_port": port, "remote": remote,
                       "drain_s": plan.drain_s, "rate_hz": plan.rate_hz,
                       "policies": plan.added_policies,
                       "probe_every_s": plan.probe_every_s})  # fmt: skip
            progress(f"building and compiling every split of {sc.model.model} (edge and cloud)")
            ready_cloud = cloud.answer(_READY_TIMEOUT_S, "the cloud process") if cloud else {}
            ready_edge = edge.answer(_READY_TIMEOUT_S, "the edge process")
            facts.update(edge_compile_s=ready_edge["compile_s"],
                         cloud_compile_s=ready_cloud.get("compile_s"))  # fmt: skip
            if quota is not None:  # compiled at full speed; every frame runs throttled
                quota.admit(edge.proc.pid)
                facts["edge_cgroup"] = str(quota.group)
            # one connection for every policy's run, warmed by one unrecorded message
            edge.send({"connect": True})
            warm = edge.answer(_READY_TIMEOUT_S, "the edge's connection and warm-up")
            facts.update(warm_up_s=warm.get("warm_up_s"), warm_up_bytes=warm.get("warm_up_bytes"))
            total = len(plan.policies) * len(sc.seeds)
            for spec_i, seed in itertools.product(plan.policies, sc.seeds):
                rec_path = work / f"records-{spec_i}-{seed}.jsonl"
                before = _probe(edge, plan.probe_frames)  # no stress yet, the link idle
                drops_before = link.dropped_packets() if link is not None else 0
                tcp_before = link.tcp_counters() if link is not None else {}
                with ConditionFollower(sc, link, plan.edge_cpus, mem_cpus,
                                       plan.mem_budget_bytes,
                                       quota.procs_file if quota else None) as follow:  # fmt: skip
                    follow.apply_initial()  # the clock starts with them in place
                    t0 = time.monotonic() + 0.5
                    follow.start(t0)
                    edge.send({"policy": spec_i, "seed": seed, "t0": t0,
                               "records": str(rec_path)})  # fmt: skip
                    out = edge.answer(sc.duration_s + plan.drain_s + 60, "the edge's run")
                if out.get("error") or follow.error:
                    raise UserError(f"real run of {out['policy']} (seed {seed}) failed: "
                                    f"{out.get('error') or follow.error}")  # fmt: skip
                if out.get("lost"):  # the remote cloud went away: keep what finished, stop
                    facts["cloud_lost"] = (f"the cloud went away in the run of {out['policy']} "
                                           f"(seed {seed}): {out['lost']}")  # fmt: skip
                    interrupted = True
                    if not out.get("started", True):
                        break
                during = out.get("probes")
                if (before is not None or (during and during["edge"])) and not out.get("lost"):
                    after = _probe(edge, plan.probe_frames)  # the stress is gone again
                    got = _probes(before, after, during, follow.applied, sc.duration_s)
                    if got["edge_s"]:  # (every probe during the run mixed: none to keep)
                        facts.setdefault("host_speed", {})[f"{out['policy']}/{seed}"] = got
                f = _records(rec_path)
                frames.append(f)
                facts["applied"][f"{out['policy']}/{seed}"] = follow.applied
                if link is not None:  # what tbf dropped: 0 unless the link misbehaved
                    facts.setdefault("tbf_dropped_packets", {})[f"{out['policy']}/{seed}"] = (
                        link.dropped_packets() - drops_before
                    )
                    # the sender's TCP troubles in this run: why an upload took longer
                    tcp = link.tcp_counters()
                    facts.setdefault("edge_tcp", {})[f"{out['policy']}/{seed}"] = {
                        k: v - tcp_before.get(k, 0) for k, v in tcp.items()
                    }
                facts.setdefault("clock", {})[f"{out['policy']}/{seed}"] = {
                    k: out.get(k) for k in ("clock_offset_s", "clock_uncertainty_s",
                                            "clock_offset_hello_s", "clock_offset_end_s",
                                            "cloud_latency_s")}  # fmt: skip
                runs.append({"policy": out["policy"], "seed": seed,
                             "repartitions": out["repartitions"],
                             "switching_s": _switching_s(f)})  # fmt: skip
                progress(f"[{len(runs)}/{total}] real {out['policy']} seed {seed}: "
                         f"{out['finished']}/{out['frames']} frames finished, "
                         f"{out['repartitions']} re-partitions")  # fmt: skip
                if out.get("lost"):
                    break
        except KeyboardInterrupt:
            interrupted = True
        finally:
            edge.stop()
            if cloud is not None:
                cloud.stop()
            if quota is not None:  # how often the quota ran out: it was at work
                facts["edge_cpu_stat"] = quota.stat()
    records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not records.empty:
        add_conditions(records, sc)
    runs_frame = pd.DataFrame(runs)
    summary = summarise(records, runs_frame, sc)
    wall = time.perf_counter() - t_start
    return Results(sc, records, summary, runs_frame, wall, interrupted), facts


def _probe(edge: _Child, frames: int) -> dict | None:
    """The edge's host-speed probe (:meth:`~adaptsim.testbed.edge.EdgeRunner.probe`),
    with its wall seconds; None when probes are off."""
    if frames <= 0:
        return None
    t = time.perf_counter()
    edge.send({"probe": frames})
    got = edge.answer(120.0 + 60.0 * frames, "the edge's host-speed probe")
    return {**got, "wall_s": time.perf_counter() - t}


def _probes(
    before: dict | None,
    after: dict | None,
    during: dict | None = None,
    applied: list | None = None,
    duration_s: float = 0.0,
) -> dict:
    """One policy run's probes as ``validation.json`` keeps them: the before-probes
    first, then those during the run (:mod:`~adaptsim.testbed.speed_track`), then the
    after-probes; ``at`` names each, ``t_s`` gives its run time (before: 0, after: the
    run's end) and ``edge_cpu`` / ``edge_mem`` the levels in place by the follower's
    ``applied`` log (before and after: none). A probe during which the applied levels
    changed is left out (``mixed``). A cloud without probe frames: empty lists."""
    from adaptsim.testbed.speed_track import level_at

    before, after = before or {"edge_s": [], "wall_s": 0.0}, after or {"edge_s": [], "wall_s": 0.0}
    edge, mixed = [], 0
    for t, s in (during or {}).get("edge", []):
        levels = level_at(applied or [], t)
        if levels != level_at(applied or [], t + s):
            mixed += 1
            continue
        edge.append((t, s, *levels))
    cloud = (during or {}).get("cloud", [])
    b_cloud, a_cloud = before.get("cloud_s") or [], after.get("cloud_s") or []
    out = {"edge_s": [*before["edge_s"], *(e[1] for e in edge), *after["edge_s"]],
           "cloud_s": [*b_cloud, *(c[1] for c in cloud), *a_cloud],
           "at": (["before"] * len(before["edge_s"]) + ["during"] * len(edge)
                  + ["after"] * len(after["edge_s"])),
           "cloud_at": (["before"] * len(b_cloud) + ["during"] * len(cloud)
                        + ["after"] * len(a_cloud)),
           "wall_s": before["wall_s"] + after["wall_s"]}  # fmt: skip
    if during is not None:
        end = round(float(duration_s), 6)
        out.update(
            t_s=[0.0] * len(before["edge_s"]) + [round(e[0], 6) for e in edge]
            + [end] * len(after["edge_s"]),
            edge_cpu=[0.0] * len(before["edge_s"]) + [e[2] for e in edge]
            + [0.0] * len(after["edge_s"]),
            edge_mem=[0.0] * len(before["edge_s"]) + [e[3] for e in edge]
            + [0.0] * len(after["edge_s"]),
            cloud_t_s=[0.0] * len(b_cloud) + [round(c[0], 6) for c in cloud] + [end] * len(a_cloud),
            # when each cloud probe's answer was back (run time): it held the cloud till then
            cloud_back_s=[round(c[2], 6) for c in cloud],
            probe_every_s=during["every_s"], skipped=during["skipped"], mixed=mixed,
            cloud_unanswered=during["cloud_unanswered"], cloud_note=during["cloud_note"],
        )  # fmt: skip
    return out


def _switching_s(f: pd.DataFrame) -> float:
    """Edge time the switched frames took beyond their point's usual (median) head time."""
    if "switched" not in f or not f["switched"].fillna(False).any():
        return 0.0
    usual = f[~f["switched"].fillna(False)].groupby("point")["edge_s"].median()
    sw = f[f["switched"].fillna(False)]
    extra = sw["edge_s"] - sw["point"].map(usual)
    return float(np.clip(extra.dropna(), 0, None).sum())


def scratch_dir() -> Path:
    """A fresh folder for a run's logs and record files (this process's own).

    Folders that runs killed with SIGKILL left (their pid no longer exists) go first.
    """
    for old in Path(tempfile.gettempdir()).glob("adaptsim-testbed-*-*"):
        pid = old.name.split("-")[2]
        if pid.isdigit() and not owner_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"adaptsim-testbed-{os.getpid()}-"))
