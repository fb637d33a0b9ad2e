"""What `adaptsim profile` prints: its own progress lines, no TensorFlow retracing flood.

Run through the real entry point in a fresh process, as a user runs it: TensorFlow
warns of retracing at most twice per Python code object and process, so only a
fresh process shows what a user sees.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from adaptsim.store import read_store


@pytest.mark.slow
def test_a_profile_prints_its_progress_and_no_retracing_warning(tmp_path):
    store = tmp_path / "own.parquet"
    code = "from adaptsim.cli import main; main()"
    args = ["profile", "--host", "edge", "-m", "lenet", "--cpu-stress", "0", "--mem-stress", "0"]
    r = subprocess.run(
        [sys.executable, "-c", code, *args, "--repeats", "3", "--rounds", "2", "--out", str(store)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    said = r.stdout + r.stderr
    # LeNet has 11 heads, each its own tf.function traced once: no retrace at all
    assert "retracing" not in said, said
    lines = said.strip().splitlines()
    assert lines[0].startswith("lenet: 12 points compiled in "), said
    round_1, round_2 = "lenet edge CPU 0% memory 0% (round 1/2)", "(round 2/2)"
    assert lines[1].startswith(f"[1/2] {round_1}: 2 repeats in "), said
    assert lines[2].startswith(f"[2/2] lenet edge CPU 0% memory 0% {round_2}: 1 repeat in "), said
    assert lines[-1].startswith(f"wrote 12 medians (+ samples) to {store} in "), said
    assert len(lines) == 4, said
    frame, _ = read_store(store)
    assert len(frame) == 12 * 4  # a median and three samples per point
