"""Importers: real published measurements into the measurement store."""

from adaptsim.importers.adaptivednn import import_adaptivednn
from adaptsim.importers.scission import import_scission

__all__ = ["import_adaptivednn", "import_scission"]
