"""Importer for the Scission per-block benchmarks (Lockhart et al., UCC 2020).

``scission_benchmark_blocks.csv``: one row per (system, model, block) with the
block's first and last layer index, its mean latency over 10 runs and the size
of its saved output (.npy: fp32 bytes + a 128-byte header). No stress was
applied. ``network_stats*.csv`` beside it, when present, are kept as the
source's link facts (ping, bandwidth between the systems).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pandas as pd

from adaptsim.errors import UserError, where
from adaptsim.files import excerpt, read_text
from adaptsim.store import COLUMNS, write_store

__all__ = ["import_scission"]

_NPY_HEADER_BYTES = 128
_REQUIRED = (
    "system",
    "model",
    "block_index",
    "input_layer",
    "output_layer",
    "latency_s",
    "output_size_bytes",
)
_SYSTEMS = {
    "device-raspi4": ("edge", "aarch64", "ARM Cortex-A72 (Raspberry Pi 4)", 4.0),
    "edge-2500": ("edge", "x86_64", "Intel Core i5-2500", 4.0),
    "edge-vm2core": ("edge", "x86_64", "2-core VM", 2.0),
    "cloud-6700k(nogpu)": ("cloud", "x86_64", "Intel Core i7-6700K", 4.0),
    "cloud-6700k(gpu)": ("cloud", "x86_64", "Intel Core i7-6700K + GPU", 4.0),
}
CITATION = (
    'Lockhart et al., "Scission: Performance-driven and Context-aware Cloud-Edge '
    'Distribution of Deep Neural Networks", UCC 2020; data: github.com/qub-blesson/Scission'
)


def _number(text: str, path: Path, lineno: int, col: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{where(path, lineno)}: {col} {excerpt(text)} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise UserError(f"{where(path, lineno)}: {col} must be finite and non-negative")
    return value


def _network_stats(folder: Path) -> list[dict]:
    stats = []
    for p in sorted(folder.glob("network_stats*.csv")):
        text = read_text(p, "Scission network file")
        for row in csv.DictReader(io.StringIO(text, newline=""), skipinitialspace=True):
            cells = {k.strip(): (v or "").strip() for k, v in row.items() if isinstance(k, str)}
            stats.append({"file": p.name, **cells})
    return stats


def import_scission(path: Path, out: Path) -> tuple[pd.DataFrame, dict]:
    """Read a Scission blocks CSV and write its rows into the store ``out``."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise UserError(f"{path}: no such file; pass scission_benchmark_blocks.csv")
    text = read_text(path, "Scission blocks file")
    cols: dict[str, list] = {c: [] for c in COLUMNS}
    with io.StringIO(text, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise UserError(f"{path}: empty file")
        header = [h.strip() for h in header]
        missing = [c for c in _REQUIRED if c not in header]
        if missing:
            raise UserError(f"{where(path, 1)}: missing columns {missing}; is this a Scission CSV?")
        idx = {c: header.index(c) for c in _REQUIRED}
        for lineno, row in enumerate(reader, start=2):
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) < len(header) - 1:  # the last column (device_field) may be empty
                raise UserError(
                    f"{where(path, lineno)}: {len(row)} columns, expected {len(header)}"
                )
            system = row[idx["system"]].strip()
            role, arch, cpu, cores = _SYSTEMS.get(system.lower(), ("edge", "", "", math.nan))
            v = {c: _number(row[idx[c]], path, lineno, c) for c in _REQUIRED[2:]}
            if not v["block_index"].is_integer():
                raise UserError(
                    f"{where(path, lineno)}: block_index {v['block_index']:g} is not a whole "
                    "number; blocks are counted 0, 1, 2, ..."
                )
            side = "edge" if role == "edge" else "cloud"
            other = "cloud" if side == "edge" else "edge"
            cols["source"].append("scission")
            cols["provenance"].append(f"{path.name}:{lineno}")
            cols["record"].append("block")
            cols["host_role"].append(role)
            cols[f"{side}_host"].append(system)
            cols[f"{side}_arch"].append(arch)
            cols[f"{side}_cpu"].append(cpu)
            cols[f"{side}_cores"].append(cores)
            cols[f"{side}_memory_bytes"].append(math.nan)
            for k, val in (
                ("host", ""),
                ("arch", ""),
                ("cpu", ""),
                ("cores", math.nan),
                ("memory_bytes", math.nan),
            ):
                cols[f"{other}_{k}"].append(val)
            cols["model"].append(row[idx["model"]].strip())
            cols["point"].append(int(v["block_index"]) + 1)
            cols["layer_index"].append(v["output_layer"])
            cols["layer_name"].append("")
            cols["output_bytes"].append(max(v["output_size_bytes"] - _NPY_HEADER_BYTES, 0.0))
            for c in ("edge_cpu_pct", "edge_mem_pct", "cloud_cpu_pct", "cloud_mem_pct"):
                cols[c].append(0.0)
            cols["bandwidth_mbps"].append(math.nan)
            cols["edge_cpu_quota"].append(math.nan)
            cols["repeats"].append(10)
            cols["stat"].append("mean")
            cols[f"{side}_s"].append(v["latency_s"])
            cols[f"{other}_s"].append(math.nan)
            cols["comm_s"].append(math.nan)
            cols["total_s"].append(math.nan)
            cols["flags"].append("")
    frame = pd.DataFrame(cols)
    if frame.empty:
        raise UserError(f"{path}: no data rows")
    summary = {
        "rows": len(frame),
        "systems": sorted(
            frame["edge_host"].replace("", pd.NA).dropna().unique().tolist()
            + frame["cloud_host"].replace("", pd.NA).dropna().unique().tolist()
        ),
        "models": sorted(frame["model"].unique().tolist()),
    }
    meta = {
        "scission": {
            "importer": "scission",
            "citation": CITATION,
            "paths": [str(path.resolve())],
            "network": _network_stats(path.parent),
            "summary": summary,
        }
    }
    write_store(out, frame, meta)
    return frame, summary
