"""Calibration: measurements -> latency models (scipy), and their check."""

from adaptsim.calibration.fit import fit_calibration, fit_model
from adaptsim.calibration.grid import ExtrapolationError, StressGrid
from adaptsim.calibration.model import (
    DEFAULT_CALIBRATION,
    Calibration,
    ModelCalibration,
    Prediction,
    load_calibration,
    save_calibration,
)

__all__ = [
    "DEFAULT_CALIBRATION",
    "Calibration",
    "ExtrapolationError",
    "ModelCalibration",
    "Prediction",
    "StressGrid",
    "fit_calibration",
    "fit_model",
    "load_calibration",
    "save_calibration",
]
