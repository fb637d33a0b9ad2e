"""Stand-ins for a real validation run: the LeNet testbed scenario simulated with a known
fold-back, so a "measured" side differs from the twin as a real run's would (no root, no
TensorFlow). The folders are then written by the real writer (``write_validation``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from adaptsim.simulator import run_scenario
from adaptsim.testbed import scenario_for_testbed
from adaptsim.testbed.foldback import FoldBack, apply_foldback

DATA = Path(__file__).parent / "data"
SCENARIO = DATA / "testbed_lenet.yaml"
CALIBRATION = Path(__file__).parents[1] / "src" / "adaptsim" / "data" / "calibration_own_2core.json"
# edge x1.7, cloud x2.2, +3 ms per message: 40 frames of a 4 s run
STAND_IN = FoldBack(edge_scale=1.7, cloud_scale=2.2, uplink_extra_s=0.003, return_s=0.0,
                    pause_s=0.0, frames=40)  # fmt: skip


def lenet_stand_in(duration_s: float = 4.0, policies=("static-best", "all-cloud")):
    """The scenario (only ``policies``), its "real" run (the twin with :data:`STAND_IN`
    folded in) and its twin."""
    sc = scenario_for_testbed(SCENARIO, CALIBRATION, duration_s=duration_s)
    sc = replace(sc, policies=tuple(p for p in sc.policies if p.policy in policies))
    return sc, run_scenario(apply_foldback(sc, STAND_IN)), run_scenario(sc)
