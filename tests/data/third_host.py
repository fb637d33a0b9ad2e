"""A third machine for the two-host tests, run as a script in its own network namespace.

``third_host.py CLOUD_IP OTHER_IP PORT``: what a host on another network than the
edge's sees of ``adaptsim serve`` listening on CLOUD_IP:PORT, with the shared secret
from ADAPTSIM_SECRET (an eavesdropper's view: it holds frames a legitimate client
sent, not the secret). Prints one JSON object:

- ``other``: connecting to the cloud's other address, OTHER_IP:PORT ("refused" when
  the server listens only on the address it was given);
- ``own``: the reply to one valid LeNet request on a fresh session ("result");
- ``replay_other``: the server's answer when the very bytes of that request are
  sent again on a second connection (another session), and ``closed_after``
  whether it then closed that connection;
- ``replay_same``: its answer when they are sent again on the first connection.

It uses the real wire protocol (:mod:`adaptsim.testbed.protocol`), not a copy.
"""

import json
import socket
import sys

import numpy as np

from adaptsim.testbed.protocol import encode, load_secret, read_frame

LENET_INPUT = [1, 28, 28, 1]  # LeNet-5's raw input: the all-cloud point 0


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def main(cloud_ip: str, other_ip: str, port: int) -> None:
    key = load_secret()
    out = {}
    try:
        socket.create_connection((other_ip, port), timeout=5).close()
        out["other"] = "connected"
    except ConnectionRefusedError:
        out["other"] = "refused"
    except OSError as exc:
        out["other"] = f"{type(exc).__name__}: {exc}"
    first = socket.create_connection((cloud_ip, port), timeout=10)
    hello, _ = read_frame(first, 0, key)
    x = np.zeros(LENET_INPUT, np.float32)
    header = {"kind": "infer", "id": 1, "model": "lenet", "point": 0, "dtype": "float32",
              "shape": LENET_INPUT, "nonce": hello["nonce"], "seq": 1}  # fmt: skip
    captured = encode(header, x.tobytes(), key)  # what went over the wire
    first.sendall(captured)
    reply, _ = read_frame(first, 1 << 20, key)
    out["own"] = reply.get("kind")
    second = socket.create_connection((cloud_ip, port), timeout=10)
    read_frame(second, 0, key)  # its own hello, another nonce
    second.sendall(captured)
    reply, _ = read_frame(second, 1 << 20, key)
    out["replay_other"] = reply.get("error") or reply.get("kind")
    out["closed_after"] = _closed(second)
    first.sendall(captured)
    reply, _ = read_frame(first, 1 << 20, key)
    out["replay_same"] = reply.get("error") or reply.get("kind")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
