"""A folded-back validation twin's Belief: its practical policies predict with what the
real run's policies were given, while the world (service times, the switch pause, the
oracle's look-ahead) is the folded one. Both engines, on the shipped LeNet testbed
scenario and this host's shipped calibration."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from adaptsim.simulator.engine import run_policy
from adaptsim.simulator.naive import run_policy_naive
from adaptsim.simulator.scenario import PolicySpec
from adaptsim.testbed import scenario_for_testbed
from adaptsim.testbed.foldback import FoldBack, apply_foldback

DATA = Path(__file__).parent / "data"
CALIBRATION = Path(__file__).parents[1] / "src" / "adaptsim" / "data" / "calibration_own_2core.json"


def _folded(duration_s: float = 4.0):
    """LeNet's testbed scenario and its twin folded back so that the cloud is 20x
    slower and the edge 20x faster: the world's best point moves away from the
    calibration's."""
    sc = scenario_for_testbed(DATA / "testbed_lenet.yaml", CALIBRATION, duration_s=duration_s)
    fb = FoldBack(edge_scale=0.05, cloud_scale=20.0, uplink_extra_s=0.0, return_s=0.0,
                  pause_s=0.002, frames=10)  # fmt: skip
    return sc, apply_foldback(sc, fb)


def test_the_oracle_of_a_folded_twin_looks_ahead_in_the_world():
    """The oracle is the upper bound of the world the twin simulates: its decisions are
    those it makes in the folded world with no belief at all, they differ from the
    oracle's in the unfolded world, and it beats static-best (which keeps the real
    run's point) there."""
    sc, folded = _folded()
    oracle = PolicySpec(policy="oracle")
    seed = sc.seeds[0]
    got, _, _ = run_policy(folded, oracle, seed)
    world, _, _ = run_policy(replace(folded, belief=None), oracle, seed)
    given, _, _ = run_policy(sc, oracle, seed)
    np.testing.assert_array_equal(got["point"], world["point"])
    np.testing.assert_array_equal(got["latency_s"], world["latency_s"])
    assert not np.array_equal(got["point"], given["point"])  # the world's look-ahead moved it
    best, _, _ = run_policy(folded, PolicySpec(policy="static-best"), seed)
    assert np.mean(got["latency_s"]) < np.mean(best["latency_s"])


def test_the_naive_engine_predicts_with_the_belief_too():
    """The independent SimPy engine builds its policy's view through the same belief:
    static-best keeps the real run's point in the folded twin, and both engines give
    the folded twin the same decisions and (to float error) the same latencies."""
    sc, folded = _folded(duration_s=2.0)
    seed = sc.seeds[0]
    spec = PolicySpec(policy="static-best")
    naive_given, _, _ = run_policy_naive(sc, spec, seed)
    naive_folded, _, _ = run_policy_naive(folded, spec, seed)
    naive_world, _, _ = run_policy_naive(replace(folded, belief=None), spec, seed)
    fast_folded, _, _ = run_policy(folded, spec, seed)
    np.testing.assert_array_equal(naive_folded["point"], naive_given["point"])
    assert not np.array_equal(naive_world["point"], naive_given["point"])  # the belief mattered
    np.testing.assert_array_equal(naive_folded["point"], fast_folded["point"])
    np.testing.assert_allclose(naive_folded["latency_s"], fast_folded["latency_s"], rtol=1e-9)


def test_shortening_or_overriding_a_folded_twin_keeps_its_belief():
    """Tests and ``--duration``/``--seed`` shorten a scenario: a folded twin stays one."""
    _, folded = _folded()
    for changed in (folded.shortened(2.0, seeds=(7,)), folded.overridden(2.0, seeds=(7,))):
        assert changed.belief is folded.belief and changed.model is folded.model
        assert changed.pause_s == folded.pause_s and changed.duration_s == 2.0
