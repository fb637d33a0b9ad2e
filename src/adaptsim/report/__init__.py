"""Reports: one self-contained HTML page (and its markdown twin) per result.

``adaptsim report RESULTS`` (and ``run --report``) call :func:`build_report` (or
:func:`run_report`, which also returns the verdict). The
parts it is built from are public, so the validation report (measured vs
simulated) and the sweep report (heatmaps over traces and models) are built the
same way, not a third time:

Page skeleton (:mod:`adaptsim.report.page`)
    ``Page(title, lead, policy_colours)``; ``page.section(title, anchor)`` returns a
    :class:`Section` to ``add`` blocks to; ``page.write(folder)`` writes
    ``report.html`` (Plotly's JS embedded once, a table of contents, policy
    checkboxes that toggle every figure) and ``report.md`` atomically. Blocks:
    ``paragraph``, ``note``, ``warnings``, ``facts``, ``code``, ``table`` — each a
    :class:`Block` holding the same content as HTML and as markdown.
Tables (:mod:`adaptsim.report.tables`)
    ``Table(columns, caption=, table_id=)`` of :class:`Cell` (text, raw value,
    key; the value goes into ``data-value`` for scripts and tests), and the
    formatters ``fmt_number``, ``fmt_pct``, ``fmt_interval``.
Figures (:mod:`adaptsim.report.figures`)
    ``policy_colours`` (Okabe-Ito, fixed per policy), ``figure_block(fig, id,
    caption, md)``, ``cdf_figure``, ``timeline_figure``, ``stage_figure``, and the
    honest downsamplers ``cdf_points`` and ``envelope``. Any Plotly figure goes on
    a page through ``figure_block`` (a sweep's heatmap too).
The verdict (:mod:`adaptsim.report.verdict`)
    ``verdict(records, meta)`` -> :class:`Verdict` (best practical policy, one
    sentence, the table, warnings), from :mod:`adaptsim.scoring`'s numbers;
    ``run_warnings`` alone for a page that needs only the warnings.
Results folders (:mod:`adaptsim.report.folder`)
    ``read_run(folder)`` -> :class:`RunFolder`, or a one-line
    :class:`~adaptsim.errors.UserError` for a missing, truncated or foreign folder.
"""

from adaptsim.report.build import build_report, pretty_summary, run_report, summary_table
from adaptsim.report.folder import RunFolder, read_run
from adaptsim.report.page import (
    Block,
    Page,
    Section,
    code,
    facts,
    note,
    paragraph,
    table,
    warnings,
)
from adaptsim.report.tables import Cell, Table, fmt_interval, fmt_number, fmt_pct
from adaptsim.report.verdict import Verdict, run_warnings, verdict

__all__ = [
    "Block",
    "Cell",
    "Page",
    "RunFolder",
    "Section",
    "Table",
    "Verdict",
    "build_report",
    "code",
    "facts",
    "fmt_interval",
    "fmt_number",
    "fmt_pct",
    "note",
    "paragraph",
    "pretty_summary",
    "read_run",
    "run_report",
    "run_warnings",
    "summary_table",
    "table",
    "verdict",
    "warnings",
]
