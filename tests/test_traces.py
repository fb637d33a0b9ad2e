"""Trace readers and the link's integration of bytes through a bandwidth trace."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from adaptsim.errors import UserError
from adaptsim.simulator.link import Link
from adaptsim.simulator.traces import End, Trace, TraceFormat, read_trace

DATA = Path(__file__).parent / "data"
NORWAY = Path(__file__).resolve().parent.parent / "scenarios/traces/norway_car_3.txt"


def test_two_column_norway_trace():
    t = read_trace(NORWAY, TraceFormat.two_column, end=End.loop)
    assert t.times[0] == 0.0 and len(t.times) == 266
    assert t.at(0.0) == pytest.approx(1.47846803304)
    assert t.at(t.duration_s + 0.5) == t.at(0.5)  # loops
    assert min(t.values) > 0.2 and max(t.values) < 4.3
    assert read_trace(NORWAY, scale=10).at(0.0) == pytest.approx(14.7846803304)


def test_csv_named_columns():
    t = read_trace(DATA / "traces/sample.csv", "csv", value_column="uplink_mbps", end=End.hold)
    assert t.times == (0.0, 5.0, 10.0, 15.0) and t.values == (10.0, 20.0, 0.0, 5.0)
    assert t.at(100.0) == 5.0  # holds


def test_mahimahi_bins_packets_into_mbps():
    t = read_trace(DATA / "traces/sample.mahimahi", "mahimahi", bin_ms=500)
    # 2 packets/ms of 1500 B = 24 Mbit/s, then one per 2 ms = 6 Mbit/s
    assert t.values[0] == pytest.approx(24.0) and t.values[1] == pytest.approx(24.0)
    assert t.values[2] == pytest.approx(6.0) and t.values[3] == pytest.approx(6.0)


def test_gnettrack_duplicates_and_gaps():
    t = read_trace(DATA / "traces/sample_gnettrack.csv", "gnettrack")
    # kbit/s -> Mbit/s; 10:00:01 twice (2000, 4000) averaged; 10:00:02 has no value.
    assert t.times == (0.0, 1.0, 4.0)
    assert t.values == pytest.approx((3.0, 3.0, 1.0))
    assert t.at(2.5) == pytest.approx(3.0)  # the gap holds the previous value
    dl = read_trace(DATA / "traces/sample_gnettrack.csv", "gnettrack", value_column="DL_bitrate")
    assert dl.at(0.0) == pytest.approx(12.0)


@pytest.mark.parametrize(
    "content, message",
    [
        ("0 1\n2 3\n1 4\n", "x.txt:3: time 1 does not increase"),
        ("0 1\n1 -2\n", "x.txt:2: negative value"),
        ("0 1\n1 nan\n", "x.txt:2: time and value must be numbers"),
        ("", "empty trace"),
        ("0 1 2\n", "x.txt:1: expected two columns"),
        ("0 fast\n", "x.txt:1: non-numeric"),
    ],
)
def test_bad_traces_name_file_and_line(tmp_path, content, message):
    p = tmp_path / "x.txt"
    p.write_text(content)
    with pytest.raises(UserError, match=message):
        read_trace(p)


def test_unknown_format_and_missing_file(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("0 1\n")
    with pytest.raises(UserError, match="unknown trace format 'pcap'"):
        read_trace(p, "pcap")
    with pytest.raises(UserError, match="does not exist"):
        read_trace(tmp_path / "nope.txt")


def test_transfer_straddling_a_change_is_integrated():
    # 8 Mbit/s = 1e6 B/s for 1 s, then 16 Mbit/s.
    link = Link(Trace((0.0, 1.0), (8.0, 16.0), 2.0, End.hold))
    # 1.5e6 B from t=0.5: 0.5e6 by t=1, the other 1e6 at 2e6 B/s -> t=1.5
    assert link.finish(0.5, 1.5e6) == pytest.approx(1.5)
    # priced at the starting rate it would have ended at 2.0
    assert link.finish(0.5, 1.5e6) < 0.5 + 1.5e6 / 1e6


def test_zero_bandwidth_stalls_the_transfer():
    link = Link(Trace((0.0, 1.0, 3.0), (8.0, 0.0, 8.0), 4.0, End.hold))
    assert link.finish(0.5, 1e6) == pytest.approx(3.5)  # 0.5e6, a 2 s stall, 0.5e6
    assert link.finish(1.5, 1e6) == pytest.approx(4.0)  # starts inside the stall
    dead = Link(Trace((0.0, 1.0), (8.0, 0.0), 2.0, End.hold))
    assert math.isinf(dead.finish(0.5, 1e6))


def test_looping_trace_capacity_is_periodic():
    link = Link(Trace((0.0, 1.0), (8.0, 0.0), 2.0, End.loop))
    assert link.capacity(2.0) == pytest.approx(1e6)
    assert link.capacity(4.5) == pytest.approx(2.5e6)
    assert link.finish(0.5, 1e6) == pytest.approx(2.5)  # 0.5e6, stall to 2.0, 0.5e6


def test_a_trace_is_defined_from_t0_inline_steps_must_start_there():
    # A step trace says its value from t = 0: a later first step is refused, not guessed.
    with pytest.raises(UserError, match=r"first step starts at 10 s.*add \[0, VALUE\]"):
        Trace.steps([[10.0, 5.0], [20.0, 50.0]], End.hold, where_="s.yaml: traces.x.steps")
    t = Trace.steps([[0.0, 5.0], [10.0, 50.0]], End.hold)
    # the value, the link and the vectorised lookup agree at every time from 0 on
    link = Link(t)
    for time_s, value in [(0.0, 5.0), (9.99, 5.0), (10.0, 50.0), (1e6, 50.0)]:
        assert t.at(time_s) == value and t.at_many([time_s])[0] == value
    assert link.capacity(10.0) == pytest.approx(5e6 / 8 * 10)  # 10 s at 5 Mbit/s, nothing else


def test_file_traces_are_shifted_to_start_at_zero(tmp_path):
    p = tmp_path / "late.txt"
    p.write_text("100 4\n101 8\n")
    t = read_trace(p, end=End.hold)
    assert t.times == (0.0, 1.0) and t.at(0.0) == 4.0 and t.at(1.0) == 8.0


def test_binary_folder_and_non_utf8_traces_are_one_line_errors(tmp_path):
    (tmp_path / "bin.txt").write_bytes(b"0 1\n\x00\x00\x00")
    (tmp_path / "latin.txt").write_bytes("0 1 # caf\xe9\n".encode("latin-1"))
    (tmp_path / "dir").mkdir()
    for name, message in [
        ("bin.txt", "bin.txt is a binary file"),
        ("latin.txt", "latin.txt is not UTF-8"),
        ("dir", "dir is a folder"),
    ]:
        for fmt in ("two_column", "csv", "mahimahi", "gnettrack"):
            with pytest.raises(UserError, match=message):
                read_trace(tmp_path / name, fmt)


def test_mahimahi_bins_are_bounded_before_they_are_made(tmp_path):
    p = tmp_path / "m.txt"
    p.write_text("0\n1\n1000000000000\n")  # 1e12 ms: 1e10 bins of 100 ms
    with pytest.raises(UserError, match=r"1e\+10 bins .*limits.max_trace_steps"):
        read_trace(p, "mahimahi")
    p.write_text("0\n1\n250000\n")  # 2501 bins: fine, unless the limit is lower
    assert len(read_trace(p, "mahimahi").times) == 2501
    with pytest.raises(UserError, match="limit 2000"):
        read_trace(p, "mahimahi", max_steps=2000)


@pytest.mark.parametrize(
    "times, values, end, zero_from",
    [
        ((0.0, 5.0), (20.0, 0.0), End.hold, 5.0),
        ((0.0, 5.0, 8.0), (20.0, 0.0, 0.0), End.hold, 5.0),
        ((0.0, 5.0), (0.0, 20.0), End.hold, None),
        ((0.0, 5.0), (20.0, 0.0), End.loop, None),  # it comes back every period
        ((0.0,), (0.0,), End.hold, 0.0),
    ],
)
def test_zero_from_says_when_the_link_is_dead_for_good(times, values, end, zero_from):
    t = Trace(times, values, times[-1] + 1.0, end)
    assert t.zero_from() == zero_from
    if zero_from is not None:
        assert math.isinf(Link(t).finish(zero_from + 1.0, 1.0))


def test_row_count_is_bounded_before_parsing(tmp_path):
    p = tmp_path / "long.txt"
    p.write_text("".join(f"{i} 5\n" for i in range(3000)))
    assert len(read_trace(p).times) == 3000
    with pytest.raises(UserError, match=r"long.txt: 3e\+03 rows .*limit 2000 steps"):
        read_trace(p, max_steps=2000)
