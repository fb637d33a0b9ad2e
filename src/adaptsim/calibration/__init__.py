"""Calibration: measurements -> latency models (scipy), and their check."""

from adaptsim.calibration.fit import fit_calibration, fit_model
from adaptsim.calibration.grid import ExtrapolationError, StressGrid
from adaptsim.calibration.io import load_calibration, save_calibration
from adaptsim.calibration.model import (
    DEFAULT_CALIBRATION,
    Calibration,
    ModelCalibration,
    Prediction,
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
