"""Per-frame cost of the remote path (``validate --cloud``) against the local testbed.

The same scenario, calibration and seed run through both paths, interleaved
(local, remote, local, remote, ...) so that a change of the machine's load falls
on both:

- local: ``adaptsim validate`` as usual (its own two namespaces, its cloud process
  on core 1 with one TensorFlow thread, tc at the scenario's constant rate);
- remote: two namespaces made here (:class:`~adaptsim.emulation.NetnsPair`, tbf at
  the same rate and bucket), ``adaptsim serve --role cloud --threads 1`` in the
  cloud namespace on core 1, ``adaptsim validate --cloud`` in the edge namespace.

The scenario is ``tests/data/testbed_lenet.yaml`` with the bandwidth held at
``RATE_MBPS`` and no edge stress (the remote path does not follow the bandwidth
trace), 10 frames a second, policies all-cloud (every frame sends LeNet's raw
input: the path at its busiest) and static-best. Per path, the medians over every
frame of every round, per stage, and the difference remote - local.

Run as root on the machine under test: ``.venv/bin/python benchmarks/twohost_overhead.py
[ROUNDS] [DURATION_S]`` (default 2 rounds of 8 s per path). Results: docs/validation.md,
"Two machines".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from adaptsim.emulation import CLOUD_IP, NetnsPair, die_with_parent

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "tests" / "data" / "testbed_lenet.yaml"
CALIBRATION = REPO / "src" / "adaptsim" / "data" / "calibration_own_2core.json"
RATE_MBPS = 20.0
PORT = 50100
STAGES = ("latency_s", "edge_wait_s", "edge_s", "uplink_wait_s", "uplink_s", "cloud_wait_s",
          "cloud_s", "return_s")  # fmt: skip
CLI = "from adaptsim.cli import main; main()"


def _scenario(folder: Path) -> Path:
    sc = yaml.safe_load(SCENARIO.read_text())
    sc["traces"] = {"bandwidth_mbps": {"steps": [[0, RATE_MBPS]], "end": "hold"}}
    sc["name"] = "twohost_overhead"
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(sc))
    return path


def _validate(prefix: list[str], scenario: Path, out: Path, duration_s: float, *extra: str):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "ADAPTSIM_SECRET": "b" * 32}
    argv = [*prefix, sys.executable, "-c", CLI, "validate", str(scenario), "--calibration",
            str(CALIBRATION), "--duration", str(duration_s), "--policies",
            "all-cloud,static-best", "--noise-draws", "1", "--out", str(out), *extra]  # fmt: skip
    r = subprocess.run(argv, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"validate failed: {r.stderr[-2000:]}")
    frame = pd.read_parquet(out / "real" / "records.parquet")
    facts = json.loads((out / "validation.json").read_text())
    return frame, facts


def main(rounds: int = 2, duration_s: float = 8.0) -> None:
    if os.geteuid() != 0:
        raise SystemExit("run as root (network namespaces, tc)")
    work = Path(tempfile.mkdtemp(prefix=f"twohost-bench-{os.getpid()}-"))
    scenario = _scenario(work)
    frames, offsets = [], []
    load_before = os.getloadavg()
    with NetnsPair(RATE_MBPS, burst_s=0.002, min_burst_bytes=1514) as pair:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "ADAPTSIM_SECRET": "b" * 32}
        serve = subprocess.Popen(
            [*pair.exec_in(pair.cloud), sys.executable, "-c", CLI, "serve", "--role", "cloud",
             "--listen", f"{CLOUD_IP}:{PORT}", "--models", "lenet", "--one-way-latency-s",
             "0.005", "--threads", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
            preexec_fn=lambda: die_with_parent([1]),
        )  # fmt: skip
        try:
            for line in serve.stderr:
                if re.search(r"serving lenet on", line):
                    break
            else:
                raise SystemExit("serve did not start")
            for k in range(rounds):
                for path in ("local", "remote"):
                    out = work / f"{path}-{k}"
                    t0 = time.perf_counter()
                    if path == "local":
                        f, facts = _validate([], scenario, out, duration_s)
                    else:
                        f, facts = _validate(pair.exec_in(pair.edge), scenario, out, duration_s,
                                             "--cloud", f"{CLOUD_IP}:{PORT}")  # fmt: skip
                        offsets += [c for c in facts["clock"].values()]
                    f["path"], f["round"] = path, k
                    frames.append(f)
                    print(
                        f"round {k} {path}: {time.perf_counter() - t0:.1f} s, "
                        f"load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
        finally:
            os.killpg(serve.pid, signal.SIGTERM)
            serve.wait(timeout=30)
    allf = pd.concat(frames, ignore_index=True)
    med = allf.groupby(["policy", "path"])[list(STAGES)].median().mul(1e3)
    print(
        f"\nmedians in ms over {rounds} rounds x {duration_s:g} s x 10 Hz per path and policy; "
        f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (2 cores)"
    )
    for policy, table in med.groupby(level="policy"):
        t = table.droplevel("policy").T
        t["remote - local"] = t["remote"] - t["local"]
        print(f"\n{policy} (frames: {len(allf[allf['policy'] == policy]) // 2} per path)")
        print(t.round(3).to_string())
    per = allf.groupby(["round", "path"])[list(STAGES)].median().mul(1e3)
    paired = per.xs("remote", level="path") - per.xs("local", level="path")
    print("\nper round, remote - local of the medians (ms; both policies' frames), then the")
    print("median of those paired differences over rounds:")
    print(pd.concat([paired, paired.median().to_frame("median").T]).round(3).T.to_string())
    print("\nper round, local medians (ms):")
    print(per.xs("local", level="path").round(3).T.to_string())
    print("\nclock (remote runs):", json.dumps(offsets))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 2, float(args[1]) if len(args) > 1 else 8.0)
