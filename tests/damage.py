"""Folders damaged on purpose: each helper returns ``damage(folder) -> path`` that
rewrites one file of the folder and returns its path (for the one line to name).

Used by the tests of results folders and validation folders: the same edits (a JSON
field, a Parquet or CSV column, raw bytes, a truncation) on different files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

Damage = Callable[[Path], Path]


def json_edit(name: str, edit: Callable[[dict], object]) -> Damage:
    """Load the JSON object ``name``, let ``edit`` change it in place, write it back."""

    def damage(folder: Path) -> Path:
        path = folder / name
        doc = json.loads(path.read_text())
        edit(doc)
        path.write_text(json.dumps(doc))
        return path

    return damage


def parquet_edit(name: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Damage:
    """Rewrite the Parquet table ``name`` as ``edit`` returns it."""

    def damage(folder: Path) -> Path:
        path = folder / name
        edit(pd.read_parquet(path)).to_parquet(path)
        return path

    return damage


def csv_edit(name: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Damage:
    """Rewrite the CSV table ``name`` as ``edit`` returns it."""

    def damage(folder: Path) -> Path:
        path = folder / name
        edit(pd.read_csv(path)).to_csv(path, index=False)
        return path

    return damage


def replace_with(name: str, content: str | bytes) -> Damage:
    """Replace the file ``name`` with ``content``."""

    def damage(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
        return path

    return damage


def truncate(name: str, keep_bytes: int = 300) -> Damage:
    """Cut the file ``name`` after ``keep_bytes`` bytes (a full disk, a killed copy)."""

    def damage(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(path.read_bytes()[:keep_bytes])
        return path

    return damage
