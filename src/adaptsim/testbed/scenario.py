"""The scenario a real run and its simulated twin share.

Three things turn a shipped scenario into one this host can run for real: the
calibration is this host's own (``calibration``: overrides the scenario's, so the
twin predicts the hosts that really ran), the traces may be compressed in time
(``time_scale`` F: a trace step at t s comes at t / F s; arrivals, compute and
the monitor keep real seconds), and the run may be cut short (``duration_s``, in
real seconds after compression). Two more make a short run worth scoring: frames
may arrive more often (``rate_hz`` replaces the scenario's arrival rate: more
frames in the same real minutes, so a p95 is not one frame), and built-in policies
the scenario does not list may join it by name (``policies``: neurosurgeon, mpc,
changepoint with their default parameters). Both the edge process and the twin
build the scenario with :func:`scenario_for_testbed`, so their arrivals, noise,
monitor readings and policies are the same scenario's and seed's.
:func:`select_policies` says which of them run for real (not the oracle), and
:func:`twin_scenario` rebuilds a saved validation folder's scenario from its facts
(re-scoring, and the fold-back timing the conditions' lag against its traces).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pandas as pd

from adaptsim.errors import UserError
from adaptsim.simulator import Scenario, Trace, load_scenario
from adaptsim.simulator.policies import REGISTRY, resolve_policy
from adaptsim.simulator.scenario import PolicySpec, check_limits, refuse_admission
from adaptsim.testbed.folder import validation_facts, validation_table

__all__ = [
    "ALL_POLICIES",
    "scenario_for_testbed",
    "select_policies",
    "time_scaled",
    "twin_scenario",
    "with_builtin_policies",
]


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
    rate_hz: float | None = None,
    policies: list[str] | None = None,
) -> Scenario:
    """The scenario as the testbed and its twin run it (see the module docstring)."""
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise UserError(f"--duration {duration_s!r}: give a positive number of seconds")
    if rate_hz is not None and not (math.isfinite(rate_hz) and rate_hz > 0):
        raise UserError(f"--rate-hz {rate_hz!r}: give a positive number of frames a second")
    sc = time_scaled(load_scenario(path, calibration), time_scale)
    refuse_admission(sc, "the testbed")  # its real processes keep every frame
    if duration_s is not None and duration_s > sc.duration_s * (1 + 1e-9):
        raise UserError(  # as run's --duration: it shortens, it never silently means "all"
            f"--duration {duration_s:g} is longer than {path}'s {sc.duration_s:g} s (after "
            f"--time-scale {time_scale:g}); --duration only shortens a run"
        )
    if (duration_s or sc.duration_s) * (rate_hz or sc.rate_hz) < 1:
        raise UserError(
            f"--time-scale {time_scale:g} and --duration leave {duration_s or sc.duration_s:g} s "
            "per run, less than one frame; give a smaller --time-scale or a longer --duration"
        )
    if duration_s is not None or seeds:
        sc = sc.shortened(duration_s or sc.duration_s, seeds)
    if rate_hz is not None:
        sc = replace(sc, rate_hz=rate_hz)
    sc = with_builtin_policies(sc, policies or [])
    resized = [f"--time-scale {time_scale:g}"] if time_scale != 1 else []
    resized += [f"--rate-hz {rate_hz:g}"] if rate_hz is not None else []
    if resized:  # the limits again, for the new size
        check_limits(sc, f"{path} with {' and '.join(resized)}")
    return sc


def with_builtin_policies(sc: Scenario, wanted: list[str]) -> Scenario:
    """The scenario with each wanted built-in policy it lacks added, default parameters.

    A name the scenario already has (a built-in or a label) stays as the scenario
    says; a name that is neither is left for :func:`~adaptsim.testbed.select_policies`
    to refuse with the names there are.
    """
    base = Path(sc.base_dir)
    have = {resolve_policy(p, sc.model, base_dir=base).name for p in sc.policies}
    extra = [w for w in dict.fromkeys(wanted) if w not in have and w in REGISTRY]
    extra = [w for w in extra if w not in ("static", "oracle")]  # static needs a point
    if not extra:
        return sc
    return replace(sc, policies=(*sc.policies, *(PolicySpec(policy=w) for w in extra)))


ALL_POLICIES = "all"  # in --policies: every policy of the scenario


def select_policies(sc, wanted: list[str] | None) -> tuple[list[int], list[str]]:
    """Indices of the scenario's policies to run for real, and notes on those left out.

    The oracle looks ahead through the true future of the link and queues: it is
    the simulator's upper bound and cannot run on real hosts, so it is left out.
    ``all`` among ``wanted`` stands for every policy of the scenario.
    """
    base = Path(sc.base_dir)
    names = [resolve_policy(p, sc.model, base_dir=base).name for p in sc.policies]
    if wanted and ALL_POLICIES in wanted:  # every policy of the scenario, and the others named
        wanted = [*names, *(w for w in wanted if w != ALL_POLICIES)]
    if wanted:
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise UserError(f"--policies {unknown[0]!r}: the scenario has {', '.join(names)}")
    keep, notes = [], []
    for i, (spec, name) in enumerate(zip(sc.policies, names, strict=True)):
        if wanted and name not in wanted:
            continue
        if spec.policy == "oracle":
            notes.append(f"{name}: left out; it sees the true future, so it has no real run")
            continue
        keep.append(i)
    if not keep:
        raise UserError("--policies: no policy left to run for real (the oracle cannot run)")
    return keep, notes


def _facts(folder: Path, incomplete_ok: bool) -> dict:
    facts = validation_facts(folder, incomplete_ok=incomplete_ok)
    validation_table(folder, "real/summary.csv")  # its policies are read next
    return facts


def twin_scenario(folder: Path, incomplete_ok: bool = False) -> Scenario:
    """The twin's scenario of a saved validation folder: its policies, as it was run
    (``incomplete_ok``: of an interrupted one's real runs too, to finish it)."""
    facts = _facts(folder, incomplete_ok)
    names = pd.read_csv(folder / "real" / "summary.csv")["policy"].tolist()
    sc = scenario_for_testbed(facts["scenario"], facts.get("calibration"), facts["duration_s"],
                              facts.get("time_scale", 1.0), tuple(facts["seeds"]),
                              facts.get("rate_hz"), [ALL_POLICIES, *names])  # fmt: skip
    keep, _ = select_policies(sc, names)
    return replace(sc, policies=tuple(sc.policies[i] for i in keep))
