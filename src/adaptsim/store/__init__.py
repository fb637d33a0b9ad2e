"""The measurement store: one versioned Parquet schema for every measurement."""

from adaptsim.store.choice import WORDS, ChoiceError, choose_models
from adaptsim.store.io import read_store, write_store
from adaptsim.store.schema import (
    COLUMNS,
    CONDITION_COLUMNS,
    FACTORS,
    SCHEMA_VERSION,
    Record,
    empty_frame,
    validate_frame,
)
from adaptsim.store.select import select_runs

__all__ = [
    "COLUMNS",
    "CONDITION_COLUMNS",
    "FACTORS",
    "SCHEMA_VERSION",
    "WORDS",
    "ChoiceError",
    "Record",
    "choose_models",
    "empty_frame",
    "read_store",
    "select_runs",
    "validate_frame",
    "write_store",
]
