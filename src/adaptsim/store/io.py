"""Reading and writing a store file: Parquet with the schema version in its metadata.

Writes go to a temporary file next to the target and are renamed into place, so
a failed or interrupted import never leaves a half-written store. Writing into an
existing store replaces the rows of the sources being written and keeps the rest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from adaptsim.atomic import write_atomic
from adaptsim.errors import UserError
from adaptsim.files import FileKind, kind_of
from adaptsim.store.schema import READABLE_VERSIONS, SCHEMA_VERSION, validate_frame

__all__ = ["read_store", "write_store"]

_META_KEY = b"adaptsim"


def read_store(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read a store; returns (frame, metadata). Raises UserError for a bad file."""
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        raise UserError(f"store {p} does not exist: create it with `adaptsim import ... --out {p}`")
    kind = kind_of(p, "store")
    if kind is FileKind.json:
        raise UserError(
            f"store {p} is JSON (a calibration?), not a measurement store: give the Parquet "
            "store that `adaptsim import` or `adaptsim profile` wrote"
        )
    if kind is not FileKind.parquet:
        raise UserError(
            f"store {p} is not a Parquet file: give the store that `adaptsim import` or "
            "`adaptsim profile` wrote"
        )
    try:
        table = pq.read_table(p)
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"store {p} is not a Parquet file ({exc})") from None
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        raise UserError(f"store {p} is Parquet but not an adaptsim store (no adaptsim metadata)")
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        meta = None
    if not isinstance(meta, dict) or not isinstance(meta.get("sources", {}), dict):
        raise UserError(f"store {p}: its adaptsim metadata is damaged; re-import the data")
    if meta.get("schema_version") not in READABLE_VERSIONS:
        raise UserError(
            f"store {p} has schema version {meta.get('schema_version')}, this adaptsim reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}: re-import the data"
        )
    meta["schema_version"] = SCHEMA_VERSION  # a superset: written back as the newest
    return validate_frame(table.to_pandas(), str(p)), meta


def write_store(path: str | Path, frame: pd.DataFrame, sources: dict[str, dict]) -> pd.DataFrame:
    """Write ``frame`` (rows of ``sources``) into the store at ``path``, atomically.

    Args:
        path: the store file; created, or merged into when it exists.
        frame: new rows; every row's ``source`` must be a key of ``sources``.
        sources: per source, its provenance (files, citation, import summary).

    Returns:
        The whole store as written.
    """
    p = Path(path)
    frame = validate_frame(frame, "new rows")
    meta = {"schema_version": SCHEMA_VERSION, "sources": {}}
    if p.exists():
        old, meta = read_store(p)
        old = old[~old["source"].isin(list(sources))]
        frame = pd.concat([old, frame], ignore_index=True) if len(old) else frame
    meta["sources"].update(sources)
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()}
    )
    write_atomic(p, lambda tmp: pq.write_table(table, tmp))
    return frame
