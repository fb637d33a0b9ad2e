"""Reports: tables and plots from simulation results."""

from adaptsim.report.build import build_report

__all__ = ["build_report"]
