"""Data caveats: lines an importer flagged as not measuring what they are labelled.

A study leaves such lines out (as calibrations do), so a cell that needs one has
no value, and a reader comparing with the published tables, which were computed
from them, sees a difference. This module says why, per flag: the importer's
description of the flag, how many lines it hit per model, what the study did
without them and, where the published tables relied on them, what they reported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from adaptsim.store.flags import FLAGS, UNUSABLE_FLAGS

__all__ = ["PUBLISHED", "caveat_lines", "left_out_reason"]

# Per flag: what the published tables reported because of the flagged lines.
PUBLISHED = {
    "input_is_next_cut": (
        "In the AdaptiveDNN re-run of 2021-08-20, VGG19's raw-input line (point 1: the "
        "input is sent and the edge does no work) repeats the next cut in 177 of its 178 "
        "files: its edge time is the first convolution's (block1_conv1) and its transfer "
        "that cut's 12.8 MB output, not the 0.6 MB input. The published tables were "
        "computed from these lines: at 10 Mbit/s, for example, the paper's VGG19 row "
        "reads 14.307 s at the raw input against 3.254 s at its best point, a 77.26 % "
        "gain (McNamee et al., IEEE CLOUD 2021); that 14.307 s measured the next cut, "
        "not the raw input."
    ),
}


def _first(flags: str) -> str:
    """The first unusable flag named in a row's flags."""
    return next((f for f in flags.split(",") if f in UNUSABLE_FLAGS), flags)


def left_out_reason(point: int, layer: str, flags: str, total_s: float) -> str:
    """The note of a gains cell whose static point's line was left out."""
    flag = _first(flags)
    read = f"; the line reads {total_s:.3f} s" if np.isfinite(total_s) else ""
    return (
        f"static point {point} ({layer}) has no usable measurement here: its line is "
        f"flagged {flag} and left out{read} (see summary.md, Data caveats)"
    )


def caveat_lines(
    counts: dict[str, int], left_out: pd.DataFrame, measured: bool, gains: pd.DataFrame
) -> list[str]:
    """The markdown lines of the "Data caveats" section; none when nothing was left out.

    Args:
        counts: lines left out per flag (from the store's rows or a calibration's
            provenance).
        left_out: the left-out rows themselves, when the study read a store (may be empty).
        measured: the study's latencies are the measurements (else a calibration's).
        gains: the single-factor gains; the rows whose static point's line was left
            out (``flagged_static_latency_s`` set) are listed with what that line reads.
    """
    if not counts:
        return []
    out = ["## Data caveats", ""]
    for flag, n in counts.items():
        models = (
            ", ".join(f"{m} {k}" for m, k in left_out.groupby("model").size().items() if k)
            if len(left_out)
            else ""
        )
        what = FLAGS.get(flag, "flagged by the importer")
        out.append(
            f"- {n} lines flagged `{flag}`" + (f" ({models})" if models else "") + f": {what}."
        )
        if flag in PUBLISHED:
            out += ["", f"  {PUBLISHED[flag]}"]
        if measured:
            out += [
                "",
                "  They are left out of this study: where the split chosen at baseline needs "
                "one of them, gains.csv leaves its static latency and gain empty and says why "
                "in its note column.",
            ]
            cells = _flagged_cells(gains)
            if cells:
                out += ["", "  What those lines read where they were needed:", "", *cells]
        else:
            out += [
                "",
                "  The calibration was fitted without them: those cells are predicted from "
                "the blocks and the link the other lines measured.",
            ]
        out.append("")
    return out


def _flagged_cells(gains: pd.DataFrame) -> list[str]:
    """What the left-out lines read in the gains cells that needed them."""
    if "flagged_static_latency_s" not in gains:
        return []
    rows = gains[np.isfinite(gains["flagged_static_latency_s"].astype(float))]
    out = []
    for r in rows.itertuples(index=False):
        s = float(r.flagged_static_latency_s)
        out.append(
            f"  - {r.model}, {r.factor} at {r.level:g}: the left-out line of static point "
            f"{r.static_point} reads {s:.3f} s against {r.best_latency_s:.3f} s at the best "
            f"point {r.best_point}; a gain computed from it would be "
            f"{(s - r.best_latency_s) / s * 100:.2f} %."
        )
    return out
