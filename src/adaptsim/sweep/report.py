"""The sweep report: report.md (PNGs beside it) and a self-contained report.html.

The headline answers the sweep's question: "adapting beats the best static split
in X % of cells by a median of Y %". A cell is one (trace, model, swept fields)
combination; a policy *beats* static-best in a cell when its mean latency is
lower with the paired 95 % interval of the difference entirely below zero (with
a single seed there is no interval, and the estimate alone decides; the report
says so). Y is the median gain (reduction of mean latency, % of static-best) over
the cells it beats. Adaptive policies are all but static, all-edge, all-cloud,
static-best and the oracle; the headline names the one that beats static-best
in the most cells, and a table gives every policy. Kept small (matplotlib PNGs,
base64 in the HTML) so that it can later move onto the shared report module.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from adaptsim.atomic import write_atomic
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
        return f"{head}{how}; median gain over all cells {self.median_gain_all_pct:.1f} %"


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


def _heatmap(summary: pd.DataFrame, policy: str, path: Path) -> Path:
    rows = summary[summary["policy"] == policy].assign(gain=lambda f: -f[_GAIN])
    grid = rows.pivot_table(index="trace", columns="model", values="gain", aggfunc="mean")
    width = max(5.5, 3.0 + 0.9 * grid.shape[1])
    fig, ax = plt.subplots(figsize=(width, max(3.0, 1.8 + 0.45 * grid.shape[0])))
    vals = grid.to_numpy(dtype=float)
    lim = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 1.0
    im = ax.imshow(vals, cmap="RdBu", vmin=-lim or -1, vmax=lim or 1, aspect="auto")
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=45, ha="right")
    ax.set_yticks(range(grid.shape[0]), [Path(t).name for t in grid.index])
    for (i, j), v in np.ndenumerate(vals):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label="gain over static-best\n(% of its mean latency)")
    ax.set_title(f"{policy}: gain by trace and model", fontsize=10)
    fig.tight_layout()
    write_atomic(path, lambda p: fig.savefig(p, dpi=90, format="png", bbox_inches="tight"))
    plt.close(fig)
    return path


def _cdf(gains: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    for policy, g in gains[gains["policy"] != STATIC_BEST].groupby("policy", sort=False):
        x = np.sort(g["gain_pct"].to_numpy(dtype=float))
        ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=str(policy))
    ax.axvline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("gain over static-best, same cell and seed (% of its mean latency)")
    ax.set_ylabel("fraction of runs")
    ax.legend(fontsize=7)
    ax.set_title("per-run gains by policy")
    fig.tight_layout()
    write_atomic(path, lambda p: fig.savefig(p, dpi=90, format="png", bbox_inches="tight"))
    plt.close(fig)
    return path


def _policy_table(summary: pd.DataFrame, heads: list[Headline]) -> pd.DataFrame:
    by = {h.policy: h for h in heads}
    rows = []
    for policy, g in summary.groupby("policy", sort=False):
        h = by.get(str(policy))
        rows.append(
            {
                "policy": policy,
                "cells": len(g),
                "beats static-best (% cells)": round(h.beats_pct, 1) if h else "",
                "median gain, all cells (%)": round(float(np.nanmedian(-g[_GAIN])), 2)
                if g[_GAIN].notna().any()
                else "",
                "median gap closed (mean)": round(float(np.nanmedian(g["gap_closed_mean_s"])), 3)
                if g["gap_closed_mean_s"].notna().any()
                else "",
                "failed runs": int(g["n_failed"].sum()),
            }
        )
    return pd.DataFrame(rows)


def _markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return ""
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def build_sweep_report(
    out: Path, summary: pd.DataFrame, gains: pd.DataFrame, facts: dict
) -> tuple[Path, Path]:
    """Write report.md (with heatmap.png and gain_cdf.png) and report.html into ``out``."""
    heads = headlines(summary)
    lines = [f"# Sweep {facts.get('name', '')}", ""]
    if heads:
        lines += [f"**{heads[0].sentence()}.**", ""]
        lines += [f"- {h.sentence()}" for h in heads[1:]]
    else:
        lines += ["No adaptive policy in this sweep: nothing to compare with static-best.", ""]
    lines += [
        "",
        f"Runs: {facts.get('runs_ok', 0)} finished, {facts.get('runs_failed', 0)} failed, "
        f"{facts.get('runs_total', 0)} planned; seeds per cell: {facts.get('replicates', '?')}. "
        f"A cell is one (trace, model{', swept fields' if facts.get('fields') else ''}); "
        "'beats' means the paired 95 % interval of the mean-latency difference to "
        f"{STATIC_BEST} lies below zero; the gap closed runs from {STATIC_BEST} (0) to "
        f"{ORACLE} (1).",
        "",
    ]
    images: list[Path] = []
    if heads:
        images.append(_heatmap(summary, heads[0].policy, out / "heatmap.png"))
    if not gains.empty:
        images.append(_cdf(gains, out / "gain_cdf.png"))
    table = _policy_table(summary, heads)
    lines += ["## Policies", "", _markdown(table), ""]
    lines += [f"![{p.stem}]({p.name})" for p in images]
    lines += ["", "Per cell and policy, with intervals: `sweep_summary.csv`."]
    md = "\n".join(lines) + "\n"
    imgs = "".join(
        f'<img alt="{p.stem}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"><br>'
        for p in images
    )
    body = (
        f"<h1>Sweep {html.escape(str(facts.get('name', '')))}</h1>"
        + (f"<p><b>{html.escape(heads[0].sentence())}.</b></p>" if heads else "")
        + "".join(f"<p>{html.escape(h.sentence())}</p>" for h in heads[1:])
        + "<h2>Policies</h2>"
        + table.to_html(index=False, border=0)
        + imgs
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>adaptsim sweep</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #ddd}"
        f"</style></head><body>{body}</body></html>"
    )
    md_path = write_atomic(out / "report.md", lambda p: p.write_text(md))
    html_path = write_atomic(out / "report.html", lambda p: p.write_text(page))
    return md_path, html_path
