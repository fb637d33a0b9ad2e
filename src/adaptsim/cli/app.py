"""The typer app every command registers on, and the helpers commands share.

Bad input raises :class:`adaptsim.errors.UserError`; :func:`guard` prints it as
one line on stderr and exits with code 2. Ctrl-C exits with 130 after the library
has kept what it finished.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import StrEnum

import typer
from rich.console import Console
from rich.table import Table

from adaptsim.errors import UserError

__all__ = ["OutputFormat", "app", "emit", "err", "guard", "main", "out", "progress_bar"]

app = typer.Typer(
    name="adaptsim",
    help="Should this DNN's edge/cloud split adapt as conditions change, and what would it win?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console() if sys.stdout.isatty() else Console(width=240)  # pipes get whole tables
err = Console(stderr=True, soft_wrap=True)


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def guard(fn: Callable) -> Callable:
    """Turn UserError into one line + exit 2, and Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            err.print(f"adaptsim: error: {exc}", markup=False, highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("adaptsim: interrupted; finished work was kept", markup=False)
            raise typer.Exit(130) from None

    return wrapper


def progress_bar(*columns):
    """A rich progress bar on stderr, drawn only on a terminal and gone when done.

    Off a terminal (a pipe, a log file, a test) it draws nothing: a bar that is not
    live would only leave a blank line before the one line of an error.
    """
    from rich.progress import Progress

    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal)


def emit(frame, fmt: OutputFormat, title: str | None = None) -> None:
    """Print a DataFrame as a rich table, CSV or JSON records on stdout."""
    if fmt is OutputFormat.csv:
        sys.stdout.write(frame.to_csv(index=False))
    elif fmt is OutputFormat.json:
        sys.stdout.write(json.dumps(frame.to_dict(orient="records"), indent=1) + "\n")
    else:
        table = Table(title=title)
        for col in frame.columns:
            table.add_column(
                str(col), justify="right" if frame[col].dtype.kind in "iuf" else "left"
            )
        for row in frame.itertuples(index=False):
            table.add_row(*(str(v) for v in row))
        out.print(table)


def main() -> None:
    """Console-script entry point.

    typer's own refusals (a value that is not a number, an unknown option, a
    ``min=`` bound) become the same one line and exit 2 as every other bad input,
    instead of a boxed usage message.
    """
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            err.print(ctx.get_help(), markup=False, highlight=False)
            sys.exit(2)
        if not hasattr(exc, "format_message"):
            raise
        command = ctx.command_path if ctx is not None else "adaptsim"
        err.print(
            f"adaptsim: error: {exc.format_message()} (see `{command} --help`)",
            markup=False,
            highlight=False,
        )
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Abort:
        err.print("adaptsim: interrupted", markup=False)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
