"""summary.md: the answers to the study's three questions, generated from its tables.

No number in it is NaN: a value that cannot be computed is written as ``n/a``
with the reason beside it (the cells of gains.csv carry theirs in ``note``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from adaptsim.study.caveats import caveat_lines

__all__ = ["write_summary"]

_NA = "n/a"


def _pct(x: float, why: str = "no condition to compute it from") -> str:
    return f"{x:.1f} %" if math.isfinite(x) else f"{_NA} ({why})"


def _cell(v) -> str:
    if isinstance(v, float | np.floating) and not math.isfinite(v):
        return _NA
    return str(v)


def _table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def write_summary(
    header: dict,
    best: pd.DataFrame,
    sens: pd.DataFrame,
    gains: pd.DataFrame,
    combined: pd.DataFrame,
    caveats: dict | None = None,
) -> str:
    """The markdown text of summary.md.

    ``caveats``: ``counts`` (lines left out per flag), ``left_out`` (those rows,
    when the study read a store) and ``measured`` (bool), for the Data caveats
    section; none when nothing was left out.
    """
    out = ["# The case for adaptive DNN partitioning: study summary", ""]
    out.append(
        f"Source: {header['source']} ({header['kind']}). Models: "
        f"{', '.join(header['models'])}. Conditions: {header['conditions']} "
        f"(missing from the full grid: {header['missing']}). Best-point ties "
        "(equal to the microsecond, lowest ordinal wins): "
        f"{int(best['tie'].sum())}."
    )
    out.append("")

    # Q1
    out += ["## Q1: are DNNs sensitive to operating conditions?", ""]
    changing = sens[sens["changes"] == "Y"]
    n_models = sens["model"].nunique()
    sensitive_models = changing["model"].nunique()
    out.append(
        f"{sensitive_models} of {n_models} models change their best partition point when "
        "a single factor moves with the others at baseline."
    )
    for factor, grp in sens.groupby("factor", sort=False):
        ys = grp[grp["changes"] == "Y"]["model"].tolist()
        out.append(
            f"- {factor}: {len(ys)} of {len(grp)} models" + (f" ({', '.join(ys)})" if ys else "")
        )
    diversity = (
        best.groupby("model")["best_point"]
        .nunique()
        .sort_values(ascending=False)
        .rename("distinct_best_points")
        .reset_index()
    )
    out += [
        "",
        "Distinct best points over all conditions (most diverse first):",
        "",
        _table(diversity),
        "",
    ]

    # Q2
    out += ["## Q2: how much does re-partitioning gain over the baseline split?", ""]
    if gains.empty:
        out.append(
            "No single-factor gains to report: no factor was measured at a level other than "
            "its baseline, or the baseline (no stress, highest bandwidth) was not measured."
        )
        out.append("")
    else:
        out += _q2(gains)

    # Q3
    out += ["## Q3: do single conditions and combinations affect them alike?", ""]
    if combined.empty or (combined["factors_moved"] == 0).all():
        out.append(
            "Not answerable: the baseline condition is missing, or no condition moves "
            "a factor off its baseline."
        )
    else:
        single = combined[combined["factors_moved"] == 1]
        multi = combined[combined["factors_moved"] >= 2]
        for label, part in (("one factor moved", single), ("two or more factors moved", multi)):
            if part.empty:
                continue
            out.append(
                f"- {label}: {len(part)} conditions; re-partitioning pays in "
                f"{_pct(100 * part['repartition'].mean())} of them; gain median "
                f"{_pct(part['gain_pct'].median())}, p90 "
                f"{_pct(part['gain_pct'].quantile(0.9))}, max {_pct(part['gain_pct'].max())}"
            )
        if not single.empty and not multi.empty:
            verdict = (
                "give"
                if multi["gain_pct"].median() > single["gain_pct"].median()
                else "do not give"
            )
            out.append("")
            out.append(
                f"Combinations {verdict} larger gains than single factors (median "
                f"{_pct(multi['gain_pct'].median())} vs {_pct(single['gain_pct'].median())})."
            )
        per_model = (
            combined.groupby("model")
            .agg(max_gain_pct=("gain_pct", "max"), repartition_share=("repartition", "mean"))
            .round(3)
            .reset_index()
        )
        out += ["", "Per model, over every condition:", "", _table(per_model), ""]
    if caveats:
        out += caveat_lines(
            caveats.get("counts", {}),
            caveats.get("left_out", pd.DataFrame(columns=["model"])),
            bool(caveats.get("measured")),
            gains,
        )
    out.append(f"_Generated by adaptsim {header['version']} in {header['elapsed_s']:.2f} s._")
    return "\n".join(out) + "\n"


def _q2(gains: pd.DataFrame) -> list[str]:
    """Q2's lines: gains over the static split, from the cells that have one."""
    known = gains[np.isfinite(gains["gain_pct"].astype(float))]
    pays = known[known["gain_pct"] > 0]
    unknown = len(gains) - len(known)
    out = [
        f"Re-partitioning beats the split chosen at baseline in {len(pays)} of "
        f"{len(known)} single-factor conditions"
        + (f" ({unknown} more cannot be computed: gains.csv's note says why)." if unknown else ".")
    ]
    for factor, grp in gains.groupby("factor", sort=False):
        ok = grp[np.isfinite(grp["gain_pct"].astype(float))]
        if ok.empty:
            out.append(f"- {factor}: {_NA} (no gain computable: {grp['note'].iloc[0]})")
            continue
        top = ok.loc[ok["gain_pct"].idxmax()]
        out.append(
            f"- {factor}: median gain {_pct(round(ok['gain_pct'].median(), 2))}, max "
            f"{_pct(top['gain_pct'])} ({top['model']} at {top['level']:g}: point "
            f"{top['static_point']} -> {top['best_point']}, {top['static_latency_s']:.3f} s -> "
            f"{top['best_latency_s']:.3f} s)"
        )
    top = known.sort_values("gain_pct", ascending=False, kind="stable").head(5)
    top = top.drop(columns=["flagged_static_latency_s", "note"], errors="ignore")
    return [*out, "", "Largest single-factor gains:", "", _table(top), ""]
