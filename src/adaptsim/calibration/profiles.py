"""Calibrations from this project's own profiles (``adaptsim profile``).

A profile times the edge half of every point on the edge host under edge stress,
the cloud half on the cloud host under cloud stress, and the link on its own. The
end-to-end time of a point under a condition is their sum, so the profiles are
composed into per-partition rows over every combination of measured levels
(edge CPU x edge memory x cloud CPU x cloud memory x bandwidth), and those rows
are fitted like any per-partition data (:mod:`adaptsim.calibration.fit`). The
link at each measured bandwidth is a least-squares line through the probe
summaries, ``overhead_s + bytes * seconds_per_byte``.

Each side's time at a condition is a summary of its repeats: by default the 10 %
trimmed mean (the mean of the repeats without the lowest and highest tenth), or
the median. Under CPU stress a short inference's time is spread wide and often
bimodal (the stress's busy slice lands in it or not), and the median of such
samples jumps between the modes; the trimmed mean estimates the expected time
with less noise and still drops stray outliers. Measured on this project's own
profiles (30 repeats in 3 stress runs): the leave-one-level-out check gave 94.0 %
of held-out conditions within 5 % regret with the trimmed mean, 91.4 % with the
median (docs/own_profiles).

The spread comes from the repeats themselves: quantiles of log(sample / summary)
of each side's samples and of the link probes.

The noise floor of a profile is split-half: the summaries of the odd repeats pick
the best point, scored on those of the even repeats (and their per-point
differences give the floor's per-point error).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from adaptsim.calibration.scores import ape_columns, regret
from adaptsim.calibration.spread import PARTS, by_point, by_size, quantiles
from adaptsim.errors import UserError
from adaptsim.store import COLUMNS, FACTORS, ChoiceError, choose_models

__all__ = [
    "DEFAULT_SUMMARY",
    "SUMMARIES",
    "Summary",
    "compose",
    "has_profiles",
    "link_law",
    "parse_summary",
    "profile_spread",
    "split_half_floor",
]

_COND = list(FACTORS.values())
_TRIM = 0.1  # share cut from each end for the trimmed mean (as scipy.stats.trim_mean)


class Summary(StrEnum):
    """How a point's repeats become its time (see the module docstring)."""

    trimmed_mean = "trimmed-mean"
    median = "median"


SUMMARIES = tuple(s.value for s in Summary)
DEFAULT_SUMMARY = Summary.trimmed_mean


def parse_summary(summary: str | Summary | None) -> Summary:
    """``summary`` as a :class:`Summary` (None: the default), or a ChoiceError listing them."""
    if summary is None:
        return DEFAULT_SUMMARY
    try:
        return Summary(summary)
    except ValueError:
        raise ChoiceError(
            "{summary} {value!r}: choose one of {known}", value=summary, known=", ".join(SUMMARIES)
        ) from None


def has_profiles(frame: pd.DataFrame) -> bool:
    """True when the store holds profile halves (edge or cloud partition rows)."""
    return bool(
        ((frame["record"] == "partition") & frame["host_role"].isin(["edge", "cloud"])).any()
    )


def _pick_host(rows: pd.DataFrame, side: str, host: str | None) -> pd.DataFrame:
    hosts = sorted(set(rows[f"{side}_host"]))
    if host is not None:
        if host not in hosts:
            raise ChoiceError(
                f"{{{side}_host}} {{host!r}}: no {side} profile from it; profiled: {{hosts}}",
                host=host,
                hosts=hosts,
            )
        return rows[rows[f"{side}_host"] == host]
    if len(hosts) > 1:
        raise ChoiceError(
            f"the store has {side} profiles from {{hosts}}: choose one with the {{{side}_host}}",
            hosts=hosts,
        )
    return rows


def _halves(frame: pd.DataFrame, edge_host: str | None, cloud_host: str | None):
    part = frame[frame["record"] == "partition"]
    edge = _pick_host(part[part["host_role"] == "edge"], "edge", edge_host)
    cloud = _pick_host(part[part["host_role"] == "cloud"], "cloud", cloud_host)
    link = frame[frame["record"] == "link"]
    if edge.empty or cloud.empty:
        missing = "edge" if edge.empty else "cloud"
        raise UserError(
            f"the store has no {missing} profile: run `adaptsim profile --host {missing}` "
            "into the same store"
        )
    if link.empty:
        raise UserError(
            "the store has no link profile: run `adaptsim profile --host link` into the same store"
        )
    quotas = edge["edge_cpu_quota"].unique()
    if len(quotas) > 1:
        raise UserError(f"the edge profiles mix CPU quotas {sorted(quotas)}: keep one per store")
    return edge, cloud, link


def link_law(link: pd.DataFrame) -> pd.DataFrame:
    """Per bandwidth level: overhead_s and s_per_byte fitted to one time per probe size."""
    out = []
    for bw, g in link.groupby("bandwidth_mbps"):
        a = np.column_stack([np.ones(len(g)), g["output_bytes"].to_numpy()])
        (over, slope), _ = nnls(a, g["comm_s"].to_numpy())
        out.append({"bandwidth_mbps": bw, "overhead_s": over, "s_per_byte": slope})
    return pd.DataFrame(out)


def _side(rows: pd.DataFrame, side: str) -> pd.DataFrame:
    """The columns of one side's times that composition needs."""
    keep = ["model", "point", "layer_index", "layer_name", "output_bytes", f"{side}_cpu_pct"]
    return rows[[*keep, f"{side}_mem_pct", f"{side}_s"]]


def _every_other(samples: pd.DataFrame, key: list[str], parity: int | None) -> pd.DataFrame:
    """Every other repeat (parity 0 or 1) of each group; all of them for None."""
    if parity is None:
        return samples
    k = samples.groupby(key).cumcount()
    if not (k % 2 == parity).any():  # a single repeat serves both halves
        return samples
    return samples[k % 2 == parity]


def _group_summary(s: pd.DataFrame, key: list[str], col: str, summary: str) -> pd.Series:
    """Per row, the summary of ``col`` over its group's rows (grouped by ``key``)."""
    g = s.groupby(key, dropna=False)[col]
    if summary == "median":
        return g.transform("median")
    n, rank = g.transform("size"), g.rank(method="first")
    cut = np.floor(_TRIM * n)
    inner = s[col].where((rank > cut) & (rank <= n - cut))
    return inner.groupby([s[k] for k in key], dropna=False).transform("mean")


def _summaries(rows: pd.DataFrame, key: list[str], col: str, summary: str, parity=None):
    """One row per group of ``key``: the summary of its repeats (or the stored median)."""
    s = rows[rows["stat"] == "sample"]
    if s.empty:  # a store with summaries only
        return rows[rows["stat"] == "median"]
    s = _every_other(s, key, parity)
    return s.assign(**{col: _group_summary(s, key, col, summary)}).drop_duplicates(key)


def _summarise(rows: pd.DataFrame, side: str, summary: str, parity=None) -> pd.DataFrame:
    """One side's time per (model, point, condition): a summary of its repeats."""
    key = ["model", "point", f"{side}_cpu_pct", f"{side}_mem_pct"]
    return _side(_summaries(rows, key, f"{side}_s", summary, parity), side)


def _link_summary(link: pd.DataFrame, summary: str, parity=None) -> pd.DataFrame:
    """The link law fitted to a summary of each (bandwidth, size)'s probes."""
    return link_law(_summaries(link, ["bandwidth_mbps", "output_bytes"], "comm_s", summary, parity))


def _compose(edge: pd.DataFrame, cloud: pd.DataFrame, law: pd.DataFrame, quota: float):
    both = edge.merge(
        cloud.drop(columns=["layer_index", "layer_name", "output_bytes"]), on=["model", "point"]
    )
    rows = both.merge(law, how="cross")
    rows["comm_s"] = rows["overhead_s"] + rows["output_bytes"] * rows["s_per_byte"]
    rows["total_s"] = rows["edge_s"] + rows["cloud_s"] + rows["comm_s"]
    rows["edge_cpu_quota"] = quota
    return rows.drop(columns=["overhead_s", "s_per_byte"])


def compose(
    frame: pd.DataFrame,
    models: list[str] | None = None,
    edge_host: str | None = None,
    cloud_host: str | None = None,
    summary: str | Summary = DEFAULT_SUMMARY,
) -> pd.DataFrame:
    """Per-partition rows (store columns) composed from edge, cloud and link profiles.

    ``summary`` (a :class:`Summary` or its value) is how each point's repeats
    become its time; the rows' ``stat`` is ``mean`` for the trimmed mean.
    """
    summary = parse_summary(summary)
    edge, cloud, link = _halves(frame, edge_host, cloud_host)
    names = sorted(set(edge["model"]) & set(cloud["model"]))
    names = choose_models(models, names, "the models profiled on both edge and cloud")
    if not names:
        raise UserError(
            f"no model is profiled on both sides (edge: {sorted(set(edge['model']))}, "
            f"cloud: {sorted(set(cloud['model']))})"
        )
    rows = _compose(
        _summarise(edge[edge["model"].isin(names)], "edge", summary),
        _summarise(cloud[cloud["model"].isin(names)], "cloud", summary),
        _link_summary(link, summary),
        float(edge["edge_cpu_quota"].iloc[0]),
    )
    hosts = {
        f"{side}_{k}": src[f"{side}_{k}"].iloc[0]
        for side, src in (("edge", edge), ("cloud", cloud))
        for k in ("host", "arch", "cpu", "cores", "memory_bytes")
    }
    rows = rows.assign(
        source="profile:composed",
        provenance=f"composed from edge, cloud and link profiles ({summary} of the repeats)",
        record="partition",
        host_role="edge+cloud",
        repeats=int(edge["repeats"].max()),
        stat="median" if summary is Summary.median else "mean",
        flags="",
        **hosts,
    )
    return rows.loc[:, list(COLUMNS)].reset_index(drop=True)


def profile_spread(
    frame: pd.DataFrame, models: list[str], summary: str | Summary = DEFAULT_SUMMARY
) -> dict[str, dict[str, dict]]:
    """Per model, the spread quantiles (log sample / summary) of the edge, cloud and
    link repeats: each part pooled over the models' samples, and the edge and cloud
    also per point from that model's own samples, borrowing those of the points
    nearest in time where a point has too few (``by_point``; see
    :mod:`adaptsim.calibration.spread`). The link is profiled once for every model:
    each point takes the probes nearest in size to its payload
    (:func:`~adaptsim.calibration.spread.by_size`)."""
    summary = parse_summary(summary)
    pooled, ratios = {}, {}
    for part, role in zip(PARTS, ("edge", "cloud", "link"), strict=True):
        r = frame[(frame["host_role"] == role) & (frame["stat"] == "sample")]
        if role != "link":
            r = r[r["model"].isin(models)]
        col = f"{part}_s"
        key = [c for c in ("model", "point", *_COND, "output_bytes") if c in r.columns]
        v = r[col].to_numpy()
        centre = _group_summary(r, key, col, summary).to_numpy()
        ok = (v > 1e-4) & (centre > 1e-4)
        lr = np.log(v[ok] / centre[ok])
        pooled[part] = quantiles(lr)
        if role != "link":
            ratios[part] = (lr, r["model"].to_numpy()[ok], r["point"].to_numpy()[ok], centre[ok])
        else:
            link = (lr, r["output_bytes"].to_numpy(dtype=float)[ok])
    out = {}
    for model in models:
        spread = {part: dict(q) for part, q in pooled.items()}
        for part, (lr, owner, point, centre_s) in ratios.items():
            mine = owner == model
            own = by_point(lr[mine], point[mine], centre_s[mine])
            if own:
                spread[part]["by_point"] = own
        own = by_size(*link, _point_bytes(frame, model))
        if own:
            spread["comm"]["by_point"] = own
        out[model] = spread
    return out


def _point_bytes(frame: pd.DataFrame, model: str) -> dict[int, float]:
    """Each of the model's profiled points and the bytes it sends (its output tensor)."""
    rows = frame[(frame["model"] == model) & frame["host_role"].isin(["edge", "cloud"])]
    rows = rows.drop_duplicates("point")
    return dict(zip(rows["point"].astype(int), rows["output_bytes"].astype(float), strict=True))


def split_half_floor(
    frame: pd.DataFrame,
    model: str,
    edge_host: str | None = None,
    cloud_host: str | None = None,
    summary: str | Summary = DEFAULT_SUMMARY,
) -> pd.DataFrame:
    """The profile's noise floor for one model: a row per condition (see module doc)."""
    summary = parse_summary(summary)
    edge, cloud, link = _halves(frame, edge_host, cloud_host)
    edge, cloud = edge[edge["model"] == model], cloud[cloud["model"] == model]
    quota = float(edge["edge_cpu_quota"].iloc[0])
    composed = []
    for parity in (0, 1):
        rows = _compose(
            _summarise(edge, "edge", summary, parity),
            _summarise(cloud, "cloud", summary, parity),
            _link_summary(link, summary, parity),
            quota,
        )
        wide = rows.pivot_table(index=_COND, columns="point", values="total_s", aggfunc="first")
        composed.append(wide.sort_index())
    a, b = composed
    if a.shape[0] == 0 or a.shape != b.shape:
        return pd.DataFrame(columns=[*_COND, "model", "regret", "ape", "ape_p90"])
    ma, mb = a.to_numpy(), b.to_numpy()
    return a.index.to_frame(index=False).assign(
        model=model, regret=regret(ma, mb), **ape_columns(ma, mb)
    )
