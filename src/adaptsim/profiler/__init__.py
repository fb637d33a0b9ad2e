"""The profiler: per-point compute times under real stress, and the real shaped link.

Only :mod:`adaptsim.profiler.timing` imports TensorFlow (through
:mod:`adaptsim.models`), and only when a compute profile runs.
"""

from adaptsim.profiler.run import ComputePlan, LinkPlan, profile_compute, profile_link

__all__ = ["ComputePlan", "LinkPlan", "profile_compute", "profile_link"]
