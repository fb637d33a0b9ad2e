"""The testbed's wire protocol: length-prefixed frames, a JSON header, raw tensor bytes.

A frame is ``PREFIX`` (magic ``ASF1``, header length, body length, big-endian),
the header (UTF-8 JSON, a flat object), the body (raw bytes: a C-ordered tensor
as the header's ``dtype`` and ``shape`` say) and, on an authenticated session, a
32-byte HMAC-SHA256 of prefix + header + body under the shared secret. Nothing
is ever unpickled: the only decoder is ``json.loads`` and ``numpy.frombuffer``.

A session starts with the server's ``hello`` frame: protocol version, a fresh
random ``nonce`` and ``bind_edge_nonce``. Every request then carries that nonce and
a ``seq`` greater than the last one on the connection, both inside the MAC: a frame
replayed from another connection has the wrong nonce, one replayed on the same
connection an old seq, and either is refused.

The edge answers with its own ``hello`` (its first frame: the server's nonce, a
seq, and ``edge_nonce``, fresh random bytes of its own); the server answers that
with a second ``hello`` (models, clock, latency) and from then on every reply
carries both nonces and a growing ``rseq``, inside the MAC. The server's first
hello is the one frame that binds nothing of the edge's (a recording replays it),
so the edge takes only the server's nonce from it. A recorded session replayed
to a later edge fails that edge's check at the second hello: it was bound to
another edge nonce. Reflection fails too: the edge's frames carry ``seq`` and no
``rseq`` (and only its hello the edge nonce), the server's ``rseq`` and no ``seq``.
A hello from the edge is taken only as a connection's first frame. With a secret,
the edge refuses a server whose hello does not offer ``bind_edge_nonce`` (an older
adaptsim, or a recording of one): that downgrade would remove the check. An older
edge, which sends no hello, is still served (the server's own nonce protects the
server).

Frame kinds: ``hello`` (server, then edge, then server), ``infer`` (edge -> cloud:
``id``, ``model``, ``point``, ``dtype``, ``shape``), ``result`` (cloud -> edge: ``id``
and the cloud's ``recv_s``/``start_s``/``end_s`` stamps on the host's monotonic clock, and
``prev_recv_s``: when the frame before it on the connection was all in, which
says when the uplink was free for this one),
``clock`` (edge -> cloud, empty; answered at once with the server's ``clock_s``:
the edge's clock sync, :meth:`~adaptsim.testbed.client.CloudClient.sync_clock`),
``probe`` (edge -> cloud: an ``infer`` frame's fields and ``frames``, 1 to
:data:`~adaptsim.testbed.host_speed.MAX_PROBE_FRAMES`; the server runs that point's
tail on the body ``frames`` times, between runs, and answers a ``probe`` frame whose
``cloud_s`` lists its own compute seconds per call: the host's speed,
:mod:`~adaptsim.testbed.host_speed`; with ``input: "server"`` and an empty body, on
an input of the point's shape the server makes itself: the probes during a run,
:mod:`~adaptsim.testbed.speed_track`) and
``error`` (``error``: what was wrong, ``id`` when known).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from adaptsim.errors import UserError

__all__ = [
    "MAC_BYTES",
    "MAX_HEADER_BYTES",
    "PREFIX",
    "SECRET_ENV",
    "FrameError",
    "Session",
    "Unauthenticated",
    "encode",
    "load_secret",
    "parse_address",
    "read_frame",
]

PREFIX = struct.Struct(">4sIQ")
MAGIC = b"ASF1"
VERSION = 1
MAC_BYTES = 32
MAX_HEADER_BYTES = 16 * 1024
SECRET_ENV = "ADAPTSIM_SECRET"


class FrameError(Exception):
    """A bad frame. ``fatal``: the stream cannot be trusted past it (close the connection)."""

    def __init__(self, message: str, *, fatal: bool = False, request_id=None):
        super().__init__(message)
        self.fatal = fatal
        self.request_id = request_id


class Unauthenticated(FrameError):
    """A frame whose MAC is wrong or missing: another secret, or altered on the way."""


EDGE_NONCE_CHARS = (32, 128)  # an edge nonce's length: 16 random bytes as hex, at least
_MAX_SECRET_BYTES = 4096


def load_secret(secret_file: Path | None = None) -> bytes:
    """The shared secret: from ``secret_file`` or the ADAPTSIM_SECRET environment variable.

    Never from the command line, where other users of the host read it in ``ps``.
    """
    if secret_file is not None:
        try:
            with secret_file.open("rb") as fh:  # at most a little more than a secret can be
                raw = fh.read(_MAX_SECRET_BYTES + 1)
        except OSError as exc:
            raise UserError(
                f"--secret-file {secret_file}: cannot read it ({exc.strerror})"
            ) from None
        if len(raw) > _MAX_SECRET_BYTES:  # a wrong file named (a disk image): not read whole
            raise UserError(
                f"--secret-file {secret_file}: holds more than {_MAX_SECRET_BYTES} bytes; a "
                "secret is a short line (e.g. openssl rand -hex 32 > FILE)"
            )
        key = raw.strip()
        where = f"--secret-file {secret_file}"
    else:
        key = os.environ.get(SECRET_ENV, "").encode()
        where = f"${SECRET_ENV}"
    if len(key) < 16:
        raise UserError(
            f"{where}: give a shared secret of at least 16 bytes "
            f"(e.g. export {SECRET_ENV}=$(openssl rand -hex 32))"
        )
    return key


def parse_address(address: str, flag: str, *, port_zero: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` (``[V6]:PORT`` for an IPv6 address) as (host, port), or one clear line.

    ``flag`` names the option in the message (``--cloud``, ``--listen``); ``port_zero``
    allows port 0 (a listener: the kernel picks a free port).
    """
    host, sep, port = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    low = 0 if port_zero else 1
    if not sep or not host or not port.isdigit() or not low <= int(port) <= 65535:
        raise UserError(
            f"{flag} {address!r}: give HOST:PORT with a port {low}-65535, e.g. 10.0.0.2:50100 "
            "(an IPv6 address as [::1]:50100)"
        )
    return host, int(port)


def _mac(key: bytes, *parts: bytes) -> bytes:
    h = hmac.new(key, digestmod=hashlib.sha256)
    for p in parts:
        h.update(p)
    return h.digest()


def encode(header: dict, body: bytes = b"", key: bytes | None = None) -> bytes:
    """One frame; with ``key``, its MAC appended."""
    head = json.dumps(header, separators=(",", ":")).encode()
    prefix = PREFIX.pack(MAGIC, len(head), len(body))
    mac = _mac(key, prefix, head, body) if key else b""
    return b"".join((prefix, head, body, mac))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise EOFError("connection closed")
        got += k
    return bytes(buf)


@dataclass
class Session:
    """The server's state of a connection: the key, the hello nonce, the last seq, and
    the edge's own nonce once its hello came (every reply is bound to it)."""

    key: bytes | None
    nonce: str = ""
    last_seq: int = -1
    edge_nonce: str | None = None
    frames: int = 0  # requests read on this connection

    def check(self, header: dict) -> None:
        """Refuse a request from another session or one seen before (replay)."""
        self.frames += 1
        if self.key is None:
            return
        if header.get("nonce") != self.nonce:
            raise FrameError(
                "refused: the frame belongs to another session (replayed?)", fatal=True
            )
        seq = header.get("seq")
        if not isinstance(seq, int) or seq <= self.last_seq:
            raise FrameError(f"refused: seq {seq!r} is not new on this connection (replayed?)",
                             fatal=True)  # fmt: skip
        self.last_seq = seq

    def open(self, header: dict) -> None:
        """The edge's hello (checked as every request is): its nonce, taken once, only as
        the connection's first frame (a hello later is a replay or a confused peer)."""
        if self.frames != 1:
            raise FrameError("refused: an edge's hello after the connection's first frame "
                             "(replayed?)", fatal=True)  # fmt: skip
        nonce = header.get("edge_nonce")
        low, high = EDGE_NONCE_CHARS
        if not isinstance(nonce, str) or not low <= len(nonce) <= high:
            raise FrameError(f"refused: the edge's hello carries no nonce of {low}-{high} "
                             "characters", fatal=True)  # fmt: skip
        self.edge_nonce = nonce

    def bound(self, header: dict, rseq: int) -> dict:
        """A reply bound to this session: the server's nonce, the edge's (once it said
        one) and the reply's ``rseq``, all inside the MAC."""
        edge = {} if self.edge_nonce is None else {"edge_nonce": self.edge_nonce}
        return {**header, "nonce": self.nonce, **edge, "rseq": rseq}


def read_frame(
    sock: socket.socket, max_body_bytes: int, key: bytes | None = None
) -> tuple[dict, bytes]:
    """Read one frame; raises :class:`FrameError` (``fatal`` when the stream is lost).

    Sizes are checked before anything is allocated; with ``key`` the MAC is
    checked before the header is parsed.
    """
    magic, head_n, body_n = PREFIX.unpack(_recv_exact(sock, PREFIX.size))
    if magic != MAGIC:
        raise FrameError(f"not an adaptsim frame (magic {magic!r})", fatal=True)
    if head_n > MAX_HEADER_BYTES:
        raise FrameError(f"header of {head_n} bytes is over the {MAX_HEADER_BYTES} limit",
                         fatal=True)  # fmt: skip
    if body_n > max_body_bytes:
        raise FrameError(f"body of {body_n} bytes is over the {max_body_bytes} limit", fatal=True)
    head = _recv_exact(sock, head_n)
    body = _recv_exact(sock, body_n)
    if key is not None:
        mac = _recv_exact(sock, MAC_BYTES)
        want = _mac(key, PREFIX.pack(magic, head_n, body_n), head, body)
        if not hmac.compare_digest(mac, want):
            raise Unauthenticated("refused: unauthenticated frame (bad or missing HMAC)",
                                  fatal=True)  # fmt: skip
    try:  # not UTF-8 or JSON, an integer over Python's 4,300 digits, nested too deep
        header = json.loads(head.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise FrameError(f"malformed header: {exc}") from None
    if not isinstance(header, dict):
        raise FrameError("malformed header: not a JSON object")
    return header, body
