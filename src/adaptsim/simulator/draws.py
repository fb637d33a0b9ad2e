"""Everything random in one run, drawn up front from one seeded generator.

The fast engine, the naive SimPy engine and the real testbed all replay the same
draws for the same scenario and seed: the arrival times, the multiplicative
service noise per frame (edge, link, cloud) and the monitor's noise per reading.
They are drawn in this fixed order from one ``numpy.random.Generator``, so the
same scenario and seed give the same frames bit for bit, in any of them.

Service noise may persist in time (a slow spell lasts several frames). A part
whose spread carries ``persistence_s`` > 0 (and optionally ``persistence_share``,
default 1) draws its factors through a Gaussian copula: the latent normal of frame
i is ``sqrt(share) * a_i + sqrt(1 - share) * e_i``, where ``e_i`` is the normal
score of the frame's own uniform (the i.i.d. draw of old) and ``a`` a stationary
Gaussian AR process in continuous time, ``corr(a_i, a_j) = exp(-|t_i - t_j| /
persistence_s)`` over the frames' arrival times. Every latent is exactly standard
normal, so each frame's factor has exactly the spread's marginal quantiles; only
the order in time changes. The AR innovations come from a child of the run's
generator (``Generator.spawn``, which consumes nothing of its stream), so the
arrivals, the uniforms and the monitor's noise are the same with or without
persistence, and a spread without ``persistence_s`` (or 0) gives the i.i.d. draws
bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from adaptsim.simulator.scenario import ArrivalKind, Scenario

__all__ = [
    "SPREAD_PARTS",
    "RunDraws",
    "arrival_times",
    "at_host_speed",
    "draw",
    "persistence",
    "service_noise",
]

# The spread's parts in the order of the noise columns (edge, link, cloud).
SPREAD_PARTS = ("edge", "comm", "cloud")


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


def persistence(spread: dict, part: str) -> tuple[float, float]:
    """(persistence_s, persistence_share) of a part of a calibration's spread; (0, 0)
    when the part has none (i.i.d. draws)."""
    q = spread.get(part) or {}
    tau_s = float(q.get("persistence_s", 0.0) or 0.0)
    share = float(q.get("persistence_share", 1.0)) if tau_s > 0 else 0.0
    return (tau_s, share) if tau_s > 0 and share > 0 else (0.0, 0.0)


def _ar_normals(times_s: np.ndarray, tau_s: float, rng: np.random.Generator) -> np.ndarray:
    """A stationary standard-normal AR process at ``times_s``: corr exp(-gap / tau_s)."""
    eta = rng.standard_normal(len(times_s)).tolist()
    t = times_s.tolist()
    out = [0.0] * len(t)
    if not t:
        return np.zeros(0)
    a = eta[0]
    out[0] = a
    exp, sqrt = math.exp, math.sqrt
    for i in range(1, len(t)):
        rho = exp(-(t[i] - t[i - 1]) / tau_s)
        a = rho * a + sqrt(1.0 - rho * rho) * eta[i]
        out[i] = a
    return np.asarray(out)


def _persistent_uniforms(
    u: np.ndarray,
    arrivals_s: np.ndarray,
    params: list[tuple[float, float]],
    rng: np.random.Generator,
) -> np.ndarray:
    """``u`` with each persistent part's column replaced by its copula uniforms (see the
    module docstring); ``params`` is :func:`persistence` per column."""
    from scipy.special import ndtr, ndtri  # only when a calibration asks for persistence

    child = rng.spawn(1)[0]
    out = u.copy()
    for j, (tau_s, share) in enumerate(params):
        if tau_s <= 0:
            continue
        z = _ar_normals(arrivals_s, tau_s, child)
        if share < 1.0:  # the frame's own i.i.d. normal score carries the rest
            e = ndtri(np.clip(u[:, j], 1e-12, 1.0 - 1e-12))
            z = math.sqrt(share) * z + math.sqrt(1.0 - share) * e
        out[:, j] = ndtr(z)
    return out


def service_noise(
    scenario: Scenario,
    rng: np.random.Generator,
    n: int,
    arrivals_s: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Multiplicative service noise per frame, per point: ``out[k][i]`` holds frame
    i's factors (edge, link, cloud) at the model's point column k.

    One uniform per frame and part drives every point, through each point's own
    quantiles where the calibration has them (``by_point``, see
    :mod:`adaptsim.calibration.spread`) and the pooled ones elsewhere; points with
    the same quantiles share one array. The uniforms are drawn even when noise is
    off, so turning it off changes no other draw. A part whose spread persists in
    time (see the module docstring) correlates its uniforms over ``arrivals_s``
    (the frames' arrival times; required then).
    """
    u = rng.random((n, 3))
    ordinals = [str(int(o)) for o in scenario.model.ordinals]
    if not scenario.service_noise:
        return [np.ones((n, 3))] * len(ordinals)
    spread = scenario.model.spread
    params = [persistence(spread, part) for part in SPREAD_PARTS]
    if any(tau_s for tau_s, _ in params):
        if arrivals_s is None or len(arrivals_s) != n:
            raise ValueError("persistent service noise needs the n frames' arrival times")
        u = _persistent_uniforms(u, np.asarray(arrivals_s, dtype=float), params, rng)
    pooled = np.empty((n, 3))
    for j, part in enumerate(SPREAD_PARTS):
        q = spread.get(part)
        pooled[:, j] = np.exp(np.interp(u[:, j], q["probs"], q["log_ratio"])) if q else 1.0
    out = []
    for point in ordinals:
        own = [
            (j, q["probs"], q["by_point"][point])
            for j, q in enumerate(spread.get(part) for part in SPREAD_PARTS)
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


def at_host_speed(noise: list[np.ndarray], arrivals_s: np.ndarray, speed) -> list[np.ndarray]:
    """``noise`` (per point column, (frames, 3)) with each frame's edge and cloud factors
    times the host's speed at its arrival (``speed``: the (edge, cloud) traces of
    ``Scenario.host_speed``); the link's unchanged. New arrays: points that shared
    one still share one."""
    edge = speed[0].at_many(arrivals_s) if len(arrivals_s) else np.zeros(0)
    cloud = speed[1].at_many(arrivals_s) if len(arrivals_s) else np.zeros(0)
    scaled: dict[int, np.ndarray] = {}
    for a in noise:
        if id(a) not in scaled:
            b = a.copy()
            b[:, 0] *= edge
            b[:, 2] *= cloud
            scaled[id(a)] = b
    return [scaled[id(a)] for a in noise]


def draw(scenario: Scenario, seed: int) -> RunDraws:
    """The run's random inputs, in their fixed order, from ``default_rng(seed)``; with
    ``scenario.noise_stream`` k > 0 the service noise alone comes from
    ``default_rng([seed, k])`` (the seed's own is still drawn first, so nothing else
    moves). A scenario with a ``host_speed`` scales each frame's edge and cloud noise
    by it at the frame's arrival (:func:`at_host_speed`)."""
    rng = np.random.default_rng(seed)
    arrivals = arrival_times(scenario, rng)
    noise = service_noise(scenario, rng, len(arrivals), arrivals)
    if scenario.noise_stream:  # another draw of the service noise alone
        other = np.random.default_rng([int(seed), int(scenario.noise_stream)])
        noise = service_noise(scenario, other, len(arrivals), arrivals)
    if scenario.host_speed is not None:
        noise = at_host_speed(noise, arrivals, scenario.host_speed)
    n_readings = int(scenario.duration_s / scenario.observe_period_s) + 2
    monitor_noise = (
        np.exp(rng.normal(0.0, scenario.observe_noise, (n_readings, 3)))
        if scenario.observe_noise > 0
        else np.ones((n_readings, 3))
    )
    return RunDraws(arrivals, noise, monitor_noise)
