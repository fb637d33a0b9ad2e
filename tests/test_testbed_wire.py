"""The wire protocol's guarantees, held against the real cloud server over real sockets.

What a validation run relies on: a frame without the shared secret's HMAC, or altered
on the way, is refused; a frame replayed (on its own connection or another) is refused;
the size limits hold to the byte, before anything is allocated; a bad frame gets an
error frame naming its request, and the server keeps serving (the same connection where
the stream can still be trusted, the next client always); results carry the server's
stamps in order. The server is the real :class:`~adaptsim.testbed.server.CloudServer`
on 127.0.0.1; its "model" is a small dense layer in numpy (the tail a server runs is its
input, and these tests are about the wire, so no TensorFlow: each runs in well under a
second). The LeNet tails' own tests are in test_testbed_server.py.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
import types

import numpy as np
import pytest

from adaptsim.errors import UserError
from adaptsim.testbed.client import CloudClient
from adaptsim.testbed.host_speed import MAX_PROBE_FRAMES
from adaptsim.testbed.protocol import (
    MAC_BYTES,
    MAX_HEADER_BYTES,
    PREFIX,
    SECRET_ENV,
    VERSION,
    FrameError,
    encode,
    load_secret,
    parse_address,
    read_frame,
)
from adaptsim.testbed.server import CloudServer, Tail
from wire_relays import Relay, Replayer, raw_frame

KEY = b"wire-secret-" + b"k" * 20
_W = np.random.default_rng(3).standard_normal((8, 4)).astype(np.float32)


def _dense(x: np.ndarray) -> np.ndarray:
    return np.tanh(x.reshape(1, 8) @ _W)


# point 0 takes the raw input (8 floats), point 1 is all-edge: nothing to run
TAILS = {"dense": {0: Tail((1, 8), _dense), 1: Tail((1, 4), None)}}
X = np.arange(8, dtype=np.float32).reshape(1, 8) / 8
BODY_LIMIT = 8 * 4  # the largest tail's input: the server's body limit


@pytest.fixture()
def server():
    srv = CloudServer(TAILS, key=KEY, one_way_latency_s=0.02).start()
    yield srv
    srv.close()


def _raw(server, key=KEY) -> tuple[socket.socket, dict]:
    sock = socket.create_connection(server.address, timeout=10)
    hello, _ = read_frame(sock, 0, key)
    return sock, hello


def _infer(nonce, seq, rid=1, body=X.tobytes(), **over) -> tuple[dict, bytes]:
    header = {"kind": "infer", "id": rid, "model": "dense", "point": 0, "dtype": "float32",
              "shape": [1, 8], "nonce": nonce, "seq": seq, **over}  # fmt: skip
    return header, body


def _ask(sock, header, body=b"", key=KEY) -> dict:
    sock.sendall(encode(header, body, key))
    return read_frame(sock, 1 << 20, key)[0]


def _plain(reply: dict) -> dict:
    """A reply without its session's nonce and its reply seq (checked on their own)."""
    assert isinstance(reply.pop("nonce"), str) and isinstance(reply.pop("rseq"), int)
    return reply


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _served_fresh(server) -> bool:
    """A new client gets the tail's real output: the server still serves."""
    client = CloudClient(*server.address, KEY)
    try:
        client.send(9, "dense", 0, X)
        header, body = client.receive()
        return header["kind"] == "result" and np.array_equal(
            np.frombuffer(body, np.float32).reshape(header["shape"]), _dense(X)
        )
    finally:
        client.close()


def test_a_forged_or_altered_frame_is_refused_and_its_connection_closed(server):
    refused = 0
    for how in ("another key", "body byte", "header byte", "mac byte", "no mac"):
        sock, hello = _raw(server)
        frame = bytearray(encode(*_infer(hello["nonce"], 1), key=KEY))
        if how == "another key":
            frame = bytearray(encode(*_infer(hello["nonce"], 1), key=b"x" * 32))
        elif how == "body byte":
            frame[-MAC_BYTES - 1] ^= 1
        elif how == "header byte":
            frame[PREFIX.size + 2] ^= 1
        elif how == "mac byte":
            frame[-1] ^= 0x80
        else:  # the frame as an unauthenticated peer sends it, then anything
            frame = bytearray(encode(*_infer(hello["nonce"], 1)) + b"\0" * MAC_BYTES)
        sock.sendall(frame)
        reply, _ = read_frame(sock, 1 << 20, KEY)
        assert reply["kind"] == "error", how
        assert reply["error"] == "refused: unauthenticated frame (bad or missing HMAC)", how
        assert _closed(sock), how  # the stream cannot be trusted past it
        sock.close()
        refused += 1
    assert server.rejected == refused and server.served == 0
    assert _served_fresh(server)


def test_a_replayed_or_stale_frame_is_refused_and_a_fresh_one_served(server):
    sock, hello = _raw(server)
    nonce = hello["nonce"]
    first = encode(*_infer(nonce, 1), key=KEY)
    sock.sendall(first)
    assert read_frame(sock, 1 << 20, KEY)[0]["kind"] == "result"
    # seq need only grow: 3 after 1 is new
    assert _ask(sock, *_infer(nonce, 3))["kind"] == "result"
    # the same seq again: refused, and the connection closed
    reply = _ask(sock, *_infer(nonce, 3))
    assert reply["kind"] == "error"
    assert reply["error"] == "refused: seq 3 is not new on this connection (replayed?)"
    assert _closed(sock)
    # the first frame replayed on another connection: another session's nonce
    other, _ = _raw(server)
    other.sendall(first)
    reply = read_frame(other, 1 << 20, KEY)[0]
    assert reply["error"] == "refused: the frame belongs to another session (replayed?)"
    assert _closed(other)
    # seqs that are not integers, an older seq, and a frame without a nonce
    for seq, nonce_of in (("4", True), (2.0, True), (None, True), (1, False)):
        s, h = _raw(server)
        assert _ask(s, *_infer(h["nonce"], 2))["kind"] == "result"
        header, body = _infer(h["nonce"] if nonce_of else None, seq)
        reply = _ask(s, header, body)
        assert reply["kind"] == "error" and "replayed?" in reply["error"], (seq, reply)
        assert _closed(s)
    # seq 0 is new on a fresh connection (greater than none before it)
    s, h = _raw(server)
    assert _ask(s, *_infer(h["nonce"], 0))["kind"] == "result"
    assert server.rejected == 6  # counted before the error frame is sent
    assert _served_fresh(server)


def _padded(header: dict, size: int) -> bytes:
    """``header`` as the compact JSON ``encode`` writes, padded to exactly ``size`` bytes."""
    bare = json.dumps({**header, "pad": ""}, separators=(",", ":")).encode()
    return json.dumps({**header, "pad": "x" * (size - len(bare))}, separators=(",", ":")).encode()


def _frame(head: bytes, body: bytes, key=KEY) -> bytes:
    import hashlib
    import hmac

    prefix = PREFIX.pack(b"ASF1", len(head), len(body))
    return prefix + head + body + hmac.new(key, prefix + head + body, hashlib.sha256).digest()


def test_sizes_at_the_limit_are_served_and_one_byte_over_gets_an_error_frame(server):
    assert server.max_body_bytes == BODY_LIMIT
    # a header of exactly the limit is read and served
    sock, hello = _raw(server)
    head = _padded(_infer(hello["nonce"], 1)[0], MAX_HEADER_BYTES)
    assert len(head) == MAX_HEADER_BYTES
    sock.sendall(_frame(head, X.tobytes()))
    assert read_frame(sock, 1 << 20, KEY)[0]["kind"] == "result"
    # one byte more: an error frame from the prefix alone, and the connection closed
    sock.sendall(PREFIX.pack(b"ASF1", MAX_HEADER_BYTES + 1, 0))
    reply = read_frame(sock, 1 << 20, KEY)[0]
    assert _plain(reply) == {"kind": "error", "id": None,
                     "error": f"header of {MAX_HEADER_BYTES + 1} bytes is over the "
                              f"{MAX_HEADER_BYTES} limit"}  # fmt: skip
    assert _closed(sock)
    # the body: exactly the largest tail's input is served, one byte more refused
    sock, hello = _raw(server)
    assert _ask(sock, *_infer(hello["nonce"], 1))["kind"] == "result"
    sock.sendall(PREFIX.pack(b"ASF1", 2, BODY_LIMIT + 1))
    reply = read_frame(sock, 1 << 20, KEY)[0]
    assert reply["error"] == f"body of {BODY_LIMIT + 1} bytes is over the {BODY_LIMIT} limit"
    assert _closed(sock)
    # not a frame at all
    sock, _ = _raw(server)
    sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert read_frame(sock, 1 << 20, KEY)[0]["error"] == "not an adaptsim frame (magic b'GET ')"
    assert _closed(sock)
    assert server.rejected == 3
    assert _served_fresh(server)


def test_a_malformed_header_gets_an_error_frame_and_the_connection_serves_on(server):
    """Authenticated (a peer with the secret), so each reaches the JSON parser; none of
    them loses the stream, so the same connection is served next."""
    sock, hello = _raw(server)
    bad = [b"{not json", b"[1, 2]", b"\xff\xfe", b"[" * 5000, b'{"a":' + b"9" * 5000 + b"}"]
    for head in bad:
        sock.sendall(_frame(head, b""))
        reply = read_frame(sock, 1 << 20, KEY)[0]
        assert reply["kind"] == "error" and reply["error"].startswith("malformed header"), head[:9]
    assert _ask(sock, *_infer(hello["nonce"], 1))["kind"] == "result"
    assert server.rejected == len(bad)


def test_an_error_frame_names_the_request_it_refuses_and_the_connection_serves_on(server):
    sock, hello = _raw(server)
    nonce = hello["nonce"]
    cases = [
        ({"model": "nosuch"}, "unknown model 'nosuch'; serving ['dense']"),
        ({"point": 7}, "dense has no point 7"),
        ({"point": "0"}, "dense has no point '0'"),
        ({"dtype": "float64"}, "dtype 'float64': send float32"),
        ({"shape": [8]}, "shape [8] is wrong for dense point 0: want [1, 8]"),
        ({"shape": "1x8"}, "shape '1x8' is wrong for dense point 0: want [1, 8]"),
        ({"kind": "result"}, "unexpected frame kind 'result'"),
    ]
    for seq, (over, message) in enumerate(cases, start=1):
        reply = _ask(sock, *_infer(nonce, seq, rid=100 + seq, **over))
        assert _plain(reply) == {"kind": "error", "id": 100 + seq, "error": message}
    short = _ask(sock, *_infer(nonce, 50, rid=77, body=X.tobytes()[:-4]))
    assert _plain(short) == {"kind": "error", "id": 77,
                     "error": "body of 28 bytes does not hold shape [1, 8] float32"}  # fmt: skip
    reply = _ask(sock, *_infer(nonce, 51, rid=78))
    assert reply["kind"] == "result" and reply["id"] == 78
    assert server.rejected == len(cases) + 1


def test_results_carry_the_tails_output_and_the_servers_stamps_in_order(server):
    client = CloudClient(*server.address, KEY)
    assert client.server_latency_s == 0.02 and client.models == ["dense"]
    client.send(1, "dense", 0, X)
    client.send(2, "dense", 0, 2 * X)
    client.send(3, "dense", 1, np.ones((1, 4), np.float32))  # all-edge: nothing to run
    got = {}
    for _ in range(3):
        header, body = client.receive()
        got[header["id"]] = (header, body)
    (one, y1), (two, y2), (three, y3) = got[1], got[2], got[3]
    assert np.array_equal(np.frombuffer(y1, np.float32).reshape(one["shape"]), _dense(X))
    assert np.array_equal(np.frombuffer(y2, np.float32).reshape(two["shape"]), _dense(2 * X))
    assert one["dtype"] == "float32" and one["shape"] == [1, 4]
    assert three["shape"] == [] and y3 == b"" and three["start_s"] == three["end_s"]
    # the frame before on the connection: none for the first, then each one's receipt
    assert one["prev_recv_s"] is None
    assert two["prev_recv_s"] == one["recv_s"] and three["prev_recv_s"] == two["recv_s"]
    for h in (one, two, three):
        # held the one-way latency after it was all in, before its tail ran
        assert h["start_s"] >= h["recv_s"] + 0.02 and h["end_s"] >= h["start_s"]
    client.close()


def test_the_hello_says_whether_frames_need_the_secret(server):
    _, hello = _raw(server)
    assert hello["auth"] is True and hello["version"] == VERSION
    assert hello["bind_edge_nonce"] is True
    assert hello["models"] == ["dense"] and hello["one_way_latency_s"] == 0.02


def test_an_unauthenticated_server_takes_frames_without_a_mac_or_a_session():
    srv = CloudServer(TAILS).start()
    try:
        sock, hello = _raw(srv, key=None)
        assert hello["kind"] == "hello" and hello["version"] == VERSION
        assert hello["auth"] is False and len(hello["nonce"]) == 32
        header, body = _infer(None, None)
        reply = _ask(sock, header, body, key=None)
        assert reply["kind"] == "result" and reply["id"] == 1
    finally:
        srv.close()


def test_probes_run_the_tail_as_asked_and_refuse_what_is_out_of_range(server):
    client = CloudClient(*server.address, KEY)
    for frames in (1, MAX_PROBE_FRAMES):
        seconds = client.probe("dense", 0, X, frames)
        assert len(seconds) == frames and all(s >= 0 for s in seconds)
    for point, frames in ((0, 0), (0, MAX_PROBE_FRAMES + 1), (1, 1)):
        x = X if point == 0 else np.ones((1, 4), np.float32)
        assert client.probe("dense", point, x, frames) is None, (point, frames)
    sock, hello = _raw(server)
    for seq, frames in enumerate((0, MAX_PROBE_FRAMES + 1, True, 2.0, "3", None), start=1):
        reply = _ask(sock, *_infer(hello["nonce"], seq, rid=seq, kind="probe", frames=frames))
        message = f"probe frames {frames!r}: give 1 to {MAX_PROBE_FRAMES}"
        assert _plain(reply) == {"kind": "error", "id": seq, "error": message}
    edge_only = np.ones((1, 4), np.float32).tobytes()
    reply = _ask(sock, *_infer(hello["nonce"], 10, rid=6, kind="probe", point=1, frames=1,
                               shape=[1, 4], body=edge_only))  # fmt: skip
    assert _plain(reply) == {"kind": "error", "id": 6, "error": "point 1 has no tail to probe"}
    reply = _ask(sock, *_infer(hello["nonce"], 11, rid=7, kind="probe", frames=3))
    assert reply["kind"] == "probe" and reply["id"] == 7 and len(reply["cloud_s"]) == 3
    assert server.served == 0  # probes are not frames served
    client.close()


def test_the_clock_sync_against_the_real_server_uses_its_clock_frames(server):
    """The real server answers clock frames (a refused one would leave the hello's
    estimate in place, exactly); same host, same monotonic clock: the true offset is 0,
    so the estimate lies within the uncertainty it reports; and the connection serves on."""
    client = CloudClient(*server.address, KEY)
    client.sync_clock()
    assert client.clock_offset_s != client.hello_offset_s  # from the clock frames
    assert abs(client.clock_offset_s) <= client.clock_uncertainty_s
    client.send(4, "dense", 0, X)
    header, _ = client.receive()
    assert header["kind"] == "result" and header["id"] == 4
    client.close()


def test_a_refused_frame_is_one_log_line_naming_the_peer_and_why(server, caplog):
    sock, hello = _raw(server)
    port = sock.getsockname()[1]
    with caplog.at_level("WARNING", logger="adaptsim.cloud"):
        assert _ask(sock, *_infer(hello["nonce"], 1, model="nosuch"))["kind"] == "error"
    lines = [r.getMessage() for r in caplog.records if r.name == "adaptsim.cloud"]
    assert lines == [f"cloud: 127.0.0.1:{port}: unknown model 'nosuch'; serving ['dense']"]


def test_a_result_for_an_edge_gone_away_is_one_log_line_and_not_served(caplog):
    """The edge closes its connection while its frame is held for the one-way latency
    (1 s): the server has closed that connection by then, so the result cannot go out;
    it says so in one line and counts nothing served."""
    import time

    srv = CloudServer(TAILS, key=KEY, one_way_latency_s=1.0).start()
    try:
        with caplog.at_level("WARNING", logger="adaptsim.cloud"):
            client = CloudClient(*srv.address, KEY)
            client.send(5, "dense", 0, X)
            client.close()
            want = "cloud: request 5: the edge went away before its result"
            end = time.monotonic() + 10
            while time.monotonic() < end and not any(
                r.getMessage() == want for r in caplog.records
            ):
                time.sleep(0.05)
        assert [r.getMessage() for r in caplog.records if r.name == "adaptsim.cloud"] == [want]
        assert srv.served == 0
    finally:
        srv.close()


def test_the_servers_threads_never_keep_a_process_alive(server):
    """A server left open (an edge that fails before closing it) must not hold its
    process at exit: every thread it starts is a daemon."""
    mine = [t for t in threading.enumerate() if t.name in ("accept", "latency", "worker0")]
    assert {t.name for t in mine} >= {"accept", "latency", "worker0"}
    assert all(t.daemon for t in mine)


def test_a_server_on_an_ipv6_address_says_host_and_port_and_serves():
    try:
        srv = CloudServer(TAILS, "::1", key=KEY).start()
    except OSError as exc:  # a host without IPv6 loopback
        pytest.skip(f"no IPv6 loopback here ({exc})")
    try:
        host, port = srv.address
        assert host == "::1" and port > 0
        client = CloudClient(host, port, KEY)
        client.send(2, "dense", 0, X)
        assert client.receive()[0]["kind"] == "result"
        client.close()
    finally:
        srv.close()


def test_the_client_refuses_a_peer_that_is_not_a_version_1_cloud():
    for hello in ({"kind": "hello", "version": VERSION + 1, "nonce": "n"},
                  {"kind": "error", "error": "busy"}):  # fmt: skip
        srv = socket.create_server(("127.0.0.1", 0))

        def greet(srv=srv, hello=hello):
            conn, _ = srv.accept()
            conn.sendall(encode(hello, b"", KEY))
            conn.recv(1)
            conn.close()

        threading.Thread(target=greet, daemon=True).start()
        with pytest.raises(FrameError, match=f"not a version {VERSION} hello"):
            CloudClient(*srv.getsockname()[:2], KEY)
        srv.close()


def test_a_large_frame_arriving_in_pieces_is_read_whole_and_a_cut_one_is_not():
    a, b = socket.socketpair()
    body = np.random.default_rng(1).bytes(3 << 20)  # more than a socket buffer holds
    frame = encode({"kind": "x", "n": 1}, body, KEY)
    writer = threading.Thread(target=a.sendall, args=(frame,), daemon=True)
    writer.start()
    assert read_frame(b, len(body), KEY) == ({"kind": "x", "n": 1}, body)
    writer.join()
    cut = encode({"kind": "x"}, b"abcd", KEY)
    a.sendall(cut[: len(cut) - 8])  # the peer goes away mid-frame
    a.close()
    with pytest.raises(EOFError):
        read_frame(b, len(body), KEY)
    b.close()


def test_the_secret_is_a_short_line_of_at_least_16_bytes(tmp_path, monkeypatch):
    f = tmp_path / "secret"
    f.write_bytes(b"  " + b"s" * 16 + b"\n")
    assert load_secret(f) == b"s" * 16  # the line, without its blanks
    f.write_bytes(b"s" * 15 + b"\n")
    with pytest.raises(UserError, match=re.escape(f"--secret-file {f}: give a shared secret")):
        load_secret(f)
    f.write_bytes(b"s" * 4096)
    assert load_secret(f) == b"s" * 4096
    f.write_bytes(b"s" * 4097)
    with pytest.raises(UserError, match="holds more than 4096 bytes"):
        load_secret(f)
    with pytest.raises(UserError, match="cannot read it"):
        load_secret(tmp_path / "none")
    monkeypatch.setenv(SECRET_ENV, "e" * 16)
    assert load_secret() == b"e" * 16
    monkeypatch.setenv(SECRET_ENV, "e" * 15)
    with pytest.raises(UserError, match=r"\$ADAPTSIM_SECRET: give a shared secret"):
        load_secret()


def test_an_address_is_host_and_a_port_in_range():
    assert parse_address("10.0.0.2:50100", "--cloud") == ("10.0.0.2", 50100)
    assert parse_address("[::1]:1", "--cloud") == ("::1", 1)
    assert parse_address("h:65535", "--cloud") == ("h", 65535)
    assert parse_address("h:0", "--listen", port_zero=True) == ("h", 0)
    for bad in ("h:0", "h:65536", "h:", ":80", "h", "h:-1", "h:8x"):
        message = f"--cloud '{bad}': give HOST:PORT with a port 1-65535"
        with pytest.raises(UserError, match=re.escape(message)):
            parse_address(bad, "--cloud")
    with pytest.raises(UserError, match="a port 0-65535"):
        parse_address("h:65536", "--listen", port_zero=True)


def _relay(server, tamper) -> tuple[socket.socket, list]:
    """A man in the middle without the secret, on 127.0.0.1: it passes the edge's bytes
    on as they are and the server's frames through ``tamper(n, frame, captured)`` (n:
    the connection's number; ``captured``: every frame it has seen, to replay)."""
    lsock = socket.create_server(("127.0.0.1", 0))
    captured: list[bytes] = []

    def pipe(a, b):
        try:
            while chunk := a.recv(1 << 16):
                b.sendall(chunk)
        except OSError:
            pass

    def serve():
        for n in itertools.count():
            try:
                edge, _ = lsock.accept()
            except OSError:
                return
            cloud = socket.create_connection(server.address)
            threading.Thread(target=pipe, args=(edge, cloud), daemon=True).start()

            def back(edge=edge, cloud=cloud, n=n):
                try:
                    while True:
                        header, body = read_frame(cloud, 1 << 20, KEY)
                        frame = encode(header, body, KEY)  # the same bytes it read
                        for out in tamper(n, frame, header, captured):
                            edge.sendall(out)
                        captured.append(frame)
                except (OSError, EOFError, FrameError):
                    edge.close()

            threading.Thread(target=back, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return lsock, captured


@pytest.mark.parametrize("edge_nonce_repeats", [False, True])
def test_a_reply_replayed_to_the_edge_is_refused(server, monkeypatch, edge_nonce_repeats):
    """The server's replies are bound to the session too: a result sent twice, or one
    of another connection slipped in, is refused by the edge's client (it would
    otherwise be taken for a frame's result: a record written twice, or with another
    run's stamps). ``edge_nonce_repeats``: every edge says the same nonce (randomness
    that repeats, as a cloned snapshot's might): the server's nonce still tells the
    sessions apart."""
    if edge_nonce_repeats:
        same = types.SimpleNamespace(token_hex=lambda n: "c" * 2 * n)  # the edge's only
        monkeypatch.setattr("adaptsim.testbed.client.secrets", same)

    def twice(n, frame, header, captured):
        return [frame, frame] if header.get("kind") == "result" else [frame]

    lsock, _ = _relay(server, twice)
    client = CloudClient(*lsock.getsockname()[:2], KEY)
    client.send(1, "dense", 0, X)
    assert client.receive()[0]["kind"] == "result"
    with pytest.raises(FrameError, match=r"replayed\?"):
        client.receive()
    lsock.close()

    def foreign(n, frame, header, captured):
        # on the second connection, the first connection's result comes before the hello's
        # successor: same secret, another session
        old = [f for f in captured if b'"kind":"result"' in f]
        return [*old[:1], frame] if n == 1 and header.get("kind") == "result" else [frame]

    lsock, _ = _relay(server, foreign)
    first = CloudClient(*lsock.getsockname()[:2], KEY)
    first.send(1, "dense", 0, X)
    assert first.receive()[0]["kind"] == "result"
    second = CloudClient(*lsock.getsockname()[:2], KEY)
    assert (first.edge_nonce == second.edge_nonce) is edge_nonce_repeats
    second.send(1, "dense", 0, 2 * X)
    with pytest.raises(FrameError, match=r"replayed\?"):
        second.receive()
    lsock.close()


def _head(frame: bytes) -> dict:
    """A recorded frame's header, read without its MAC (as a tap reads it)."""
    _, head_n, _ = PREFIX.unpack(frame[: PREFIX.size])
    return json.loads(frame[PREFIX.size : PREFIX.size + head_n])


def _recorded_session(server) -> list[bytes]:
    """What a tap between a real edge's client and the real server keeps of one
    session: every frame the server sent (the hellos, a result, a clock answer, a
    probe answer, an error frame), the bytes exactly."""
    tap = Relay(server.address)
    client = CloudClient(*tap.address, KEY)
    client.send(1, "dense", 0, X)
    assert client.receive()[0]["kind"] == "result"
    client.sync_clock(probes=1)
    assert client.probe("dense", 0, X, 1) is not None
    client.send(2, "nosuch", 0, X)
    assert client.receive()[0]["kind"] == "error"
    client.close()
    tap.close()
    return tap.down[0]


REPLAYED = r"refused: a reply not bound to this edge's nonce \(a recorded session replayed\?\)"


def test_a_recorded_session_replayed_to_a_later_edge_is_refused(server):
    """A man in the middle records a whole session, then plays the server's part to a
    later edge: the recording's first hello, then the next recorded frame for each
    frame the edge sends. The edge's own fresh nonce is in none of them: refused at the
    handshake, one line, fatal; whichever recorded reply answers the edge's hello."""
    session = _recorded_session(server)
    replayer = Replayer(session)
    with pytest.raises(FrameError, match=REPLAYED) as err:
        client = CloudClient(*replayer.address, KEY)
        client.send(1, "dense", 0, X)  # before the edge's nonce, the replay got this far
        client.receive()  # and its recorded result was taken for this frame's
    assert err.value.fatal
    kinds = [_head(f)["kind"] for f in session]
    assert kinds == ["hello", "hello", "result", "clock", "probe", "error"], kinds
    # the later edge's hello carried a nonce of its own, not the recorded one
    said, recorded = _head(replayer.heard[0]), _head(session[1])
    assert said["kind"] == "hello" and said["edge_nonce"] != recorded["edge_nonce"]
    replayer.close()
    for k in range(1, len(session)):  # each recorded reply in the second hello's place
        replayer = Replayer(session, answers=lambda i, k=k: k)
        with pytest.raises(FrameError, match=REPLAYED):
            CloudClient(*replayer.address, KEY)
        replayer.close()
    assert _served_fresh(server)  # the real server is none the worse


def test_the_edges_own_frames_reflected_back_to_it_are_refused(server):
    """A man in the middle sends the edge's own frames back to it, which carry its
    nonce and the server's under the same secret: its hello in place of the server's
    second hello, a request in place of its answer. Refused: the hello, which carries
    both nonces, has a request's ``seq`` and never a reply's ``rseq``; a request carries
    no edge nonce."""
    seen = r"refused: a reply of another session or seen before \(replayed\?\)"
    tap = Relay(server.address, reflect=lambda n, i, frame: i == 0)
    with pytest.raises(FrameError, match=seen):
        CloudClient(*tap.address, KEY)
    tap.close()
    for ask in ("infer", "clock", "probe"):
        tap = Relay(server.address, reflect=lambda n, i, frame: i == 1)
        client = CloudClient(*tap.address, KEY)  # the hellos passed on as they were
        with pytest.raises(FrameError, match=REPLAYED):
            if ask == "infer":
                client.send(1, "dense", 0, X)
                client.receive()
            elif ask == "clock":
                client.sync_clock(probes=1)
            else:
                client.probe("dense", 0, X, 1)
        assert _head(tap.up[0][1])["kind"] == ask
        client.close()
        tap.close()


def _edge_hello(nonce, seq=1, edge_nonce="e" * 32) -> dict:
    return {"kind": "hello", "version": VERSION, "nonce": nonce, "seq": seq,
            "edge_nonce": edge_nonce}  # fmt: skip


def test_the_second_hello_and_every_reply_after_it_carry_the_edges_nonce(server):
    sock, hello = _raw(server)
    assert hello["bind_edge_nonce"] is True and "edge_nonce" not in hello
    second = _ask(sock, _edge_hello(hello["nonce"]))
    assert second["edge_nonce"] == "e" * 32 and second["nonce"] == hello["nonce"]
    assert second["rseq"] > hello["rseq"] and second["models"] == ["dense"]
    assert second["auth"] is True and second["one_way_latency_s"] == 0.02
    assert isinstance(second["clock_s"], float)
    replies = [_ask(sock, *_infer(hello["nonce"], 2)),
               _ask(sock, {"kind": "clock", "nonce": hello["nonce"], "seq": 3}),
               _ask(sock, *_infer(hello["nonce"], 4, kind="probe", frames=1)),
               _ask(sock, *_infer(hello["nonce"], 5, model="nosuch"))]  # fmt: skip
    assert [r["kind"] for r in replies] == ["result", "clock", "probe", "error"]
    assert all(r["edge_nonce"] == "e" * 32 and r["nonce"] == hello["nonce"] for r in replies)
    assert [r["rseq"] for r in replies] == list(range(second["rseq"] + 1, second["rseq"] + 5))
    # an edge nonce at the other bound
    sock, hello = _raw(server)
    assert _ask(sock, _edge_hello(hello["nonce"], edge_nonce="f" * 128))["kind"] == "hello"
    # two real edges say two different nonces of 16 random bytes each
    a, b = CloudClient(*server.address, KEY), CloudClient(*server.address, KEY)
    assert a.edge_nonce != b.edge_nonce and len(bytes.fromhex(a.edge_nonce)) == 16
    a.close()
    b.close()


def test_a_hello_replayed_reflected_or_repeated_to_the_server_is_refused(server):
    """The server's side of the handshake: an edge's recorded hello replayed on another
    connection (another session's), the server's own hello reflected to it (a reply,
    no seq), a second hello or one after a request (even with a fresh seq), and a hello
    without a nonce of the edge's own: each refused with one error frame, fatal."""
    tap = Relay(server.address)
    CloudClient(*tap.address, KEY).close()
    edge_hello = tap.up[0][0]
    tap.close()
    cases = []
    sock, _ = _raw(server)
    sock.sendall(edge_hello)  # a recorded edge's hello on a later connection
    cases.append((sock, "refused: the frame belongs to another session (replayed?)"))
    sock = socket.create_connection(server.address, timeout=10)
    sock.sendall(raw_frame(sock))  # the server's hello of this very connection, sent back
    cases.append((sock, "refused: seq None is not new on this connection (replayed?)"))
    again = "refused: an edge's hello after the connection's first frame (replayed?)"
    sock, hello = _raw(server)
    assert _ask(sock, _edge_hello(hello["nonce"]))["kind"] == "hello"
    sock.sendall(encode(_edge_hello(hello["nonce"], 2, "g" * 32), b"", KEY))
    cases.append((sock, again))
    sock, hello = _raw(server)  # an older edge's connection: a request first
    assert _ask(sock, *_infer(hello["nonce"], 1))["kind"] == "result"
    sock.sendall(encode(_edge_hello(hello["nonce"], 2), b"", KEY))
    cases.append((sock, again))
    for bad in (None, "e" * 31, "e" * 129, 32, ["e" * 32]):
        sock, hello = _raw(server)
        sock.sendall(encode(_edge_hello(hello["nonce"], edge_nonce=bad), b"", KEY))
        cases.append((sock, "refused: the edge's hello carries no nonce of 32-128 characters"))
    for sock, message in cases:
        reply = read_frame(sock, 1 << 20, KEY)[0]
        assert reply["kind"] == "error" and reply["error"] == message, (message, reply)
        assert _closed(sock), message
    assert server.rejected == len(cases)
    assert _served_fresh(server)
