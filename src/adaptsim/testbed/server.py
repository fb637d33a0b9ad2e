"""The cloud end of the testbed: tails of every split, served over the wire protocol.

A reader thread per connection takes frames in; a frame fully received at
``recv_s`` becomes eligible at ``recv_s + one_way_latency_s`` (the latency is
added here, in the application: the kernel has no netem), joins one FIFO queue,
and the first of ``workers`` threads free runs its tail: the simulator's cloud,
``c`` servers behind one queue. A frame at the all-edge point has no tail and is
answered when eligible. Every tail is built and compiled before the server says
``ready``, so no request pays for a first trace.

A bad frame gets an error frame and one log line; the server keeps serving the
other connections (and this one too, where the stream can still be trusted).
Each connection opens with the server's hello; an edge that answers with its own
hello (its nonce) gets a second one, and every reply after it is bound to both
nonces (:mod:`~adaptsim.testbed.protocol`); an older edge, without a hello, is
served as before.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from adaptsim.testbed.protocol import (
    VERSION,
    FrameError,
    Session,
    encode,
    read_frame,
)

__all__ = ["CloudServer", "Tail", "bind", "build_tails", "reach_hint", "set_tf_threads"]

log = logging.getLogger("adaptsim.cloud")
_IDLE_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Tail:
    """The cloud half at one point: what it takes in, and the call (None: nothing to run)."""

    shape: tuple[int, ...]  # the input tensor, batch of 1 included
    run: Callable[[np.ndarray], np.ndarray] | None


def build_tails(names: list[str], progress: Callable[[str], None] = print) -> dict:
    """Every point's compiled tail of each zoo model: ``{model: {point: Tail}}``."""
    from adaptsim.models import analyse, build_model, canonical_name
    from adaptsim.models.graph import PointKind
    from adaptsim.models.split import compiled, split

    out: dict[str, dict[int, Tail]] = {}
    for raw in names:
        name = canonical_name(raw)
        t0 = time.perf_counter()
        model = build_model(name)
        graph = analyse(model)
        tails = {}
        for p in graph.points:
            shape = (1, *p.output_shape)
            if p.kind is PointKind.ALL_EDGE:
                tails[p.ordinal] = Tail(shape, None)
                continue
            _, tail = split(model, p.ordinal, graph=graph)
            fn = compiled(tail)
            x = np.zeros(shape, np.float32)
            for _ in range(2):  # trace and warm
                fn(x)
            tails[p.ordinal] = Tail(shape, lambda x, fn=fn: np.asarray(fn(x)))
        out[name] = tails
        progress(f"cloud: {name}: {len(tails)} tails compiled in {time.perf_counter() - t0:.1f} s")
    return out


def set_tf_threads(threads: int) -> None:
    """TensorFlow's intra- and inter-op threads, set before it runs anything.

    The testbed's cloud process and the profiler use 1, so a tail's time is the
    one the calibration was profiled with; ``adaptsim serve --threads`` does the same.
    """
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def reach_hint(host: str) -> str:
    """Who can reach a server bound to ``host``, where that is not plain: every address
    of this host (say one the edge can reach), or loopback (only this machine)."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return ""
    if ip.is_unspecified:
        return "; every address of this host: give the edge one it can reach"
    if ip.is_loopback:
        return "; loopback: only this machine can connect (listen on an address of this host)"
    return ""


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to exactly ``host`` (IPv6 when it is an IPv6 address), not yet listening.

    ``adaptsim serve`` binds before it compiles anything, so a wrong or taken
    address is said at once, not after minutes of compiling; it listens only once
    every tail is compiled (:meth:`CloudServer.start`), so an edge that comes too
    early is refused and retries (``validate --cloud-wait-s``) rather than waiting
    on a connection that says nothing.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


class CloudServer:
    """Serve tails on ``(host, port)``; ``start()`` returns once listening.

    ``bound_socket``: a socket already bound (:func:`bind`) instead of a new one.
    """

    def __init__(
        self,
        tails: dict,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        workers: int = 1,
        key: bytes | None = None,
        one_way_latency_s: float = 0.0,
        max_body_bytes: int | None = None,
        bound_socket: socket.socket | None = None,
    ):
        self.tails, self.key, self.owl = tails, key, one_way_latency_s
        largest = max(
            (math.prod(t.shape) * 4 for m in tails.values() for t in m.values()), default=1 << 20
        )
        self.max_body_bytes = max_body_bytes or largest
        self.sock = bound_socket if bound_socket is not None else bind(host, port)
        self.address = self.sock.getsockname()[:2]
        self.workers = workers
        self.served = 0
        self.rejected = 0
        self._jobs: queue.Queue = queue.Queue()
        self._delayed: list = []
        self._delay_cv = threading.Condition()
        self._order = itertools.count()
        self._stop = threading.Event()

    def start(self) -> CloudServer:
        self.sock.listen()
        threading.Thread(target=self._accept, daemon=True, name="accept").start()
        threading.Thread(target=self._release, daemon=True, name="latency").start()
        for k in range(self.workers):
            threading.Thread(target=self._work, daemon=True, name=f"worker{k}").start()
        return self

    def close(self) -> None:
        self._stop.set()
        self.sock.close()

    # -- connections ------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_conn, args=(conn, peer), daemon=True).start()

    def _serve_conn(self, conn: socket.socket, peer) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(_IDLE_TIMEOUT_S)
        lock = threading.Lock()
        session = Session(self.key, secrets.token_hex(16))
        prev_recv_s = None  # when the frame before on this connection was all in

        replies = itertools.count()  # each reply's rseq: the edge refuses one seen before

        def reply(header: dict, body: bytes = b"") -> None:
            with lock:
                conn.sendall(encode(session.bound(header, next(replies)), body, self.key))

        def hello() -> dict:  # what an edge learns of this server (both hellos say it)
            return {"kind": "hello", "version": VERSION, "auth": self.key is not None,
                    "models": sorted(self.tails), "clock_s": time.monotonic(),
                    "one_way_latency_s": self.owl}  # fmt: skip

        try:
            reply({**hello(), "bind_edge_nonce": True})  # an older edge reads only this one
            while not self._stop.is_set():
                try:
                    header, body = read_frame(conn, self.max_body_bytes, self.key)
                    recv_s = time.monotonic()
                    session.check(header)
                    if header.get("kind") == "hello":  # the edge's nonce: replies bound to it
                        session.open(header)
                        reply(hello())
                        continue
                    if header.get("kind") == "clock":  # the edge's clock sync: answered at once
                        reply({"kind": "clock", "clock_s": time.monotonic()})
                        continue
                    if header.get("kind") == "probe":  # the host's speed, between runs
                        reply(self._probe(header, body))
                        continue
                    job = self._job(header, body)
                except FrameError as exc:
                    self.rejected += 1
                    log.warning("cloud: %s: %s", f"{peer[0]}:{peer[1]}", exc)
                    reply({"kind": "error", "id": exc.request_id, "error": str(exc)})
                    if exc.fatal:
                        return
                    continue
                stamps = (recv_s, prev_recv_s)
                prev_recv_s = recv_s
                with self._delay_cv:
                    heapq.heappush(
                        self._delayed, (recv_s + self.owl, next(self._order), stamps, job, reply)
                    )
                    self._delay_cv.notify()
        except (EOFError, OSError):
            return
        finally:
            conn.close()

    def _job(self, header: dict, body: bytes, kind: str = "infer", own_input: bool = False):
        rid = header.get("id")
        if header.get("kind") != kind:
            raise FrameError(f"unexpected frame kind {header.get('kind')!r}", request_id=rid)
        model, point = header.get("model"), header.get("point")
        if model not in self.tails:
            raise FrameError(f"unknown model {model!r}; serving {sorted(self.tails)}",
                             request_id=rid)  # fmt: skip
        tail = self.tails[model].get(point) if isinstance(point, int) else None
        if tail is None:
            raise FrameError(f"{model} has no point {point!r}", request_id=rid)
        if header.get("dtype") != "float32":
            raise FrameError(f"dtype {header.get('dtype')!r}: send float32", request_id=rid)
        shape = header.get("shape")
        if not isinstance(shape, list) or tuple(shape) != tail.shape:
            raise FrameError(f"shape {shape!r} is wrong for {model} point {point}: "
                             f"want {list(tail.shape)}", request_id=rid)  # fmt: skip
        if own_input:  # a probe on the server's own input: nothing came with it
            if body:
                raise FrameError(f"a probe with input 'server' carries no body, not "
                                 f"{len(body)} bytes", request_id=rid)  # fmt: skip
        elif len(body) != math.prod(tail.shape) * 4:
            raise FrameError(f"body of {len(body)} bytes does not hold shape {shape} float32",
                             request_id=rid)  # fmt: skip
        return rid, tail, body

    def _probe(self, header: dict, body: bytes) -> dict:
        """A probe frame's answer: its point's tail run ``frames`` times on its body, the
        seconds of each call as a frame's cloud service time is timed (``start_s`` to
        ``end_s``). Run here, in the connection's thread: the edge probes between runs,
        and during a run only when none of its frames is in flight and none is due
        (:mod:`~adaptsim.testbed.speed_track`). With ``input: "server"`` and no body
        the tail runs on the server's own input of the point's shape (a probe during a
        run sends nothing large over the shaped link)."""
        from adaptsim.testbed.host_speed import MAX_PROBE_FRAMES

        own = header.get("input", "body")
        if own not in ("body", "server"):
            raise FrameError(f"probe input {own!r}: give body or server",
                             request_id=header.get("id"))  # fmt: skip
        rid, tail, _ = self._job(header, body, kind="probe", own_input=own == "server")
        n = header.get("frames")
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PROBE_FRAMES:
            raise FrameError(f"probe frames {n!r}: give 1 to {MAX_PROBE_FRAMES}", request_id=rid)
        if tail.run is None:
            raise FrameError(f"point {header['point']} has no tail to probe", request_id=rid)
        if own == "server":
            x = np.random.default_rng(0).standard_normal(tail.shape).astype(np.float32)
        else:
            x = np.frombuffer(body, dtype=np.float32).reshape(tail.shape)
        seconds = []
        for _ in range(n):
            start = time.monotonic()
            tail.run(x)
            seconds.append(time.monotonic() - start)
        return {"kind": "probe", "id": rid, "cloud_s": seconds}

    # -- the one-way latency, then the FIFO queue and its servers -----------------
    def _release(self) -> None:
        while not self._stop.is_set():
            with self._delay_cv:
                while not self._delayed:
                    self._delay_cv.wait(0.5)
                    if self._stop.is_set():
                        return
                due = self._delayed[0][0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._delay_cv.wait(wait)
                    continue
                _, _, stamps, job, reply = heapq.heappop(self._delayed)
            rid, tail, _ = job
            if tail.run is None:  # all-edge: nothing to run in the cloud
                now = time.monotonic()
                self._send(reply, rid, stamps, now, now, b"", [])
            else:
                self._jobs.put((stamps, job, reply))

    def _work(self) -> None:
        while True:
            stamps, (rid, tail, body), reply = self._jobs.get()
            x = np.frombuffer(body, dtype=np.float32).reshape(tail.shape)
            start = time.monotonic()
            y = tail.run(x)
            end = time.monotonic()
            self._send(reply, rid, stamps, start, end, y.astype(np.float32).tobytes(), y.shape)

    def _send(self, reply, rid, stamps, start, end, body, shape) -> None:
        try:
            reply({"kind": "result", "id": rid, "recv_s": stamps[0], "prev_recv_s": stamps[1],
                   "start_s": start, "end_s": end, "dtype": "float32", "shape": list(shape)},
                  body)  # fmt: skip
            self.served += 1
        except OSError:
            log.warning("cloud: request %s: the edge went away before its result", rid)


def main() -> None:
    """``python -m adaptsim.testbed.server``: the cloud process of a real run.

    Its stdin's first line is the set-up (JSON: models, host, port, workers,
    one_way_latency_s); the secret comes from ADAPTSIM_SECRET. It says ``ready``
    (with its port) once every tail is compiled, and serves until stdin closes.
    """
    import json
    import sys

    from adaptsim.testbed.protocol import load_secret

    set_tf_threads(1)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    setup = json.loads(sys.stdin.readline())
    t0 = time.perf_counter()
    tails = build_tails(setup["models"], progress=lambda line: print(line, file=sys.stderr))
    server = CloudServer(
        tails,
        setup["host"],
        setup.get("port", 0),
        workers=setup.get("workers", 1),
        key=load_secret(),
        one_way_latency_s=setup.get("one_way_latency_s", 0.0),
    ).start()
    ready = {"ready": True, "port": server.address[1], "compile_s": time.perf_counter() - t0}
    print(json.dumps(ready), flush=True)
    sys.stdin.read()  # until the parent closes it (or dies)
    server.close()


if __name__ == "__main__":
    main()
