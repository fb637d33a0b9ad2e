"""Score the built-ins on scenarios nobody tuned them on (docs/policies.md, "Traces
nobody tuned on"): car_3 at another scale with another model and frame rate, and
two synthetic traces, a seeded on-off link and a seeded random walk.

Run: ``.venv/bin/python benchmarks/unseen_scores.py [--out DIR]`` (the scenarios are
written to DIR, a temporary folder by default, then scored like policy_scores.py).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from policy_scores import ROOT, markdown, score_scenario

__all__ = ["write_scenarios"]

_SCENARIO = """name: {name}
description: {description}
model: {model}
duration_s: 600
arrivals: {{kind: periodic, rate_hz: {rate_hz}}}
deadline_s: {deadline_s}
one_way_latency_s: 0.02
traces:
  bandwidth_mbps: {{file: traces/{trace}, format: two_column, scale: {scale}, end: loop}}
repartition: {{pause_s: 0.2}}
observe: {{period_s: 1.0, delay_s: 1.0, noise: 0.1}}
policies: [{{policy: static-best}}]
seeds: [1, 2, 3, 4, 5]
"""


def _on_off(rng: np.random.Generator) -> str:
    """40 <-> 2 Mbit/s, exponential holding times of mean 8 s (at least 0.5 s)."""
    t, on, rows = 0.0, True, []
    while t < 600:
        rows.append(f"{t:.3f}\t{40.0 if on else 2.0:.4f}\n")
        t += max(0.5, rng.exponential(8.0))
        on = not on
    return "".join(rows)


def _walk(rng: np.random.Generator) -> str:
    """Log bandwidth as a random walk, sd 0.25 a second, reflected into 0.5-80 Mbit/s."""
    lo, hi, x, rows = np.log(0.5), np.log(80.0), np.log(10.0), []
    for i in range(600):
        rows.append(f"{float(i):.3f}\t{float(np.exp(x)):.4f}\n")
        x += rng.normal(0, 0.25)
        x = lo + abs(x - lo) if x < lo else (hi - abs(x - hi) if x > hi else x)
    return "".join(rows)


def write_scenarios(out: Path) -> list[Path]:
    """The three scenarios and their traces under ``out`` (seeded: the same every time)."""
    rng = np.random.default_rng(2026)
    (out / "traces").mkdir(parents=True, exist_ok=True)
    (out / "traces/onoff.txt").write_text(_on_off(rng))
    (out / "traces/walk.txt").write_text(_walk(rng))
    shutil.copy(ROOT / "scenarios/traces/norway_car_3.txt", out / "traces/car3.txt")
    specs = [
        ("car3_resnet50_x5", "Norway car_3 x5, 1 frame/s", "resnet50", 1.0, 2, "car3.txt", 5),
        ("onoff_resnet50v2", "on-off 40 <-> 2 Mbit/s", "resnet50v2", 0.5, 2, "onoff.txt", 1),
        ("walk_vgg16", "log random walk 0.5-80 Mbit/s", "vgg16", 0.25, 8, "walk.txt", 1),
    ]  # fmt: skip
    paths = []
    for name, desc, model, rate, deadline, trace, scale in specs:
        path = out / f"{name}.yaml"
        fields = {"name": name, "description": desc, "model": model, "rate_hz": rate}
        fields |= {"deadline_s": deadline, "trace": trace, "scale": scale}
        path.write_text(_SCENARIO.format(**fields))
        paths.append(path)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="adaptsim-unseen-"))
    table = pd.concat([score_scenario(p) for p in write_scenarios(out)])
    print(markdown(table))


if __name__ == "__main__":
    main()
