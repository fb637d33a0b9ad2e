"""The ``adaptsim`` command line: a thin typer app, every command calls the library.

``app`` holds the app and the helpers its commands share; each other module
registers the commands of one area, in the order ``--help`` lists them (importing
the module is what adds its commands).
"""

from __future__ import annotations

# isort: off
from adaptsim.cli import zoo, importing, profiling, calibrating, studying  # noqa: F401
from adaptsim.cli import running, validating, sweeping  # noqa: F401
from adaptsim.cli.app import app, main

# isort: on

__all__ = ["app", "main"]
