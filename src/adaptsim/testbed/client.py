"""The edge's side of the wire protocol: one connection, requests out, results back."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np

from adaptsim.testbed.protocol import VERSION, FrameError, encode, read_frame

__all__ = ["CloudClient"]

_MAX_RESULT_BYTES = 64 << 20


class CloudClient:
    """A connection to a :class:`~adaptsim.testbed.server.CloudServer`.

    ``send`` writes one request (blocking until the kernel took it all: the
    uplink's FIFO is this one TCP stream); ``receive`` reads the next reply.

    ``clock_offset_s``: the server's monotonic clock minus ours, estimated from the
    hello's stamp as NTP does (error at most half the connect round trip); the
    server's stamps of a remote cloud are brought onto the edge's clock with it;
    ``clock_uncertainty_s`` bounds its error. ``server_latency_s``: the one-way
    latency the server adds before a frame queues.
    """

    def __init__(self, host: str, port: int, key: bytes | None, timeout_s: float = 60.0):
        sent = time.monotonic()
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.key = key
        hello, _ = read_frame(self.sock, 0, key)
        if hello.get("kind") != "hello" or hello.get("version") != VERSION:
            raise FrameError(f"the cloud answered {hello!r}, not a version {VERSION} hello")
        got = time.monotonic()
        self.clock_offset_s = float(hello.get("clock_s", (sent + got) / 2)) - (sent + got) / 2
        self.clock_uncertainty_s = (got - sent) / 2
        self.server_latency_s = float(hello.get("one_way_latency_s", 0.0))  # added on its side
        self.nonce = hello["nonce"]
        self.models = hello.get("models", [])
        self._seq = 0
        self._lock = threading.Lock()

    def send(self, request_id: int, model: str, point: int, x: np.ndarray) -> None:
        x = np.ascontiguousarray(x, dtype=np.float32)
        with self._lock:
            self._seq += 1
            header = {"kind": "infer", "id": request_id, "model": model, "point": point,
                      "dtype": "float32", "shape": list(x.shape), "nonce": self.nonce,
                      "seq": self._seq}  # fmt: skip
            self.sock.sendall(encode(header, x.tobytes(), self.key))

    def receive(self) -> tuple[dict, bytes]:
        return read_frame(self.sock, _MAX_RESULT_BYTES, self.key)

    def close(self) -> None:
        self.sock.close()
