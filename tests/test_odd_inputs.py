"""Inputs no one here has seen: odd files that must load, bad ones that must be one line.

Users bring traces from other networks and tools (Mahimahi, G-NetTrack, CSV
exported by spreadsheets on Windows, 5G traces with 10 ms steps), YAML written by
hand, and calibrations from other versions. Each case is a class of input, not an
example of one failure:

- ``VALID``: odd but valid trace files (Windows line endings, a UTF-8 byte order
  mark, comma- or semicolon-separated two-column files, a header line,
  semicolon/tab CSV, blanks around CSV names, sub-second steps, a late or
  negative start). Each loads to the steps worked out by hand in the table, and a
  scenario over it simulates with every frame counted and finite latencies.
- ``BAD``: bad input through the real CLI (``adaptsim run``): exit 2, exactly one
  short line on stderr that names the file (and line) and says how to fix it, no
  traceback, nothing written.
- A Hypothesis property over trace *text*: whatever the bytes, a reader returns a
  well-formed trace or raises :class:`UserError`; every trace that loads
  simulates to finite latencies (or counts the frames that never finished) in
  bounded time.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from adaptsim.cli import app
from adaptsim.errors import UserError
from adaptsim.files import load_yaml
from adaptsim.simulator import run_scenario, scenario_from_dict
from adaptsim.simulator.traces import MAX_ROW_BYTES, End, read_trace

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CAL = REPO / "src/adaptsim/data/calibration_adaptivednn.json"
runner = CliRunner()
CAL_CACHE: dict = {}
MBPS_PER_PACKET_PER_S = 1500 * 8 / 1e6  # one 1500-byte Mahimahi packet a second, Mbit/s
GN_HEADER = "Timestamp,Longitude,Latitude,Speed,NetworkMode,DL_bitrate,UL_bitrate\n"


def _doc(bandwidth: dict, **fields) -> dict:
    doc = {
        "name": "odd",
        "model": "alexnet",
        "duration_s": 10.0,
        "arrivals": {"rate_hz": 4.0},
        "deadline_s": 1.0,
        "traces": {"bandwidth_mbps": bandwidth},
        "policies": [{"policy": "all-cloud"}, {"policy": "static", "params": {"point": 6}}],
        "seeds": [3],
    }
    doc.update(fields)
    return doc


# name: (format, file content, extra trace fields, expected times, expected values)
VALID = {
    "windows line endings": ("two_column", "0 5\r\n1 6\r\n", {}, (0, 1), (5, 6)),
    "utf-8 byte order mark": ("two_column", "\ufeff0 5\n1 6\n", {}, (0, 1), (5, 6)),
    "comma separated, no header": ("two_column", "0,5\n1.5,6\n", {}, (0, 1.5), (5, 6)),
    "semicolon separated, trailing": ("two_column", "0; 5;\n2; 7;\n", {}, (0, 2), (5, 7)),
    "a header line": ("two_column", "time_s bandwidth_mbps\n0 5\n1 6\n", {}, (0, 1), (5, 6)),
    "a CSV header in a two-column file": (
        "two_column",
        "time,bw\r\n0,5\r\n1,6\r\n",
        {},
        (0, 1),
        (5, 6),
    ),
    "a late start": ("two_column", "100 4\n101 8\n", {}, (0, 1), (4, 8)),
    "a negative start": ("two_column", "-5 5\n0 6\n", {}, (0, 5), (5, 6)),
    "a gap of zeros": ("two_column", "0 5\n1 0\n60 0\n61 7\n", {}, (0, 1, 60, 61), (5, 0, 0, 7)),
    "csv with blanks around names and cells": (
        "csv",
        "time_s , value\n0 , 5\n\n1 , 6\n",
        {},
        (0, 1),
        (5, 6),
    ),
    "csv from a European spreadsheet (semicolons, CRLF, BOM)": (
        "csv",
        "\ufefftime_s;value\r\n0;5\r\n1;6\r\n",
        {},
        (0, 1),
        (5, 6),
    ),
    "csv tab separated, named columns": (
        "csv",
        "t\tuplink_mbps\n0\t5\n2\t9\n",
        {"time_column": "t", "value_column": "uplink_mbps"},
        (0, 2),
        (5, 9),
    ),
    "mahimahi with CRLF and a BOM": (
        "mahimahi",
        "\ufeff0\r\n0\r\n999\r\n1000\r\n",
        {"bin_ms": 1000},
        (0, 1),
        (3 * MBPS_PER_PACKET_PER_S, 1 * MBPS_PER_PACKET_PER_S),
    ),
    "gnettrack tab separated (its own log format)": (
        "gnettrack",
        GN_HEADER.replace(",", "\t")
        + "2018.02.12_13.50.39\t1\t1\t0\tLTE\t900\t2000\n"
        + "2018.02.12_13.50.41\t1\t1\t0\tLTE\t900\t4000\n",
        {},
        (0, 2),
        (2, 4),
    ),
}


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))  # no newline translation: CRLF stays
    return path


@pytest.mark.parametrize("case", list(VALID), ids=list(VALID))
def test_odd_but_valid_traces_load_and_simulate(case, tmp_path):
    fmt, content, extra, times, values = VALID[case]
    path = _write(tmp_path / "trace.txt", content)
    kwargs = {k: v for k, v in extra.items() if k != "bin_ms"}
    trace = read_trace(path, fmt, end=End.hold, bin_ms=extra.get("bin_ms", 100), **kwargs)
    assert trace.times == pytest.approx(times) and trace.values == pytest.approx(values)
    sc = scenario_from_dict(
        _doc({"file": str(path), "format": fmt, **extra}), "odd.yaml", tmp_path, CAL_CACHE
    )
    _assert_sound(run_scenario(sc), sc)


def test_five_g_traces_with_ten_millisecond_steps_load_and_simulate(tmp_path):
    """3000 steps of 10 ms cycling 100..900 Mbit/s: every step kept, none merged."""
    rows = "".join(f"{i * 0.01:.2f} {100 + 200 * (i % 5)}\n" for i in range(3000))
    path = _write(tmp_path / "5g.txt", rows)
    trace = read_trace(path, end=End.loop)
    assert len(trace.times) == 3000 and trace.duration_s == pytest.approx(30.0)
    for t, want in [(0.0, 100), (0.015, 300), (0.041, 900), (0.05, 100), (30.02, 500)]:
        assert trace.at(t) == want, t
    sc = scenario_from_dict(_doc({"file": str(path)}), "5g.yaml", tmp_path, CAL_CACHE)
    _assert_sound(run_scenario(sc), sc)


def _assert_sound(res, sc) -> None:
    """Every frame counted; finished frames have finite, non-negative latencies."""
    assert not res.errors
    s = res.summary
    assert (s["requests"] == s["finished"] + s["unfinished"]).all()
    assert s["requests"].sum() == round(sc.duration_s * sc.rate_hz) * len(sc.policies)
    fin = res.records[res.records["finished"]]
    assert len(fin) and np.isfinite(fin["latency_s"]).all() and (fin["latency_s"] >= 0).all()


# -- bad input through the CLI --------------------------------------------------------------


class Case:
    """A bad input: what to write, the scenario over it, and what the one line must say."""

    def __init__(self, content, fmt="two_column", says=(), trace=None, **fields):
        self.content, self.fmt, self.says = content, fmt, says
        self.trace, self.fields = trace or {}, fields


BAD = {
    "csv whose value column is not named": Case(
        "time_s,bandwidth_mbps\n0,5\n", "csv", ("t.txt:1", "'value'", "value_column")
    ),
    "csv with an empty cell": Case(
        "time_s,value\n0,5\n1,\n", "csv", ("t.txt:3", "fill it in or delete the row")
    ),
    "csv with a short row": Case("time_s,value\n0,5\n1\n", "csv", ("t.txt:3", "short row")),
    "csv with decimal commas": Case(
        "time_s;value\n0;5,5\n", "csv", ("t.txt:2", "decimal comma", "point")
    ),
    "csv with only a header": Case("time_s,value\n", "csv", ("t.txt", "empty trace")),
    "csv empty": Case("", "csv", ("t.txt", "empty CSV file", "header row")),
    "two-column file with four columns": Case("0 1 2 3\n", says=("t.txt:1", "format: csv")),
    "two-column with a decimal comma": Case("0 5,5\n", says=("t.txt:1", "found 3")),
    "a junk line megabytes long": Case("0 5\n1 " + "x" * 2_000_000 + "\n", says=("t.txt:2",)),
    "a mahimahi junk line megabytes long": Case(
        "0\n" + "9" * 2_000_000 + "\n", "mahimahi", ("t.txt:2", "integer millisecond")
    ),
    "UTF-16 text (Windows Notepad 'Unicode')": Case(
        "0 5\n1 6\n".encode("utf-16"), says=("t.txt", "UTF-16", "save it as UTF-8")
    ),
    "a mahimahi stamp past the bin limit stops the read there": Case(
        "0\n1\n5000\nnot read\n",
        "mahimahi",
        ("t.txt:3", "limits.max_trace_steps"),
        limits={"max_trace_steps": 10},
    ),
    "a file bigger than its steps could take": Case(
        "0 " + "5" * (12 * MAX_ROW_BYTES) + "\n",
        says=("t.txt", "bytes", "limits.max_trace_steps"),
        limits={"max_trace_steps": 10},
    ),
    "a bandwidth trace in bit/s": Case(
        "0 5000000\n1 6000000\n",
        says=("traces.bandwidth_mbps", "6e+06 Mbit/s", "scale: 1e-6", "limits.max_bandwidth_mbps"),
    ),
    "gnettrack without its bitrate column": Case(
        "Timestamp,DL_bitrate\n2018.02.12_13.50.39,900\n",
        "gnettrack",
        ("t.txt:1", "'UL_bitrate'", "value_column"),
    ),
    "gnettrack with a junk timestamp": Case(
        GN_HEADER + "yesterday" * 10000 + ",1,1,0,LTE,900,300\n",
        "gnettrack",
        ("t.txt:2", "YYYY.MM.DD_hh.mm.ss"),
    ),
}


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under root with its content's hash (size and mtime for huge files)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        if not p.is_file():
            out[str(p.relative_to(root))] = ""
        elif st.st_size > 1 << 26:
            out[str(p.relative_to(root))] = f"{st.st_size}:{st.st_mtime_ns}"
        else:
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _refused(tmp_path: Path, argv: list[str], says) -> str:
    """Run the CLI; it must exit 2 with one short line saying ``says`` and write nothing."""
    before = _snapshot(tmp_path)
    r = runner.invoke(app, argv)
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.exception)
    assert len(lines) == 1 and "Traceback" not in r.stderr + r.stdout, r.stderr
    assert lines[0].startswith("adaptsim: error: ") and len(lines[0]) < 600, lines[0][:800]
    for part in says:
        assert part in lines[0], (part, lines[0])
    assert _snapshot(tmp_path) == before, "a refusal wrote files"
    return lines[0]


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_traces_are_one_short_line_that_says_how_to_fix(case, tmp_path, monkeypatch):
    c = BAD[case]
    _write(tmp_path / "t.txt", c.content)
    doc = _doc({"file": "t.txt", "format": c.fmt, **c.trace}, **c.fields)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.chdir(tmp_path)  # the default results/ folder would land here
    _refused(tmp_path, ["run", "s.yaml"], c.says)


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as fh:
        fh.truncate(size)  # all zero bytes; takes no disk space
    return path


@pytest.mark.parametrize("field", ["trace", "scenario", "calibration"])
def test_a_huge_wrong_file_is_refused_without_reading_it(field, tmp_path, monkeypatch):
    """A 6 GB file named by mistake (a video, a disk image): refused in a moment,
    not read into memory first (which would take minutes or end in a MemoryError)."""
    big = _sparse(tmp_path / "big.bin", 6 << 30)
    doc = _doc({"file": "big.bin"} if field == "trace" else {"constant": 5.0})
    if field == "calibration":
        doc["calibration"] = "big.bin"
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.chdir(tmp_path)
    t0 = time.perf_counter()
    _refused(tmp_path, ["run", str(big if field == "scenario" else "s.yaml")], ("big.bin",))
    assert time.perf_counter() - t0 < 5.0


def test_a_key_given_twice_in_a_scenario_is_refused_with_both_lines(tmp_path, monkeypatch):
    """PyYAML keeps the last of two equal keys silently: a run with the wrong deadline."""
    text = yaml.safe_dump(_doc({"constant": 5.0})) + "deadline_s: 0.01\n"
    lines = text.splitlines()
    first = lines.index("deadline_s: 1.0") + 1
    (tmp_path / "s.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    _refused(
        tmp_path,
        ["run", "s.yaml"],
        (f"s.yaml:{len(lines)}:", "'deadline_s' is given twice", f"line {first}", "keep one"),
    )


def test_a_key_given_twice_in_a_flow_mapping_and_in_a_sweep_is_refused(tmp_path):
    doc = _doc({"constant": 5.0})
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(doc))
    doc.pop("arrivals")
    text = yaml.safe_dump(doc) + "arrivals: {rate_hz: 4.0, rate_hz: 400.0}\n"
    (tmp_path / "s.yaml").write_text(text)
    _refused(tmp_path, ["run", str(tmp_path / "s.yaml")], ("'rate_hz' is given twice",))
    (tmp_path / "w.yaml").write_text("name: w\nbase: ok.yaml\nseeds: 2\nseeds: 5\n")
    _refused(tmp_path, ["sweep", str(tmp_path / "w.yaml"), "--dry-run"], ("w.yaml:4:", "'seeds'"))


def test_yaml_merge_keys_may_still_be_overridden(tmp_path):
    """``<<: *base`` then a key of its own is YAML's way to override, not a repeat."""
    p = tmp_path / "m.yaml"
    p.write_text("base: &b {rate_hz: 4.0, kind: poisson}\nmine:\n  <<: *b\n  rate_hz: 2.0\n")
    assert load_yaml(p, "scenario")["mine"] == {"rate_hz": 2.0, "kind": "poisson"}


def test_a_calibration_saved_with_a_byte_order_mark_loads(tmp_path):
    cal = json.loads(SHIPPED_CAL.read_text())
    cal["models"] = {"alexnet": cal["models"]["alexnet"]}
    (tmp_path / "cal.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(cal).encode())
    sc = scenario_from_dict(
        _doc({"constant": 5.0}, calibration="cal.json"), "bom.yaml", tmp_path, {}
    )
    assert sc.model.model == "alexnet"


# scenario fields: (dotted field, value, what the one line must say)
FIELDS = {
    "true as a duration (yes/on/true)": ("duration_s", True, ("field duration_s", "true/false")),
    "true as a rate": ("arrivals.rate_hz", True, ("field arrivals.rate_hz", "give a number")),
    "true as a seed": ("seeds", [True], ("field seeds", "true/false")),
    "true as a trace step value": (
        "traces.bandwidth_mbps",
        {"steps": [[0, True]]},
        ("traces.bandwidth_mbps.steps", "true/false"),
    ),
    "a latency of 1e300 s": ("one_way_latency_s", 1e300, ("field one_way_latency_s",)),
    "a deadline of 1e300 s": ("deadline_s", 1e300, ("field deadline_s",)),
    "a pause of 1e300 s": ("repartition.pause_s", 1e300, ("field repartition.pause_s",)),
    "a monitor delay of 1e300 s": ("observe.delay_s", 1e300, ("field observe.delay_s",)),
    "a log-normal reading noise of 100": ("observe.noise", 100, ("field observe.noise",)),
    "a billion cloud servers (8 GB of free times)": (
        "cloud.servers",
        10**9,
        ("field cloud.servers", "limits.max_frames", "fewer servers"),
    ),
    "a bandwidth of 1e-300 Mbit/s (broke the link's sums)": (
        "traces.bandwidth_mbps",
        {"steps": [[0, 1e-300], [1, 5]]},
        ("traces.bandwidth_mbps", "1e-300 Mbit/s", "write 0 for no link"),
    ),
}


@pytest.mark.parametrize("case", list(FIELDS), ids=list(FIELDS))
def test_nonsense_scenario_fields_are_one_line(case, tmp_path):
    field, value, says = FIELDS[case]
    doc = _doc({"constant": 5.0})
    node, (*head, last) = doc, field.split(".")
    for k in head:
        node = node.setdefault(k, {})
    node[last] = value
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    _refused(tmp_path, ["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "r")], says)


def test_short_forms_a_number_for_a_trace_and_a_name_for_a_policy(tmp_path):
    """``bandwidth_mbps: 25`` and ``policies: [oracle]`` mean the obvious long forms."""
    short = _doc(5.0, policies=["all-cloud", {"policy": "static", "params": {"point": 6}}])
    long = _doc({"constant": 5.0})
    a = scenario_from_dict(short, "short.yaml", tmp_path, CAL_CACHE)
    b = scenario_from_dict(long, "long.yaml", tmp_path, CAL_CACHE)
    assert a.bandwidth == b.bandwidth and a.policies == b.policies
    assert run_scenario(a).records.equals(run_scenario(b).records)


@pytest.mark.parametrize(
    "argv, says",
    [
        (["sweep", "SWEEP", "--scheduler", "junk"], ("--scheduler 'junk'", "tcp://HOST:PORT")),
        (["sweep", "SWEEP", "--scheduler", "tcp://h:99999"], ("--scheduler", "tcp://HOST:PORT")),
        (["validate", "SCEN", "--seed", str(2**64)], ("--seed 18446744073709551616",)),
        (["validate", "SCEN", "--policies", ",,"], ("--policies ',,'", "at least one")),
    ],
)
def test_command_line_addresses_seeds_and_lists_are_checked_first(argv, says, tmp_path):
    """Each was a traceback or a real run before (validate's real run is never reached:
    the refusal comes before it)."""
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(_doc({"constant": 5.0})))
    (tmp_path / "w.yaml").write_text("name: w\nbase: s.yaml\n")
    paths = {"SWEEP": str(tmp_path / "w.yaml"), "SCEN": str(tmp_path / "s.yaml")}
    _refused(tmp_path, [paths.get(a, a) for a in argv], says)


@pytest.mark.parametrize("command", ["import scission", "profile"])
def test_a_store_output_that_is_not_a_store_is_refused_before_any_work(command, tmp_path):
    """``profile`` merged into --out after its first condition (minutes of measuring)
    and only then found a calibration JSON there; now it is refused up front."""
    cal = _write(tmp_path / "cal.json", SHIPPED_CAL.read_text())
    head = "system,model,block_index,input_layer,output_layer,latency_s,output_size_bytes\n"
    blocks = _write(tmp_path / "b.csv", head + "edge-2500,vgg16,0,0,3,0.01,1000\n")
    args = ["import", "scission", str(blocks)] if command == "import scission" else []
    args = args or ["profile", "--host", "edge", "-m", "lenet"]
    _refused(tmp_path, [*args, "--out", str(cal)], (f"--out {cal}", "not a store"))


def test_scission_block_index_must_be_whole(tmp_path):
    """A fractional block index was truncated silently into another block."""
    head = "system,model,block_index,input_layer,output_layer,latency_s,output_size_bytes\n"
    csv = _write(tmp_path / "b.csv", "\ufeff" + head + "edge-2500,vgg16,1.5,0,3,0.01,1000\n")
    _refused(
        tmp_path,
        ["import", "scission", str(csv), "--out", str(tmp_path / "s.parquet")],
        ("b.csv:2", "block_index 1.5", "whole number"),
    )


# -- property: any trace text loads or is refused; what loads simulates ---------------------

TOKENS = ["0", "1", "5", "0.5", "1e3", "-2", "nan", "inf", "1e400", " ", "\t", ",", ";", "#"]
TOKENS += ["\n", "\r\n", "x", "\ufeff", "2018.02.12_13.50.39", "-", "", "time_s", "value"]


GOOD_TIMES = st.sampled_from(["{i}", "{q}", "{i}.0"])
ODD_TIMES = st.sampled_from(["x", "nan", "", "-{i}", "1e400", "{i}e-12"])
GOOD_VALUES = st.sampled_from(["5", "0", "0.5", "12.25", "100", "1e3", "0"])
ODD_VALUES = st.sampled_from(["1e-9", "1e9", "1e10", "-1", "", "nan", "3,5", "x", "true"])


@st.composite
def trace_texts(draw):
    """Rows of the format's shape with, now and then, an odd cell; or token soup; or bytes."""
    fmt = draw(st.sampled_from(["two_column", "csv", "mahimahi", "gnettrack"]))
    head = {"csv": "time_s,value\n", "gnettrack": "Timestamp,UL_bitrate\n"}.get(fmt, "")
    shape = draw(st.sampled_from(["rows", "rows", "rows", "soup", "bytes"]))
    if shape == "bytes":
        return fmt, draw(st.binary(max_size=40))
    if shape == "soup":
        return fmt, (head + "".join(draw(st.lists(st.sampled_from(TOKENS), max_size=40)))).encode()
    sep = draw(st.sampled_from([" ", "\t", ",", ";"] if fmt == "two_column" else [",", ";", "\t"]))
    rows = []
    for i in range(draw(st.integers(1, 8))):
        odd = draw(st.integers(0, 11)) == 0
        t = draw(ODD_TIMES if odd else GOOD_TIMES).format(i=i, q=i * 0.25)
        v = draw(ODD_VALUES if draw(st.integers(0, 11)) == 0 else GOOD_VALUES)
        if fmt == "gnettrack":
            t = f"2018.02.12_13.50.{i:02d}"
        rows.append(str(i * draw(st.integers(0, 40))) if fmt == "mahimahi" else f"{t}{sep}{v}")
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    bom = draw(st.sampled_from(["", "", "\ufeff"]))
    return fmt, (bom + head.replace(",", sep) + eol.join(rows) + eol).encode()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("odd-props")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=trace_texts(), end=st.sampled_from(["loop", "hold"]))
def test_any_trace_text_loads_or_is_refused_and_what_loads_simulates(folder, case, end):
    fmt, raw = case
    path = _write(folder / "gen.txt", raw)
    try:
        trace = read_trace(path, fmt, end=End(end))
    except UserError as exc:
        event(f"{fmt}: refused by the reader")
        assert str(exc) and "\n" not in str(exc) and len(str(exc)) < 600
        return
    t = np.asarray(trace.times)
    assert t[0] == 0.0 and (np.diff(t) > 0).all() and trace.duration_s > t[-1]
    assert all(math.isfinite(v) and v >= 0 for v in trace.values)
    try:
        sc = scenario_from_dict(
            _doc({"file": str(path), "format": fmt, "end": end}, duration_s=5.0),
            "gen.yaml",
            folder,
            CAL_CACHE,
        )
    except UserError as exc:  # e.g. zero throughout, or too many looped steps
        event(f"{fmt}: read, refused by the scenario")
        assert "\n" not in str(exc) and "gen.yaml" in str(exc)
        return
    event(f"{fmt}: read and simulated")
    t0 = time.perf_counter()
    res = run_scenario(sc)
    assert time.perf_counter() - t0 < 30.0
    s = res.summary
    assert not res.errors and (s["requests"] == s["finished"] + s["unfinished"]).all()
    fin = res.records[res.records["finished"]]
    assert np.isfinite(fin["latency_s"]).all() and (fin["latency_s"] >= 0).all()
    assert np.isinf(res.records.loc[~res.records["finished"], "latency_s"]).all()
