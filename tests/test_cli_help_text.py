"""Every command's --help text as a user reads it: a one-line summary, no reST markup."""

from __future__ import annotations

import pytest

from adaptsim.cli import app


def _commands(typer_app, prefix=""):
    for cmd in typer_app.registered_commands:
        name = cmd.name or cmd.callback.__name__.replace("_", "-")
        yield f"{prefix}{name}", cmd.callback.__doc__ or ""
    for group in typer_app.registered_groups:
        yield from _commands(group.typer_instance, f"{prefix}{group.name} ")


COMMANDS = sorted(_commands(app))


def test_every_command_is_listed():
    names = {name for name, _ in COMMANDS}
    assert {"run", "report", "bench", "sweep", "profile", "import adaptivednn"} <= names


@pytest.mark.parametrize(("name", "doc"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_help_summary_is_one_line_without_rest_markup(name, doc):
    # typer lists the first paragraph as the command's summary in `adaptsim --help`,
    # line breaks included, and prints the docstring as it is: ``x`` shows as ``x``
    summary = doc.strip().split("\n\n")[0]
    assert summary and "\n" not in summary, f"{name}: {summary!r}"
    assert "``" not in doc, f"{name}: {doc!r}"
