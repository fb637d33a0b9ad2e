"""The testbed's cloud server and wire protocol, with real LeNet tails over real sockets.

No namespace is needed: the server listens on 127.0.0.1 here (in a run it listens
inside the cloud namespace).
"""

from __future__ import annotations

import json
import socket
import struct

import numpy as np
import pytest
from typer.testing import CliRunner

from adaptsim.testbed.client import CloudClient
from adaptsim.testbed.protocol import PREFIX, FrameError, encode, read_frame
from adaptsim.testbed.server import CloudServer, build_tails

KEY = b"k" * 32


@pytest.fixture(scope="module")
def tails():
    return build_tails(["lenet"], progress=lambda _: None)


@pytest.fixture()
def server(tails):
    srv = CloudServer(tails, workers=2, key=KEY).start()
    yield srv
    srv.close()


def _raw(server) -> tuple[socket.socket, str]:
    sock = socket.create_connection(server.address, timeout=10)
    hello, _ = read_frame(sock, 0, KEY)
    return sock, hello["nonce"]


def _closed(sock: socket.socket) -> bool:
    """The server closed it: end of stream, or a reset where bytes it never read were left."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _infer(nonce, seq, shape, body, model="lenet", point=5, dtype="float32", rid=1):
    return {"kind": "infer", "id": rid, "model": model, "point": point, "dtype": dtype,
            "shape": shape, "nonce": nonce, "seq": seq}, body  # fmt: skip


def test_valid_request_gets_the_tails_real_output(server, tails):
    tail = tails["lenet"][5]
    x = np.random.default_rng(0).standard_normal(tail.shape).astype(np.float32)
    client = CloudClient(*server.address, KEY)
    client.send(7, "lenet", 5, x)
    header, body = client.receive()
    assert header["kind"] == "result" and header["id"] == 7
    y = np.frombuffer(body, np.float32).reshape(header["shape"])
    np.testing.assert_allclose(y, tail.run(x), rtol=1e-5)
    assert header["recv_s"] <= header["start_s"] <= header["end_s"]


def test_a_probe_frame_times_the_whole_tail_and_bad_ones_get_an_error_frame(server, tails):
    """The host-speed probe: the all-cloud point's tail (the whole model) run ``frames``
    times on the body, the server's own seconds each; a probe that asks too much or of a
    point without a tail gets an error frame, and the connection keeps serving."""
    whole = min(tails["lenet"])  # the all-cloud point: the raw input, the whole model
    x = np.zeros(tails["lenet"][whole].shape, np.float32)
    client = CloudClient(*server.address, KEY)
    seconds = client.probe("lenet", whole, x, 4)
    assert len(seconds) == 4 and all(s > 0 for s in seconds)
    sock, nonce = _raw(server)
    shape, body = list(x.shape), x.tobytes()
    last = max(tails["lenet"])  # all-edge: no tail to run
    asks = [(whole, 0), (whole, 101), (whole, True), (last, 1), (whole, "3")]
    for seq, (point, frames) in enumerate(asks, start=1):
        header, _ = _infer(nonce, seq, shape, body, point=point)
        if point == last:
            header["shape"] = list(tails["lenet"][last].shape)
            body_here = np.zeros(tails["lenet"][last].shape, np.float32).tobytes()
        else:
            body_here = body
        sock.sendall(encode({**header, "kind": "probe", "frames": frames}, body_here, KEY))
        reply, _ = read_frame(sock, 1 << 20, KEY)
        assert reply["kind"] == "error", (point, frames, reply)
    header, _ = _infer(nonce, len(asks) + 1, shape, body, point=whole)
    sock.sendall(encode({**header, "kind": "probe", "frames": 2}, body, KEY))
    reply, _ = read_frame(sock, 1 << 20, KEY)
    assert reply["kind"] == "probe" and len(reply["cloud_s"]) == 2
    sock.close()
    assert server.served == 0  # probes are not frames served


def test_a_probe_on_the_servers_own_input_needs_no_body_and_answers_by_its_id(server, tails):
    """A probe during a run (adaptsim.testbed.speed_track): no body crosses the link, the
    server runs the whole tail on its own input and answers with the probe's id; a body
    with it, or an unknown input, is an error frame, and the connection keeps serving."""
    whole = min(tails["lenet"])
    shape = tails["lenet"][whole].shape
    client = CloudClient(*server.address, KEY)
    client.send_probe(500_007, "lenet", whole, shape)
    reply, body = client.receive()
    assert reply["kind"] == "probe" and reply["id"] == 500_007 and body == b""
    assert len(reply["cloud_s"]) == 1 and reply["cloud_s"][0] > 0
    sock, nonce = _raw(server)
    x = np.zeros(shape, np.float32)
    header, _ = _infer(nonce, 1, list(shape), b"", point=whole, rid=9)
    for seq, (own, body_here) in enumerate([("server", x.tobytes()), ("disk", b"")], start=1):
        probe = {**header, "kind": "probe", "frames": 1, "input": own, "seq": seq}
        sock.sendall(encode(probe, body_here, KEY))
        reply, _ = read_frame(sock, 1 << 20, KEY)
        assert reply["kind"] == "error" and reply["id"] == 9, (own, reply)
    sock.sendall(encode({**header, "kind": "probe", "frames": 1, "input": "server", "seq": 3},
                        b"", KEY))  # fmt: skip
    reply, _ = read_frame(sock, 1 << 20, KEY)
    assert reply["kind"] == "probe" and len(reply["cloud_s"]) == 1
    sock.close()
    assert server.served == 0


def test_server_survives_1000_bad_frames_and_keeps_serving(server, tails):
    shape = list(tails["lenet"][5].shape)
    good_body = np.zeros(shape, np.float32).tobytes()
    errors = []
    # non-fatal: the connection stays open and gets an error frame for each
    sock, nonce = _raw(server)
    bad = [
        lambda s: _infer(nonce, s, shape, good_body, model="nosuch"),
        lambda s: _infer(nonce, s, [1, 2, 3], good_body),
        lambda s: _infer(nonce, s, shape, good_body, point=99),
        lambda s: _infer(nonce, s, shape, good_body, dtype="float64"),
        lambda s: _infer(nonce, s, shape, good_body[:-4]),
        lambda s: ({"kind": "infer", "nonce": nonce, "seq": s}, b""),
    ]
    for seq in range(1, 901):
        header, body = bad[seq % len(bad)](seq)
        sock.sendall(encode(header, body, KEY))
        reply, _ = read_frame(sock, 1 << 20, KEY)
        errors.append(reply)
    # a header that is not JSON (authenticated, so it reaches the parser)
    head = b"{not json"
    prefix = PREFIX.pack(b"ASF1", len(head), 0)
    import hashlib
    import hmac

    for _ in range(50):
        sock.sendall(prefix + head + hmac.new(KEY, prefix + head, hashlib.sha256).digest())
        errors.append(read_frame(sock, 1 << 20, KEY)[0])
    sock.close()
    # fatal: oversize body, oversize header, wrong magic; each closes its connection
    for i in range(60):
        s, _ = _raw(server)
        kind = i % 3
        if kind == 0:
            s.sendall(PREFIX.pack(b"ASF1", 2, 1 << 40))
        elif kind == 1:
            s.sendall(PREFIX.pack(b"ASF1", 1 << 30, 0))
        else:
            s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        errors.append(read_frame(s, 1 << 20, KEY)[0])
        assert _closed(s)
        s.close()
    assert len(errors) == 1010 and all(e["kind"] == "error" for e in errors)
    assert any("unknown model" in e["error"] for e in errors)
    assert any("shape [1, 2, 3] is wrong" in e["error"] for e in errors)
    assert any("over the" in e["error"] for e in errors)
    assert any("malformed header" in e["error"] for e in errors)
    assert server.rejected == 1010
    # and a valid client is still served
    client = CloudClient(*server.address, KEY)
    client.send(1, "lenet", 5, np.ones(shape, np.float32))
    header, _ = client.receive()
    assert header["kind"] == "result" and header["id"] == 1


def test_unauthenticated_and_replayed_frames_are_refused(server, tails):
    shape = list(tails["lenet"][5].shape)
    body = np.zeros(shape, np.float32).tobytes()
    # a peer without the secret: its MAC is wrong
    sock, nonce = _raw(server)
    sock.sendall(encode(*_infer(nonce, 1, shape, body), key=b"x" * 32))
    reply, _ = read_frame(sock, 1 << 20, KEY)
    assert reply["kind"] == "error" and "unauthenticated" in reply["error"]
    assert _closed(sock)
    # a valid frame replayed on another connection: another session's nonce
    sock, nonce = _raw(server)
    frame = encode(*_infer(nonce, 1, shape, body), key=KEY)
    sock.sendall(frame)
    assert read_frame(sock, 1 << 20, KEY)[0]["kind"] == "result"
    sock.sendall(frame)  # the same frame again on the same connection: old seq
    reply, _ = read_frame(sock, 1 << 20, KEY)
    assert reply["kind"] == "error" and "replayed" in reply["error"]
    other, _ = _raw(server)
    other.sendall(frame)
    reply, _ = read_frame(other, 1 << 20, KEY)
    assert reply["kind"] == "error" and "another session" in reply["error"]
    assert server.served == 1


def test_frame_sizes_are_checked_before_reading(tails):
    a, b = socket.socketpair()
    a.sendall(struct.pack(">4sIQ", b"ASF1", 10, 1 << 50))
    with pytest.raises(FrameError, match="over the") as exc:
        read_frame(b, 1 << 20)
    assert exc.value.fatal
    a.sendall(encode({"x": 1}, b"abc"))
    assert read_frame(b, 1 << 20) == ({"x": 1}, b"abc")
    a.sendall(encode([1, 2]))  # JSON, but not an object
    with pytest.raises(FrameError, match="not a JSON object"):
        read_frame(b, 1 << 20)
    assert json.loads(encode({"y": 2})[PREFIX.size :].decode()) == {"y": 2}


def test_serve_needs_a_secret_not_on_the_command_line(tmp_path, monkeypatch):
    from adaptsim.cli import app

    monkeypatch.delenv("ADAPTSIM_SECRET", raising=False)
    r = CliRunner().invoke(app, ["serve", "--role", "cloud", "--listen", "127.0.0.1:0",
                                 "-m", "lenet"])  # fmt: skip
    assert r.exit_code == 2 and "ADAPTSIM_SECRET" in r.output
    short = tmp_path / "s"
    short.write_text("abc")
    r = CliRunner().invoke(app, ["serve", "--role", "cloud", "--listen", "127.0.0.1:0",
                                 "--secret-file", str(short), "-m", "lenet"])  # fmt: skip
    assert r.exit_code == 2 and "at least 16 bytes" in r.output
    r = CliRunner().invoke(app, ["serve", "--role", "cloud", "--listen", "nohost"])
    assert r.exit_code == 2 and "HOST:PORT" in r.output


def test_serve_refuses_an_address_not_of_this_host_before_compiling(monkeypatch):
    """A wrong --listen is one line at once, not after every tail is compiled."""
    from adaptsim.cli import app

    monkeypatch.setenv("ADAPTSIM_SECRET", "s" * 32)
    argv = ["serve", "--role", "cloud", "--listen", "192.0.2.1:50100", "-m", "lenet"]
    r = CliRunner().invoke(app, argv)  # 192.0.2.0/24 is for documentation: on no host
    assert r.exit_code == 2 and "--listen 192.0.2.1:50100: cannot listen there" in r.output
    assert "compiled" not in r.output  # said before build_tails ran
    r = CliRunner().invoke(app, ["serve", "--role", "cloud", "--listen", "[::1]:99999"])
    assert r.exit_code == 2 and "port 0-65535" in r.output


def test_the_serve_line_says_who_can_reach_an_unspecified_or_loopback_address():
    from adaptsim.testbed.server import reach_hint

    assert "every address" in reach_hint("0.0.0.0") and "every address" in reach_hint("::")
    assert all("only this machine" in reach_hint(h) for h in ("127.0.0.1", "::1"))
    assert reach_hint("10.213.0.2") == "" and reach_hint("cloud.example") == ""
