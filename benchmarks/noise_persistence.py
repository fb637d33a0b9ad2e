"""Does service-time noise persist in time? Autocorrelation of real service ratios.

The simulator replays each frame's service noise (edge, uplink, cloud) as an
independent draw. This script asks the real data whether a slow inference is
followed by slow ones, and for how long, against a null that has no order:

- **testbed**: the real runs of ``adaptsim validate`` (``*-seedN/real/``): per
  frame and stage, ``log(measured / the calibration's time for that point at the
  frame's conditions)`` (the edge at the stress when its head started, the uplink
  through the bandwidth trace from when its transfer started, the cloud), centred
  per run, policy, point and condition level (so a calibration that is off at one
  stress level or bandwidth step is not read as persistence). The twin's records
  (``simulated/``, i.i.d. draws by construction) go through the same code: a check
  of the method.
- **own profiles** (``docs/own_profiles/own.parquet``): each point's repeats are
  stored in the order they were timed, one repeat of every point (in a random
  order) apart: lag 1 is one sweep over the model's points.
- **AdaptiveDNN**: the within-file rest of each line's near-repeat ratio
  (:func:`adaptsim.calibration.spread.file_decomposition`) against the same file's
  next lines; a line's time apart is at least the 3 inferences measured per line
  (loading each point's sub-models, not in the data, comes on top: the correlation
  times from it are lower bounds).

Correlations are of normal scores (ranks mapped to a standard normal: the
quantity the simulator's Gaussian-copula draws would correlate, and robust to the
slow outliers); the null is the same statistic with the values permuted within
their centring groups (200 permutations: its mean and 95 % band). A correlation
time ``tau_s`` is fitted as ``r(gap) - null = share * exp(-gap / tau_s)`` over
gap bins (weighted least squares over a grid), with a 95 % interval from 200
bootstrap resamples of whole sequences (runs, files).

Run: ``.venv/bin/python benchmarks/noise_persistence.py [--testbed DIR ...]
[--own docs/own_profiles/own.parquet] [--data ../shared/data] [--skip adaptivednn]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from adaptsim.calibration.persistence import (
    Lagged,
    lagged,
    profile_series,
    within_file_series,
)

__all__ = ["adaptivednn_series", "own_profile_series", "testbed_series"]

ROOT = Path(__file__).resolve().parent.parent
CALIBRATION = ROOT / "src" / "adaptsim" / "data" / "calibration_own_2core.json"
TESTBED_DIRS = (Path("/work/prof/val"), Path("/work/prof/vs-s3"), Path("/work/prof/vs-norway"))
STAGES = ("edge", "uplink", "cloud")
STATIC = ("static-best", "all-edge", "all-cloud")
# (records, centred per condition level or per point only, policies): the first is the
# cleanest (static splits: no decision depends on an earlier draw), the twin the check.
TESTBED_VARIANTS = (
    ("real", True, STATIC),
    ("real", False, STATIC),
    ("real", True, None),
    ("simulated", True, STATIC),
    ("simulated", True, None),
)
# Below this a predicted or measured time is a rounding, not a service.
_MIN_S = 1e-4


def _predicted(sc, rec: pd.DataFrame) -> pd.DataFrame:
    """The calibration's time per frame and stage at the frame's conditions, and the
    condition level each was predicted at (see the module docstring)."""
    from adaptsim.simulator.engine import Tables
    from adaptsim.simulator.link import Link

    tables, link = Tables(sc), Link(sc.bandwidth)
    col = {int(o): i for i, o in enumerate(sc.model.ordinals)}
    out = []
    for r in rec.itertuples(index=False):
        k = col[int(r.point)]
        es = r.arrival_s + r.edge_wait_s
        e_level = (sc.edge_cpu.at(es), sc.edge_mem.at(es))
        edge = tables.lists(*e_level)[0][k]
        ls = es + r.edge_s + r.uplink_wait_s
        cpu, mem = sc.edge_cpu.at(ls), sc.edge_mem.at(ls)
        _, over, wire, host = tables.lists(cpu, mem)
        fin = max(link.finish(ls + over[k], wire[k]), ls + host[k])
        out.append(
            {
                "edge_pred_s": edge,
                "uplink_pred_s": fin - ls,
                "cloud_pred_s": tables.cloud_list[k],
                "edge_level": f"{e_level[0]:g}/{e_level[1]:g}",
                "uplink_level": f"{sc.bandwidth.at(ls):.6g}/{cpu:g}/{mem:g}",
                "cloud_level": "",
            }
        )
    return pd.DataFrame(out, index=rec.index)


def testbed_series(
    dirs: list[Path],
    calibration: Path,
    which: str = "real",
    per_level: bool = True,
    policies: tuple[str, ...] | None = None,
) -> dict[str, pd.DataFrame]:
    """Per stage, one row per frame of every run under ``dirs`` (``which``: ``real`` or
    the twin, ``simulated``): its sequence (run, policy, seed), centring group (and
    point, and with ``per_level`` the condition level it was predicted at), arrival_s
    and log_ratio. ``policies``: only these policies' runs (static ones: no
    decision of a run depends on an earlier frame's draw)."""
    from adaptsim.testbed.scenario import scenario_for_testbed

    frames = []
    for top in dirs:
        for run in sorted(
            p for p in top.glob("*-seed*") if (p / which / "records.parquet").is_file()
        ):
            v = json.loads((run / "validation.json").read_text())
            rec = pd.read_parquet(run / which / "records.parquet")
            rec = rec[np.isfinite(rec["latency_s"].to_numpy(float))]
            if policies is not None:
                rec = rec[rec["policy"].isin(policies)]
            seeds = tuple(int(s) for s in rec["seed"].unique())
            sc = scenario_for_testbed(
                ROOT / v["scenario"],
                calibration,
                v["duration_s"],
                v["time_scale"],
                seeds,
                v["rate_hz"],
            )
            rec = rec.sort_values(["policy", "seed", "arrival_s"], kind="stable").reset_index(
                drop=True
            )
            pred = _predicted(sc, rec)
            frames.append(pd.concat([rec.assign(run=f"{top.name}/{run.name}"), pred], axis=1))
    allf = pd.concat(frames, ignore_index=True)
    out = {}
    for stage in STAGES:
        meas = allf[f"{stage}_s"].to_numpy(float)
        pred = allf[f"{stage}_pred_s"].to_numpy(float)
        ok = (meas > _MIN_S) & (pred > _MIN_S) & np.isfinite(pred)
        lr = np.where(ok, np.log(np.where(ok, meas, 1.0) / np.where(ok, pred, 1.0)), np.nan)
        out[stage] = pd.DataFrame(
            {
                "seq": allf["run"] + "|" + allf["policy"] + "|" + allf["seed"].astype(str),
                "centre": allf["run"]
                + "|"
                + allf["policy"]
                + "|"
                + allf["seed"].astype(str)
                + "|"
                + allf["point"].astype(str)
                + ("|" + allf[f"{stage}_level"] if per_level else ""),
                "t_s": allf["arrival_s"],
                "log_ratio": lr,
            }
        )
    return out


def own_profile_series(store: Path, per_visit: bool) -> dict[str, pd.DataFrame]:
    """:func:`~adaptsim.calibration.persistence.profile_series` of a store."""
    from adaptsim.store.io import read_store

    frame, meta = read_store(store)
    return profile_series(frame, meta, per_visit)


def adaptivednn_series(data: Path) -> dict[str, pd.DataFrame]:
    """:func:`~adaptsim.calibration.persistence.within_file_series` of the AdaptiveDNN
    data, imported with the real importer into a scratch store."""
    from adaptsim.calibration.build import measured_rows
    from adaptsim.importers import import_adaptivednn

    tmp = Path(tempfile.mkdtemp(prefix=f"persist-{os.getpid()}-")) / "s.parquet"
    import_adaptivednn(
        [data / "adaptivednn" / "2020-05-27", data / "adaptivednn" / "2021-08-20"], tmp
    )
    return within_file_series(measured_rows(tmp).rows)


def _markdown(frame: pd.DataFrame) -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from policy_scores import markdown

    return markdown(frame)


def _report(
    title: str, series: dict[str, pd.DataFrame], max_lag: int, edges_s, rng
) -> pd.DataFrame:
    fits = []
    for part, d in series.items():
        lg = Lagged.of(d["log_ratio"].to_numpy(), d["t_s"].to_numpy(), d["seq"].to_numpy(),
                       d["centre"].to_numpy())  # fmt: skip
        values = int(np.isfinite(lg.x).sum())
        by_lag, fit_lag = lagged(lg, max_lag=5, by="lag", rng=rng)
        by_gap, fit = lagged(lg, max_lag=max_lag, by="gap", gap_edges_s=edges_s, rng=rng)
        print(
            f"\n### {title}: {part} ({values} values, {int(lg.seq.max()) + 1} sequences), by lag\n"
        )
        print(_markdown(by_lag))
        print(f"\n{title}: {part}, by time apart (s; pairs up to {max_lag} apart)\n")
        print(_markdown(by_gap))
        fits.append({"data": title, "part": part, "values": values, "fit": "by gap", **fit})
        fits.append({"data": title, "part": part, "values": values, "fit": "by lag", **fit_lag})
    return pd.DataFrame(fits)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--testbed", type=Path, nargs="*", default=list(TESTBED_DIRS))
    ap.add_argument("--calibration", type=Path, default=CALIBRATION)
    ap.add_argument("--own", type=Path, default=ROOT / "docs" / "own_profiles" / "own.parquet")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--skip", nargs="*", default=[], choices=["testbed", "own", "adaptivednn"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    fits = []
    frame_edges = np.array([0, 0.75, 1.5, 3, 6, 12, 24, 48])
    if "testbed" not in args.skip:
        for which, per_level, policies in TESTBED_VARIANTS:
            title = f"testbed {which}, {'static' if policies else 'all'} policies, centred per " + (
                "level" if per_level else "point"
            )
            series = testbed_series(args.testbed, args.calibration, which, per_level, policies)
            fits.append(_report(title, series, 40, frame_edges, rng))
    if "own" not in args.skip:
        own_edges = np.array([0, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60])
        for per_visit in (True, False):
            title = "own profiles, centred " + ("per visit" if per_visit else "per condition")
            fits.append(_report(title, own_profile_series(args.own, per_visit), 5, own_edges, rng))
    if "adaptivednn" not in args.skip:
        ad_edges = np.array([0, 0.5, 1, 2, 4, 8, 16, 32, 64])
        fits.append(
            _report("AdaptiveDNN within-file", adaptivednn_series(args.data), 5, ad_edges, rng)
        )
    print(
        "\n## Correlation time per part: r(gap) - null = share * exp(-gap / tau_s), 95 % interval\n"
    )
    print(_markdown(pd.concat(fits, ignore_index=True)))


if __name__ == "__main__":
    main()
