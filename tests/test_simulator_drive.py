"""The fast engine's event loop against SimPy's: the same frames, decisions and records.

``run_policy`` merges the frames and the periodic decisions in a plain loop
(``engine._drive``) instead of running the ``arrivals`` and ``controller`` actors on
a ``simpy.Environment``. Only where the decisions fall among the frames can differ,
and it matters most where a frame arrives at the very time of a decision (periodic
frames, a period that divides their gap): SimPy serves whichever event was
scheduled first. Each case here is checked to have such ties and a policy that
switches, so a loop that broke ties the other way, or skipped a decision, would
change records.
"""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import simpy

from adaptsim.simulator import engine, load_scenario
from adaptsim.simulator.bench import bench_scenario
from adaptsim.simulator.decision import PolicyError
from adaptsim.simulator.record import columns
from adaptsim.simulator.scenario import ArrivalKind, PolicySpec

REPO = Path(__file__).resolve().parent.parent


def fails_after_5_s(view) -> int:
    """A user's function policy that breaks mid-run."""
    if view.now_s > 5.0:
        raise RuntimeError("broken")
    return int(view.ordinals[0])


def _simpy_run(sc, spec, seed):
    """The reference: the engine's SimPy actors, controller registered first."""
    run = engine._Run(sc, spec, seed, None)
    env = simpy.Environment()
    if run.policy.period_s is not None:
        env.process(engine.controller(env, run))
    env.process(engine.arrivals(env, run))
    env.run()
    return pd.DataFrame(columns(run.records)), run.stats


def _ties(sc, seed, period_s) -> int:
    """Frames that arrive exactly at a decision time (decision times as SimPy sums them)."""
    ticks, t = set(), 0.0
    while t < sc.duration_s:
        ticks.add(t)
        t += period_s
    run = engine._Run(sc, PolicySpec(policy="all-edge"), seed, None)
    return sum(a in ticks for a in run.arrivals.tolist())


def _norway(rate_hz=None):
    sc = load_scenario(REPO / "scenarios/norway_bus_1.yaml").shortened(400.0, (1,))
    return sc if rate_hz is None else replace(sc, rate_hz=rate_hz)


CASES = {
    # periodic frames every 2 s, decisions every 1 s: every frame ties with a decision
    "periodic-ties-mpc": (_norway, PolicySpec(policy="mpc"), 1.0),
    "periodic-ties-reactive": (_norway, PolicySpec(policy="reactive"), 1.0),
    # 4 frames/s against a 0.75 s period: a tie every 3 s
    "periodic-ties-changepoint": (
        lambda: _norway(4.0),
        PolicySpec(policy="changepoint", params={"period_s": 0.75}),
        0.75,
    ),
    # Poisson frames: no ties, decisions between frames
    "poisson-mpc": (
        lambda: replace(_norway(4.0), arrival_kind=ArrivalKind.poisson),
        PolicySpec(policy="mpc"),
        1.0,
    ),
    # decisions per frame: no controller at all
    "per-frame-oracle": (lambda: _norway(4.0), PolicySpec(policy="oracle"), None),
}


@pytest.mark.parametrize("case", CASES)
def test_the_loop_replays_simpy_event_for_event(case):
    build, spec, period_s = CASES[case]
    sc = build()
    seed = 2
    fast_cols, fast_stats, _ = engine.run_policy(sc, spec, seed)
    fast = pd.DataFrame(fast_cols)
    ref, ref_stats = _simpy_run(sc, spec, seed)
    assert len(fast) > 100
    assert ref_stats.repartitions > 0  # decisions change the split, so their order shows
    if period_s is not None and case.startswith("periodic"):
        assert _ties(sc, seed, period_s) > 10  # the case the tie rule is for
    assert fast.equals(ref)
    assert fast_stats == ref_stats


def test_the_collector_is_back_on_after_a_run_and_after_a_failing_policy():
    """run_policy pauses the cyclic garbage collector while it runs; it must restore it,
    also when the policy raises (the error reaches the caller, the process goes on)."""
    sc = bench_scenario(20.0)
    assert gc.isenabled()
    engine.run_policy(sc, PolicySpec(policy="mpc"), 0)
    assert gc.isenabled()
    spec = PolicySpec(policy="test_simulator_drive:fails_after_5_s", params={"period_s": 1.0})
    with pytest.raises(PolicyError, match="at simulated time 6 s raised RuntimeError"):
        engine.run_policy(sc, spec, 0)
    assert gc.isenabled()
    gc.disable()  # a caller that runs with the collector off keeps it off
    try:
        engine.run_policy(sc, PolicySpec(policy="mpc"), 0)
        assert not gc.isenabled()
    finally:
        gc.enable()
