"""Sweeps: many runs (traces x models x policies x parameters x seeds) on dask.distributed.

Names are imported on first use, so that a Dask worker, which needs only
:mod:`adaptsim.sweep.execute`, does not import the report's plotting or the
driver's Dask client code.
"""

from __future__ import annotations

import importlib

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

_HOME = {
    "Plan": "plan",
    "derive_seed": "plan",
    "load_plan": "plan",
    "SweepOutcome": "runner",
    "choose_batch_size": "runner",
    "open_client": "runner",
    "run_sweep": "runner",
    "read_records": "store",
    "read_runs": "store",
    "summarise_sweep": "summary",
    "write_outputs": "outputs",
}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'adaptsim.sweep' has no attribute {name!r}")
    return getattr(importlib.import_module(f"adaptsim.sweep.{_HOME[name]}"), name)
