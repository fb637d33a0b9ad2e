"""Sweeps: many runs (traces x models x policies x parameters x seeds) on dask.distributed."""

from adaptsim.sweep.outputs import write_outputs
from adaptsim.sweep.plan import Plan, derive_seed, load_plan
from adaptsim.sweep.runner import SweepOutcome, choose_batch_size, open_client, run_sweep
from adaptsim.sweep.store import read_records, read_runs
from adaptsim.sweep.summary import summarise_sweep

__all__ = [
    "Plan",
    "SweepOutcome",
    "choose_batch_size",
    "derive_seed",
    "load_plan",
    "open_client",
    "read_records",
    "read_runs",
    "run_sweep",
    "summarise_sweep",
    "write_outputs",
]
