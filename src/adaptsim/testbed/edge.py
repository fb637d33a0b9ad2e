"""The edge process of a real run: ``python -m adaptsim.testbed.edge`` (started by run.py).

It runs inside the edge namespace, pinned to the edge core with one TensorFlow
thread, as the profiler's edge is. Its first stdin line is the run set-up (JSON);
it builds and compiles every head, then says ``ready``. Each further line asks
for one run (policy, seed, start time ``t0`` on the host's monotonic clock);
it answers one JSON line when the run is over. Records go to a JSON-lines file
as results come back, so a run killed midway keeps what it finished.

The stages are the simulator's, one thread each, joined by FIFO queues:

- ``arrivals``: frame i reaches the edge at ``t0 + arrivals_s[i]`` (the twin's
  draws for the same scenario and seed); a per-request policy decides then.
- ``controller``: a periodic policy decides every ``period_s``, from t = 0.
- ``compute``: one frame at a time, FIFO, runs the head of the frame's point
  (all-cloud: nothing) and hands its output tensor on.
- ``uplink``: sends each tensor over the one TCP connection, FIFO; the cloud
  stamps when it was all in.
- the run's own thread reads results and writes records: a result back at
  ``t`` is done at ``t + one_way_latency_s`` (the return latency is added to the
  record, as the cloud adds the outward one before it queues the frame).

With ``probe_every_s`` > 0 the compute stage also probes the host's speed in its
idle gaps (:mod:`~adaptsim.testbed.speed_track`): one call of the whole model here
and one of the whole tail in the cloud, only while no frame is queued or in flight
and the next is not due within the probe's margin; the run's answer lists them.
"""

from __future__ import annotations

import collections
import heapq
import json
import math
import queue
import select
import sys
import threading
import time
from pathlib import Path

import numpy as np

__all__ = ["EdgeRunner", "build_heads"]

_STOP = object()
_WAKE = object()  # to the compute stage: the last frame in flight is back (a probe may fit)
_RUN_IDS = 1_000_000  # request ids of run r: r * _RUN_IDS + frame (run 0: the warm-up)
_PROBE_IDS = 500_000  # run r's probes during the run: r * _RUN_IDS + _PROBE_IDS + j


def build_heads(name: str) -> tuple[dict, np.ndarray, float]:
    """Every point's compiled head: ``{point: call or None}``, the input, seconds taken."""
    from adaptsim.models import analyse, build_model
    from adaptsim.models.graph import PointKind
    from adaptsim.models.split import compiled, split

    t0 = time.perf_counter()
    model = build_model(name)
    graph = analyse(model)
    x = np.random.default_rng(0).standard_normal((1, *graph.points[0].output_shape))
    x = x.astype(np.float32)
    heads: dict[int, object] = {}
    for p in graph.points:
        if p.kind is PointKind.ALL_CLOUD:
            heads[p.ordinal] = None
            continue
        head, _ = split(model, p.ordinal, graph=graph)
        fn = compiled(head)
        for _ in range(2):
            fn(x)
        heads[p.ordinal] = fn
    return heads, x, time.perf_counter() - t0


class EdgeRunner:
    """The edge of one scenario: heads built once, runs on request."""

    def __init__(self, setup: dict):
        from adaptsim.simulator.engine import Tables
        from adaptsim.testbed.protocol import load_secret
        from adaptsim.testbed.scenario import scenario_for_testbed

        self.setup = setup
        self.sc = scenario_for_testbed(
            setup["scenario"], setup["calibration"], setup["duration_s"], setup["time_scale"],
            rate_hz=setup.get("rate_hz"), policies=setup.get("policies"),
        )  # fmt: skip
        self.tables = Tables(self.sc)
        self.key = load_secret()
        self.heads, self.x, self.compile_s = build_heads(self.sc.model.model)
        missing = set(self.sc.model.ordinals.tolist()) - set(self.heads)
        if missing:
            raise SystemExit(
                f"edge: the calibration's points {sorted(missing)} are not the model's"
            )
        self.client = None  # one connection for every run: see connect()
        self.runs = 0
        self.slow: list[float] = []  # measured / predicted of the latest probes and heads

    def connect(self) -> dict:
        """Open the one connection every run uses, and warm it up before any clock.

        A fresh TCP connection's first large message took 19 % more than the link's
        law on the emulated link (the receiver's window still growing; the next ones
        within 5 %). So the edge connects once, after both sides compiled, and sends
        one unrecorded message of the raw input (the all-cloud point: the largest
        message) and waits for its result; every policy's run then uses this warm
        connection, its frames numbered apart from other runs' (a late result of an
        earlier run is ignored, not taken for one of this run's).
        """
        from adaptsim.testbed.client import CloudClient

        self.client = CloudClient(self.setup["cloud_host"], self.setup["cloud_port"], self.key)
        point = next(k for k, fn in self.heads.items() if fn is None)  # all-cloud: raw input
        t = time.monotonic()
        self.client.send(0, self.sc.model.model, point, self.x)  # run 0: the warm-up
        header, _ = self.client.receive()
        if header.get("kind") != "result":
            raise SystemExit(f"edge: the warm-up message failed: {header.get('error')}")
        return {"warm_up_s": time.monotonic() - t, "warm_up_bytes": int(self.x.nbytes)}

    def probe(self, frames: int) -> dict:
        """The host's speed now (:mod:`~adaptsim.testbed.host_speed`): ``frames`` calls of
        the whole model at the edge (the all-edge point's head), timed as a frame's edge
        stage, then ``frames`` calls of its whole tail in the cloud (the all-cloud point,
        the raw input: a ``probe`` frame), the server's own seconds. Asked between
        runs, with no stress and the link idle; not records."""
        if self.client is None:
            self.connect()
        kinds, ordinals = list(self.sc.model.kinds), self.sc.model.ordinals.tolist()
        whole = self.heads[ordinals[kinds.index("all_edge")]]
        edge_s = []
        for _ in range(frames):
            es = time.monotonic()
            np.asarray(whole(self.x))
            edge_s.append(time.monotonic() - es)
        point = ordinals[kinds.index("all_cloud")]
        try:
            cloud_s = self.client.probe(self.sc.model.model, point, self.x, frames)
        except (EOFError, OSError):  # the cloud went away: the next run says so
            cloud_s = None
        # how much slower than predicted the host runs: where the next run's gate starts
        from adaptsim.testbed.host_speed import predicted_probe_s

        edge_pred, cloud_pred = predicted_probe_s(self.sc.model)
        self.slow = [float(np.median(edge_s)) / edge_pred] if edge_s else []
        self.slow += [float(np.median(cloud_s)) / cloud_pred] if cloud_s else []
        return {"edge_s": edge_s, "cloud_s": cloud_s}

    def run(self, policy_index: int, seed: int, t0: float, records: Path) -> dict:
        from adaptsim.simulator.decision import checked_decision
        from adaptsim.simulator.draws import draw
        from adaptsim.simulator.engine import policy_view
        from adaptsim.simulator.monitor import Monitor, true_conditions
        from adaptsim.simulator.policies import Observation, resolve_policy

        sc = self.sc
        spec = sc.policies[policy_index]
        policy = resolve_policy(spec, sc.model, base_dir=Path(sc.base_dir))
        draws = draw(sc, seed)
        monitor = Monitor(sc, draws.monitor_noise)
        # the simulator's own View, field for field (no look-ahead: a real run has none)
        view = policy_view(sc, self.tables, policy, lambda t: true_conditions(sc, t))
        col = {int(o): j for j, o in enumerate(sc.model.ordinals)}
        owl = sc.one_way_latency_s
        lock = threading.Lock()
        state = {"current": None, "switched": False, "repartitions": 0, "error": None,
                 "lost": None, "queued": collections.deque(), "busy_until": 0.0,
                 "last_arrival": 0.0, "computed": 0, "back": 0}  # fmt: skip
        pending: list = []  # (done_s, request, Observation) not yet seen by the policy
        if self.client is None:
            self.connect()
        client = self.client
        self.runs += 1
        base = self.runs * _RUN_IDS  # this run's frames go out as base + i
        remote = bool(self.setup.get("remote"))
        offsets = {}
        if remote:  # a second machine's clock: a fresh offset for this run (sync_clock)
            try:
                client.sync_clock()
            except (EOFError, OSError) as exc:  # the cloud went away between runs
                gone = f"the connection was gone before the run ({exc})"
                return {
                    "policy": policy.name,
                    "frames": len(draws.arrivals_s),
                    "finished": 0,
                    "repartitions": 0,
                    "error": None,
                    "started": False,
                    "lost": gone,
                }
            offsets["clock_offset_s"] = client.clock_offset_s
            offsets["clock_uncertainty_s"] = client.clock_uncertainty_s
            offsets["clock_offset_hello_s"] = client.hello_offset_s  # the first guess
        # the latency the cloud held a frame before it queued: a remote server's own setting
        owl_out = client.server_latency_s if remote else owl

        def now() -> float:
            return time.monotonic() - t0

        def sleep_until(t: float) -> None:
            d = t - now()
            if d > 0:
                time.sleep(d)

        def decide(at: float) -> None:
            with lock:
                view.now_s = at
                cur = state["current"]
                view.current_point = cur if cur is not None else view.best_point(
                    true_conditions(sc, 0.0))  # fmt: skip
                view.monitor = monitor.read(at)
                view.last_arrival_s = state["last_arrival"]
                # What this edge knows of its own queue: the frame in compute and the ones
                # waiting, priced by the calibration at the monitor's latest reading (the
                # simulator knows the true service times; a difference is a finding).
                head_s = view.predict(view.monitor).edge_s
                free = max(at, state["busy_until"])
                view.edge_free_s = free + sum(head_s[col[k]] for k in state["queued"])
                # its own send backlog: bytes done on the edge and not yet acknowledged by
                # the cloud's TCP (the simulator: not yet all across the link)
                view.uplink_unacked_bytes = float(client.unacked_bytes())
                seen = []
                while pending and pending[0][0] <= at:
                    seen.append(heapq.heappop(pending)[2])
                view.finished = seen
                point = checked_decision(policy, view, col, seed, sc.model.model)
                if cur is None:
                    state["current"] = point
                elif point != cur:
                    state["current"], state["switched"] = point, True
                    state["repartitions"] += 1

        compute_q: queue.Queue = queue.Queue()
        send_q: queue.Queue = queue.Queue()
        stamps: dict[int, tuple] = {}
        arrivals = draws.arrivals_s
        probing = self._probing(arrivals, base + _PROBE_IDS)
        gate = probing["gate"]

        def guarded(fn):
            def body():
                try:
                    fn()
                except Exception as exc:  # reported by the run, not lost in a thread
                    state["error"] = f"{fn.__name__}: {type(exc).__name__}: {exc}"

            return body

        @guarded
        def arrivals_thread():
            for i, a in enumerate(arrivals.tolist()):
                sleep_until(a)
                with lock:
                    state["last_arrival"] = a
                if policy.period_s is None:
                    decide(a)
                with lock:
                    k, sw = state["current"], state["switched"]
                    state["switched"] = False
                    state["queued"].append(k)
                compute_q.put((i, a, k, sw))
            compute_q.put(_STOP)

        @guarded
        def controller_thread():
            m = 1  # the decision at t = 0 is taken before the first frame (below)
            while m * policy.period_s < sc.duration_s and state["error"] is None:
                sleep_until(m * policy.period_s)
                decide(m * policy.period_s)
                m += 1

        def next_item():
            """The next frame for the compute stage; meanwhile, probes where they fit."""
            if gate is None:
                return compute_q.get()
            while True:
                try:
                    item = compute_q.get_nowait()
                except queue.Empty:
                    t = now()
                    idle = state["back"] == state["computed"]  # none queued or in flight
                    if gate.may_probe(t, state["computed"], idle):
                        self._probe_now(probing, now, client)
                        gate.took()
                        continue
                    try:
                        item = compute_q.get(timeout=gate.wait_s(t))
                    except queue.Empty:
                        continue
                if item is not _WAKE:
                    return item

        @guarded
        def compute_thread():
            while (item := next_item()) is not _STOP:
                i, a, k, sw = item
                es = now()
                with lock:
                    state["queued"].popleft()
                    reading = monitor.read(es)
                    state["busy_until"] = es + view.predict(reading).edge_s[col[k]]
                fn = self.heads[k]
                y = self.x if fn is None else np.asarray(fn(self.x))
                ee = now()
                if gate is not None and fn is not None:  # how slow the host runs now
                    gate.observed((ee - es) / max(float(self.tables.at(
                        sc.edge_cpu.at(es), sc.edge_mem.at(es))[0][col[k]]), 1e-9))  # fmt: skip
                stamps[i] = (a, k, sw, es, ee, y.nbytes)
                client.enqueued(y.nbytes)  # in the uplink's backlog from now on
                with lock:
                    state["computed"] += 1
                send_q.put((i, k, y))
            if gate is not None:
                gate.finish(float(arrivals[-1]) if len(arrivals) else 0.0)
            send_q.put(_STOP)

        @guarded
        def uplink_thread():
            while (item := send_q.get()) is not _STOP:
                i, k, y = item
                try:
                    client.send(base + i, sc.model.model, k, y)
                except OSError as exc:  # the cloud went away: the run ends with what finished
                    state["lost"] = state["lost"] or f"sending frame {i}, t = {now():.2f} s: {exc}"
                    return

        if policy.period_s is not None:
            decide(0.0)  # at t = 0 before the first frame, as the simulator's controller
        threads = [threading.Thread(target=f, daemon=True) for f in
                   (arrivals_thread, compute_thread, uplink_thread)]  # fmt: skip
        if policy.period_s is not None:
            threads.append(threading.Thread(target=controller_thread, daemon=True))
        for t in threads:
            t.start()
        done_ids: set[int] = set()
        drain_s = self.setup.get("drain_s", 30.0)
        with records.open("w") as out:
            while len(done_ids) < len(arrivals) and state["error"] is None and not state["lost"]:
                if now() > sc.duration_s + drain_s:
                    break
                if not select.select([client.sock], [], [], 0.5)[0]:
                    continue  # a frame is read whole once it starts: no timeout mid-frame
                try:
                    header, _ = client.receive()
                except (EOFError, OSError) as exc:  # the cloud went away: keep what finished
                    state["lost"] = f"the connection closed at t = {now():.2f} s ({exc})"
                    break
                back = now()
                if self._probe_answer(probing, header, back):
                    continue
                if header.get("kind") != "result":
                    state["error"] = f"cloud error: {header.get('error')}"
                    break
                i = int(header["id"]) - base
                if not 0 <= i < len(arrivals) or i in done_ids:
                    continue  # an earlier run's late result (or the warm-up's): not this run's
                a, k, sw, es, ee, nbytes = stamps[i]
                # a remote cloud's clock is not ours: its stamps shifted by the offset
                c0 = t0 + offsets.get("clock_offset_s", 0.0)
                recv, start, end = (header[c] - c0 for c in ("recv_s", "start_s", "end_s"))
                prev = header["prev_recv_s"]
                ls = max(ee, prev - c0) if prev is not None else ee
                done = back + owl
                rec = {"policy": policy.name, "seed": seed, "request": i, "arrival_s": a,
                       "point": k, "switched": sw, "edge_wait_s": es - a, "edge_s": ee - es,
                       "uplink_wait_s": ls - ee, "uplink_s": recv - ls,
                       "cloud_wait_s": start - (recv + owl_out), "cloud_s": end - start,
                       "latency_s": done - a, "done_s": done, "payload_bytes": float(nbytes),
                       "return_s": back - end}  # fmt: skip
                out.write(json.dumps(rec) + "\n")
                out.flush()
                done_ids.add(i)
                with lock:
                    state["back"] += 1
                    if gate is not None and state["back"] == state["computed"]:
                        compute_q.put(_WAKE)
                with lock:
                    heapq.heappush(
                        pending,
                        (
                            done,
                            i,
                            Observation(
                                done, k, done - a, ee - es, recv - ls, float(nbytes), end - start
                            ),
                        ),
                    )
            for i, a in enumerate(arrivals.tolist()):  # never finished: said so, not dropped
                if i not in done_ids:
                    got = stamps.get(i)
                    out.write(
                        json.dumps(
                            {
                                "policy": policy.name,
                                "seed": seed,
                                "request": i,
                                "arrival_s": a,
                                "point": got[1] if got else None,
                                "switched": bool(got and got[2]),
                                "latency_s": math.inf,
                                "done_s": math.inf,
                            }
                        )
                        + "\n"
                    )
        if remote and not state["lost"] and len(done_ids) == len(arrivals):  # the drift: how
            # far the offset moved over the run (not while a frame may still hold the uplink)
            try:
                client.sync_clock()
                offsets["clock_offset_end_s"] = client.clock_offset_s
            except (EOFError, OSError) as exc:
                state["lost"] = f"the connection closed after the run ({exc})"
        if gate is not None and not state["lost"]:  # a cloud probe's answer still to come
            self._drain_probes(probing, now, client)
        if gate is not None:  # the host's latest slowdown, for the next run's gate
            self.slow = list(gate._recent)
        return {"policy": policy.name, "frames": len(arrivals), "finished": len(done_ids),
                "repartitions": state["repartitions"], "error": state["error"],
                "lost": state["lost"], "started": True, "clock_offset_s": 0.0,
                "clock_uncertainty_s": 0.0, **offsets, "cloud_latency_s": owl_out,
                "probes": self._probes_done(probing)}  # fmt: skip

    # -- probes during a run (adaptsim.testbed.speed_track) --------------------------
    def _probing(self, arrivals, first_id: int) -> dict:
        """A run's probe state: the gate (None: no probes during the run), the whole
        model's head, the probes taken."""
        from adaptsim.testbed.speed_track import ProbeGate

        every = float(self.setup.get("probe_every_s") or 0.0)
        state = {"gate": None, "edge": [], "cloud": [], "sent": {}, "first_id": first_id,
                 "cloud_ok": True, "cloud_note": None, "every_s": every}  # fmt: skip
        if every <= 0 or not len(arrivals):
            return state
        sc = self.sc
        kinds, ordinals = list(sc.model.kinds), sc.model.ordinals.tolist()
        state["whole"] = self.heads[ordinals[kinds.index("all_edge")]]
        state["cloud_point"] = ordinals[kinds.index("all_cloud")]
        edge_col, cloud_col = kinds.index("all_edge"), kinds.index("all_cloud")
        cloud_s = float(self.tables.cloud_list[cloud_col])

        def edge_s(t: float) -> float:
            return float(self.tables.at(sc.edge_cpu.at(t), sc.edge_mem.at(t))[0][edge_col])

        def predict_s(t: float) -> float:
            return max(edge_s(t), cloud_s if state["cloud_ok"] else 0.0)

        state["edge_pred"], state["cloud_pred"] = edge_s, cloud_s

        steps = [*sc.edge_cpu.breakpoints(sc.duration_s), *sc.edge_mem.breakpoints(sc.duration_s)]
        state["gate"] = ProbeGate(every, sc.duration_s, arrivals.tolist(), steps, predict_s,
                                  recent=self.slow)  # fmt: skip
        return state

    def _probe_now(self, probing: dict, now, client) -> None:
        """One probe: the cloud asked for one call of its whole tail (on its own input),
        then one call of the whole model here, timed as a frame's edge stage."""
        if probing["cloud_ok"]:
            j = len(probing["sent"])
            probing["sent"][j] = now()
            client.send_probe(probing["first_id"] + j, self.sc.model.model,
                              probing["cloud_point"], self.x.shape)  # fmt: skip
        es = now()
        np.asarray(probing["whole"](self.x))
        took = now() - es
        probing["edge"].append([es, took])
        probing["gate"].observed(took / probing["edge_pred"](es))

    def _probe_answer(self, probing: dict, header: dict, back: float) -> bool:
        """Is ``header`` the answer to a probe during this run (kept, or the cloud's
        refusal: no more cloud probes this run)?"""
        rid = header.get("id")
        j = rid - probing["first_id"] if isinstance(rid, int) else -1
        if j not in probing["sent"]:
            return False
        if header.get("kind") == "probe":
            took = float(header["cloud_s"][0])
            probing["cloud"].append([probing["sent"].pop(j), took, back])
            probing["gate"].observed(took / probing["cloud_pred"])
        else:  # a server without probes on its own input: the edge's alone
            probing["sent"].pop(j)
            probing["cloud_ok"], probing["cloud_note"] = False, str(header.get("error"))
        return True

    def _drain_probes(self, probing: dict, now, client, wait_s: float = 5.0) -> None:
        """Read the answers of cloud probes still out after the run's last frame."""
        end = time.monotonic() + wait_s
        while probing["sent"] and time.monotonic() < end:
            if not select.select([client.sock], [], [], 0.5)[0]:
                continue
            try:
                header, _ = client.receive()
            except (EOFError, OSError):
                return
            self._probe_answer(probing, header, now())

    @staticmethod
    def _probes_done(probing: dict) -> dict | None:
        """The run's probes during it: edge ``[t_s, seconds]``, cloud ``[t_s, seconds,
        back_s]`` (run times), the periods skipped for want of an idle gap."""
        gate = probing["gate"]
        if gate is None:
            return None
        return {"every_s": probing["every_s"], "edge": probing["edge"],
                "cloud": probing["cloud"], "skipped": gate.skipped,
                "cloud_unanswered": len(probing["sent"]),
                "cloud_note": probing["cloud_note"]}  # fmt: skip


def main() -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    setup = json.loads(sys.stdin.readline())
    runner = EdgeRunner(setup)
    print(json.dumps({"ready": True, "compile_s": runner.compile_s}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("connect"):  # after both sides compiled, before any clock
            print(json.dumps(runner.connect()), flush=True)
            continue
        if cmd.get("probe"):  # the host's speed, before or after a run
            print(json.dumps(runner.probe(int(cmd["probe"]))), flush=True)
            continue
        result = runner.run(cmd["policy"], cmd["seed"], cmd["t0"], Path(cmd["records"]))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
