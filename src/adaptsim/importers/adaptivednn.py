"""Importer for the AdaptiveDNN measurements (McNamee et al., IEEE CLOUD 2021).

Layout: ``DIR/outputs_<model>/weights_<code>.txt``; ``<code>`` is five digits
0/1/2 in the order [network, cloud_cpu, edge_mem, cloud_mem, edge_cpu]; network
0/1/2 = 50/25/10 Mbit/s, every stress digit 0/1/2 = 0/50/100 %. One line per
partition point: ``total_s edge_s cloud_s [cut]``, each the mean of 2 inferences.
``cut`` is the 1-based ordinal of the valid cut (2020-05-27 files) or the 0-based
Keras layer index (2021-08-20 files); a file whose cuts include 0 uses the layer
index. Three-column files number their lines as ordinals. Blank lines are skipped.

Every row is kept. Suspicious rows are flagged (see ``FLAGS``) and counted in the
import summary; calibrations leave out those flagged as not measuring what their
label says (``UNUSABLE_FLAGS``). Output bytes per point come from the project's
own analysis of the Keras 3 models and are checked against the data's
``cut_points.csv``.
"""

from __future__ import annotations

import difflib
import io
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.errors import UserError, where
from adaptsim.files import excerpt, input_file, read_text
from adaptsim.store import COLUMNS, choose_models, write_store
from adaptsim.store.catalog import catalog_cuts, normalise_layer_name
from adaptsim.store.flags import FLAGS, UNUSABLE_FLAGS
from adaptsim.units import seconds_per_byte

__all__ = [
    "FLAGS",
    "LEVELS",
    "UNUSABLE_FLAGS",
    "ImportSummary",
    "import_adaptivednn",
    "parse_code",
]

# digit -> value, per position of the file code
LEVELS = {
    "bandwidth_mbps": (50.0, 25.0, 10.0),
    "cloud_cpu_pct": (0.0, 50.0, 100.0),
    "edge_mem_pct": (0.0, 50.0, 100.0),
    "cloud_mem_pct": (0.0, 50.0, 100.0),
    "edge_cpu_pct": (0.0, 50.0, 100.0),
}
_CODE_ORDER = tuple(LEVELS)


_FOLDER_MODELS = {
    "alexnet": "alexnet",
    "densenet": "densenet121",
    "densenet121": "densenet121",
    "lenet": "lenet",
    "mobilenet": "mobilenet",
    "resnet50": "resnet50",
    "resnet50v2": "resnet50v2",
    "vgg16": "vgg16",
    "vgg19": "vgg19",
}

_HOSTS = {
    "edge_host": "adaptivednn-edge",
    "edge_arch": "aarch64",
    "edge_cpu": "ARM Cortex-A72 @ 2.3 GHz (single core)",
    "edge_cores": 1.0,
    "edge_memory_bytes": 2.0 * 2**30,
    "cloud_host": "adaptivednn-cloud",
    "cloud_arch": "x86_64",
    "cloud_cpu": "Intel Xeon E5 @ 2.3 GHz (dual core)",
    "cloud_cores": 2.0,
    "cloud_memory_bytes": 8.0 * 2**30,
}

CITATION = (
    'McNamee et al., "A Case For Adaptive Deep Neural Networks in Edge Computing", '
    "IEEE CLOUD 2021 (arXiv 2008.01814); data: github.com/qub-blesson/AdaptiveDNN"
)

_FILE_RE = re.compile(r"^weights_([0-9]{5})\.txt$")


@dataclass
class ImportSummary:
    """What an import read, and what it found."""

    source: str
    files: int = 0
    rows: int = 0
    models: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "files": self.files,
            "rows": self.rows,
            "models": self.models,
            "flags": self.flags,
            "notes": self.notes,
        }


def parse_code(code: str, path: Path) -> dict[str, float]:
    """Decode a five-digit condition code into condition values."""
    if len(code) != 5 or any(c not in "012" for c in code):
        raise UserError(
            f"{path}: condition code {code!r} must be five digits 0/1/2 "
            "[network, cloud_cpu, edge_mem, cloud_mem, edge_cpu]"
        )
    return {col: LEVELS[col][int(d)] for col, d in zip(_CODE_ORDER, code, strict=True)}


def _parse_file(path: Path) -> np.ndarray:
    """Rows of (total_s, edge_s, cloud_s, cut) with cut = -1 for three-column files."""
    rows = []
    ncols = None
    for lineno, line in enumerate(read_text(path, "AdaptiveDNN file").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) not in (3, 4):
            raise UserError(
                f"{where(path, lineno)}: expected 3 or 4 space-separated columns "
                f"(total_s edge_s cloud_s [cut]), found {len(parts)}"
            )
        if ncols is not None and len(parts) != ncols:
            raise UserError(
                f"{where(path, lineno)}: {len(parts)} columns after {ncols}-column lines"
            )
        ncols = len(parts)
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise UserError(
                f"{where(path, lineno)}: non-numeric value in {excerpt(line.strip())}"
            ) from None
        if not all(math.isfinite(v) for v in values):  # negatives are real glitches: flagged
            raise UserError(f"{where(path, lineno)}: times must be finite numbers")
        if ncols == 4 and not values[3].is_integer():
            raise UserError(f"{where(path, lineno)}: cut {excerpt(parts[3])} is not a whole number")
        rows.append(values if ncols == 4 else [*values, -1.0])
    if not rows:
        raise UserError(f"{path}: no measurement lines; remove the file or re-export it")
    return np.asarray(rows, dtype=np.float64)


def _read_cut_points(dirs: list[Path], explicit: Path | None) -> pd.DataFrame | None:
    candidates = (
        [explicit]
        if explicit
        else [d / "cut_points.csv" for d in dirs] + [d.parent / "cut_points.csv" for d in dirs]
    )
    if explicit is not None:
        input_file(explicit, "cut points file")
    for c in candidates:
        if c is not None and c.is_file():
            try:
                cp = pd.read_csv(io.StringIO(read_text(c, "cut points file")))
            except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
                raise UserError(f"{c}: not a readable CSV ({exc})".splitlines()[0]) from None
            need = {
                "model",
                "cut_ordinal",
                "cut_layer_index",
                "cut_layer_name",
                "output_bytes_fp32",
            }
            if not need <= set(cp.columns):
                raise UserError(
                    f"{c}: cut_points.csv lacks columns {sorted(need - set(cp.columns))}"
                )
            cp["model"] = cp["model"].map(lambda m: _FOLDER_MODELS.get(m, m))
            return cp
    if explicit is not None:
        raise UserError(f"cut points file {explicit} does not exist")
    return None


@dataclass
class _PointMap:
    """Per data ordinal: layer index and name (as the data's models had them), bytes."""

    layer_index: dict[int, float]
    layer_name: dict[int, str]
    output_bytes: dict[int, float]
    by_layer: dict[int, int]  # data's layer index -> data ordinal
    notes: list[str]


def _point_map(model: str, cut_points: pd.DataFrame | None, n_lines: int) -> _PointMap:
    """Align the data's ordinals with the project's own partition points."""
    ours = catalog_cuts(model)
    notes: list[str] = []
    if cut_points is None:
        if n_lines != len(ours):
            notes.append(
                f"{model}: {n_lines} lines per file for {len(ours)} cuts and no cut_points.csv; "
                "lines taken as ordinals 1..N"
            )
        return _PointMap(
            {int(r.ordinal): float(r.layer_index) for r in ours.itertuples()},
            {int(r.ordinal): r.layer_name for r in ours.itertuples()},
            {int(r.ordinal): float(r.output_bytes) for r in ours.itertuples()},
            {int(r.layer_index): int(r.ordinal) for r in ours.itertuples()},
            notes,
        )
    theirs = cut_points[cut_points["model"] == model].sort_values("cut_ordinal")
    if theirs.empty:
        raise UserError(f"cut_points.csv has no rows for model {model}")
    # Align their cuts with ours: by ordinal when the counts agree, else by layer name.
    match: dict[int, int] = {}
    if len(theirs) == len(ours):
        match = {int(o): i for i, o in enumerate(theirs["cut_ordinal"])}
    else:
        a = [normalise_layer_name(n) for n in theirs["cut_layer_name"]]
        b = [normalise_layer_name(n) for n in ours["layer_name"]]
        sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
        for blk in sm.get_matching_blocks():
            for k in range(blk.size):
                match[int(theirs["cut_ordinal"].iloc[blk.a + k])] = blk.b + k
        unmatched = sorted(set(theirs["cut_ordinal"].astype(int)) - set(match))
        notes.append(
            f"{model}: the data's models had {len(theirs)} cuts, Keras 3 has {len(ours)}; "
            f"aligned by layer name, data ordinals {unmatched} have no Keras 3 counterpart "
            "(their bytes come from cut_points.csv)"
        )
    out_bytes: dict[int, float] = {}
    disagree = []
    for r in theirs.itertuples():
        o = int(r.cut_ordinal)
        if o in match:
            mine = float(ours["output_bytes"].iloc[match[o]])
            if mine != float(r.output_bytes_fp32):
                disagree.append(f"{o} ({mine:.0f} vs {r.output_bytes_fp32})")
            out_bytes[o] = mine
        else:
            out_bytes[o] = float(r.output_bytes_fp32)
    if disagree:
        notes.append(f"{model}: output bytes disagree with cut_points.csv at ordinals {disagree}")
    if n_lines != len(theirs):
        notes.append(
            f"{model}: files have {n_lines} lines for {len(theirs)} cuts; lines are taken as "
            f"ordinals 1..{n_lines} unless a note moves them (the mapping is uncertain; see the "
            "data's README)"
        )
    return _PointMap(
        {int(r.cut_ordinal): float(r.cut_layer_index) for r in theirs.itertuples()},
        {int(r.cut_ordinal): str(r.cut_layer_name) for r in theirs.itertuples()},
        out_bytes,
        {int(r.cut_layer_index): int(r.cut_ordinal) for r in theirs.itertuples()},
        notes,
    )


# Lines that measured another cut than their position says, per (model, lines per
# file, cuts): {line: ordinal}. ResNet50 (2020-05-27) has 23 lines for 24 cuts. Its
# line 3 measured an edge running the whole body: edge time as long as the last
# lines', cloud under 5 ms, and a transfer that grows with 1/bandwidth like the
# 401 KB tensors of lines 20-22: activation_58 (ordinal 23). Line 23's transfer
# does not grow with 1/bandwidth (a tiny payload) and its cloud time is the
# smallest: avg_pool (ordinal 24). conv1 (ordinal 3) was not measured. The move is
# made only where the files bear it out (see _misplaced).
_MISPLACED = {("resnet50", 23, 24): {3: 23, 23: 24}}


def _out_of_order(ordinals: np.ndarray, edge_s: np.ndarray) -> bool:
    """Whether some point's edge time spikes above a later point's (see ``edge_spike``)."""
    e = edge_s[np.argsort(ordinals)]
    later_min = np.minimum.accumulate(e[::-1])[::-1]
    return bool(np.any(e[:-1] > 1.5 * later_min[1:] + 0.010))


def _misplaced(model: str, parsed, n_lines: int, n_cuts: int) -> tuple[dict[int, int], list[str]]:
    """The line moves of ``_MISPLACED`` for this model, if its files bear them out.

    Edge work only grows with the point, so a move is kept when it leaves fewer
    files with their edge times out of order than the numbering does; otherwise
    lines stay ordinals.
    """
    moves = _MISPLACED.get((model, n_lines, n_cuts))
    if not moves:
        return {}, []
    lines = np.arange(1, n_lines + 1)
    moved = np.array([moves.get(int(line), int(line)) for line in lines])
    full = [a[:, 1] for _, _, a in parsed if len(a) == n_lines]
    before = sum(_out_of_order(lines, e) for e in full)
    after = sum(_out_of_order(moved, e) for e in full)
    pairs = ", ".join(f"line {a} -> ordinal {b}" for a, b in moves.items())
    if after < before:
        return moves, [
            f"{model}: {pairs}: their times and transfers match those cuts (edge times out "
            f"of order in {before} of {len(full)} files as numbered, {after} as moved)"
        ]
    return {}, [f"{model}: the expected moves ({pairs}) are not borne out by the files; kept"]


def _model_folders(d: Path, models: set[str] | None) -> list[tuple[str, Path]]:
    if not d.is_dir():
        what = "is a file, not a folder" if d.exists() else "no such folder"
        raise UserError(f"{d}: {what}; pass folders holding outputs_<model>/ folders")
    folders = [d] if d.name.startswith("outputs_") else sorted(d.glob("outputs_*"))
    folders = [f for f in folders if f.is_dir()]
    if not folders:
        raise UserError(
            f"{d}: no outputs_<model>/ folders inside; is this an AdaptiveDNN data folder?"
        )
    out = []
    for f in folders:
        key = f.name.removeprefix("outputs_").lower()
        if key not in _FOLDER_MODELS:
            if models is not None:
                continue  # --models picks what to read: a folder it does not ask for is not read
            raise UserError(
                f"{f}: unknown model {key!r}; known: {', '.join(sorted(_FOLDER_MODELS))}"
            )
        if models is None or _FOLDER_MODELS[key] in models:
            out.append((_FOLDER_MODELS[key], f))
    return out


def _source_name(d: Path) -> str:
    base = d.parent if d.name.startswith("outputs_") else d
    return f"adaptivednn-{base.name}"


def _read_model(model: str, folder: Path, source: str, cut_points, summary) -> dict[str, list]:
    files = sorted(p for p in folder.iterdir() if p.name.startswith("weights_"))
    parsed = []
    for p in files:
        m = _FILE_RE.match(p.name)
        if not m:
            raise UserError(f"{p}: expected a name like weights_01201.txt (five digits 0/1/2)")
        parsed.append((p, parse_code(m.group(1), p), _parse_file(p)))
    if not parsed:
        raise UserError(f"{folder}: no weights_<code>.txt files")
    n_lines = int(np.median([len(a) for _, _, a in parsed]))
    pmap = _point_map(model, cut_points, n_lines)
    summary.notes.extend(pmap.notes)
    moves, notes = _misplaced(model, parsed, n_lines, len(pmap.output_bytes))
    summary.notes.extend(notes)
    cols: dict[str, list] = {c: [] for c in COLUMNS}
    for p, cond, arr in parsed:
        cut = arr[:, 3]
        if (cut < 0).all():
            ordinals = np.arange(1, len(arr) + 1)
        elif (cut == 0).any():  # 0-based Keras layer index convention
            try:
                ordinals = np.array([pmap.by_layer[int(c)] for c in cut])
            except KeyError as exc:
                raise UserError(
                    f"{p}: layer index {exc.args[0]} is not a valid cut of {model}"
                ) from None
        else:
            ordinals = cut.astype(int)
        if moves and (ordinals == np.arange(1, len(arr) + 1)).all():  # short files too
            ordinals = np.array([moves.get(int(o), int(o)) for o in ordinals])
        unknown = sorted(set(ordinals.tolist()) - set(pmap.output_bytes))
        if unknown:
            raise UserError(f"{p}: cut ordinals {unknown[:5]} are not valid points of {model}")
        n = len(arr)
        summary.files += 1
        cols["source"] += [source] * n
        cols["provenance"] += [f"{p.parent.name}/{p.name}:{i}" for i in range(1, n + 1)]
        cols["record"] += ["partition"] * n
        cols["host_role"] += ["edge+cloud"] * n
        for k, v in _HOSTS.items():
            cols[k] += [v] * n
        cols["model"] += [model] * n
        cols["point"] += ordinals.tolist()
        cols["layer_index"] += [pmap.layer_index[o] for o in ordinals]
        cols["layer_name"] += [pmap.layer_name[o] for o in ordinals]
        cols["output_bytes"] += [pmap.output_bytes[o] for o in ordinals]
        for k, v in cond.items():
            cols[k] += [v] * n
        cols["edge_cpu_quota"] += [math.nan] * n
        cols["repeats"] += [2] * n
        cols["stat"] += ["mean"] * n
        cols["total_s"] += arr[:, 0].tolist()
        cols["edge_s"] += arr[:, 1].tolist()
        cols["cloud_s"] += arr[:, 2].tolist()
        cols["comm_s"] += (arr[:, 0] - arr[:, 1] - arr[:, 2]).tolist()
        cols["flags"] += [""] * n
    return cols


def _flag(frame: pd.DataFrame) -> pd.Series:
    """Comma-separated flags per row (see FLAGS); rows are never dropped."""
    f = pd.DataFrame(index=frame.index)
    f["negative_time"] = (frame[["edge_s", "cloud_s", "total_s"]] < 0).any(axis=1)
    min_transfer_s = frame["output_bytes"] * seconds_per_byte(frame["bandwidth_mbps"])
    f["fast_transfer"] = frame["comm_s"] < min_transfer_s
    f["negative_comm"] = frame["comm_s"] < 0
    key = ["source", "model", "provenance_file"]
    by_file = frame.assign(
        provenance_file=frame["provenance"].str.rsplit(":", n=1).str[0]
    ).sort_values("point", ascending=False)
    later = by_file.groupby(key, sort=False)
    later_min = later["edge_s"].transform(lambda s: s.cummin().shift(1)).reindex(frame.index)
    f["edge_spike"] = frame["edge_s"] > 1.5 * later_min + 0.010
    for side in ("edge", "cloud"):
        grp = ["source", "model", "point", f"{side}_cpu_pct", f"{side}_mem_pct"]
        med = frame.groupby(grp)[f"{side}_s"].transform("median")
        ratio = frame[f"{side}_s"] / med
        f[f"{side}_outlier"] = ((ratio > 2) | (ratio < 0.5)) & (med > 0.005)
    # In 177 of the 178 VGG19 files of the 2021-08-20 re-run, the input layer's line has
    # block1_conv1's edge time and its 12.8 MB transfer: it repeated the next cut.
    nxt = later[["edge_s", "comm_s", "output_bytes"]].shift(1).reindex(frame.index)
    f["input_is_next_cut"] = (
        frame["layer_name"].str.startswith("input")
        & (nxt["output_bytes"] >= 2 * frame["output_bytes"])
        & (frame["edge_s"] >= 0.5 * nxt["edge_s"])
        & (frame["comm_s"] >= 0.5 * nxt["comm_s"])
    )
    names = np.array(list(f.columns))
    mask = f[list(names)].to_numpy()
    return pd.Series([",".join(names[row]) for row in mask], index=frame.index)


def import_adaptivednn(
    dirs: list[Path],
    out: Path,
    models: list[str] | None = None,
    cut_points: Path | None = None,
) -> tuple[pd.DataFrame, dict[str, ImportSummary]]:
    """Read AdaptiveDNN folders and write their rows into the store ``out``.

    Everything is parsed and checked before anything is written, and the write
    is atomic: bad input leaves the store as it was.

    Returns:
        The new rows, and an import summary per source.
    """
    t0 = time.perf_counter()
    dirs = [Path(d) for d in dirs]
    wanted = None
    if models:
        keys = choose_models(
            [m.lower() for m in models], sorted(_FOLDER_MODELS), "the AdaptiveDNN models"
        )
        wanted = {_FOLDER_MODELS[k] for k in keys}
    cp = _read_cut_points(dirs, Path(cut_points) if cut_points else None)
    columns: dict[str, list] = {c: [] for c in COLUMNS}
    summaries: dict[str, ImportSummary] = {}
    for d in dirs:
        source = _source_name(d)
        summary = summaries.setdefault(source, ImportSummary(source))
        for model, folder in _model_folders(d, wanted):
            cols = _read_model(model, folder, source, cp, summary)
            summary.models[model] = summary.models.get(model, 0) + len(cols["source"])
            for k in COLUMNS:
                columns[k] += cols[k]
    frame = pd.DataFrame(columns)
    if frame.empty:
        raise UserError("no measurements found for the models asked for")
    frame["flags"] = _flag(frame)
    for source, summary in summaries.items():
        rows = frame[frame["source"] == source]
        summary.rows = len(rows)
        for name in FLAGS:
            summary.flags[name] = int(rows["flags"].str.contains(name, regex=False).sum())
    provenance = {
        s: {
            "importer": "adaptivednn",
            "citation": CITATION,
            "paths": [str(d.resolve()) for d in dirs if _source_name(d) == s],
            "flags": FLAGS,
            "summary": summ.as_dict(),
            "import_s": round(time.perf_counter() - t0, 3),
        }
        for s, summ in summaries.items()
    }
    write_store(out, frame, provenance)
    return frame, summaries
