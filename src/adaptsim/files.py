"""Input files recognised by their content, not their name, with one-line errors.

Every command reads files the user names: YAML scenarios, traces, stores,
calibrations, models. These helpers say in one line what is wrong with such a
file and how to fix it (missing, a folder where a file is wanted, binary or not
UTF-8), and tell a Parquet store from a JSON calibration by their first bytes.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from adaptsim.errors import UserError

__all__ = ["FileKind", "input_file", "kind_of", "read_text"]

_PARQUET_MAGIC = b"PAR1"


class FileKind(StrEnum):
    parquet = "parquet"
    json = "json"
    other = "other"


def input_file(path: str | Path, what: str) -> Path:
    """``path`` as an existing regular file, or a one-line :class:`UserError`."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{what} {p} is a folder; give a file")
    if not p.exists():
        raise UserError(f"{what} {p} does not exist")
    if not p.is_file():
        raise UserError(f"{what} {p} is not a regular file")
    return p


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path``, or a one-line error naming it (binary, not UTF-8)."""
    p = input_file(path, what)
    data = p.read_bytes()
    if b"\x00" in data[:8192]:
        raise UserError(f"{what} {p} is a binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{what} {p} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None


def kind_of(path: str | Path, what: str) -> FileKind:
    """Parquet (by its magic bytes), JSON (first non-blank character ``{``) or other."""
    p = input_file(path, what)
    with p.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(_PARQUET_MAGIC):
        return FileKind.parquet
    if head.lstrip().startswith(b"{"):
        return FileKind.json
    return FileKind.other
