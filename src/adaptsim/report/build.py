"""``adaptsim report RESULTS``: the run report, verdict first.

Reads a results folder (:mod:`adaptsim.report.folder`) and writes, beside it,
``report.html`` (one self-contained page: Plotly embedded, no network) and
``report.md`` (the same tables and numbers, with two PNGs for markdown viewers).
The page, top to bottom: the verdict (one sentence, warnings, a small table),
every policy against the baselines, the latency CDF, the timeline, where the time
goes (per stage), the scenario, and the command that reproduces the run.
"""

from __future__ import annotations

import html
import math
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from adaptsim.atomic import write_together
from adaptsim.report.figures import (
    STAGES,
    cdf_figure,
    figure_block,
    policy_colours,
    stage_figure,
    stage_means,
    timeline_figure,
)
from adaptsim.report.folder import SUMMARY_LABELS, read_run
from adaptsim.report.images import plot_cdf, plot_timeline
from adaptsim.report.page import Block, Page, code, facts, note, paragraph, table, warnings
from adaptsim.report.tables import Cell, Table, fmt_interval, fmt_number, fmt_pct
from adaptsim.report.verdict import Verdict, verdict

__all__ = ["build_report", "pretty_summary", "run_report", "summary_table"]

_COLUMNS = SUMMARY_LABELS  # summary.csv columns shown, by their headers


def _formatters() -> dict:
    lat = lambda v: fmt_number(v, 3)  # noqa: E731
    return {
        "mean_s": lat,
        "p50_s": lat,
        "p95_s": lat,
        "p99_s": lat,
        "deadline_miss_rate": lambda v: fmt_pct(100 * v),
        "throughput_rps": lambda v: fmt_number(v, 3),
        "goodput_rps": lambda v: fmt_number(v, 3),
        "drop_rate": lambda v: fmt_pct(100 * v),
        "bytes_sent": lambda v: fmt_number(v / 1e6, 1),
        "switching_s": lambda v: fmt_number(v, 2),
    }


def pretty_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with units in the headers and rounded values, for people.

    Columns this version does not know (a newer ``adaptsim run``) are left out.
    """
    cols = [c for c in _COLUMNS if c in summary.columns]
    s = summary.loc[:, cols].copy()
    for c, f in _formatters().items():
        if c in s:
            s[c] = s[c].map(lambda v, f=f: f(float(v)))
    return s.rename(columns=_COLUMNS)


def summary_table(summary: pd.DataFrame) -> Table:
    """summary.csv as a :class:`Table` (the numbers ``adaptsim run`` prints)."""
    pretty = pretty_summary(summary)
    raw = summary.loc[:, [c for c in _COLUMNS if c in summary.columns]]
    t = Table(
        list(pretty.columns),
        caption="summary.csv: all seeds pooled (frames of every seed together); latency "
        "statistics over the delivered frames (neither dropped nor unfinished); deadline "
        "misses count dropped and unfinished frames as missed.",
        table_id="summary-table",
    )
    for (_, p), (_, r) in zip(pretty.iterrows(), raw.iterrows(), strict=True):
        cells = []
        for col, text in zip(raw.columns, p, strict=True):
            v = r[col]
            num = float(v) if isinstance(v, int | float | np.number) else None
            cells.append(Cell(str(text), num, f"{r['policy']}:{col}"))
        t.add(*cells)
    return t


def _scores_table(v: Verdict) -> Table:
    """Every policy against static-best and the oracle, paired by seed."""
    s = v.scores.set_index(["policy", "metric"])
    t = Table(
        [
            "policy",
            "mean vs static-best",
            "95 % interval",
            "p95 vs static-best",
            "95 % interval",
            "misses vs static-best",
            "gap to oracle closed (mean)",
            "95 % interval",
        ],
        caption=f"Paired by seed over {v.n_seeds} seed(s): differences in % of static-best "
        "(misses in percentage points); gap closed: 100 % = as good as the oracle, "
        "0 % = as static-best, bootstrap interval.",
        table_id="scores-table",
    )
    for p in v.scores["policy"].unique():
        m, q, d = (s.loc[(p, k)] for k in ("mean_s", "p95_s", "deadline_miss_rate"))
        g = m["gap_closed"]
        t.add(
            Cell(p),
            Cell(fmt_pct(m["vs_static_best_pct"], signed=True), m["vs_static_best_pct"]),
            fmt_interval(m["vs_static_best_pct_lo"], m["vs_static_best_pct_hi"]),
            Cell(fmt_pct(q["vs_static_best_pct"], signed=True), q["vs_static_best_pct"]),
            fmt_interval(q["vs_static_best_pct_lo"], q["vs_static_best_pct_hi"]),
            f"{100 * d['vs_static_best']:+.1f} pp" if math.isfinite(d["vs_static_best"]) else "n/a",
            Cell(fmt_pct(100 * g), 100 * g if math.isfinite(g) else None),
            fmt_interval(100 * m["gap_closed_lo"], 100 * m["gap_closed_hi"]),
        )
    return t


def _stage_table(means: pd.DataFrame) -> Table:
    t = Table(
        ["policy", *[f"{label} (s)" for _, label in STAGES], "total (s)"],
        caption="Mean seconds per frame in each stage, finished frames of all seeds.",
        table_id="stage-table",
    )
    for p, row in means.iterrows():
        vals = [float(row[c]) for c, _ in STAGES]
        t.add(Cell(str(p)), *[Cell(fmt_number(x), x) for x in vals], fmt_number(sum(vals)))
    return t


def _scenario_doc(meta: dict) -> dict:
    """The scenario YAML, if it is still where the run found it (for what run.json lacks)."""
    src = meta.get("source")
    try:
        doc = yaml.safe_load(Path(src).read_text("utf-8")) if src else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _trace_sources(doc: dict) -> dict[str, str]:
    """Trace files the scenario names, with their scaling and end rule."""
    traces = doc.get("traces")
    out = {}
    for k, spec in traces.items() if isinstance(traces, dict) else []:
        if isinstance(spec, dict) and spec.get("file"):
            extra = [f"x{spec['scale']:g}"] if isinstance(spec.get("scale"), int | float) else []
            extra += [f"end: {spec['end']}"] if spec.get("end") else []
            out[k] = f"file {spec['file']}" + (f" ({', '.join(extra)})" if extra else "")
    return out


def _arrivals(doc: dict) -> str:
    a = doc.get("arrivals")
    if not isinstance(a, dict) or not isinstance(a.get("rate_hz"), int | float):
        return "not recorded (the scenario file has moved)"
    return f"{a.get('kind', 'periodic')}, {a['rate_hz']:g} frames/s"


def _calibration_facts(name: str) -> list[tuple[str, str]]:
    """What the calibration says about where its numbers come from (hosts, sources)."""
    from adaptsim.calibration import load_calibration
    from adaptsim.errors import UserError

    try:
        prov = load_calibration(name).provenance or {}
    except (UserError, OSError):
        return [("calibration", f"{name} (not readable from here: no provenance shown)")]
    out = [("calibration", name)]
    hosts = {k: v for k, v in prov.items() if "host" in k.lower()}
    for k, v in hosts.items():
        out.append((f"calibration {k}", str(v)))
    if not hosts:
        out.append(("host facts", "not recorded in this calibration (see its sources)"))
    for src, d in (prov.get("sources") or {}).items():
        if isinstance(d, dict) and d.get("citation"):
            out.append((f"source {src}", str(d["citation"])))
    for k in ("store", "method", "created"):
        if prov.get(k):
            out.append((f"calibration {k}", str(prov[k])))
    return out


def _scenario_facts(meta: dict, records: pd.DataFrame) -> list[tuple[str, str]]:
    doc = _scenario_doc(meta)
    sources = _trace_sources(doc)
    labels = {
        "bandwidth_mbps": ("bandwidth trace", meta.get("bandwidth_trace", "")),
        "edge_cpu_pct": ("edge CPU stress trace", meta.get("edge_cpu_trace", "")),
        "edge_mem_pct": ("edge memory stress trace", meta.get("edge_mem_trace", "")),
    }
    out = [
        ("scenario", f"{meta['scenario']} ({meta.get('source', 'source not recorded')})"),
        ("model", str(meta["model"])),
        ("simulated", f"{meta['duration_s']:g} s per run"),
        ("arrivals", _arrivals(doc)),
        ("deadline", f"{meta['deadline_s']:g} s"),
        ("re-partition pause", f"{meta.get('pause_s', float('nan')):g} s"),
        ("admission", _admission(meta.get("admission"))),
        ("seeds", ", ".join(str(s) for s in meta["seeds"])),
        ("frames", f"{len(records):,} in {records.groupby(['policy', 'seed']).ngroups} runs"),
    ]
    for k, (name, label) in labels.items():
        src = sources.get(k)
        out.append((name, f"{label}" + (f" — {src}" if src else "")))
    out += _calibration_facts(str(meta.get("calibration", "")))
    if meta.get("wall_s") is not None:
        out.append(("simulation wall time", f"{meta['wall_s']:g} s"))
    return out


def _admission(block: dict | None) -> str:
    """``drop stale; queue limit edge 2, uplink 4`` (older runs: every frame kept)."""
    if not block:
        return "drop never; unbounded queues (every frame kept)"
    limits = block.get("queue_limit") or {}
    text = f"drop {block.get('drop', 'never')}; "
    return text + (
        "queue limit " + ", ".join(f"{k} {v}" for k, v in limits.items())
        if limits
        else "unbounded queues"
    )


def _command(meta: dict, results: Path) -> str:
    """The command that re-runs this folder's simulation into this folder.

    A calibration recorded as an absolute path came from ``--calibration`` (or a
    scenario naming it absolutely): passing it again is right either way. A
    relative one is the scenario's own, resolved from the scenario's folder.
    """
    src = meta.get("source") or "SCENARIO.yaml"
    seeds = " ".join(f"--seed {int(s)}" for s in meta["seeds"])
    cal = str(meta.get("calibration") or "")
    cal_opt = f"--calibration {shlex.quote(cal)} " if Path(cal).is_absolute() else ""
    return (
        f"adaptsim run {shlex.quote(str(src))} --duration {meta['duration_s']:g} {seeds} "
        f"{cal_opt}--out {shlex.quote(str(results))} --report"
    )


def build_report(
    results_dir: str | Path, images: bool = True, final_dir: str | Path | None = None
) -> list[Path]:
    """Write report.html, report.md and its two PNGs into the results folder.

    Args:
        results_dir: a folder written by ``adaptsim run``.
        images: also draw the two PNGs that report.md shows (matplotlib; about half
            of the time a report takes). Without them report.md points to the page.
        final_dir: where the folder will end up when ``results_dir`` is a staging
            folder (``run --report``): the reproduce command names it.

    Returns:
        [report.html, report.md] and, with ``images``, [latency_cdf.png, timeline.png]
    """
    return run_report(results_dir, images, final_dir)[0]


def run_report(
    results_dir: str | Path, images: bool = True, final_dir: str | Path | None = None
) -> tuple[list[Path], Verdict]:
    """:func:`build_report`, also returning the verdict (for the CLI to print)."""
    run = read_run(results_dir)
    records, meta, results = run.records, run.meta, run.path
    policies = list(dict.fromkeys(records["policy"]))
    colours = policy_colours(policies)
    v = verdict(records, meta)
    seeds_run = sorted(records["seed"].unique())
    seed = next((s for s in meta["seeds"] if s in seeds_run), seeds_run[0])
    traces = meta.get("traces") or {}
    deadline_s, duration_s = float(meta["deadline_s"]), float(meta["duration_s"])

    page = Page(
        f"adaptsim: {meta['scenario']}",
        lead=str(meta.get("description", "")),
        policy_colours=colours,
    )
    top = page.section("Verdict", "verdict")
    top.add(
        Block(f'<p class="verdict" id="verdict-sentence">{html.escape(v.sentence)}</p>', v.sentence)
    )
    top.add(warnings(v.warnings))
    if v.table is not None:
        top.add(table(v.table))
    top.add(
        note(
            "Best practical policy: the lowest mean latency among the policies that know "
            "neither the conditions at t = 0 (static-best) nor all along (the oracle), "
            "preferring those that finished every frame."
        )
    )
    page.section("Every policy against the baselines", "scores").add(
        table(_scores_table(v)), table(summary_table(run.summary))
    )

    images_at = {}  # drawn when the page is written, all files together (none half-done)
    if images:
        images_at = {
            results / "latency_cdf.png": lambda p: plot_cdf(records, deadline_s, p, colours),
            results / "timeline.png": lambda p: plot_timeline(
                records, int(seed), traces, duration_s, p, colours
            ),
        }
    pngs = list(images_at)
    md_cdf, md_tl = (f"![{p.stem}]({p.name})" for p in pngs) if pngs else ("", "")
    fig, cdf_note = cdf_figure(records, colours, deadline_s)
    page.section("Latency distribution", "cdf").add(
        figure_block(fig, "cdf-plot", "Latency CDF per policy.", md_cdf),
        note(cdf_note),
    )

    one = records[records["seed"] == seed]
    fig, tl_note = timeline_figure(
        one, colours, traces, duration_s, deadline_s, shown=v.best or policies[0]
    )
    page.section("Timeline", "timeline").add(
        figure_block(
            fig,
            "timeline-plot",
            f"Conditions, chosen partition point and latency over time (seed {seed}).",
            md_tl,
            toggle=False,
        ),
        note(tl_note),
    )

    means = stage_means(records, policies)
    page.section("Where the time goes", "stages").add(
        figure_block(
            stage_figure(means, colours), "stages-plot", "Mean time per stage and policy."
        ),
        table(_stage_table(means)),
    )
    page.section("Scenario", "scenario").add(facts(_scenario_facts(meta, records)))
    page.section("Reproduce", "reproduce").add(
        paragraph("Re-run the simulation and this report (same scenario and seeds, same records):"),
        code(_command(meta, Path(final_dir) if final_dir is not None else results)),
    )
    html_path, md_path, *pngs = write_together({**page.writers(results), **images_at})
    return [html_path, md_path, *pngs], v
