"""A calibration: per model, latency as a function of conditions, with its spread.

For one model on one (edge, cloud) host pair:

- edge compute: per block, seconds at each measured (edge CPU %, edge memory %)
  level; the edge time at point k is the sum of blocks 1..k, plus point k's extra;
- cloud compute: per block, seconds at each (cloud CPU %, cloud memory %) level;
  the cloud time at point k is the sum of the blocks after k, plus point k's extra;
- per-point extras (edge and cloud, at each level): what a sub-model split at that
  point costs beyond its blocks, where the measurements show it (zero elsewhere);
- link, per point at each (edge CPU %, cloud CPU %) level: a law ``comm_s =
  max(overhead_s + wire_bytes * 8 / (bandwidth_mbps * 1e6), host_s)`` (the wire
  and the hosts' own sending and receiving overlap and the slower sets the
  time: ``overhead_s`` to connect and reply, ``wire_bytes`` the payload as the
  link carried it, ``host_s`` the hosts' time whatever the bandwidth, which
  follows both hosts' CPU stress), and the measured medians at each bandwidth
  level. Between CPU levels the link is interpolated; beyond them the nearest
  level holds (flagged as extrapolated). At a measured bandwidth level the link
  time is the median; between levels it is the law corrected by the medians'
  differences from it, interpolated linearly in 1/bandwidth; beyond them the
  law corrected by the nearest level's difference (flagged as extrapolated).
  The simulator prices transfers with the law;
- spread: empirical quantiles of log(measured / predicted) per part, for the
  simulator to sample.

Between stress levels values are interpolated; outside them they are not
extrapolated silently (see :mod:`adaptsim.calibration.grid`).

The file is JSON (``format: adaptsim-calibration``, ``version: 4``) holding
provenance and fit quality; :mod:`adaptsim.calibration.io` writes it and reads it
back, validating everything.
Version 3 is still read with no host time (zero: the wire law alone); versions
1 and 2 too: their link, kept per edge (CPU, memory) level,
is read at the first memory level and holds at every cloud CPU level; version 1
has no per-point extras (zeros).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adaptsim.calibration.grid import StressGrid
from adaptsim.errors import UserError
from adaptsim.units import seconds_per_byte

__all__ = [
    "DEFAULT_CALIBRATION",
    "FORMAT",
    "LINK_KEYS",
    "LINK_PARAMS",
    "STRESS_KEYS",
    "VERSION",
    "Calibration",
    "ModelCalibration",
    "Prediction",
    "law_s",
    "link_grid",
]

FORMAT = "adaptsim-calibration"
VERSION = 4
DEFAULT_CALIBRATION = "adaptivednn"  # the shipped calibration's name
LINK_PARAMS = ("overhead_s", "wire_bytes", "host_s")
STRESS_KEYS = ("cpu_levels", "mem_levels")  # compute grids: one host's CPU x memory stress
LINK_KEYS = ("edge_cpu_levels", "cloud_cpu_levels")  # link grids (version 3 on)


def law_s(law: np.ndarray, s_per_byte) -> np.ndarray:
    """Link seconds by the law ``max(overhead_s + wire_bytes * s_per_byte, host_s)``.

    ``law``'s last axis holds LINK_PARAMS; ``s_per_byte`` (8 / bits per second)
    broadcasts against the rest.
    """
    return np.maximum(law[..., 0] + law[..., 1] * s_per_byte, law[..., 2])


def link_grid(edge_cpu: np.ndarray, cloud_cpu: np.ndarray, values: np.ndarray) -> StressGrid:
    """A link grid over (edge CPU %, cloud CPU %); beyond the measured levels the nearest holds."""
    return StressGrid(
        np.asarray(edge_cpu, dtype=np.float64),
        np.asarray(cloud_cpu, dtype=np.float64),
        values,
        hold=True,
        names=("edge CPU stress %", "cloud CPU stress %"),
    )


@dataclass(frozen=True)
class Prediction:
    """Predicted seconds per point (per condition and point for a grid of conditions):
    edge compute, link, cloud compute. ``extrapolated`` (per condition) says which
    conditions lie beyond the measured levels, where the caller asked for that.

    The one "seconds per point" type: the calibration's predictions and the
    simulator's policies' estimates (``adaptsim.simulator.policies.Estimate``) alike.
    """

    edge_s: np.ndarray
    cloud_s: np.ndarray
    comm_s: np.ndarray
    extrapolated: np.ndarray | None = None

    @property
    def total_s(self) -> np.ndarray:
        return self.edge_s + self.cloud_s + self.comm_s


@dataclass(frozen=True)
class ModelCalibration:
    """Calibrated latency model of one DNN; see the module docstring."""

    model: str
    ordinals: np.ndarray  # point ordinals, increasing, from all-cloud to all-edge
    kinds: tuple[str, ...]  # all_cloud | cut | all_edge, per point
    layer_names: tuple[str, ...]
    output_bytes: np.ndarray
    edge_blocks: StressGrid  # values (n_cpu, n_mem, n_points): block ending at each point
    cloud_blocks: StressGrid  # values (n_cpu, n_mem, n_points): block ending at each point
    link: StressGrid  # values (n_edge_cpu, n_cloud_cpu, n_points, 3): LINK_PARAMS
    link_table: StressGrid  # values (n_edge_cpu, n_cloud_cpu, n_points, n_bw): medians per level
    bandwidth_levels: tuple[float, ...]
    spread: dict[str, dict[str, list[float]]]
    quality: dict[str, float]
    notes: tuple[str, ...] = ()
    edge_extra: StressGrid | None = None  # values (n_cpu, n_mem, n_points); None: zeros
    cloud_extra: StressGrid | None = None  # values (n_cpu, n_mem, n_points); None: zeros
    edge_cum: StressGrid = field(init=False, repr=False)
    cloud_cum: StressGrid = field(init=False, repr=False)

    def __post_init__(self):
        e, c = self.edge_blocks, self.cloud_blocks
        for name, grid in (("edge_extra", e), ("cloud_extra", c)):
            if getattr(self, name) is None:
                zeros = np.zeros_like(grid.values)
                object.__setattr__(self, name, StressGrid(grid.cpu_levels, grid.mem_levels, zeros))
        # Edge time at point k: blocks up to k. Cloud time at k: blocks after k. Plus extras.
        before = np.cumsum(e.values, axis=-1) + self.edge_extra.values
        after = np.cumsum(c.values[..., ::-1], axis=-1)[..., ::-1] - c.values
        after = after + self.cloud_extra.values
        for name, g, v in (("edge_cum", e, before), ("cloud_cum", c, after)):
            object.__setattr__(
                self, name, StressGrid(g.cpu_levels, g.mem_levels, v, time_sharing=True)
            )

    def link_s(self, law: np.ndarray, table: np.ndarray, bandwidth_mbps: np.ndarray):
        """Link seconds per (condition, point), and whether bandwidth was extrapolated.

        The law's time, corrected by what the measured medians differ from it at
        the measured bandwidth levels: exact at a level, interpolated linearly in
        1/bandwidth between levels, the nearest level's beyond them (flagged).

        Args:
            law: (n, points, 3) LINK_PARAMS at each condition's stress.
            table: (n, points, levels) measured medians at each condition's stress.
            bandwidth_mbps: (n,) bandwidths.
        """
        x = seconds_per_byte(bandwidth_mbps)
        xl = seconds_per_byte(np.asarray(self.bandwidth_levels))  # decreasing with level
        order = np.argsort(xl)
        xl, table = xl[order], table[..., order]
        at_levels = law_s(law[..., None, :], xl[None, None, :])
        resid = table - at_levels
        rows = np.arange(len(x))
        if len(xl) == 1:
            near = np.zeros(len(x), dtype=np.int64)
            fix, outside = resid[rows, :, near], ~np.isclose(x, xl[0])
        else:
            outside = (x < xl[0] * (1 - 1e-9)) | (x > xl[-1] * (1 + 1e-9))
            lo = np.clip(np.searchsorted(xl, x, side="right") - 1, 0, len(xl) - 2)
            w = np.clip((x - xl[lo]) / (xl[lo + 1] - xl[lo]), 0.0, 1.0)[:, None]
            fix = resid[rows, :, lo] * (1 - w) + resid[rows, :, lo + 1] * w
        return law_s(law, x[:, None]) + fix, outside

    def predict(
        self,
        edge_cpu_pct=0.0,
        edge_mem_pct=0.0,
        cloud_cpu_pct=0.0,
        cloud_mem_pct=0.0,
        bandwidth_mbps=50.0,
        *,
        extrapolate: bool = False,
    ) -> Prediction:
        """Predicted edge, cloud and link seconds of every point, per condition.

        Arguments broadcast against each other; each gives one value per condition.
        """
        args = np.broadcast_arrays(
            *(
                np.atleast_1d(np.asarray(a, dtype=np.float64))
                for a in (edge_cpu_pct, edge_mem_pct, cloud_cpu_pct, cloud_mem_pct, bandwidth_mbps)
            )
        )
        ecpu, emem, ccpu, cmem, bw = args
        if (bw <= 0).any():
            raise UserError("bandwidth must be positive to price a transfer")
        edge, x1 = self.edge_cum.at(ecpu, emem, extrapolate=extrapolate)
        cloud, x2 = self.cloud_cum.at(ccpu, cmem, extrapolate=extrapolate)
        law, x3 = self.link.at(ecpu, ccpu, extrapolate=extrapolate)
        table, _ = self.link_table.at(ecpu, ccpu, extrapolate=extrapolate)
        comm, x4 = self.link_s(law, table, bw)
        return Prediction(
            edge_s=np.maximum(edge, 0),
            cloud_s=np.maximum(cloud, 0),
            comm_s=np.maximum(comm, 0),
            extrapolated=x1 | x2 | x3 | x4,
        )

    def predict_at(self, conditions, *, extrapolate: bool = False) -> Prediction:
        """``predict`` for a table of conditions with the store's column names."""
        return self.predict(
            conditions["edge_cpu_pct"].to_numpy(),
            conditions["edge_mem_pct"].to_numpy(),
            conditions["cloud_cpu_pct"].to_numpy(),
            conditions["cloud_mem_pct"].to_numpy(),
            conditions["bandwidth_mbps"].to_numpy(),
            extrapolate=extrapolate,
        )

    def link_at(self, edge_cpu_pct, cloud_cpu_pct, *, extrapolate: bool = False):
        """The link law per point (LINK_PARAMS), for each (edge CPU %, cloud CPU %).

        Returns:
            (array (n, points, 3), bool array: the query was extrapolated).
        """
        return self.link.at(edge_cpu_pct, cloud_cpu_pct, extrapolate=extrapolate)

    # -- serialisation ---------------------------------------------------------
    def to_dict(self) -> dict:
        def grid(g: StressGrid, names, keys=STRESS_KEYS) -> dict:
            return {
                keys[0]: g.cpu_levels.tolist(),
                keys[1]: g.mem_levels.tolist(),
                "axes": [k.removesuffix("_levels") for k in keys] + [names],
                "values": g.values.tolist(),
            }

        return {
            "points": [
                {"ordinal": int(o), "kind": k, "layer_name": n, "output_bytes": float(b)}
                for o, k, n, b in zip(
                    self.ordinals, self.kinds, self.layer_names, self.output_bytes, strict=True
                )
            ],
            "edge_block_s": grid(self.edge_blocks, "point"),
            "cloud_block_s": grid(self.cloud_blocks, "point"),
            "edge_extra_s": grid(self.edge_extra, "point"),
            "cloud_extra_s": grid(self.cloud_extra, "point"),
            "link": {**grid(self.link, "point", LINK_KEYS), "params": list(LINK_PARAMS)},
            "link_table": {
                **grid(self.link_table, "point", LINK_KEYS),
                "bandwidth_levels_mbps": list(self.bandwidth_levels),
            },
            "spread": self.spread,
            "quality": self.quality,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Calibration:
    """Calibrations of several models on one host pair, with provenance."""

    models: dict[str, ModelCalibration]
    provenance: dict
    name: str = ""

    def model(self, name: str) -> ModelCalibration:
        """The named model's calibration; UserError listing the calibrated models."""
        if name not in self.models:
            raise UserError(
                f"calibration {self.name or '(unnamed)'} has no model {name!r}; "
                f"it calibrates {', '.join(sorted(self.models))}"
            )
        return self.models[name]
