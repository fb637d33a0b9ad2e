"""The sweep report: a self-contained report.html and its markdown twin, report.md.

The headline answers the sweep's question: "adapting beats the best static split
in X % of cells by a median of Y %". A cell is one (trace, model, swept fields)
combination; a policy *beats* static-best in a cell when its mean latency is
lower with the paired 95 % interval of the difference entirely below zero (with
a single seed there is no interval, and the estimate alone decides; the report
says so). Y is the median gain (reduction of mean latency, % of static-best) over
the cells it beats. Adaptive policies are all but static, all-edge, all-cloud,
static-best and the oracle; the headline names the one that beats static-best
in the most cells, and a table gives every policy. The page is built on the shared
report module (:mod:`adaptsim.report`): Plotly figures (a heatmap of the gain by
trace and model, the CDF of per-run gains in the policies' usual colours), no PNGs;
report.md points to the page for the figures.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from adaptsim.report import (
    Block,
    Cell,
    Page,
    Table,
    fmt_number,
    fmt_pct,
    note,
    paragraph,
    table,
    warnings,
)
from adaptsim.report.figures import figure_block, policy_colours
from adaptsim.scoring import ORACLE, STATIC_BEST

__all__ = ["Headline", "build_sweep_report", "headlines"]

_GAIN = "mean_s_vs_static_best_pct"


@dataclass(frozen=True)
class Headline:
    policy: str
    cells: int
    beats: int
    median_gain_pct: float  # over the cells it beats (NaN if none)
    median_gain_all_pct: float  # over all cells
    paired: bool  # False when intervals were missing (a single seed)

    @property
    def beats_pct(self) -> float:
        return 100.0 * self.beats / self.cells if self.cells else float("nan")

    def sentence(self) -> str:
        how = "" if self.paired else " (one seed: no interval, the estimate alone decides)"
        head = (
            f"adapting ({self.policy}) beats the best static split in {self.beats_pct:.0f} % "
            f"of {self.cells} cells"
        )
        if self.beats:
            return f"{head} by a median of {self.median_gain_pct:.1f} % mean latency{how}"
        return f"{head}{how}; median gain over all cells {fmt_pct(self.median_gain_all_pct)}"


def headlines(summary: pd.DataFrame) -> list[Headline]:
    """One headline per adaptive policy, best (most cells beaten, then gain) first."""
    out = []
    if summary.empty:
        return out
    for policy, rows in summary[summary["adaptive"].astype(bool)].groupby("policy", sort=False):
        hi = rows[f"{_GAIN}_hi"].to_numpy(dtype=float)
        est = rows[_GAIN].to_numpy(dtype=float)
        paired = bool(np.isfinite(hi).all())
        beat = np.where(np.isfinite(hi), hi < 0, est < 0)
        gains = -est
        out.append(
            Headline(
                str(policy),
                len(rows),
                int(beat.sum()),
                float(np.median(gains[beat])) if beat.any() else float("nan"),
                float(np.nanmedian(gains)) if np.isfinite(gains).any() else float("nan"),
                paired,
            )
        )
    return sorted(out, key=lambda h: (-h.beats, -np.nan_to_num(h.median_gain_pct)))


def _heatmap(summary: pd.DataFrame, policy: str) -> go.Figure:
    """Gain of ``policy`` over static-best by trace (rows) and model (columns)."""
    rows = summary[summary["policy"] == policy].assign(gain=lambda f: -f[_GAIN])
    grid = rows.pivot_table(index="trace", columns="model", values="gain", aggfunc="mean")
    vals = grid.to_numpy(dtype=float)
    lim = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 1.0
    lim = lim or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=vals,
            x=[str(m) for m in grid.columns],
            y=[Path(str(t)).name for t in grid.index],
            # ColorBrewer RdBu: diverging and colour-blind safe; blue = faster than static-best.
            colorscale="RdBu",
            zmin=-lim,
            zmax=lim,
            zmid=0.0,
            texttemplate="%{z:.1f}",
            hovertemplate="trace %{y}<br>model %{x}<br>gain %{z:.2f} % of static-best's "
            "mean latency<extra></extra>",
            colorbar=dict(title=dict(text="gain over<br>static-best (%)")),
        )
    )
    fig.update_layout(
        template="simple_white",
        font=dict(family="system-ui, sans-serif", size=13),
        height=int(max(300, 160 + 40 * grid.shape[0])),
        margin=dict(l=140, r=20, t=40, b=80),
        xaxis=dict(title="model", type="category"),
        yaxis=dict(title="trace", type="category", autorange="reversed"),
    )
    return fig


def _cdf(gains: pd.DataFrame, colours: dict[str, str]) -> go.Figure:
    """Empirical CDF of per-run gains (same cell and seed) per policy but static-best."""
    fig = go.Figure()
    for policy, g in gains[gains["policy"] != STATIC_BEST].groupby("policy", sort=False):
        x = np.sort(g["gain_pct"].to_numpy(dtype=float))
        x = x[np.isfinite(x)]
        if not len(x):
            continue
        p = str(policy)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=np.arange(1, len(x) + 1) / len(x),
                mode="lines",
                line=dict(shape="hv", color=colours.get(p, "#777777"), width=2.2),
                name=p,
                legendgroup=p,
                hovertemplate=f"{html.escape(p)}<br>%{{y:.0%}} of runs gain at most "
                "%{x:.2f} %<extra></extra>",
            )
        )
    fig.add_vline(x=0.0, line=dict(color="#777", width=1))
    fig.update_layout(
        template="simple_white",
        font=dict(family="system-ui, sans-serif", size=13),
        height=420,
        margin=dict(l=70, r=20, t=40, b=50),
        legend=dict(title_text="policy (click to hide)"),
        xaxis=dict(
            title="gain over static-best, same cell and seed (% of its mean latency)",
            showgrid=True,
        ),
        yaxis=dict(title="fraction of runs", tickformat=".0%", range=[0, 1.02], showgrid=True),
        hovermode="closest",
    )
    return fig


def _median(col: pd.Series) -> float:
    vals = col.to_numpy(dtype=float)
    return float(np.nanmedian(vals)) if np.isfinite(vals).any() else float("nan")


def _policy_table(summary: pd.DataFrame, heads: list[Headline]) -> Table:
    """One row per policy; numeric cells carry their raw value (``data-value``)."""
    by = {h.policy: h for h in heads}
    t = Table(
        [
            "policy",
            "cells",
            "beats static-best (% of cells)",
            "median gain where it beats (%)",
            "median gain, all cells (%)",
            "median gap closed (mean)",
            "failed runs",
        ],
        caption="Gain: reduction of mean latency in % of static-best's, same cell; gap "
        f"closed: {STATIC_BEST} 0, {ORACLE} 1. Blank: not an adaptive policy.",
        table_id="sweep-policies",
    )
    for policy, g in summary.groupby("policy", sort=False):
        p = str(policy)
        h = by.get(p)
        gain_all = _median(-g[_GAIN])
        gap = _median(g["gap_closed_mean_s"])
        failed = int(g["n_failed"].sum())
        t.add(
            Cell(p, key=f"{p}/policy"),
            Cell(str(len(g)), float(len(g)), f"{p}/cells"),
            Cell(fmt_pct(h.beats_pct, 1), h.beats_pct, f"{p}/beats_pct") if h else Cell(""),
            Cell(fmt_pct(h.median_gain_pct, 1), h.median_gain_pct, f"{p}/median_gain_pct")
            if h
            else Cell(""),
            Cell(fmt_pct(gain_all, 2), gain_all, f"{p}/median_gain_all_pct"),
            Cell(fmt_number(gap, 3), gap, f"{p}/gap_closed"),
            Cell(str(failed), float(failed), f"{p}/failed"),
        )
    return t


def _headline_block(h: Headline) -> Block:
    """The first headline, with its numbers as data attributes (for scripts and tests)."""
    data = (
        f'data-policy="{html.escape(h.policy)}" data-cells="{h.cells}" data-beats="{h.beats}" '
        f'data-beats-pct="{h.beats_pct!r}" data-median-gain-pct="{h.median_gain_pct!r}"'
    )
    text = f"{h.sentence()}."
    return Block(
        f'<p class="verdict" id="sweep-headline" {data}>{html.escape(text)}</p>', f"**{text}**"
    )


def build_sweep_report(
    out: Path, summary: pd.DataFrame, gains: pd.DataFrame, facts: dict
) -> tuple[Path, Path]:
    """Write report.md and report.html (self-contained, Plotly embedded) into ``out``.

    Returns:
        (report.md, report.html)
    """
    heads = headlines(summary)
    policies = [str(p) for p in dict.fromkeys(summary["policy"])] if not summary.empty else []
    policies += [str(p) for p in dict.fromkeys(gains.get("policy", [])) if str(p) not in policies]
    colours = policy_colours(policies)
    fields = facts.get("fields")
    page = Page(
        f"Sweep {facts.get('name', '')}".strip(),
        lead=f"Runs: {facts.get('runs_ok', 0)} finished, {facts.get('runs_failed', 0)} failed, "
        f"{facts.get('runs_total', 0)} planned; seeds per cell: {facts.get('replicates', '?')}.",
        policy_colours=colours,
    )
    top = page.section("Headline", "headline")
    if heads:
        top.add(_headline_block(heads[0]))
        top.add(*(paragraph(f"{h.sentence()}.") for h in heads[1:]))
    else:
        top.add(paragraph("No adaptive policy in this sweep: nothing to compare with static-best."))
    problems = []
    if facts.get("runs_failed"):
        problems.append(f"{facts['runs_failed']} runs failed (counted per policy below).")
    if facts.get("interrupted"):
        problems.append("The sweep was interrupted: this report covers the runs that finished.")
    top.add(warnings(problems))
    top.add(
        note(
            f"A cell is one (trace, model{', swept fields' if fields else ''}); 'beats' means "
            "the paired 95 % interval of the mean-latency difference to "
            f"{STATIC_BEST} lies below zero; the gap closed runs from {STATIC_BEST} (0) to "
            f"{ORACLE} (1)."
        )
    )
    page.section("Policies", "policies").add(
        table(_policy_table(summary, heads)),
        note("Per cell and policy, with intervals: sweep_summary.csv."),
    )
    if heads:
        best = heads[0].policy
        page.section(f"Gain of {best} by trace and model", "heatmap").add(
            figure_block(
                _heatmap(summary, best),
                "heatmap-plot",
                f"{best}: gain over static-best (% of its mean latency) by trace and model"
                + (", averaged over swept fields." if fields else "."),
                toggle=False,
            )
        )
    if not gains.empty:
        page.section("Per-run gains", "gain-cdf").add(
            figure_block(
                _cdf(gains, colours),
                "gain-cdf-plot",
                "CDF of per-run gains over static-best of the same cell and seed, per policy.",
            )
        )
    html_path, md_path = page.write(out)
    return md_path, html_path
