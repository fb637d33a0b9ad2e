"""The one error type users see.

A :class:`UserError` is bad input (a missing file, a malformed line, an unknown
name). The CLI prints its message as one line and exits with code 2; it never
shows a traceback for it. Library code raises it with a message that says what is
wrong, where (file and line when there is one), and how to fix it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["UserError", "script_main", "where"]


class UserError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


def where(path: object, line: int | None = None) -> str:
    """Format a location as ``path`` or ``path:line`` for error messages."""
    return f"{path}:{line}" if line is not None else str(path)


def script_main(name: str, main: Callable[[], object]) -> None:
    """Run a script's ``main`` as the CLI runs a command: a :class:`UserError` is one line
    on stderr (``name: error: ...``) and exit code 2, Ctrl-C exit code 130."""
    try:
        main()
    except UserError as exc:
        sys.stderr.write(f"{name}: error: {exc}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write(f"{name}: interrupted\n")
        sys.exit(130)
