"""report.md of a validation: the tables a reader needs to trust or doubt the simulator."""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["report_md"]


def _cell(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:.4g}"
    return str(v)


def _table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


_ERRORS = ["policy", "mean_error_pct", "p50_error_pct", "p95_error_pct", "miss_rate_diff"]


def report_md(
    sc, table: pd.DataFrame, stages: pd.DataFrame, facts: dict, folded: pd.DataFrame | None = None
) -> str:
    """The validation report in Markdown (see :mod:`adaptsim.testbed.validate`)."""
    rank = facts["ranking"]
    head = table[["policy", "frames", "measured_mean_s", "simulated_mean_s", "mean_error_pct",
                  "measured_p50_s", "simulated_p50_s", "p50_error_pct", "measured_p95_s",
                  "simulated_p95_s", "p95_error_pct", "measured_miss_rate",
                  "simulated_miss_rate"]]  # fmt: skip
    pivot = stages.pivot_table(index="stage", columns="policy", values="diff_s", sort=False)
    pivot = pivot.reset_index()
    p = facts["placement"]
    parts = [
        f"# Validation: {sc.name}, real run vs simulated twin",
        "",
        f"Model {sc.model.model}; calibration `{facts['calibration']}`; "
        f"{facts['duration_s']:g} s of real time per run, "
        f"traces compressed x{facts['time_scale']:g}; "
        f"seeds {facts['seeds']}. Edge on CPU {p['edge_cpus']} (1 TensorFlow thread), cloud on "
        f"CPU {p['cloud_cpus']} with {p['cloud_workers']} worker(s); memory stress on "
        f"CPU {p['memory_stress_cpus']}. One-way latency: {facts['one_way_latency']}. "
        f"Zero-rate steps: {facts['zero_rate']}. Load average when written: "
        f"{', '.join(f'{x:.2f}' for x in facts['load_average'])} (a shared machine adds noise).",
        "",
        "## Per policy (error = (simulated - measured) / measured)",
        "",
        _table(head),
        "",
        f"Ranking by mean, measured: {' < '.join(rank['measured'])}; simulated: "
        f"{' < '.join(rank['simulated'])}; {'the same' if rank['same'] else 'different'}, "
        f"Kendall's tau {_cell(rank['kendall_tau'])}.",
        "",
        "## Where the error sits: simulated - measured mean seconds per stage",
        "",
        _table(pivot),
        "",
        "`return_s` is the result's way back as measured beyond the added latency "
        "(socket, Python); the simulator has no such stage.",
    ]
    if folded is not None:
        fb = facts["fold_back"]
        both = table[_ERRORS].merge(folded[_ERRORS], on="policy", suffixes=(" before", " after"))
        parts += [
            "",
            f"## After the fold-back (fitted on {fb['from']}, another run)",
            "",
            f"Edge x{fb['edge_scale']:.3g}, cloud x{fb['cloud_scale']:.3g}, link overhead "
            f"{fb['uplink_extra_s'] * 1e3:+.2f} ms, way back {fb['return_s'] * 1e3:.2f} ms, "
            f"pause {fb['pause_s'] * 1e3:.2f} ms per switch; fitted on {fb['frames']} frames.",
            "",
            _table(both),
            "",
            f"Ranking after: {' < '.join(folded.sort_values('simulated_mean_s')['policy'])}.",
        ]
    if facts.get("notes"):
        parts += ["", "## Notes", "", *[f"- {n}" for n in facts["notes"]]]
    return "\n".join(parts) + "\n"
