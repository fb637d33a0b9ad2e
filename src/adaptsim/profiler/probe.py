"""The two ends of a link probe: ``python -m adaptsim.profiler.probe serve|send``.

``serve PORT`` answers each message (an 8-byte big-endian length, then that many
bytes) with one byte once it has all of it. ``send HOST PORT`` connects once (as a
split deployment keeps its connection), sends each payload size ``--repeats`` times
in an order drawn from ``--seed``, and prints one JSON object per line: the size
and the seconds from the first byte sent to the reply read. Nothing but JSON
crosses back to the profiler. Standard library only, so it starts fast inside a
network namespace.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import struct
import sys
import time

_HEADER = struct.Struct(">Q")
_CHUNK = 1 << 20


def _read_exact(conn: socket.socket, n: int) -> bool:
    buf = bytearray(min(n, _CHUNK))
    view = memoryview(buf)
    while n > 0:
        got = conn.recv_into(view[: min(n, len(buf))])
        if got == 0:
            return False
        n -= got
    return True


def serve(port: int) -> None:
    srv = socket.create_server(("0.0.0.0", port))
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while True:
                head = bytearray(_HEADER.size)
                if not _read_exact_into(conn, head):
                    break
                if not _read_exact(conn, _HEADER.unpack(head)[0]):
                    break
                conn.sendall(b"k")


def _read_exact_into(conn: socket.socket, buf: bytearray) -> bool:
    view, n = memoryview(buf), 0
    while n < len(buf):
        got = conn.recv_into(view[n:])
        if got == 0:
            return False
        n += got
    return True


def send(host: str, port: int, sizes: list[int], repeats: int, seed: int) -> None:
    conn = socket.create_connection((host, port), timeout=60)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = bytes(max(sizes))
    order = [s for s in sizes for _ in range(repeats)]
    random.Random(seed).shuffle(order)
    reply = bytearray(1)
    for i, size in enumerate([min(sizes), *order]):  # the first one warms the connection
        t0 = time.perf_counter()
        conn.sendall(_HEADER.pack(size))
        conn.sendall(memoryview(payload)[:size])
        if not _read_exact_into(conn, reply):
            raise SystemExit("probe: the server closed the connection")
        dt = time.perf_counter() - t0
        if i:
            print(json.dumps({"bytes": size, "seconds": dt}), flush=True)
    conn.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="adaptsim.profiler.probe")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("port", type=int)
    c = sub.add_parser("send")
    c.add_argument("host")
    c.add_argument("port", type=int)
    c.add_argument("--sizes", required=True)
    c.add_argument("--repeats", type=int, default=10)
    c.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.cmd == "serve":
        serve(a.port)
    else:
        send(a.host, a.port, [int(v) for v in a.sizes.split(",")], a.repeats, a.seed)


if __name__ == "__main__":
    main(sys.argv[1:])
