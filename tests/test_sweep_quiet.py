"""`adaptsim sweep` on a local cluster prints its own lines only, also beside another Dask."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_local_sweep_says_nothing_of_dasks_port_8787_when_another_dask_holds_it(tmp_path):
    doc = {
        "name": "quiet",
        "base": str(REPO / "scenarios" / "vehicle_trace.yaml"),
        "seed": 1,
        "seeds": 1,
        "traces": {"files": [str(REPO / "scenarios" / "traces" / "norway_bus_1.txt")]},
        "models": ["lenet"],
        "policies": [{"policy": "static-best"}, {"policy": "oracle"}],
        "fields": {"duration_s": [30]},
    }
    sweep = tmp_path / "quiet.yaml"
    sweep.write_text(yaml.safe_dump(doc))
    holder = socket.socket()  # as a user's own Dask (or a second sweep) holds it
    try:
        holder.bind(("127.0.0.1", 8787))
        holder.listen()
    except OSError:
        pass  # held already by something else: the same condition
    try:
        r = subprocess.run(
            [sys.executable, "-c", "from adaptsim.cli import main; main()", "sweep",
             str(sweep), "--workers", "1", "--out", str(tmp_path / "out"), "--no-report"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        holder.close()
    assert r.returncode == 0, r.stderr
    assert "already in use" not in r.stderr and "warn" not in r.stderr.lower(), r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("2 runs done (0 failed)"), r.stderr
