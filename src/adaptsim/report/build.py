"""``adaptsim report RESULTS``: a self-contained HTML page and a markdown file.

Reads ``records.parquet``, ``summary.csv`` and ``run.json`` from a results folder
written by ``adaptsim run`` and writes ``report.html`` (images embedded), and
``report.md`` with the PNGs beside it.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd

from adaptsim.errors import UserError
from adaptsim.report.plots import plot_cdf, plot_timeline

__all__ = ["build_report", "pretty_summary"]

_COLUMNS = {
    "policy": "policy",
    "requests": "requests",
    "mean_s": "mean (s)",
    "p50_s": "p50 (s)",
    "p95_s": "p95 (s)",
    "p99_s": "p99 (s)",
    "deadline_miss_rate": "deadline miss",
    "throughput_rps": "throughput (req/s)",
    "bytes_sent": "MB sent",
    "repartitions": "re-partitions",
    "switching_s": "switching (s)",
}


def pretty_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with units in the headers and rounded values, for people."""
    s = summary.copy()
    for c in ("mean_s", "p50_s", "p95_s", "p99_s"):
        s[c] = s[c].map(lambda v: f"{v:.3f}")
    s["deadline_miss_rate"] = s["deadline_miss_rate"].map(lambda v: f"{100 * v:.1f} %")
    s["throughput_rps"] = s["throughput_rps"].map(lambda v: f"{v:.3f}")
    s["bytes_sent"] = s["bytes_sent"].map(lambda v: f"{v / 1e6:.1f}")
    s["switching_s"] = s["switching_s"].map(lambda v: f"{v:.2f}")
    return s.rename(columns=_COLUMNS)


def _md_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    return head + "\n".join(
        "| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)
    )


def _read(results: Path):
    need = ["records.parquet", "summary.csv", "run.json"]
    missing = [n for n in need if not (results / n).is_file()]
    if missing:
        raise UserError(
            f"{results}: not an adaptsim results folder (missing {', '.join(missing)});"
            " create one with `adaptsim run SCENARIO --out DIR`"
        )
    return (
        pd.read_parquet(results / "records.parquet"),
        pd.read_csv(results / "summary.csv"),
        json.loads((results / "run.json").read_text()),
    )


def build_report(results_dir: str | Path) -> list[Path]:
    """Write report.html and report.md (+ PNGs) into the results folder."""
    results = Path(results_dir)
    records, summary, meta = _read(results)
    if records.empty:
        raise UserError(f"{results}: the run recorded no requests")
    cdf = plot_cdf(records, meta["deadline_s"], results / "latency_cdf.png")
    timeline = plot_timeline(
        records,
        int(records["seed"].iloc[0]),
        meta["traces"],
        meta["duration_s"],
        results / "timeline.png",
    )
    table = pretty_summary(summary)
    oracle = summary[summary["policy"] == "oracle"]
    static = summary[summary["policy"] == "static-best"]
    facts = [
        f"Model {meta['model']} (calibration: {meta['calibration']}), {meta['duration_s']:g} s "
        f"simulated x {len(meta['seeds'])} seed(s), deadline {meta['deadline_s']:g} s, "
        f"re-partition pause {meta['pause_s']:g} s.",
        f"Bandwidth: {meta['bandwidth_trace']}; edge CPU stress: {meta['edge_cpu_trace']}; "
        f"edge memory stress: {meta['edge_mem_trace']}.",
    ]
    if len(oracle) and len(static):
        o, s = oracle.iloc[0], static.iloc[0]
        facts.append(
            f"Adaptivity's upper bound: the oracle's mean latency is "
            f"{100 * (1 - o['mean_s'] / s['mean_s']):.1f} % below static-best's "
            f"({o['mean_s']:.3f} s vs {s['mean_s']:.3f} s); p95 "
            f"{o['p95_s']:.3f} s vs {s['p95_s']:.3f} s."
        )
    if meta.get("interrupted"):
        facts.append("**The run was interrupted: these are the runs that finished.**")
    title = f"adaptsim: {meta['scenario']}"

    md = [
        f"# {title}",
        "",
        meta.get("description", ""),
        "",
        *[f"- {f}" for f in facts],
        "",
        "## Summary",
        "",
        _md_table(table),
        "",
        "## Latency CDF",
        "",
        f"![latency CDF]({cdf.name})",
        "",
        "## Timeline",
        "",
        f"![timeline]({timeline.name})",
        "",
    ]
    (results / "report.md").write_text("\n".join(md))

    def img(p: Path) -> str:
        data = base64.b64encode(p.read_bytes()).decode()
        return f'<img alt="{p.stem}" src="data:image/png;base64,{data}" style="max-width:100%">'

    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(meta.get('description', ''))}</p>",
        "<ul>" + "".join(f"<li>{html.escape(f).replace('**', '')}</li>" for f in facts) + "</ul>",
        "<h2>Summary</h2>",
        table.to_html(index=False, border=0),
        "<h2>Latency CDF</h2>",
        img(cdf),
        "<h2>Timeline</h2>",
        img(timeline),
    ]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        f"{html.escape(title)}</title><style>body{{font-family:sans-serif;max-width:1000px;"
        "margin:2em auto}}table{{border-collapse:collapse}}td,th{{padding:4px 10px;"
        "border-bottom:1px solid #ddd;text-align:right}}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
    (results / "report.html").write_text(page)
    return [results / "report.html", results / "report.md", cdf, timeline]
