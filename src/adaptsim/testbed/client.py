"""The edge's side of the wire protocol: one connection, requests out, results back."""

from __future__ import annotations

import fcntl
import secrets
import socket
import struct
import termios
import threading
import time

import numpy as np

from adaptsim.testbed.protocol import VERSION, FrameError, encode, read_frame

__all__ = ["CloudClient", "OlderServer"]


class OlderServer(FrameError):
    """With a secret: a server whose replies would not be bound to this edge's nonce."""


_MAX_RESULT_BYTES = 64 << 20


class CloudClient:
    """A connection to a :class:`~adaptsim.testbed.server.CloudServer`.

    ``send`` writes one request (blocking until the kernel took it all: the
    uplink's FIFO is this one TCP stream); ``receive`` reads the next reply.

    The handshake (:mod:`~adaptsim.testbed.protocol`): the server's hello, this edge's
    hello with a fresh nonce of its own (``edge_nonce``), the server's second hello
    bound to it; with a secret, every reply must carry both nonces and a growing
    ``rseq`` (a recorded session, replayed, is refused: :class:`FrameError`), and a
    server that does not bind its replies to the edge's nonce is refused
    (:class:`OlderServer`); without one, an older server is served as before.

    ``clock_offset_s``: the server's monotonic clock minus ours, first from the
    second hello's stamp (error at most half the hellos' round trip; from an older
    server, its only hello's, at most half the connect's, and biased: see
    :meth:`sync_clock`, which refines it from the shortest of a few clock round
    trips, as NTP does); the server's stamps of a remote cloud are brought onto the
    edge's clock with it; ``clock_uncertainty_s`` bounds its error.
    ``server_latency_s``: the one-way latency the server adds before a frame queues.

    ``unacked_bytes()``: what the edge has handed to the uplink and the peer has
    not yet acknowledged: the bytes announced with :meth:`enqueued` and not yet
    given to ``send``, those given but not yet written into the kernel, and the
    kernel's own unacknowledged send queue (``SIOCOUTQ``). It is the real edge's
    counterpart of the simulator's ``View.uplink_unacked_bytes`` (frames done on
    the edge whose bytes have not all crossed the link).
    """

    def __init__(self, host: str, port: int, key: bytes | None, timeout_s: float = 60.0):
        sent = time.monotonic()
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.key = key
        self._seq = 0
        self.edge_nonce = None  # ours, once the server binds its replies to it
        try:
            sent, hello = self._greet(sent)
        except BaseException:
            self.sock.close()
            raise
        got = time.monotonic()
        self.clock_offset_s = float(hello.get("clock_s", (sent + got) / 2)) - (sent + got) / 2
        self.clock_uncertainty_s = (got - sent) / 2
        self.hello_offset_s = self.clock_offset_s  # before any sync_clock: for comparison
        self.server_latency_s = float(hello.get("one_way_latency_s", 0.0))  # added on its side
        self.models = hello.get("models", [])
        self._lock = threading.Lock()
        self._count = threading.Lock()  # the byte counters below
        self._queued = 0  # payload bytes announced, not yet given to send
        self._handed = 0  # frame bytes given to send
        self._written = 0  # of them, written into the kernel

    def _greet(self, sent: float) -> tuple[float, dict]:
        """The server's hello; then, where it binds its replies to this edge's nonce,
        :meth:`_open`. Returns when the hello the clock is read from was asked for, and
        that hello."""
        hello, _ = read_frame(self.sock, 0, self.key)
        if hello.get("kind") != "hello" or hello.get("version") != VERSION:
            raise FrameError(f"the cloud answered {hello!r}, not a version {VERSION} hello")
        self.nonce = hello["nonce"]
        self._rseq = hello.get("rseq")  # the last reply's; None: an older server's hello
        if hello.get("bind_edge_nonce") is True:
            return self._open()
        if self.key is not None:  # a recorded session of an older server would replay
            raise OlderServer(
                "the cloud's hello does not bind its replies to this edge's nonce (an older "
                "adaptsim there, or a recording of one replayed): refused, as a recorded "
                "session could pass for the server; run this adaptsim on both hosts"
            )
        return sent, hello

    def _open(self) -> tuple[float, dict]:
        """Say this edge's own fresh nonce (its hello) and read the server's second hello,
        bound to it (:meth:`receive` checks that, as for every reply after it): a
        recorded session, replayed, was bound to another edge's nonce. Returns when the
        hello was sent (the clock's round trip starts there) and the server's answer."""
        self.edge_nonce = secrets.token_hex(16)
        self._seq += 1
        sent = time.monotonic()
        self.sock.sendall(encode({"kind": "hello", "version": VERSION, "nonce": self.nonce,
                                  "seq": self._seq, "edge_nonce": self.edge_nonce}, b"",
                                 self.key))  # fmt: skip
        hello, _ = self.receive()
        if hello.get("kind") != "hello":
            raise FrameError(f"the cloud answered this edge's hello with {hello!r}")
        return sent, hello

    def sync_clock(self, probes: int = 8) -> None:
        """Re-estimate ``clock_offset_s`` from ``probes`` clock round trips; keep the shortest.

        The hello's estimate is one round trip's (the older server's: its interval
        spans the whole TCP connect and the server stamps it only after accepting and
        starting a thread, not at the interval's middle: measured 0.13-10.6 ms off on
        a loaded host, where a LeNet frame's uplink takes 0.5 ms; docs/validation.md,
        "Two machines"). A clock frame is stamped by the server as it is read and
        answered at once, so the midpoint of the shortest round trip is off by at most
        half of that round trip, and only by the asymmetry of the two directions.
        Called before each run (a second
        machine's clock drifts from ours: a fresh offset per run bounds what the drift
        adds) and after it (the drift, said in the run's facts). A server without clock
        frames keeps the hello's estimate.
        """
        best: tuple[float, float] | None = None
        for _ in range(probes):
            with self._lock:
                self._seq += 1
                frame = encode({"kind": "clock", "nonce": self.nonce, "seq": self._seq}, b"",
                               self.key)  # fmt: skip
                sent = time.monotonic()
                self.sock.sendall(frame)
            while True:  # a late result of an earlier run may come first: not an answer
                header, _ = self.receive()
                if header.get("kind") in ("clock", "error"):
                    break
            got = time.monotonic()
            if header.get("kind") == "error":
                return  # an older server: the hello's estimate stands
            if best is None or got - sent < best[0]:
                best = (got - sent, float(header["clock_s"]) - (sent + got) / 2)
        if best is not None:
            self.clock_offset_s, self.clock_uncertainty_s = best[1], best[0] / 2

    def probe(self, model: str, point: int, x: np.ndarray, frames: int) -> list[float] | None:
        """The server's own seconds for ``frames`` calls of ``point``'s tail on ``x``
        (a ``probe`` frame: the host's speed, between runs); None from a server that
        refuses it (an older one, without probe frames). A late result of an earlier
        run that comes first is not the answer."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        with self._lock:
            self._seq += 1
            header = {"kind": "probe", "id": 0, "model": model, "point": point,
                      "dtype": "float32", "shape": list(x.shape), "frames": int(frames),
                      "nonce": self.nonce, "seq": self._seq}  # fmt: skip
            self.sock.sendall(encode(header, x.tobytes(), self.key))
        while True:  # an answer to a probe during a run (its own id) is not this one's
            reply, _ = self.receive()
            if reply.get("kind") in ("probe", "error") and reply.get("id") in (0, None):
                break
        if reply.get("kind") == "error":
            return None
        return [float(s) for s in reply["cloud_s"]]

    def send_probe(self, request_id: int, model: str, point: int, shape) -> None:
        """Ask for one call of ``point``'s tail on the server's own input (a ``probe``
        frame with ``input: "server"``, no body); the answer comes as the next frames
        do, to :meth:`receive` (a probe during a run, :mod:`~adaptsim.testbed.speed_track`)."""
        with self._lock:
            self._seq += 1
            header = {"kind": "probe", "id": request_id, "model": model, "point": point,
                      "dtype": "float32", "shape": list(shape), "frames": 1, "input": "server",
                      "nonce": self.nonce, "seq": self._seq}  # fmt: skip
            self.sock.sendall(encode(header, b"", self.key))

    def enqueued(self, payload_bytes: int) -> None:
        """Announce a payload that will be sent (it waits in the edge's uplink queue)."""
        with self._count:
            self._queued += int(payload_bytes)

    def unacked_bytes(self) -> int:
        """Bytes handed to the uplink that the peer has not acknowledged (see the class)."""
        buf = fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")  # = SIOCOUTQ
        in_kernel = struct.unpack("i", buf)[0]
        with self._count:
            return self._queued + (self._handed - self._written) + in_kernel

    def send(self, request_id: int, model: str, point: int, x: np.ndarray) -> None:
        x = np.ascontiguousarray(x, dtype=np.float32)
        with self._lock:
            self._seq += 1
            header = {"kind": "infer", "id": request_id, "model": model, "point": point,
                      "dtype": "float32", "shape": list(x.shape), "nonce": self.nonce,
                      "seq": self._seq}  # fmt: skip
            frame = memoryview(encode(header, x.tobytes(), self.key))
            with self._count:
                self._queued = max(0, self._queued - x.nbytes)
                self._handed += len(frame)
            sent = 0
            while sent < len(frame):  # sendall, counting what the kernel took
                n = self.sock.send(frame[sent:])
                sent += n
                with self._count:
                    self._written += n

    def receive(self) -> tuple[dict, bytes]:
        """The next reply; one of another session or seen before (replayed) is refused."""
        header, body = read_frame(self.sock, _MAX_RESULT_BYTES, self.key)
        if self.key is None:  # nothing is authenticated: nothing to bind
            return header, body
        if header.get("edge_nonce") != self.edge_nonce:
            raise FrameError("refused: a reply not bound to this edge's nonce (a recorded "
                             "session replayed?)", fatal=True)  # fmt: skip
        rseq, last = header.get("rseq"), self._rseq if isinstance(self._rseq, int) else -1
        if header.get("nonce") != self.nonce or not isinstance(rseq, int) or rseq <= last:
            raise FrameError("refused: a reply of another session or seen before (replayed?)",
                             fatal=True)  # fmt: skip
        self._rseq = rseq
        return header, body

    def close(self) -> None:
        self.sock.close()
