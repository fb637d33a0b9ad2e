"""The study: the exhaustive analysis of best split points and re-partitioning gains."""

from adaptsim.study.analysis import best_points, combined_gains, distribution, gains, sensitivity
from adaptsim.study.latency import FACTORS, LatencyGrid, from_calibration, from_store_rows
from adaptsim.study.run import Source, run_study

__all__ = [
    "FACTORS",
    "LatencyGrid",
    "Source",
    "best_points",
    "combined_gains",
    "distribution",
    "from_calibration",
    "from_store_rows",
    "gains",
    "run_study",
    "sensitivity",
]
