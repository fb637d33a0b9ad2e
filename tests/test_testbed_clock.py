"""The edge's clock sync and its wait for a remote cloud, against a peer whose timing is known.

The peer is a stand-in for ``adaptsim serve``: a real TCP listener on loopback that
speaks the wire protocol's hello and clock frames (real frames, through
:func:`adaptsim.testbed.protocol.encode`), with its monotonic clock shifted by
``SHIFT_S`` and its answers held back by chosen delays. The real server answers a
clock frame at once, so only a stand-in can make one round trip short and the others
long and check that the sync keeps the short one; the real server is held to the same
sync in ``test_testbed_twohost.py`` (root, slow). Loopback, no root, no TensorFlow.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from pathlib import Path

import pytest

from adaptsim.errors import UserError
from adaptsim.testbed.client import CloudClient
from adaptsim.testbed.protocol import VERSION, FrameError, Session, encode, read_frame
from adaptsim.testbed.run import check_cloud

SHIFT_S = 4321.25  # the peer's clock minus ours
KEY = b"clock-test-secret-" + b"k" * 14


def _now_peer() -> float:
    return time.monotonic() + SHIFT_S


class _Peer:
    """A listener on 127.0.0.1 that greets each connection and answers clock frames.

    ``delays_s[i]``: how long the i-th clock answer is held after it is stamped (the
    answer then says a time that is ``delay`` older than its arrival: the midpoint of
    that round trip is off by about ``delay / 2``). ``hello``: extra hello fields;
    ``first``: a frame sent ahead of every clock answer (a late result of an earlier
    run); ``clock``: False answers a clock frame with an error (an older server);
    ``binds``: False, an older server that does not bind its replies to the edge's nonce
    (its hello does not offer it); else the edge's hello is answered with a second hello,
    and every reply is bound to both nonces (the real server's :meth:`Session.bound`).
    """

    def __init__(self, delays_s=(), key=None, hello=None, first=None, clock=True, port=0,
                 hello_key=None, binds=True):  # fmt: skip
        self.delays_s, self.key, self.first, self.clock = list(delays_s), key, first, clock
        self.binds = binds
        self.hello = {"kind": "hello", "version": VERSION, "nonce": "n", "models": ["lenet"],
                      **(hello or {})}  # fmt: skip
        self.hello_key = key if hello_key is None else hello_key
        self.clock_frames = 0
        self.closed = threading.Event()  # the client closed its connection
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", port))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _hello(self) -> dict:
        hello = dict(self.hello)
        if "clock_s" not in hello and hello.get("stamp", True):
            hello["clock_s"] = _now_peer()
        hello.pop("stamp", None)
        return hello

    def _talk(self, conn: socket.socket) -> None:
        session = Session(self.key, "n")  # the real server's check of each frame
        replies = itertools.count()

        def send(header: dict, key=self.key) -> None:
            conn.sendall(encode(session.bound(header, next(replies)), b"", key))

        with conn:
            send({**self._hello(), **({"bind_edge_nonce": True} if self.binds else {})},
                 self.hello_key)  # fmt: skip
            try:
                while True:
                    header, _ = read_frame(conn, 1 << 20, self.key)
                    session.check(header)
                    if header.get("kind") == "hello" and self.binds:
                        session.open(header)
                        send(self._hello(), self.hello_key)
                        continue
                    if header.get("kind") != "clock":
                        continue
                    if not self.clock:
                        send({"kind": "error", "error": "unknown kind"})
                        continue
                    stamp = _now_peer()
                    delay = self.delays_s[self.clock_frames % len(self.delays_s)]
                    self.clock_frames += 1
                    if self.first is not None:
                        send(self.first)
                    time.sleep(delay)
                    send({"kind": "clock", "clock_s": stamp})
            except (EOFError, OSError, FrameError):
                self.closed.set()

    def close(self) -> None:
        self.srv.close()


@pytest.fixture
def peers():
    made: list[_Peer] = []

    def make(*args, **kwargs) -> _Peer:
        made.append(_Peer(*args, **kwargs))
        return made[-1]

    yield make
    for p in made:
        p.close()


@pytest.mark.parametrize("binds", [True, False])
def test_the_hellos_offset_is_within_half_the_connects_round_trip(peers, binds):
    """The peer stamps its hello between our connect and our reading it, so the
    midpoint's error is at most half that interval, which is the bound reported.
    ``binds``: the second hello, answering the edge's (a peer that binds its replies
    to the edge's nonce), or an older server's only hello (served: no secret)."""
    peer = peers(hello={"one_way_latency_s": 0.003}, binds=binds)
    t0 = time.monotonic()
    client = CloudClient("127.0.0.1", peer.port, None)
    t1 = time.monotonic()
    try:
        assert client.clock_uncertainty_s <= (t1 - t0) / 2
        assert abs(client.clock_offset_s - SHIFT_S) <= client.clock_uncertainty_s + 1e-6
        assert client.hello_offset_s == client.clock_offset_s
        assert client.server_latency_s == 0.003 and client.models == ["lenet"]
    finally:
        client.close()
    unstamped = peers(hello={"stamp": False})  # a hello without a clock: no shift assumed
    client = CloudClient("127.0.0.1", unstamped.port, None)
    client.close()
    assert client.clock_offset_s == 0.0 and client.server_latency_s == 0.0


@pytest.mark.parametrize("key", [None, KEY])
def test_sync_keeps_the_shortest_of_eight_round_trips(peers, key):
    """Seven answers held 0.12 s (their midpoints about 60 ms off), the fourth at once:
    the offset is the fourth's, within its own half round trip; the first, the last
    or the mean of the eight would be tens of milliseconds off. Late results of an
    earlier run arriving before each answer are read past, not taken for the answer."""
    slow, fast = 0.12, 0.0
    first = {"kind": "result", "id": 7, "point": 3}
    peer = peers([slow, slow, slow, fast, slow, slow, slow, slow], key=key, first=first)
    client = CloudClient("127.0.0.1", peer.port, key)
    try:
        client.sync_clock()
        assert peer.clock_frames == 8  # the documented count, each answered once
        assert client.clock_uncertainty_s < 0.03  # half the short round trip, not a long one
        assert abs(client.clock_offset_s - SHIFT_S) <= client.clock_uncertainty_s + 1e-6
        assert abs(client.clock_offset_s - SHIFT_S) < 0.03
        client.sync_clock(probes=2)  # both answers held: the better of the two, still bounded
        assert client.clock_uncertainty_s >= slow / 2
        assert abs(client.clock_offset_s - SHIFT_S) <= client.clock_uncertainty_s + 1e-6
    finally:
        client.close()


def test_an_older_server_without_clock_frames_keeps_the_hellos_estimate(peers):
    peer = peers(clock=False, binds=False)
    client = CloudClient("127.0.0.1", peer.port, None)
    try:
        hello = (client.clock_offset_s, client.clock_uncertainty_s)
        t0 = time.monotonic()
        client.sync_clock()
        assert (client.clock_offset_s, client.clock_uncertainty_s) == hello
        assert time.monotonic() - t0 < 5.0  # one refused probe ends it: no wait for more
    finally:
        client.close()


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "secret"
    path.write_bytes(KEY + b"\n")
    return path


def test_check_cloud_waits_for_a_late_server_and_says_so_once(peers, secret):
    """Nobody listens for 1.2 s (a server still compiling its tails), then one does:
    the check connects, returns the address, said it was waiting once, and closes
    its connection (the real run connects again)."""
    port = _free_port()
    said: list[str] = []
    started: list[_Peer] = []
    timer = threading.Timer(1.2, lambda: started.append(peers(key=KEY, port=port)))
    timer.start()
    t0 = time.monotonic()
    try:
        got = check_cloud(f"127.0.0.1:{port}", "lenet", secret, wait_s=30.0, progress=said.append)
    finally:
        timer.join()
    assert got == ("127.0.0.1", port)
    took = time.monotonic() - t0  # tries at 0, 0.5 and 1.5 s: pauses doubling from 0.5 s
    assert 1.2 <= took < 1.85, took
    assert len(said) == 1 and "waiting for the cloud at 127.0.0.1" in said[0], said
    assert "(Connection refused)" in said[0]
    assert "--cloud-wait-s" in said[0] and "30 s" in said[0]
    assert started[0].closed.wait(5.0)


def test_check_cloud_gives_up_after_its_wait_with_one_line(secret):
    """Nobody ever listens: refused after the wait asked for (1 s), not before, and
    not a whole back-off step later; the line says how to wait longer."""
    port = _free_port()
    said: list[str] = []
    t0 = time.monotonic()
    with pytest.raises(UserError) as err:
        check_cloud(f"127.0.0.1:{port}", "lenet", secret, wait_s=1.0, progress=said.append)
    took = time.monotonic() - t0
    assert 1.0 <= took < 1.4, took
    line = str(err.value)
    assert "\n" not in line
    assert f"--cloud 127.0.0.1:{port}: cannot connect (Connection refused) for 1 s" in line
    assert "for 1 s" in line and "--cloud-wait-s waits longer" in line
    assert f"serve --role cloud --listen 127.0.0.1:{port}" in line
    assert len(said) == 1


def test_check_cloud_names_a_wrong_secret_and_a_model_not_served(peers, secret):
    other = peers(key=KEY, hello_key=b"another-secret-" + b"x" * 17)
    with pytest.raises(UserError, match=r"hello did not authenticate .*same \$ADAPTSIM_SECRET"):
        check_cloud(f"127.0.0.1:{other.port}", "lenet", secret, wait_s=5.0, progress=print)
    peer = peers(key=KEY, hello={"models": ["alexnet", "lenet"]})
    with pytest.raises(UserError) as err:
        check_cloud(f"127.0.0.1:{peer.port}", "vgg16", secret, wait_s=5.0, progress=print)
    assert "serves alexnet, lenet, not vgg16; start it with --models vgg16" in str(err.value)
    assert check_cloud(f"127.0.0.1:{peer.port}", "lenet", secret, 5.0, print)[1] == peer.port


def test_check_cloud_refuses_an_older_server_with_a_secret_in_one_line(peers, secret):
    """A server whose hello does not offer to bind its replies to the edge's nonce: with
    a secret, refused (a recording of such a session would pass for the server), one
    line naming the address and what to do; the same server without a secret is served
    (nothing is authenticated then; the test above)."""
    old = peers(key=KEY, binds=False)
    with pytest.raises(UserError) as err:
        check_cloud(f"127.0.0.1:{old.port}", "lenet", secret, wait_s=5.0, progress=print)
    line = str(err.value)
    assert "\n" not in line and line.startswith(f"--cloud 127.0.0.1:{old.port}: ")
    assert "does not bind its replies to this edge's nonce" in line
    assert "run this adaptsim on both hosts" in line
    assert old.closed.wait(5.0)  # the edge hung up at once


def test_a_peer_that_accepts_but_never_greets_times_out_as_asked():
    """A half-started server (it accepts, but its hello never comes): the connection
    gives up after the timeout it was given, which check_cloud counts as not up yet,
    instead of waiting forever for the hello."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)  # the kernel accepts; nobody ever writes
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            CloudClient("127.0.0.1", srv.getsockname()[1], None, timeout_s=0.3).close()
            outcome.append(None)
        except BaseException as exc:  # the outcome is asserted below
            outcome.append(exc)

    t = threading.Thread(target=connect, daemon=True)
    try:
        t.start()
        t.join(5.0)
        assert not t.is_alive(), "still waiting for a hello after 5 s"
        assert isinstance(outcome[0], TimeoutError), outcome
    finally:
        srv.close()


def test_check_cloud_refuses_an_address_without_a_port_naming_its_flag(secret):
    with pytest.raises(UserError, match=r"^--cloud 'cloud\.example': give HOST:PORT"):
        check_cloud("cloud.example", "lenet", secret, wait_s=1.0, progress=print)
