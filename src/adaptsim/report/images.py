"""Static PNG plots for report.md (terminals, diffs, markdown viewers): latency CDF
per policy and a timeline, in the same colours as the interactive page."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["plot_cdf", "plot_timeline"]


def _top(latency_s: pd.Series, fallback_s: float) -> float:
    """The 99.5th percentile of the finished frames' latencies, for an axis limit;
    ``fallback_s`` when no frame finished (all dropped, or the link stalled for good)."""
    lat = latency_s.to_numpy(dtype=float)
    lat = lat[np.isfinite(lat)]
    return float(np.percentile(lat, 99.5)) if len(lat) else fallback_s


def plot_cdf(records: pd.DataFrame, deadline_s: float, path: Path, colours: dict[str, str]) -> Path:
    """Empirical CDF of end-to-end latency, one line per policy (all seeds pooled).

    Unfinished frames stay in the denominator (the curve ends below 1 by their share).
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    for policy, r in records.groupby("policy", sort=False):
        lat = np.sort(r["latency_s"].to_numpy(dtype=float))
        n = len(lat)
        lat = lat[np.isfinite(lat)]
        ax.step(
            lat,
            np.arange(1, len(lat) + 1) / n,
            where="post",
            label=policy,
            color=colours.get(policy),
        )
    ax.axvline(deadline_s, color="grey", linestyle="--", linewidth=1, label="deadline")
    ax.set_xlim(0, max(_top(records["latency_s"], deadline_s), deadline_s) * 1.05)
    ax.set_xlabel("end-to-end latency (s)")
    ax.set_ylabel("share of requests")
    ax.set_title("Latency CDF per policy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")  # path may be a temporary name
    plt.close(fig)
    return path


def _steps(ax, steps, end_s: float, **kw) -> None:
    if not steps:
        return
    t = [x for x, _ in steps] + [end_s]
    v = [y for _, y in steps]
    ax.step(t, [*v, v[-1]], where="post", **kw)


def plot_timeline(
    records: pd.DataFrame,
    seed: int,
    traces: dict,
    duration_s: float,
    path: Path,
    colours: dict[str, str],
) -> Path:
    """Conditions, the split each policy chose, and the latency, over time (one seed).

    Policies that chose the same point would hide each other; each line is offset
    by a small fraction of a point so that all stay visible.
    """
    r = records[records["seed"] == seed]
    fig, axes = plt.subplots(3, 1, figsize=(9, 7.5), sharex=True)
    ax = axes[0]
    if traces.get("bandwidth_mbps"):
        _steps(
            ax, traces["bandwidth_mbps"], duration_s, color="#444444", label="bandwidth (Mbit/s)"
        )
        ax.set_ylabel("Mbit/s")
        ax2 = ax.twinx()
        _steps(
            ax2,
            traces.get("edge_cpu_pct"),
            duration_s,
            color="#777777",
            linestyle=":",
            label="edge CPU stress %",
        )
        _steps(
            ax2,
            traces.get("edge_mem_pct"),
            duration_s,
            color="#777777",
            linestyle="--",
            label="edge memory stress %",
        )
        ax2.set_ylim(-5, 105)
        ax2.set_ylabel("stress %")
        handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
        ax.legend(handles, labels, fontsize=7, loc="upper right")
    else:  # a results folder from a version that did not record the traces
        ax.text(0.5, 0.5, "conditions not recorded", ha="center", transform=ax.transAxes)
    ax.set_title(f"Conditions and decisions over time (seed {seed})")
    n = r["policy"].nunique()
    for j, (policy, p) in enumerate(r.groupby("policy", sort=False)):
        offset = 0.3 * (j - (n - 1) / 2) / max(n - 1, 1)
        c = colours.get(policy)
        axes[1].step(p["arrival_s"], p["point"] + offset, where="post", label=policy, color=c)
        axes[2].plot(p["arrival_s"], p["latency_s"], ".", markersize=3, label=policy, color=c)
    axes[1].set_ylabel("partition point")
    axes[1].legend(fontsize=7, loc="upper right", ncol=2)
    axes[2].set_ylabel("latency (s)")
    axes[2].set_xlabel("time (s)")
    axes[2].set_ylim(0, max(_top(r["latency_s"], 1.0), 1e-3) * 1.1)
    for a in axes:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")  # path may be a temporary name
    plt.close(fig)
    return path
