"""Folding what a real run measured back into the simulator's inputs.

A calibration from profiles cannot know what the real pipeline adds around the
compute it timed: the edge and cloud slowed by everything else on their cores
(Python threads, sockets, other users of a shared host), the per-frame cost of
serialising and sending beyond the probe's, the result's way back, and the real
cost of a switch. :func:`fit_foldback` measures these on one validation (real
records beside the twin's, frame by frame: the same arrivals and policies) and
:func:`apply_foldback` makes the adjusted scenario: edge and cloud block times
scaled, the link's per-message overhead raised, the way back added to the
cloud's per-point extra, ``pause_s`` set to the measured switch cost. Fit on
one run, score on another (another seed): never on the run you score. The
world changes, not what the policies know: the twin's policies still
predict with the calibration and switch cost the real run's policies were given
(:class:`~adaptsim.simulator.scenario.Belief`).

The edge's scale is also fitted per CPU stress level the run visited
(``edge_scale_by_cpu``): a profile whose stressed rows were taken on a busier
machine than the run's needs one scale per level, not one for all (busy_edge's
first ResNet50V2 edge rows were: the real edge at 100 % stress took 0.60x their
time and 1.05-1.09x at 0 and 50 %; re-profiled on the idle machine, the levels
fit 0.97-1.07; docs/validation.md). The cloud's scale is one for the run: a
testbed whose cloud shares the machine with the edge's stress (two cores:
``combined`` in docs/validation.md) would need one per edge condition, which
the engines cannot apply yet.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.simulator import Scenario
from adaptsim.simulator.scenario import Belief

__all__ = ["FoldBack", "apply_foldback", "fit_foldback"]


@dataclass(frozen=True)
class FoldBack:
    """What one validation measured beyond its calibration."""

    edge_scale: float  # real edge seconds / simulated, on the frames that compute there
    cloud_scale: float  # the same for the cloud's tails
    uplink_extra_s: float  # real minus simulated uplink seconds per frame (median)
    return_s: float  # the result's way back beyond the added latency (median)
    pause_s: float  # measured switch cost per re-partition (0 when none happened)
    frames: int  # finished real frames it was fitted on
    # (edge CPU stress %, real / simulated edge seconds) per level with enough frames
    edge_scale_by_cpu: tuple[tuple[float, float], ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def _ratio(real: pd.Series, sim: pd.Series) -> float:
    keep = (sim > 0) & np.isfinite(real)
    return float(real[keep].sum() / sim[keep].sum()) if keep.any() else 1.0


# Frames a stress level needs before it gets its own edge scale.
MIN_FRAMES_PER_LEVEL = 5


def _edge_by_cpu(same: pd.DataFrame) -> tuple[tuple[float, float], ...]:
    """Real / simulated edge seconds per edge CPU stress level (frames computing there)."""
    if "edge_cpu_pct" not in same:
        return ()
    comp = same[(same["edge_s_sim"] > 0) & np.isfinite(same["edge_s"])]
    out = []
    for cpu, g in comp.groupby("edge_cpu_pct"):
        if len(g) >= MIN_FRAMES_PER_LEVEL:
            out.append((float(cpu), _ratio(g["edge_s"], g["edge_s_sim"])))
    return tuple(out)


def _edge_factor(cpu_levels: np.ndarray, fb: FoldBack) -> np.ndarray:
    """The edge scale at each calibrated CPU level: the per-level fit, interpolated
    between the levels the run visited and held beyond them; one scale without it."""
    if len(fb.edge_scale_by_cpu) == 0:
        return np.full(len(cpu_levels), fb.edge_scale)
    cpu, scale = (np.array(x, dtype=float) for x in zip(*fb.edge_scale_by_cpu, strict=True))
    return np.interp(np.asarray(cpu_levels, dtype=float), cpu, scale)


def _scaled(grid, factor: np.ndarray):
    """A stress grid with each CPU level's values times its factor."""
    shape = (-1,) + (1,) * (grid.values.ndim - 1)
    return replace(grid, values=grid.values * factor.reshape(shape))


def fit_foldback(folder: Path, simulated: pd.DataFrame | None = None) -> FoldBack:
    """Fit the fold-back on a validation folder (``adaptsim validate --out``).

    Args:
        folder: the validation folder whose real run is fitted.
        simulated: the twin's records to fit against, when the twin has changed
            since the run (a new calibration or model: the folder's saved twin is
            then stale, and a fold-back fitted on it would carry the old twin's
            error into the new one); default the folder's own ``simulated/``.
    """
    real = pd.read_parquet(folder / "real" / "records.parquet")
    sim = (
        simulated
        if simulated is not None
        else pd.read_parquet(folder / "simulated" / "records.parquet")
    )
    runs = pd.read_csv(folder / "real" / "summary.csv")
    key = ["policy", "seed", "request"]
    both = real.merge(sim, on=key, suffixes=("", "_sim"))
    both = both[np.isfinite(both["latency_s"])]
    same = both[both["point"] == both["point_sim"]]  # where both ran the same split
    reparts = runs["repartitions"].sum()
    return FoldBack(
        edge_scale=_ratio(same["edge_s"], same["edge_s_sim"]),
        cloud_scale=_ratio(same["cloud_s"], same["cloud_s_sim"]),
        uplink_extra_s=float(np.median(same["uplink_s"] - same["uplink_s_sim"]))
        if len(same)
        else 0.0,
        return_s=float(both["return_s"].median()) if len(both) else 0.0,
        pause_s=float(runs["switching_s"].sum() / reparts) if reparts else 0.0,
        frames=len(both),
        edge_scale_by_cpu=_edge_by_cpu(same),
    )


def apply_foldback(sc: Scenario, fb: FoldBack) -> Scenario:
    """The scenario with its calibration and switch cost adjusted by ``fb``."""
    m = sc.model
    # the law's per-message overhead and the measured medians it is corrected to
    extra = max(fb.uplink_extra_s, -float(m.link.values[..., 0].min()))
    link_values = m.link.values.copy()
    link_values[..., 0] += extra
    cloud_extra = m.cloud_extra.values * fb.cloud_scale + fb.return_s
    model = replace(
        m,
        edge_blocks=_scaled(m.edge_blocks, _edge_factor(m.edge_blocks.cpu_levels, fb)),
        edge_extra=_scaled(m.edge_extra, _edge_factor(m.edge_extra.cpu_levels, fb)),
        cloud_blocks=replace(m.cloud_blocks, values=m.cloud_blocks.values * fb.cloud_scale),
        cloud_extra=replace(m.cloud_extra, values=cloud_extra),
        link=replace(m.link, values=link_values),
        link_table=replace(m.link_table, values=m.link_table.values + extra),
        notes=(*m.notes, f"folded back: {asdict(fb)}"),
    )
    # the world changes; the practical policies still decide as the real run's did
    belief = sc.belief or Belief(model=m, pause_s=sc.pause_s)
    return replace(sc, model=model, pause_s=fb.pause_s, belief=belief)
