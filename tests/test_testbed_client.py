"""The edge's send backlog (CloudClient.unacked_bytes): what the edge really knows.

The peer is a stand-in for the cloud server: a real TCP socket that sends the
protocol's hello and then reads only when told, so the edge's backlog can be held
and released at will (the real server reads at once; its own tests are in
test_testbed_server.py). Loopback, no root.
"""

from __future__ import annotations

import socket
import threading
import time

import numpy as np

from adaptsim.testbed.client import CloudClient
from adaptsim.testbed.protocol import VERSION, encode


def _peer(release: threading.Event, got: list[int]) -> tuple[socket.socket, int]:
    srv = socket.socket()
    # a small receive buffer, fixed before the connection (no autotuning): the peer's
    # kernel takes little while its application does not read
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        conn.sendall(encode({"kind": "hello", "version": VERSION, "nonce": "n", "models": []}))
        release.wait(30)
        while chunk := conn.recv(1 << 20):
            got[0] += len(chunk)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def _wait(cond, timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_unacked_bytes_count_the_queue_the_socket_and_fall_to_zero_when_the_peer_has_all():
    release, got = threading.Event(), [0]
    srv, port = _peer(release, got)
    client = CloudClient("127.0.0.1", port, None)
    try:
        assert client.unacked_bytes() == 0
        x = np.ones((1, 224, 224, 3), np.float32)  # ResNet50's raw input: 602,112 bytes
        client.enqueued(x.nbytes)  # waiting in the edge's uplink queue, not yet sent
        assert client.unacked_bytes() == x.nbytes
        n = 8  # 4.8 MB: more than loopback's buffers hold while the peer does not read

        def send_all():
            for i in range(n):
                if i:
                    client.enqueued(x.nbytes)
                client.send(i, "resnet50", 0, x)

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        time.sleep(1.0)  # the sender blocks: the peer reads nothing
        held = client.unacked_bytes()
        assert sender.is_alive()  # still blocked in send: the backlog is real
        # everything handed out but what the peer's kernel already acknowledged (its
        # receive buffer): the bytes still on this side are counted, none twice
        assert n * x.nbytes // 2 < held <= n * (x.nbytes + 1024), held
        release.set()  # the peer reads everything
        sender.join(30)
        assert not sender.is_alive()
        assert _wait(lambda: client.unacked_bytes() == 0), client.unacked_bytes()
        assert _wait(lambda: got[0] >= n * x.nbytes)
    finally:
        release.set()
        client.close()
        srv.close()
