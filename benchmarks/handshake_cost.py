"""What the wire protocol's handshake costs: connects to a keyed server, and one frame each.

An in-process :class:`~adaptsim.testbed.server.CloudServer` with the secret on loopback
(its "model" a numpy dense layer: no TensorFlow), ``N`` connects of
:class:`~adaptsim.testbed.client.CloudClient` (the whole handshake: the server's hello,
and where it binds replies to the edge's nonce, the edge's hello and the second hello),
each followed by one frame and its result. Prints one JSON line: the package measured,
the median and 90th percentile connect time, the median frame round trip, and a
result header's bytes.

To compare two versions, run it with each on ``PYTHONPATH`` in turn, e.g.
``git archive BASE src | tar -x -C /tmp/base``, then alternately
``PYTHONPATH=/tmp/base/src .venv/bin/python benchmarks/handshake_cost.py 300`` and
``PYTHONPATH=src ...``. Results: docs/testing.md, "The edge's own nonce".
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np

import adaptsim
from adaptsim.testbed.client import CloudClient
from adaptsim.testbed.server import CloudServer, Tail

KEY = b"bench-secret-" + b"k" * 20
_W = np.random.default_rng(3).standard_normal((8, 4)).astype(np.float32)


def main(n: int) -> None:
    tails = {"dense": {0: Tail((1, 8), lambda x: np.tanh(x.reshape(1, 8) @ _W))}}
    srv = CloudServer(tails, key=KEY).start()
    x = np.ones((1, 8), np.float32)
    connect_s, frame_s = [], []
    try:
        for _ in range(n):
            t = time.perf_counter()
            client = CloudClient(*srv.address, KEY)
            connect_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            client.send(1, "dense", 0, x)
            header, _ = client.receive()
            frame_s.append(time.perf_counter() - t)
            client.close()
    finally:
        srv.close()
    print(json.dumps({
        "package": adaptsim.__file__,
        "connects": n,
        "connect_ms_median": round(1e3 * statistics.median(connect_s), 3),
        "connect_ms_p90": round(1e3 * statistics.quantiles(connect_s, n=10)[-1], 3),
        "frame_ms_median": round(1e3 * statistics.median(frame_s), 3),
        "result_header_bytes": len(json.dumps(header, separators=(",", ":"))),
    }))  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
