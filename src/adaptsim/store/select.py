"""Choosing which runs of a source family stand for a model.

The AdaptiveDNN data holds a complete 2020-05-27 run and a partial 2021-08-20
re-run (4 VGG16 files, 178 VGG19 files). The authors' later tables use the re-run
for VGG19 and the first run for VGG16. The rule here reproduces that without
naming models: sources are taken in name order (dates sort), and a later source
replaces an earlier one, condition by condition, for a model only when it covers
at least ``min_coverage`` of that model's conditions.
"""

from __future__ import annotations

import pandas as pd

from adaptsim.store.schema import CONDITION_COLUMNS

__all__ = ["select_runs"]

_KEY = ["model", *CONDITION_COLUMNS[:5]]


def select_runs(frame: pd.DataFrame, min_coverage: float = 0.5) -> pd.DataFrame:
    """End-to-end partition rows, one run per (model, condition); see the module docstring.

    A profiler's per-host halves (``host_role`` edge or cloud) are not end-to-end
    and are left out.
    """
    part = frame[(frame["record"] == "partition") & (frame["host_role"] == "edge+cloud")]
    out = []
    for _, rows in part.groupby("model", sort=True):
        sources = sorted(rows["source"].unique())
        chosen = rows[rows["source"] == sources[0]]
        n_conditions = chosen.groupby(_KEY[1:], dropna=False).ngroups
        for later in sources[1:]:
            new = rows[rows["source"] == later]
            new_conditions = new.groupby(_KEY[1:], dropna=False).ngroups
            if new_conditions < min_coverage * max(n_conditions, 1):
                continue
            keys = pd.MultiIndex.from_frame(new[_KEY[1:]].drop_duplicates())
            old_keys = pd.MultiIndex.from_frame(chosen[_KEY[1:]])
            chosen = pd.concat([chosen[~old_keys.isin(keys)], new], ignore_index=True)
        out.append(chosen)
    if not out:
        return part.iloc[0:0]
    return pd.concat(out, ignore_index=True)
