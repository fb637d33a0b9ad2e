"""Calibrations from this project's own profiles (``adaptsim profile``).

A profile times the edge half of every point on the edge host under edge stress,
the cloud half on the cloud host under cloud stress, and the link on its own. The
end-to-end time of a point under a condition is their sum, so the profiles are
composed into per-partition rows over every combination of measured levels
(edge CPU x edge memory x cloud CPU x cloud memory x bandwidth), and those rows
are fitted like any per-partition data (:mod:`adaptsim.calibration.fit`). The
link at each measured bandwidth is a least-squares line through the probe
medians, ``overhead_s + bytes * seconds_per_byte``.

The spread comes from the repeats themselves: quantiles of log(sample / median)
of each side's samples and of the link probes.

The noise floor of a profile is split-half: the medians of the odd repeats pick
the best point, scored on the medians of the even repeats (and their per-point
differences give the floor's per-point error).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from adaptsim.calibration.check import regret
from adaptsim.calibration.fit import _quantiles
from adaptsim.errors import UserError
from adaptsim.store import COLUMNS, FACTORS

__all__ = ["compose", "has_profiles", "profile_spread", "split_half_floor"]

_COND = list(FACTORS.values())


def has_profiles(frame: pd.DataFrame) -> bool:
    """True when the store holds profile halves (edge or cloud partition rows)."""
    return bool(
        ((frame["record"] == "partition") & frame["host_role"].isin(["edge", "cloud"])).any()
    )


def _pick_host(rows: pd.DataFrame, side: str, host: str | None) -> pd.DataFrame:
    hosts = sorted(set(rows[f"{side}_host"]))
    if host is not None:
        if host not in hosts:
            raise UserError(f"--{side}-host {host!r}: no {side} profile from it; profiled: {hosts}")
        return rows[rows[f"{side}_host"] == host]
    if len(hosts) > 1:
        raise UserError(
            f"the store has {side} profiles from {hosts}: choose one with --{side}-host"
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
    """Per bandwidth level: overhead_s and s_per_byte fitted to the probe medians."""
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
) -> pd.DataFrame:
    """Per-partition rows (store columns) composed from edge, cloud and link profiles."""
    edge, cloud, link = _halves(frame, edge_host, cloud_host)
    names = sorted(set(edge["model"]) & set(cloud["model"]))
    if models:
        unknown = sorted(set(models) - set(names))
        if unknown:
            raise UserError(
                f"--models: {unknown} not profiled on both edge and cloud; both have {names}"
            )
        names = [n for n in names if n in models]
    if not names:
        raise UserError(
            f"no model is profiled on both sides (edge: {sorted(set(edge['model']))}, "
            f"cloud: {sorted(set(cloud['model']))})"
        )
    med_link = link[link["stat"] == "median"]
    rows = _compose(
        _side(edge[edge["model"].isin(names) & (edge["stat"] == "median")], "edge"),
        _side(cloud[cloud["model"].isin(names) & (cloud["stat"] == "median")], "cloud"),
        link_law(med_link),
        float(edge["edge_cpu_quota"].iloc[0]),
    )
    hosts = {
        f"{side}_{k}": src[f"{side}_{k}"].iloc[0]
        for side, src in (("edge", edge), ("cloud", cloud))
        for k in ("host", "arch", "cpu", "cores", "memory_bytes")
    }
    rows = rows.assign(
        source="profile:composed",
        provenance="composed from edge, cloud and link profiles",
        record="partition",
        host_role="edge+cloud",
        repeats=int(edge["repeats"].max()),
        stat="median",
        flags="",
        **hosts,
    )
    return rows.loc[:, list(COLUMNS)].reset_index(drop=True)


def profile_spread(frame: pd.DataFrame, models: list[str]) -> dict[str, dict]:
    """Spread quantiles (log sample / median) of the edge, cloud and link repeats."""
    out = {}
    for part, role in (("edge", "edge"), ("cloud", "cloud"), ("comm", "link")):
        r = frame[frame["host_role"] == role]
        if role != "link":
            r = r[r["model"].isin(models)]
        col = f"{part}_s"
        key = [c for c in ("model", "point", *_COND, "output_bytes") if c in r.columns]
        med = r[r["stat"] == "median"][[*key, col]].rename(columns={col: "median"})
        s = r[r["stat"] == "sample"][[*key, col]].merge(med, on=key)
        ok = (s[col] > 1e-4) & (s["median"] > 1e-4)
        out[part] = _quantiles(np.log(s.loc[ok, col].to_numpy() / s.loc[ok, "median"].to_numpy()))
    return out


def _half(rows: pd.DataFrame, side: str, parity: int) -> pd.DataFrame:
    """Medians of every other repeat (parity 0 or 1) of one side's samples."""
    s = rows[rows["stat"] == "sample"].copy()
    key = ["model", "point", f"{side}_cpu_pct", f"{side}_mem_pct"]
    s["k"] = s.groupby(key).cumcount()
    s = s[s["k"] % 2 == parity]
    agg = s.groupby(key, as_index=False).agg(
        layer_index=("layer_index", "first"),
        layer_name=("layer_name", "first"),
        output_bytes=("output_bytes", "first"),
        **{f"{side}_s": (f"{side}_s", "median")},
    )
    return _side(agg, side)


def split_half_floor(
    frame: pd.DataFrame,
    model: str,
    edge_host: str | None = None,
    cloud_host: str | None = None,
) -> pd.DataFrame:
    """The profile's noise floor for one model: a row per condition (see module doc)."""
    edge, cloud, link = _halves(frame, edge_host, cloud_host)
    edge, cloud = edge[edge["model"] == model], cloud[cloud["model"] == model]
    quota = float(edge["edge_cpu_quota"].iloc[0])
    composed = []
    for parity in (0, 1):
        ls = link[link["stat"] == "sample"].copy()
        ls["k"] = ls.groupby(["bandwidth_mbps", "output_bytes"]).cumcount()
        if (ls["k"] % 2 == parity).any():  # a single probe repeat serves both halves
            ls = ls[ls["k"] % 2 == parity]
        lm = ls.groupby(["bandwidth_mbps", "output_bytes"], as_index=False)["comm_s"].median()
        rows = _compose(
            _half(edge, "edge", parity), _half(cloud, "cloud", parity), link_law(lm), quota
        )
        wide = rows.pivot_table(index=_COND, columns="point", values="total_s", aggfunc="first")
        composed.append(wide.sort_index())
    a, b = composed
    if a.shape[0] == 0 or a.shape != b.shape:
        return pd.DataFrame(columns=[*_COND, "model", "regret", "ape"])
    ma, mb = a.to_numpy(), b.to_numpy()
    ape = np.nanmedian(np.abs(ma / np.where(mb > 0, mb, np.nan) - 1), axis=1)
    return a.index.to_frame(index=False).assign(model=model, regret=regret(ma, mb), ape=ape)
