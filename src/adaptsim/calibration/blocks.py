"""Calibrations from per-block measurements on named hosts (Scission-style data).

Per-block rows time each block alone on one host with no stress, so a
calibration built from them has a single stress level (querying another raises,
never extrapolating silently) and no spread beyond the mean of the runs. The
edge host and the cloud host are chosen by name; the link comes from the
source's network facts between them (``ping`` as the fixed overhead of a request
and its reply, ``bandwidth`` as the single measured level).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from adaptsim.calibration.grid import StressGrid
from adaptsim.calibration.model import Calibration, ModelCalibration, law_s, link_grid
from adaptsim.calibration.spread import FLAT, PARTS
from adaptsim.errors import UserError
from adaptsim.store import ChoiceError, choose_models
from adaptsim.store.catalog import catalog_model_points
from adaptsim.units import seconds_per_byte

__all__ = ["fit_from_blocks", "network_link"]

_ZERO = np.array([0.0])


def _short(host: str) -> str:
    """Scission's network table names hosts without their role prefix."""
    for prefix in ("device-", "edge-", "cloud-"):
        if host.lower().startswith(prefix):
            return host[len(prefix) :]
    return host


def network_link(network: list[dict], edge_host: str, cloud_host: str) -> tuple[float, float]:
    """(overhead_s, bandwidth_mbps) between two hosts from a source's network facts."""
    a, b = _short(edge_host).lower(), _short(cloud_host).lower()
    for row in network:
        if row.get("file", "network_stats.csv") != "network_stats.csv":
            continue
        if row.get("source", "").lower() == a and row.get("destination", "").lower() == b:
            return float(row["ping(ms)"]) / 1000.0, float(row["bandwidth(mbps)"])
    raise UserError(
        f"no network facts between {edge_host} and {cloud_host} in the store; "
        "import the source's network_stats.csv beside its blocks"
    )


def _blocks(rows: pd.DataFrame, host: str, side: str) -> pd.DataFrame:
    r = rows[rows[f"{side}_host"] == host]
    return r.sort_values("point").drop_duplicates("point", keep="last")


def fit_from_blocks(
    frame: pd.DataFrame,
    edge_host: str,
    cloud_host: str,
    network: list[dict],
    models: list[str] | None = None,
) -> Calibration:
    """Calibrate every model timed on both hosts."""
    blocks = frame[frame["record"] == "block"]
    hosts = sorted(set(blocks["edge_host"]) | set(blocks["cloud_host"]) - {""})
    for host, side in ((edge_host, "edge"), (cloud_host, "cloud")):
        if host not in set(blocks[f"{side}_host"]):
            raise ChoiceError(
                f"{{{side}_host}} {{host!r}}: no {side} blocks timed on it; hosts in the "
                "store: {hosts}",
                host=host,
                hosts=", ".join(h for h in hosts if h),
            )
    overhead_s, bw = network_link(network, edge_host, cloud_host)
    edge_models = set(blocks[blocks["edge_host"] == edge_host]["model"])
    names = sorted(edge_models & set(blocks[blocks["cloud_host"] == cloud_host]["model"]))
    names = choose_models(models, names, f"the models timed on both {edge_host} and {cloud_host}")
    if not names:
        raise UserError(f"no model was timed on both {edge_host} and {cloud_host}")
    out = {}
    for name in names:
        e = _blocks(blocks[blocks["model"] == name], edge_host, "edge")
        c = _blocks(blocks[blocks["model"] == name], cloud_host, "cloud")
        if list(e["point"]) != list(c["point"]):
            raise UserError(f"{name}: the two hosts timed different blocks")
        out[name] = _model(name, e, c, overhead_s, bw)
    prov = {
        "method": "adaptsim.calibration.blocks (per-block means, no stress)",
        "edge_host": edge_host,
        "cloud_host": cloud_host,
        "overhead_s": overhead_s,
        "bandwidth_mbps": bw,
    }
    return Calibration(out, prov)


def _model(name: str, e: pd.DataFrame, c: pd.DataFrame, overhead_s: float, bw: float):
    zoo = catalog_model_points(name)
    input_bytes = (
        float(zoo["output_bytes"].iloc[0]) if zoo is not None else float(e["output_bytes"].iloc[0])
    )
    ordinals = np.r_[0, e["point"].to_numpy(dtype=np.int64)]
    kinds = ("all_cloud", *(["cut"] * (len(ordinals) - 2)), "all_edge")
    names = (
        "input",
        *(
            f"block {int(p) - 1} (layer {int(li)})"
            for p, li in zip(e["point"], e["layer_index"], strict=True)
        ),
    )
    out_bytes = np.r_[input_bytes, e["output_bytes"].to_numpy(dtype=np.float64)]
    edge = np.r_[0.0, e["edge_s"].to_numpy(dtype=np.float64)]
    cloud = np.r_[0.0, c["cloud_s"].to_numpy(dtype=np.float64)]
    n = len(ordinals)
    law = np.stack([np.full(n, overhead_s), out_bytes, np.zeros(n)], axis=-1)  # no host bound
    table = law_s(law, seconds_per_byte(bw))[:, None]
    return ModelCalibration(
        model=name,
        ordinals=ordinals,
        kinds=kinds,
        layer_names=names,
        output_bytes=out_bytes,
        edge_blocks=StressGrid(_ZERO, _ZERO, edge[None, None, :]),
        cloud_blocks=StressGrid(_ZERO, _ZERO, cloud[None, None, :]),
        link=link_grid(_ZERO, _ZERO, law[None, None]),
        link_table=link_grid(_ZERO, _ZERO, table[None, None]),
        bandwidth_levels=(bw,),
        spread=dict.fromkeys(PARTS, FLAT),
        quality={"blocks": n - 1},
        notes=("per-block means without stress: one stress level only",),
    )
