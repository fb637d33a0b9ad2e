"""AdaptiveDNN importer flags, each on a hand-made file whose every row's answer is known.

The files are written here, line by line, from plain numbers: clean rows have
edge times that grow with the point, cloud times that shrink, and transfers 1.5x
slower than the bandwidth allows (plus 5 ms). Then single cells are planted, one
per flag, in conditions chosen so that no other flag fires by accident. Every
row is asserted: the planted ones carry exactly their flags, all others none.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from adaptsim.importers import import_adaptivednn
from adaptsim.store.catalog import catalog_cuts
from adaptsim.store.flags import FLAGS

BANDWIDTH_MBPS = {"0": 50.0, "1": 25.0, "2": 10.0}


def _clean(model: str, code: str) -> list[list[float]]:
    """Rows (total_s, edge_s, cloud_s) of a file without anything suspicious."""
    out_bytes = catalog_cuts(model)["output_bytes"].to_numpy(dtype=float)
    n = len(out_bytes)
    rows = []
    for k in range(n):
        edge = 0.004 + 0.002 * k
        cloud = 0.004 + 0.002 * (n - k)
        comm = 1.5 * out_bytes[k] * 8 / (BANDWIDTH_MBPS[code[0]] * 1e6) + 0.005
        rows.append([edge + cloud + comm, edge, cloud])
    return rows


def _write(folder: Path, code: str, rows: list[list[float]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(" ".join(repr(float(v)) for v in r) for r in rows)
    (folder / f"weights_{code}.txt").write_text(text + "\n")


def _set(rows, line: int, *, edge=None, cloud=None, comm=None) -> None:
    """Change one line's edge, cloud or transfer time (the total follows)."""
    total, e, c = rows[line - 1]
    m = total - e - c
    e = e if edge is None else edge
    c = c if cloud is None else cloud
    m = m if comm is None else comm
    rows[line - 1] = [e + c + m, e, c]


def _import(tmp_path: Path, folder: Path, files: dict[str, list[list[float]]]):
    """Write each code's rows into ``folder`` and import the run folder above it."""
    for code, rows in files.items():
        _write(folder, code, rows)
    return import_adaptivednn([tmp_path / "data" / "run"], tmp_path / "s.parquet")


def _flags(frame: pd.DataFrame) -> dict[str, set[str]]:
    return {
        prov: set(filter(None, f.split(",")))
        for prov, f in zip(frame["provenance"], frame["flags"], strict=True)
    }


def test_each_flag_on_its_own_planted_row_and_no_other(tmp_path):
    folder = tmp_path / "data" / "run" / "outputs_lenet"
    lenet_bytes = catalog_cuts("lenet")["output_bytes"].to_numpy(dtype=float)
    files = {c: _clean("lenet", c) for c in ("00000", "10000", "20000", "00002", "01000")}
    # 00000, 10000, 20000 and 00002 share the cloud condition (0 %, 0 %); the first three
    # share the edge condition too. 00002 (edge 100 %) and 01000 (cloud 50 %) are alone
    # in theirs, so nothing planted there can be an outlier.
    _set(files["10000"], 3, edge=2.2 * files["10000"][2][1])  # 2.2x its condition's median
    _set(files["20000"], 2, cloud=3.0 * files["20000"][1][2])  # 3x its condition's median
    _set(files["00002"], 5, edge=0.1)  # 0.1 s at point 5, later points take 0.016-0.022 s
    _set(files["01000"], 4, cloud=-0.001)  # a clock glitch
    fast = 0.5 * lenet_bytes[7] * 8 / 50e6
    _set(files["00000"], 8, comm=fast)  # half the time the 50 Mbit/s link needs
    _set(files["00000"], 7, comm=-0.001)  # total below edge + cloud
    frame, summaries = _import(tmp_path, folder, files)
    expected = {
        "outputs_lenet/weights_10000.txt:3": {"edge_outlier"},
        "outputs_lenet/weights_20000.txt:2": {"cloud_outlier"},
        "outputs_lenet/weights_00002.txt:5": {"edge_spike"},
        "outputs_lenet/weights_01000.txt:4": {"negative_time"},
        "outputs_lenet/weights_00000.txt:8": {"fast_transfer"},
        # A negative transfer is also faster than the link allows.
        "outputs_lenet/weights_00000.txt:7": {"negative_comm", "fast_transfer"},
    }
    got = _flags(frame)
    assert len(got) == 5 * 10  # every row kept
    for prov, flags in got.items():
        assert flags == expected.get(prov, set()), prov
    s = summaries["adaptivednn-run"]
    counts = {name: sum(name in f for f in expected.values()) for name in FLAGS}
    assert s.flags == counts


@pytest.mark.parametrize(
    "edge_share, comm_share, flagged", [(1.0, 1.0, True), (0.4, 1.0, False), (1.0, 0.4, False)]
)
def test_an_input_line_that_measured_the_next_cut(tmp_path, edge_share, comm_share, flagged):
    # VGG16: line 1 sends the raw input (602 kB); line 2 (block1_conv1) 12.8 MB. A line 1
    # with line 2's edge time and transfer measured line 2's cut; one with 40 % of its edge
    # time did not, nor one with 40 % of its transfer (the rule asks for at least half of both).
    folder = tmp_path / "data" / "run" / "outputs_vgg16"
    rows = _clean("vgg16", "00000")
    _, e2, c2 = rows[1]
    m2 = rows[1][0] - e2 - c2
    _set(rows, 1, edge=edge_share * e2, comm=comm_share * m2)
    _write(folder, "00000", rows)
    _write(folder, "00001", _clean("vgg16", "00001"))  # an honest raw-input line
    frame, summaries = import_adaptivednn([tmp_path / "data" / "run"], tmp_path / "s.parquet")
    got = _flags(frame)
    planted = "outputs_vgg16/weights_00000.txt:1"
    for prov, flags in got.items():
        want = {"input_is_next_cut"} if (prov == planted and flagged) else set()
        assert flags == want, prov
    assert summaries["adaptivednn-run"].flags["input_is_next_cut"] == int(flagged)


def test_flag_thresholds_on_both_sides_of_each_limit(tmp_path):
    # An edge spike is a time above 1.5 x a later point's + 10 ms; an outlier is off its
    # condition's median by more than 2x either way, where that median exceeds 5 ms.
    folder = tmp_path / "data" / "run" / "outputs_lenet"
    files = {c: _clean("lenet", c) for c in ("00000", "10000", "20000", "00002", "01000")}
    # point 1's edge in the three files of edge condition (0 %, 0 %): 5, 5 and 12.5 ms:
    # 2.5x a median of exactly 5 ms, which is not above 5 ms: clean (mutant _flag_111)
    for code, edge in (("00000", 0.005), ("10000", 0.005), ("20000", 0.0125)):
        _set(files[code], 1, edge=edge)
    # a transfer of exactly 0 s (dyadic times: total - edge - cloud is exactly 0) is
    # faster than the link allows but not negative (mutant _flag_34)
    _set(files["01000"], 2, edge=0.0078125, cloud=0.03125, comm=0.0)
    # edge 100 % (alone in its condition), clean edges 0.004 + 0.002 k s:
    # point 5: later points' least is 0.014 s, the limit 0.031 s: 0.038 is a spike
    _set(files["00002"], 5, edge=0.038)
    # point 3: later least 0.010 s (point 4), the limit 0.025 s: 0.024 is not
    _set(files["00002"], 3, edge=0.024)
    # point 6 of 10000 at 0.4x its condition's median (0.014 s): an outlier below
    _set(files["10000"], 6, edge=0.4 * 0.014)
    # point 1's cloud (0.024 s, median > 5 ms) at 0.55x in 20000: inside 2x, clean
    _set(files["20000"], 1, cloud=0.55 * files["20000"][0][2])
    # point 10's cloud median is 0.006 s: 1.9x of it in 00000 is not an outlier
    _set(files["00000"], 10, cloud=1.9 * files["00000"][9][2])
    frame, _ = _import(tmp_path, folder, files)
    expected = {
        "outputs_lenet/weights_00002.txt:5": {"edge_spike"},
        "outputs_lenet/weights_10000.txt:6": {"edge_outlier"},
        "outputs_lenet/weights_01000.txt:2": {"fast_transfer"},
    }
    for prov, flags in _flags(frame).items():
        assert flags == expected.get(prov, set()), prov
