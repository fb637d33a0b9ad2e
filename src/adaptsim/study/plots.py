"""Bar charts of the best-point distribution: one PNG per slice, one panel per model."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

__all__ = ["plot_distribution"]


def plot_distribution(dist: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write ``best_points_<slice>.png`` per slice; returns the paths written."""
    paths = []
    for slice_name, sd in dist.groupby("slice", sort=False):
        models = list(dict.fromkeys(sd["model"]))
        cols = min(4, len(models))
        rows = math.ceil(len(models) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
        for ax, model in zip(axes.flat, models, strict=False):
            md = sd[sd["model"] == model].sort_values("rank")
            ax.bar([str(p) for p in md["point"]], md["share"] * 100, color="#3b6ea8")
            ax.set_title(f"{model} (n={md['conditions'].iloc[0]})", fontsize=9)
            ax.set_ylim(0, 100)
            ax.set_xlabel("partition point", fontsize=8)
            ax.set_ylabel("% of conditions best", fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(models) :]:
            ax.axis("off")
        fig.suptitle(f"Best partition points: {slice_name}", fontsize=10)
        fig.tight_layout()
        path = out_dir / f"best_points_{slice_name.replace(':', '_').replace('=', '_')}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths
