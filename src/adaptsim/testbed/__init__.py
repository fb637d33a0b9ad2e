"""The testbed: a scenario run on real processes, and the simulator held to it.

Edge and cloud processes in their own network namespaces (real TensorFlow heads
and tails, a tc-shaped veth link following the bandwidth trace, stress-ng
following the edge stress traces), the simulator's own policies, monitor and
draws, records in the simulator's schema (:mod:`~adaptsim.testbed.run`); the
wire protocol between them (:mod:`~adaptsim.testbed.protocol`,
:mod:`~adaptsim.testbed.server`); and ``validate``, which runs the simulated
twin beside it and compares (:mod:`~adaptsim.testbed.validate`). Only the edge
and cloud processes import TensorFlow.
"""

from adaptsim.testbed.run import RealRunPlan, real_run, real_run_available
from adaptsim.testbed.scenario import scenario_for_testbed, time_scaled
from adaptsim.testbed.validate import select_policies, validate

__all__ = [
    "RealRunPlan",
    "real_run",
    "real_run_available",
    "scenario_for_testbed",
    "select_policies",
    "time_scaled",
    "validate",
]
