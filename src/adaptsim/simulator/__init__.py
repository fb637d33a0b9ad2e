"""The SimPy simulator: replay traces, compare static and adaptive split policies."""

from adaptsim.simulator.engine import run_policy
from adaptsim.simulator.results import Results, run_scenario, summarise, write_results
from adaptsim.simulator.scenario import Scenario, load_scenario, scenario_from_dict
from adaptsim.simulator.traces import End, Trace, TraceFormat, read_trace

__all__ = [
    "End",
    "Results",
    "Scenario",
    "Trace",
    "TraceFormat",
    "load_scenario",
    "read_trace",
    "run_policy",
    "run_scenario",
    "scenario_from_dict",
    "summarise",
    "write_results",
]
