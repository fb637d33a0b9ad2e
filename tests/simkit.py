"""Scenarios built so that the right answer is known: a hand-written toy calibration.

The toy "model" has three points: 1 all-cloud (nothing computed on the edge), 2 a
cut, 3 all-edge. Every number is chosen by the test (edge seconds per point at
0 % and 100 % edge CPU stress, cloud seconds, the link law, the spread), written
as a real calibration file and loaded through the real scenario loader, so the
simulator serves exactly what the test computed by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from adaptsim.simulator import scenario_from_dict

HERE = Path(__file__).resolve().parent


def exponential_spread(n: int = 4000) -> dict[str, list[float]]:
    """Quantiles of log(Exp(1)), dense near both tails, for the engine to replay.

    The lower tail stops at u = 1e-4 (a factor of 1e-4: the most a calibration's
    spread may say); the moments the tests compare with come from these same
    quantiles (:func:`spread_moments`), so the cut is accounted for.
    """
    u = np.unique(
        np.r_[
            np.linspace(0, 1, n + 1)[1:-1],
            np.geomspace(1e-4, 1e-3, 50),
            1 - np.geomspace(1e-9, 1e-3, 200),
        ]
    )
    u = u[u >= 1e-4]
    return {"probs": u.tolist(), "log_ratio": np.log(-np.log1p(-u)).tolist()}


def spread_moments(q: dict[str, list[float]], n: int = 2_000_001) -> tuple[float, float]:
    """E[X] and E[X^2] of X = exp(interp(U, probs, log_ratio)), U uniform: by quadrature."""
    u = (np.arange(n) + 0.5) / n
    x = np.exp(np.interp(u, q["probs"], q["log_ratio"]))
    return float(x.mean()), float((x * x).mean())


def toy_calibration(
    path: Path,
    *,
    edge_s: tuple[float, float] = (0.2, 0.4),
    edge_all_s: tuple[float, float] = (0.3, 0.6),
    cloud_s: float = 0.5,
    cloud_all_s: float = 0.6,
    wire_bytes: tuple[float, float, float] = (150_528.0, 300_000.0, 4_000.0),
    overhead_s: float = 0.0,
    host_s: float = 0.0,
    spread: dict[str, dict[str, list[float]]] | None = None,
) -> Path:
    """Write the toy calibration; returns its path.

    Args:
        edge_s: edge seconds of point 2 at 0 % and at 100 % edge CPU stress.
        edge_all_s: edge seconds of point 3 (all-edge) at 0 % and 100 %.
        cloud_s: cloud seconds of point 2; cloud_all_s: of point 1 (all-cloud).
        wire_bytes: bytes each point puts on the wire (the link law).
        spread: per part (edge, comm, cloud), quantiles of log(measured/predicted).
    """
    cpu = [0.0, 100.0]
    mem = [0.0, 100.0]
    # Blocks end at each point: edge time at k is the sum up to k, cloud time the sum after k.
    edge = [[[0.0, e2, e3 - e2]] * 2 for e2, e3 in zip(edge_s, edge_all_s, strict=True)]
    cloud_blocks = [0.0, cloud_all_s - cloud_s, cloud_s]
    law = [[overhead_s, w, host_s] for w in wire_bytes]
    bw_levels = [10.0, 50.0]
    table = [[overhead_s + w * 8 / (b * 1e6) for b in bw_levels] for w in wire_bytes]

    def grid(values, keys=("cpu_levels", "mem_levels")):
        return {keys[0]: cpu, keys[1]: mem, "values": values}

    link_keys = ("edge_cpu_levels", "cloud_cpu_levels")
    model = {
        "points": [
            {"ordinal": 1, "kind": "all_cloud", "layer_name": "input", "output_bytes": 150_528},
            {"ordinal": 2, "kind": "cut", "layer_name": "cut", "output_bytes": wire_bytes[1]},
            {"ordinal": 3, "kind": "all_edge", "layer_name": "out", "output_bytes": 4_000},
        ],
        "edge_block_s": grid(edge),
        "cloud_block_s": grid([[cloud_blocks] * 2] * 2),
        "edge_extra_s": grid([[[0.0] * 3] * 2] * 2),
        "cloud_extra_s": grid([[[0.0] * 3] * 2] * 2),
        "link": grid([[law] * 2] * 2, link_keys),
        "link_table": {**grid([[table] * 2] * 2, link_keys), "bandwidth_levels_mbps": bw_levels},
        # A part without a spread is replayed without noise (a log ratio of 0 throughout).
        "spread": {
            part: (spread or {}).get(part, {"probs": [0.0, 1.0], "log_ratio": [0.0, 0.0]})
            for part in ("edge", "comm", "cloud")
        },
        "quality": {},
    }
    doc = {
        "format": "adaptsim-calibration",
        "version": 4,
        "provenance": {},
        "models": {"toy": model},
    }
    path.write_text(json.dumps(doc))
    return path


def toy_scenario(cal: Path, calibration_cache: dict | None = None, **overrides):
    """A scenario on the toy calibration: no noise anywhere unless the test asks
    (``calibration_cache``: as :func:`scenario_from_dict` takes it)."""
    doc = toy_doc(cal, **overrides)
    return scenario_from_dict(doc, "toy scenario", HERE / "data" / "sim", calibration_cache)


def toy_doc(cal: Path, **overrides) -> dict:
    """:func:`toy_scenario`'s document (to write as a YAML file for the CLI)."""
    doc = {
        "name": "toy",
        "model": "toy",
        "calibration": str(cal),
        "duration_s": 10.0,
        "arrivals": {"kind": "periodic", "rate_hz": 1.0},
        "deadline_s": 10.0,
        "traces": {"bandwidth_mbps": {"constant": 8.0}},
        "service": {"noise": False},
        "policies": [{"policy": "static", "params": {"point": 2}}],
    }
    doc.update(overrides)
    return doc
