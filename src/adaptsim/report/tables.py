"""Tables formatted once and written twice: as HTML and as markdown, same strings.

A :class:`Table` holds already-formatted cells, so report.html and report.md can
never disagree on a number: both render the same text. Numeric cells keep their
raw value in a ``data-value`` attribute, for a reader (or a browser test) that
wants the number rather than its rounding.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

__all__ = ["Cell", "Table", "fmt_interval", "fmt_number", "fmt_pct"]


@dataclass(frozen=True)
class Cell:
    """One table cell: the text people read and, optionally, the raw number behind it."""

    text: str
    value: float | None = None
    key: str = ""  # a stable name for the cell (data-key), for tests and scripts


def fmt_number(value: float, digits: int = 3, unit: str = "") -> str:
    """``1.234 s``; ``n/a`` for NaN, ``∞`` for infinity."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    text = f"{value:.{digits}f}"
    return f"{text} {unit}" if unit else text


def fmt_pct(value: float, digits: int = 1, signed: bool = False) -> str:
    """A share or a change already in percent: ``-7.3 %`` (``+`` shown when ``signed``)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f} %" if signed else f"{value:.{digits}f} %"


def fmt_interval(lo: float, hi: float, digits: int = 1, unit: str = "%") -> str:
    """``[-9.1, -5.4] %``, or ``no interval`` when a bound is NaN (fewer than two seeds)."""
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "no interval"
    return f"[{lo:+.{digits}f}, {hi:+.{digits}f}] {unit}".rstrip()


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


@dataclass
class Table:
    """A table of formatted cells with a header (units in the header), a caption and an id.

    Args:
        columns: header texts, with units, e.g. ``"mean latency (s)"``.
        rows: lists of :class:`Cell` (or plain strings) of the same length.
        caption: one sentence saying what the table holds.
        table_id: the HTML id (lets a page link to it and a test find it).
        first_is_label: the first column holds row labels (rendered as ``<th>``).
    """

    columns: list[str]
    rows: list[list[Cell | str]] = field(default_factory=list)
    caption: str = ""
    table_id: str = ""
    first_is_label: bool = True

    def add(self, *cells: Cell | str) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"row has {len(cells)} cells, table has {len(self.columns)}")
        self.rows.append(list(cells))

    @staticmethod
    def _cell(c: Cell | str) -> Cell:
        return c if isinstance(c, Cell) else Cell(str(c))

    def html(self) -> str:
        """An accessible HTML table: caption, scoped headers, numbers right-aligned."""
        ident = f' id="{html.escape(self.table_id)}"' if self.table_id else ""
        out = [f'<table class="data"{ident}>']
        if self.caption:
            out.append(f"<caption>{html.escape(self.caption)}</caption>")
        out.append(
            "<thead><tr>"
            + "".join(f'<th scope="col">{html.escape(c)}</th>' for c in self.columns)
            + "</tr></thead><tbody>"
        )
        for row in self.rows:
            cells = []
            for j, raw in enumerate(row):
                c = self._cell(raw)
                attrs = ""
                if c.key:
                    attrs += f' data-key="{html.escape(c.key)}"'
                if c.value is not None and math.isfinite(c.value):
                    attrs += f' data-value="{c.value!r}"'
                if j == 0 and self.first_is_label:
                    cells.append(f'<th scope="row"{attrs}>{html.escape(c.text)}</th>')
                else:
                    cells.append(f'<td class="num"{attrs}>{html.escape(c.text)}</td>')
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tbody></table>")
        return "".join(out)

    def markdown(self) -> str:
        """A GitHub-flavoured markdown table with the caption in italics above it."""
        head = "| " + " | ".join(_md_escape(c) for c in self.columns) + " |"
        rule = "|" + "|".join(["---"] + ["---:"] * (len(self.columns) - 1)) + "|"
        body = [
            "| " + " | ".join(_md_escape(self._cell(c).text) for c in row) + " |"
            for row in self.rows
        ]
        cap = [f"*{_md_escape(self.caption)}*", ""] if self.caption else []
        return "\n".join([*cap, head, rule, *body])
