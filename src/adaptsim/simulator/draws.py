"""Everything random in one run, drawn up front from one seeded generator.

The fast engine, the naive SimPy engine and the real testbed all replay the same
draws for the same scenario and seed: the arrival times, the multiplicative
service noise per frame (edge, link, cloud) and the monitor's noise per reading.
They are drawn in this fixed order from one ``numpy.random.Generator``, so the
same scenario and seed give the same frames bit for bit, in any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adaptsim.simulator.scenario import ArrivalKind, Scenario

__all__ = ["RunDraws", "arrival_times", "draw", "service_noise"]


@dataclass(frozen=True)
class RunDraws:
    """The random inputs of one run (one policy, one seed)."""

    arrivals_s: np.ndarray  # arrival time of every frame, in [0, duration)
    noise: list[np.ndarray]  # per point column, (frames, 3): factors for edge, link, cloud
    monitor_noise: np.ndarray  # (readings, 3): factors for bandwidth, edge CPU, edge memory


def arrival_times(scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    """All arrival times in [0, duration), periodic or Poisson."""
    if scenario.arrival_kind is ArrivalKind.periodic:
        return np.arange(0.0, scenario.duration_s, 1.0 / scenario.rate_hz)
    n_guess = int(scenario.duration_s * scenario.rate_hz * 1.5) + 20
    times = np.cumsum(rng.exponential(1.0 / scenario.rate_hz, n_guess))
    while times[-1] < scenario.duration_s:
        more = times[-1] + np.cumsum(rng.exponential(1.0 / scenario.rate_hz, n_guess))
        times = np.r_[times, more]
    return times[times < scenario.duration_s]


def service_noise(scenario: Scenario, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Multiplicative service noise per frame, per point: ``out[k][i]`` holds frame
    i's factors (edge, link, cloud) at the model's point column k.

    One uniform per frame and part drives every point, through each point's own
    quantiles where the calibration has them (``by_point``, see
    :mod:`adaptsim.calibration.spread`) and the pooled ones elsewhere; points with
    the same quantiles share one array. The uniforms are drawn even when noise is
    off, so turning it off changes no other draw.
    """
    u = rng.random((n, 3))
    ordinals = [str(int(o)) for o in scenario.model.ordinals]
    if not scenario.service_noise:
        return [np.ones((n, 3))] * len(ordinals)
    spread = scenario.model.spread
    pooled = np.empty((n, 3))
    for j, part in enumerate(("edge", "comm", "cloud")):
        q = spread.get(part)
        pooled[:, j] = np.exp(np.interp(u[:, j], q["probs"], q["log_ratio"])) if q else 1.0
    out = []
    for point in ordinals:
        own = [
            (j, q["probs"], q["by_point"][point])
            for j, q in enumerate(spread.get(part) for part in ("edge", "comm", "cloud"))
            if q and point in q.get("by_point", {})
        ]
        if not own:
            out.append(pooled)
            continue
        mine = pooled.copy()
        for j, probs, log_ratio in own:
            mine[:, j] = np.exp(np.interp(u[:, j], probs, log_ratio))
        out.append(mine)
    return out


def draw(scenario: Scenario, seed: int) -> RunDraws:
    """The run's random inputs, in their fixed order, from ``default_rng(seed)``; with
    ``scenario.noise_stream`` k > 0 the service noise alone comes from
    ``default_rng([seed, k])`` (the seed's own is still drawn first, so nothing else
    moves)."""
    rng = np.random.default_rng(seed)
    arrivals = arrival_times(scenario, rng)
    noise = service_noise(scenario, rng, len(arrivals))
    if scenario.noise_stream:  # another draw of the service noise alone
        other = np.random.default_rng([int(seed), int(scenario.noise_stream)])
        noise = service_noise(scenario, other, len(arrivals))
    n_readings = int(scenario.duration_s / scenario.observe_period_s) + 2
    monitor_noise = (
        np.exp(rng.normal(0.0, scenario.observe_noise, (n_readings, 3)))
        if scenario.observe_noise > 0
        else np.ones((n_readings, 3))
    )
    return RunDraws(arrivals, noise, monitor_noise)
