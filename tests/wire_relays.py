"""Men in the middle of the wire protocol, without the secret: real listeners on 127.0.0.1.

:class:`Relay` passes frames between an edge and a real cloud, recording each one as
it went (the bytes exactly, MAC included: what a tap on the network keeps), and can
send any of them elsewhere instead (reflect an edge's frame back to it).
:class:`Replayer` stands for the server with a recorded session: it greets each edge
with the recording's first frame and answers every frame the edge sends with the
recording's next one. Neither can make a frame of its own: they read frames by their
length prefix only, never checking a MAC.
"""

from __future__ import annotations

import itertools
import socket
import threading

from adaptsim.testbed.protocol import MAC_BYTES, PREFIX


def raw_frame(sock: socket.socket) -> bytes:
    """The next frame's bytes as they came (prefix, header, body, MAC), unchecked."""

    def exact(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed")
            buf += chunk
        return buf

    prefix = exact(PREFIX.size)
    _, head_n, body_n = PREFIX.unpack(prefix)
    return prefix + exact(head_n + body_n + MAC_BYTES)


class _Listener:
    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = self.sock.getsockname()[:2]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        for n in itertools.count():
            try:
                edge, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(n, edge), daemon=True).start()

    def _serve(self, n: int, edge: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.sock.close()


class Relay(_Listener):
    """Between edges and the cloud at ``cloud``: ``up[n]``, ``down[n]`` are connection
    n's frames as the edge and the cloud sent them. ``reflect(n, i, frame)``: True sends
    the edge's i-th frame back to the edge instead of on to the cloud."""

    def __init__(self, cloud: tuple[str, int], reflect=lambda n, i, frame: False):
        self.cloud, self.reflect = cloud, reflect
        self.up: dict[int, list[bytes]] = {}
        self.down: dict[int, list[bytes]] = {}
        super().__init__()

    def _serve(self, n: int, edge: socket.socket) -> None:
        cloud = socket.create_connection(self.cloud)
        self.up[n], self.down[n] = [], []
        lock = threading.Lock()

        def to_edge(frame: bytes) -> None:
            with lock:
                edge.sendall(frame)

        def pump_down() -> None:
            try:
                while True:
                    frame = raw_frame(cloud)
                    self.down[n].append(frame)
                    to_edge(frame)
            except (OSError, EOFError):
                edge.close()

        threading.Thread(target=pump_down, daemon=True).start()
        try:
            for i in itertools.count():
                frame = raw_frame(edge)
                self.up[n].append(frame)
                if self.reflect(n, i, frame):
                    to_edge(frame)
                else:
                    cloud.sendall(frame)
        except (OSError, EOFError):
            cloud.close()


class Replayer(_Listener):
    """The server as a recording: ``session`` (the frames one cloud sent on one
    connection, as recorded) played to every edge that connects, its first frame at
    once and then one for each frame the edge sends; ``answers(i)``, if given, names
    which recorded frame answers the edge's i-th frame. Done, it closes the connection."""

    def __init__(self, session: list[bytes], answers=None):
        self.session, self.answers = session, answers or (lambda i: i + 1)
        self.heard: list[bytes] = []  # every frame the edges sent
        super().__init__()

    def _serve(self, n: int, edge: socket.socket) -> None:
        with edge:
            try:
                edge.sendall(self.session[0])
                for i in itertools.count():
                    self.heard.append(raw_frame(edge))
                    k = self.answers(i)
                    if k >= len(self.session):
                        return
                    edge.sendall(self.session[k])
            except (OSError, EOFError):
                return
