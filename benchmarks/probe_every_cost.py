"""What probes during the run cost (``validate --probe-every``), and how many fit.

The same scenario, calibration, seed and policies run with ``--probe-every 0`` and
``--probe-every S`` in turn (off, on, off, on, ...: a change of the machine's load
falls on both), every run a real validation (root). Per setting and policy, the
medians over every frame of every round: latency, edge and cloud stage; beside them
the ratio on / off. Per run with probes: the probes taken during it, the periods
skipped for want of an idle gap, the probes per minute of run time, and how many
probes (edge or cloud) overlapped a frame queued or in flight (should be 0).

Run as root on the machine under test:
``.venv/bin/python benchmarks/probe_every_cost.py SCENARIO TIME_SCALE DURATION_S RATE_HZ
POLICIES EVERY_S [ROUNDS]`` e.g. ``scenarios/norway_metro_2.yaml 5 30 2
static-best,all-cloud 2 2``; ``PROBE_COST_OUT=DIR`` keeps the validation folders there
(else a temporary folder, removed). Results: docs/validation.md, "Probes during the run".
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

from adaptsim.testbed import validate

CALIBRATION = Path("src/adaptsim/data/calibration_own_2core.json")


def one(scenario: Path, out: Path, every: float, args) -> tuple[pd.DataFrame, list[dict]]:
    scale, duration, rate, policies = args
    folder = validate(scenario, CALIBRATION, out, time_scale=scale, duration_s=duration,
                      rate_hz=rate, policies=policies, seeds=(1,), probe_frames=5,
                      probe_every_s=every, noise_draws=1, progress=lambda _: None)  # fmt: skip
    real = pd.read_parquet(folder / "real" / "records.parquet")
    facts = json.loads((folder / "validation.json").read_text())
    runs = []
    for key, p in (facts.get("host_speed") or {}).items():
        if "skipped" in p:
            n = p["at"].count("during")
            during = [s for s, a in zip(p["edge_s"], p["at"], strict=True) if a == "during"]
            ends = [s for s, a in zip(p["edge_s"], p["at"], strict=True) if a != "during"]
            mine = real[(real["policy"] + "/" + real["seed"].astype(str)) == key]
            owl = float(facts["clock"][key].get("cloud_latency_s") or 0.0)
            busy = list(zip(mine["arrival_s"], mine["done_s"] - owl, strict=True))
            spans = [(t, t + s) for t, s, a in zip(p["t_s"], p["edge_s"], p["at"], strict=True)
                     if a == "during"]  # fmt: skip
            spans += [(t, b) for t, b in zip([t for t, a in zip(p["cloud_t_s"], p["cloud_at"],
                      strict=True) if a == "during"], p["cloud_back_s"], strict=True)]  # fmt: skip
            hit = sum(any(a0 < s1 and s0 < d0 for a0, d0 in busy) for s0, s1 in spans)
            runs.append({"run": key, "during": n, "skipped": p["skipped"], "overlapping": hit,
                         "mixed": p.get("mixed", 0),
                         "per_minute": 60.0 * n / facts["duration_s"],
                         "edge_probe_during_ms": 1e3 * float(pd.Series(during).median()),
                         "edge_probe_ends_ms": 1e3 * float(pd.Series(ends).median())})  # fmt: skip
    return real.assign(every=every), runs


def main() -> None:
    a = sys.argv[1:]
    if len(a) < 6:
        sys.exit(__doc__)
    scenario, scale, duration, rate = Path(a[0]), float(a[1]), float(a[2]), float(a[3])
    policies, every = a[4].split(","), float(a[5])
    rounds = int(a[6]) if len(a) > 6 else 2
    frames, runs = [], []
    keep = os.environ.get("PROBE_COST_OUT")
    with tempfile.TemporaryDirectory(prefix=f"probe-every-{os.getpid()}-") as scratch:
        tmp = keep or scratch
        for r in range(rounds):
            for s in (0.0, every):
                print(f"round {r + 1}/{rounds}: --probe-every {s:g}", flush=True)
                f, got = one(scenario, Path(tmp) / f"r{r}-{s:g}", s,
                             (scale, duration, rate, policies))  # fmt: skip
                frames.append(f.assign(round=r))
                runs += [{**g, "round": r} for g in got]
    done = pd.concat(frames, ignore_index=True)
    done = done[done["latency_s"].map(lambda x: x == x and x != float("inf"))]
    med = done.groupby(["policy", "every"])[["latency_s", "edge_s", "cloud_s"]].median() * 1e3
    table = med.unstack("every")
    for col in ("latency_s", "edge_s", "cloud_s"):
        table[(col, "on/off")] = table[(col, every)] / table[(col, 0.0)]
    print(f"\n{scenario.name}: medians over every frame of {rounds} rounds (ms); "
          f"load average now {os.getloadavg()}")  # fmt: skip
    print(table.round(3).to_string())
    print("\nprobes during the runs:")
    print(pd.DataFrame(runs).to_string(index=False))


if __name__ == "__main__":
    main()
