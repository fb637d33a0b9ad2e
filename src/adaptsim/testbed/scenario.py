"""The scenario a real run and its simulated twin share.

Three things turn a shipped scenario into one this host can run for real: the
calibration is this host's own (``calibration``: overrides the scenario's, so the
twin predicts the hosts that really ran), the traces may be compressed in time
(``time_scale`` F: a trace step at t s comes at t / F s; arrivals, compute and
the monitor keep real seconds), and the run may be cut short (``duration_s``, in
real seconds after compression). Both the edge process and the twin build the
scenario with :func:`scenario_for_testbed`, so their arrivals, noise and monitor
readings are drawn from the same scenario and seed.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from adaptsim.errors import UserError
from adaptsim.simulator import Scenario, Trace, load_scenario

__all__ = ["scenario_for_testbed", "time_scaled"]


def _scaled_trace(t: Trace, factor: float) -> Trace:
    return Trace(
        tuple(x / factor for x in t.times),
        t.values,
        t.duration_s / factor,
        t.end,
        f"{t.label} (time / {factor:g})" if factor != 1 else t.label,
    )


def time_scaled(sc: Scenario, factor: float) -> Scenario:
    """The scenario with its traces ``factor`` times faster and its duration divided."""
    if not (math.isfinite(factor) and factor > 0):
        raise UserError(f"--time-scale {factor!r}: give a positive number, e.g. 4")
    if factor == 1:
        return sc
    return replace(
        sc,
        bandwidth=_scaled_trace(sc.bandwidth, factor),
        edge_cpu=_scaled_trace(sc.edge_cpu, factor),
        edge_mem=_scaled_trace(sc.edge_mem, factor),
        duration_s=sc.duration_s / factor,
    )


def scenario_for_testbed(
    path: str | Path,
    calibration: str | Path | None,
    duration_s: float | None = None,
    time_scale: float = 1.0,
    seeds: tuple[int, ...] | None = None,
) -> Scenario:
    """The scenario as the testbed and its twin run it (see the module docstring)."""
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise UserError(f"--duration {duration_s!r}: give a positive number of seconds")
    sc = time_scaled(load_scenario(path, calibration), time_scale)
    if duration_s is not None or seeds:
        sc = sc.shortened(duration_s or sc.duration_s, seeds)
    return sc
