"""Time-varying conditions: piecewise-constant traces and the readers for real ones.

A :class:`Trace` is a step function of time: value ``values[j]`` holds on
``[times[j], times[j+1])``. Past its end it either loops (period = its duration)
or holds its last value. A trace says its value from t = 0 on: file traces are
shifted so that their first row is at t = 0; inline ``steps`` must start at
t = 0 (a first step later than that is refused, since the value before it would
be a guess).

Readers (``format``):

- ``two_column``: ``time_s value`` per line, separated by blanks (the Norway
  HSDPA and FCC traces), a comma or a semicolon; blank lines, ``#`` comments and
  one header line (no number in it) before the first row skipped.
- ``csv``: a header row; ``time_column`` and ``value_column`` name the columns;
  the delimiter (comma, semicolon or tab) is the header's.
- ``mahimahi``: one line per 1500-byte delivery opportunity, integer ms since the
  start, repeated ms = several packets; turned into Mbit/s per ``bin_ms`` bin.
- ``gnettrack``: G-NetTrack Pro CSV: ``Timestamp`` as ``YYYY.MM.DD_hh.mm.ss``, a
  bitrate column in kbit/s (``value_column``, default ``UL_bitrate``); duplicate
  timestamps are averaged, gaps hold the previous value.

Every reader takes Windows line endings and a UTF-8 byte order mark. Bad traces
(non-monotonic time, negative or NaN values, empty cells, empty, unknown format,
binary, UTF-16 or not UTF-8, too many steps or bytes for the memory they would
take) raise :class:`adaptsim.errors.UserError` naming the file and line.
"""

from __future__ import annotations

import bisect
import csv
import io
import math
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import numpy as np

from adaptsim.errors import UserError, where
from adaptsim.files import excerpt, input_file, read_text

__all__ = [
    "EPS_S",
    "MAX_TIME_S",
    "MAX_TRACE_STEPS",
    "MAX_VALUE",
    "End",
    "Trace",
    "TraceFormat",
    "read_trace",
]

EPS_S = 1e-9  # times this close to a step boundary are on it
MAX_TIME_S = 1e9  # about 32 years: later times are a unit mistake (ms for s), not a trace
MAX_VALUE = 1e9  # Mbit/s or %: larger values would overflow the link's byte counts
MAX_TRACE_STEPS = 1_000_000  # default bound on a trace's steps (raise: limits.max_trace_steps)
# Bytes a step may take on average before a file is refused unread: rows are tens of
# bytes (G-NetTrack's a few hundred), and 1 kB per step lets a Mahimahi file hold 25
# minutes at 1 Gbit/s; a larger file is a wrong file, and would be read into memory.
MAX_ROW_BYTES = 1024


class End(StrEnum):
    """What a trace does after its last step."""

    loop = "loop"
    hold = "hold"


class TraceFormat(StrEnum):
    two_column = "two_column"
    csv = "csv"
    mahimahi = "mahimahi"
    gnettrack = "gnettrack"


@dataclass(frozen=True)
class Trace:
    """A piecewise-constant function of time (see the module docstring).

    Attributes:
        times: step start times, seconds, strictly increasing, ``times[0] == 0``.
        values: the value on each step.
        duration_s: where the trace ends (the last step's end).
        end: loop or hold past ``duration_s``.
        label: where it came from, for reports.
    """

    times: tuple[float, ...]
    values: tuple[float, ...]
    duration_s: float
    end: End = End.hold
    label: str = ""

    @classmethod
    def constant(cls, value: float, label: str = "") -> Trace:
        return cls((0.0,), (float(value),), 1.0, End.hold, label or f"constant {value:g}")

    @classmethod
    def steps(cls, steps, end: End = End.hold, label: str = "", where_: str = "steps") -> Trace:
        """From ``[[time_s, value], ...]`` (inline YAML steps)."""
        times = [float(t) for t, _ in steps]
        values = [float(v) for _, v in steps]
        _check(times, values, where_, [None] * len(times))
        if times[0] != 0.0:
            raise UserError(
                f"{where_}: the first step starts at {times[0]:g} s; a trace must give its "
                f"value from t = 0: add [0, VALUE] as the first step"
            )
        last = times[-1] - times[-2] if len(times) > 1 else 1.0
        return cls(tuple(times), tuple(values), times[-1] + last, end, label or "inline steps")

    def _local(self, t: float) -> float:
        """Time within the trace (looped traces wrap around).

        ``t`` is infinite only for a frame that never finishes (behind a link that
        stalled for good): any value will do for it, so the last step's.
        """
        if not math.isfinite(t):
            return self.times[-1]
        if self.end is End.loop and t >= self.duration_s:
            return math.fmod(t, self.duration_s)
        return t

    def at(self, t: float) -> float:
        """The value at time ``t`` (seconds).

        A time within a nanosecond before a step counts as on it: wrapping a looped
        trace (``fmod``) can land a hair short of the step it should reach.
        """
        i = bisect.bisect_right(self.times, self._local(t) + EPS_S) - 1
        return self.values[max(i, 0)]

    def at_many(self, t: np.ndarray) -> np.ndarray:
        """``at`` for an array of times (vectorised)."""
        t = np.asarray(t, dtype=np.float64)
        local = (
            np.where(t >= self.duration_s, np.fmod(t, self.duration_s), t)
            if (self.end is End.loop)
            else t
        )
        idx = np.searchsorted(np.asarray(self.times), local + EPS_S, side="right") - 1
        return np.asarray(self.values)[np.maximum(idx, 0)]

    def next_change(self, t: float) -> float:
        """The time of the first step after ``t`` (inf when the value holds for good)."""
        local = self._local(t)
        base = t - local
        i = bisect.bisect_right(self.times, local + EPS_S)
        if i < len(self.times):
            return base + self.times[i]
        return base + self.duration_s if self.end is End.loop else math.inf

    def breakpoints(self, until_s: float) -> list[float]:
        """Every step start in ``[0, until_s]``, loops unrolled."""
        if self.end is End.hold:
            return [t for t in self.times if t <= until_s]
        out, base = [], 0.0
        while base <= until_s:
            out += [base + t for t in self.times if base + t <= until_s]
            base += self.duration_s
        return out

    def delayed(self, up_lag_s: float, down_lag_s: float, until_s: float) -> Trace:
        """The trace as a real testbed's follower applies it: each step late.

        The follower (:class:`~adaptsim.testbed.conditions.ConditionFollower`) puts the
        value at t = 0 in place before the clock starts, then follows the steps in
        ``(0, until_s]`` (a run's duration; loops unrolled) one after the other, none
        after. A step to a higher value comes in place ``up_lag_s`` after its time (a
        stressor starting: a memory stressor once its bytes are resident), one to a
        lower value ``down_lag_s`` after it (a stressor stopping), never before the
        step before it; a level overtaken so is never in place. The last value holds
        for good (a hold trace). No lag, or no step to follow, gives the trace itself.
        """
        for lag in (up_lag_s, down_lag_s):
            if not (math.isfinite(lag) and lag >= 0):
                raise ValueError(f"a condition lag must be finite seconds >= 0, not {lag!r}")
        steps = sorted({t for t in self.breakpoints(until_s) if t > 0})
        if (up_lag_s == 0 and down_lag_s == 0) or not steps:
            return self
        times, values = [0.0], [self.at(0.0)]
        for t in steps:
            v = self.at(t)
            if v == values[-1]:
                continue
            when = max(t + (up_lag_s if v > values[-1] else down_lag_s), times[-1])
            if when == times[-1] and len(times) > 1:  # the level before never came in place
                values[-1] = v
            else:
                times.append(when)
                values.append(v)
        label = f"{self.label} (steps up {up_lag_s:.3g} s, down {down_lag_s:.3g} s late)"
        end = max(until_s + max(up_lag_s, down_lag_s), times[-1] + 1.0)
        return Trace(tuple(times), tuple(values), end, End.hold, label)

    def zero_from(self) -> float | None:
        """The time from which the value is 0 for good (``None``: it never is)."""
        if self.end is End.loop:
            return 0.0 if max(self.values) <= 0 else None
        if self.values[-1] > 0:
            return None
        positive = [j for j, v in enumerate(self.values) if v > 0]
        return self.times[positive[-1] + 1] if positive else 0.0

    def scaled(self, factor: float) -> Trace:
        return Trace(
            self.times,
            tuple(v * factor for v in self.values),
            self.duration_s,
            self.end,
            f"{self.label} x{factor:g}" if factor != 1 else self.label,
        )

    def mean(self) -> float:
        """Time-weighted mean over one period."""
        t = np.r_[self.times, self.duration_s]
        return float(np.sum(np.diff(t) * np.asarray(self.values)) / self.duration_s)


def _check(times: list[float], values: list[float], path, lines: list[int | None]) -> None:
    if not times:
        raise UserError(f"{path}: empty trace; it needs at least one time/value row")
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        at = where(path, lines[i])
        if not (math.isfinite(t) and math.isfinite(v)):
            raise UserError(f"{at}: time and value must be numbers, not NaN or infinite")
        if v < 0:
            raise UserError(f"{at}: negative value {v:g}; traces hold rates and loads >= 0")
        if v > MAX_VALUE:
            raise UserError(f"{at}: value {v:g} exceeds {MAX_VALUE:g}; check the units")
        if t - times[0] > MAX_TIME_S:
            raise UserError(
                f"{at}: time {t:g} s is more than {MAX_TIME_S:g} s after the first row; "
                "check the units (seconds)"
            )
        if i and t <= times[i - 1]:
            raise UserError(
                f"{at}: time {t:g} does not increase (previous {times[i - 1]:g}); "
                "sort the trace or remove duplicate times"
            )


def _finish(times, values, lines, path, end: End) -> Trace:
    _check(times, values, path, lines)
    t0 = times[0]
    times = [t - t0 for t in times]
    last = times[-1] - times[-2] if len(times) > 1 else 1.0
    return Trace(tuple(times), tuple(values), times[-1] + last, end, Path(path).name)


_SEPARATOR = re.compile(r"[\s,;]+")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _two_column(path: Path):
    """Two numbers a line, separated by blanks, a comma or a semicolon (CSV without a header).

    One header line (no number in it, e.g. ``time_s bandwidth_mbps``) before the
    first row is skipped: it names columns, it cannot be a row.
    """
    times, values, lines = [], [], []
    header_allowed = True
    for n, line in enumerate(read_text(path, "trace file").splitlines(), start=1):
        s = [x for x in _SEPARATOR.split(line.split("#", 1)[0].strip()) if x]
        if not s:
            continue
        parsed = [_number(x) for x in s]
        if header_allowed and all(x is None for x in parsed):
            header_allowed = False
            continue
        header_allowed = False
        if len(s) != 2:
            raise UserError(
                f"{where(path, n)}: expected two columns 'time_s value' (separated by blanks, "
                f"a comma or a semicolon; decimals with a point), found {len(s)}; for more "
                "columns use format: csv with time_column and value_column"
            )
        if None in parsed:
            raise UserError(
                f"{where(path, n)}: non-numeric value in {excerpt(line.strip())}; "
                "each line is 'time_s value' (a decimal point, not a comma)"
            )
        times.append(parsed[0])
        values.append(parsed[1])
        lines.append(n)
    return times, values, lines


def _dict_rows(path: Path, what: str):
    """A CSV's column names and its rows (line number, row), for CSV-like trace formats.

    The delimiter is the header's most frequent of comma, semicolon and tab (files
    from European spreadsheets and G-NetTrack's own logs use the latter two);
    blanks around names and cells are dropped.
    """
    text = read_text(path, "trace file")
    end = text.find("\n")
    first = text if end < 0 else text[:end]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise UserError(f"{path}: empty {what}; it needs a header row and data rows")
    names = [h.strip() for h in header]

    def rows():
        for n, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue  # a blank line
            if any(c.strip() for c in cells[len(names) :]):  # its cells would shift unseen
                raise UserError(
                    f"{where(path, n)}: {len(cells)} cells under a header of {len(names)} "
                    f"columns (delimiter {delimiter!r}); give every row the header's columns"
                )
            padded = [c.strip() for c in cells] + [None] * (len(names) - len(cells))
            yield n, dict(zip(names, padded, strict=False))  # a short row: None cells

    return names, rows()


def _cell(row: dict, column: str, path: Path, n: int) -> float:
    raw = row.get(column)
    if raw is None or raw == "":
        raise UserError(
            f"{where(path, n)}: column {column!r} is empty (an empty cell or a short row); "
            "fill it in or delete the row"
        )
    value = _number(raw)
    if value is None:
        hint = " (a decimal comma? write a point)" if "," in raw else ""
        raise UserError(f"{where(path, n)}: {column} {excerpt(raw)} is not a number{hint}")
    return value


def _columns(names: list[str], wanted: list[str], path: Path, fields: str) -> None:
    twice = [c for c in wanted if names.count(c) > 1]
    if twice:
        raise UserError(
            f"{where(path, 1)}: the header names column {twice[0]!r} twice; rename one, or "
            f"name the column to read with the trace's {fields}"
        )
    missing = [c for c in wanted if c not in names]
    if missing and all(_number(n) is not None for n in names):
        raise UserError(
            f"{where(path, 1)}: the first row {excerpt(','.join(names))} is data, not a header: "
            "add a header row naming the columns, or read the file with format: two_column"
        )
    if missing:
        raise UserError(
            f"{where(path, 1)}: no column {missing[0]!r}; columns are {names}: name the "
            f"columns to read with the trace's {fields}"
        )


def _csv(path: Path, time_column: str, value_column: str):
    names, rows = _dict_rows(path, "CSV file")
    _columns(names, [time_column, value_column], path, "time_column and value_column")
    times, values, lines = [], [], []
    for n, row in rows:
        times.append(_cell(row, time_column, path, n))
        values.append(_cell(row, value_column, path, n))
        lines.append(n)
    return times, values, lines


def _mahimahi(path: Path, bin_ms: int, max_steps: int):
    """Packets per ``bin_ms`` bin, counted as the lines stream by (memory: the bins only)."""
    counts: list[int] = []
    last = -1
    for n, line in enumerate(io.StringIO(read_text(path, "trace file")), start=1):
        s = line.strip()
        if not s:
            continue
        try:
            ms = int(s) if len(s) <= 30 else int("x")
        except ValueError:
            raise UserError(
                f"{where(path, n)}: expected an integer millisecond, got {excerpt(s)}"
            ) from None
        if ms < 0 or ms < last:
            raise UserError(f"{where(path, n)}: millisecond stamps must be >= 0 and non-decreasing")
        last = ms
        b = ms // bin_ms
        if b >= max_steps:
            raise UserError(
                f"{where(path, n)}: the stamp {ms} ms makes {b + 1:.3g} bins of {bin_ms} ms "
                f"(about {(b + 1) * 24 / 1e9:.3g} GB; limit {max_steps:g}): check the stamps are "
                "ms since the start, raise bin_ms, or raise limits.max_trace_steps"
            )
        if b >= len(counts):
            counts.extend([0] * (b + 1 - len(counts)))
        counts[b] += 1
    if not counts:
        raise UserError(f"{path}: empty Mahimahi trace")
    mbps = np.asarray(counts) * 1500 * 8 / (bin_ms / 1000) / 1e6
    times = (np.arange(len(counts)) * bin_ms / 1000).tolist()
    return times, mbps.tolist(), [None] * len(counts)


def _gnettrack(path: Path, value_column: str):
    names, rows = _dict_rows(path, "G-NetTrack file")
    _columns(names, ["Timestamp", value_column], path, "value_column (e.g. DL_bitrate)")
    per_second: dict[float, list[float]] = {}
    first_line: dict[float, int] = {}
    for n, row in rows:
        stamp = row["Timestamp"] or ""
        try:
            ts = datetime.strptime(stamp, "%Y.%m.%d_%H.%M.%S").timestamp()
        except ValueError:
            raise UserError(
                f"{where(path, n)}: timestamp {excerpt(stamp)} is not YYYY.MM.DD_hh.mm.ss"
            ) from None
        raw = row[value_column] or ""
        if raw in ("", "-"):
            continue  # a gap: the previous value holds
        kbps = _number(raw)
        if kbps is None:
            raise UserError(f"{where(path, n)}: {value_column} {excerpt(raw)} is not a number")
        if per_second and ts < max(per_second):
            raise UserError(f"{where(path, n)}: timestamps go backwards")
        per_second.setdefault(ts, []).append(kbps / 1000.0)
        first_line.setdefault(ts, n)
    stamps = sorted(per_second)
    return stamps, [float(np.mean(per_second[t])) for t in stamps], [first_line[t] for t in stamps]


def _rows_within(path: Path, max_steps: int, count_rows: bool) -> None:
    """Refuse a file with more rows than ``max_steps`` (or more bytes than such rows
    take, :data:`MAX_ROW_BYTES` each) before parsing it."""
    p = input_file(path, "trace file")
    size = p.stat().st_size
    if size > (max_steps + 1) * MAX_ROW_BYTES:
        raise UserError(
            f"{path}: {size:,} bytes is more than {max_steps:g} steps of a trace take "
            f"({MAX_ROW_BYTES} bytes each): is it the right file? Thin the trace or raise "
            "limits.max_trace_steps"
        )
    if not count_rows:
        return
    rows = 0
    with p.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            rows += chunk.count(b"\n")
    if rows > max_steps + 1:
        raise UserError(
            f"{path}: {rows:.3g} rows (about {rows * 100 / 1e9:.2g} GB once read; limit "
            f"{max_steps:g} steps): thin the trace or raise limits.max_trace_steps"
        )


def read_trace(
    path: str | Path,
    fmt: TraceFormat = TraceFormat.two_column,
    *,
    end: End = End.loop,
    scale: float = 1.0,
    time_column: str = "time_s",
    value_column: str | None = None,
    bin_ms: int = 100,
    max_steps: int = MAX_TRACE_STEPS,
) -> Trace:
    """Read a trace file; see the module docstring for the formats.

    ``max_steps`` bounds the steps a trace may have (its memory), checked before
    they are made: the rows of a two-column, CSV or G-NetTrack file, the bins of
    a Mahimahi one.
    """
    p = Path(path)
    try:
        fmt = TraceFormat(fmt)
    except ValueError:
        raise UserError(
            f"{p}: unknown trace format {fmt!r}; use one of "
            f"{', '.join(f.value for f in TraceFormat)}"
        ) from None
    _rows_within(p, max_steps, count_rows=fmt is not TraceFormat.mahimahi)
    if fmt is TraceFormat.two_column:
        times, values, lines = _two_column(p)
    elif fmt is TraceFormat.csv:
        times, values, lines = _csv(p, time_column, value_column or "value")
    elif fmt is TraceFormat.mahimahi:
        times, values, lines = _mahimahi(p, bin_ms, max_steps)
    else:
        times, values, lines = _gnettrack(p, value_column or "UL_bitrate")
    trace = _finish(times, values, lines, p, end)
    return trace.scaled(scale) if scale != 1.0 else trace
