"""A peer for the emulated link's tests, run as a script in a network namespace.

``link_peer.py serve PORT``: acknowledge every length-prefixed message with one byte.
``link_peer.py send HOST PORT SIZES PERIOD_S COUNT [WARM]``: send messages of the sizes
(bytes, comma-separated, in turn) every PERIOD_S, one at a time over one TCP connection (as
the testbed's uplink), and print each one as a JSON line: its bytes, when it started (the
host's monotonic clock, which namespaces share) and its time from the first byte to the
acknowledgement. WARM (default 0) messages of the largest size go first, unrecorded, as
the testbed's edge warms its connection before the clock.
"""

import json
import socket
import struct
import sys
import time


def serve(port: int) -> None:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(1)
    print("ready", flush=True)
    c, _ = s.accept()
    while True:
        head = c.recv(4, socket.MSG_WAITALL)
        if len(head) < 4:
            return
        n = struct.unpack("!I", head)[0]
        if len(c.recv(n, socket.MSG_WAITALL)) < n:
            return
        c.sendall(b"k")


def send(host: str, port: int, sizes: list[int], period_s: float, count: int, warm: int) -> None:
    c = socket.create_connection((host, port))
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(warm):
        c.sendall(struct.pack("!I", max(sizes)) + bytes(max(sizes)))
        assert c.recv(1) == b"k"
    t0 = time.monotonic()
    for i in range(count):
        time.sleep(max(0.0, t0 + i * period_s - time.monotonic()))
        n, a = sizes[i % len(sizes)], time.monotonic()
        c.sendall(struct.pack("!I", n) + bytes(n))
        assert c.recv(1) == b"k"
        took_s = time.monotonic() - a
        row = {"bytes": n, "sent_s": a - t0, "start_monotonic": a, "seconds": took_s}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        sizes = [int(x) for x in sys.argv[4].split(",")]
        warm = int(sys.argv[7]) if len(sys.argv) > 7 else 0
        send(sys.argv[2], int(sys.argv[3]), sizes, float(sys.argv[5]), int(sys.argv[6]), warm)
