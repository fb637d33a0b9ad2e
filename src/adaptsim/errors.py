"""The one error type users see.

A :class:`UserError` is bad input (a missing file, a malformed line, an unknown
name). The CLI prints its message as one line and exits with code 2; it never
shows a traceback for it. Library code raises it with a message that says what is
wrong, where (file and line when there is one), and how to fix it.
"""

from __future__ import annotations

__all__ = ["UserError", "where"]


class UserError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


def where(path: object, line: int | None = None) -> str:
    """Format a location as ``path`` or ``path:line`` for error messages."""
    return f"{path}:{line}" if line is not None else str(path)
