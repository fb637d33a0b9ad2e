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
import itertools
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtri

__all__ = [
    "Lagged",
    "adaptivednn_series",
    "fit_tau",
    "lagged",
    "normal_scores",
    "own_profile_series",
    "testbed_series",
]

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
_TAU_GRID_S = np.geomspace(0.01, 1e4, 400)
NULL_REPS = 200
BOOT_REPS = 200


def normal_scores(x: np.ndarray) -> np.ndarray:
    """Finite values replaced by the standard normal quantile of their mid-rank; NaN stays."""
    out = np.full(len(x), np.nan)
    ok = np.isfinite(x)
    r = pd.Series(x[ok]).rank(method="average").to_numpy()
    out[ok] = ndtri((r - 0.5) / ok.sum())
    return out


def _centred(x: np.ndarray, group: np.ndarray) -> np.ndarray:
    s = pd.Series(x)
    return (s - s.groupby(group).transform("mean")).to_numpy()


@dataclass
class Lagged:
    """Values in sequence order with what pairs them and what they were centred within.

    ``x``: the centred normal scores (NaN: no value for this frame); ``t_s``: when
    each was measured; ``seq``: the sequence (pairs never cross one); ``centre``:
    the group each was centred within (the null permutes within it). Rows are in
    sequence order, each sequence's rows contiguous and in time order.
    """

    x: np.ndarray
    t_s: np.ndarray
    seq: np.ndarray
    centre: np.ndarray

    @classmethod
    def of(cls, log_ratio, t_s, seq, centre) -> Lagged:
        """From raw log ratios: sorted by sequence and time, centred, normal scores."""
        seq, t_s = pd.factorize(np.asarray(seq))[0], np.asarray(t_s, float)
        order = np.lexsort((np.arange(len(seq)), t_s, seq))
        seq, t_s = seq[order], t_s[order]
        centre = pd.factorize(np.asarray(centre)[order])[0]
        lr = np.asarray(log_ratio, float)[order]
        # a value alone in its centring group is zero by construction: it tells nothing
        alone = pd.Series(np.isfinite(lr)).groupby(centre).transform("sum").to_numpy() < 2
        lr = np.where(alone, np.nan, lr)
        x = normal_scores(_centred(lr, centre))
        return cls(_centred(x, centre), t_s, seq, centre)


def _pairs(lg: Lagged, max_lag: int) -> tuple[np.ndarray, ...]:
    """Every pair (i, i+lag), lag 1..max_lag, inside one sequence with both values:
    (first index, second index, lag, gap s)."""
    firsts, seconds, lags = [], [], []
    n = len(lg.x)
    ok = np.isfinite(lg.x)
    for lag in range(1, max_lag + 1):
        if lag >= n:
            break
        i = np.arange(n - lag)
        keep = (lg.seq[:-lag] == lg.seq[lag:]) & ok[:-lag] & ok[lag:]
        firsts.append(i[keep])
        seconds.append(i[keep] + lag)
        lags.append(np.full(keep.sum(), lag))
    a, b, lag = (np.concatenate(v) if v else np.zeros(0, int) for v in (firsts, seconds, lags))
    return a, b, lag, lg.t_s[b] - lg.t_s[a]


def _sums(x, a, b, bins, n_bins, seq, n_seq):
    """Per (sequence, bin): the pair count and the sums of a*b, a^2 and b^2 over its
    pairs (the correlation's pieces, so that resampling sequences only re-adds them)."""
    key = seq[a] * n_bins + bins
    size = n_seq * n_bins

    def per(w):
        return np.bincount(key, w, size).reshape(n_seq, n_bins)

    xa, xb = x[a], x[b]
    return per(xa * xb), per(None), per(xa * xa), per(xb * xb)


def _corr(prod, cnt, sa, sb):
    """Per bin, sum(a b) / sqrt(sum(a^2) sum(b^2)) over its pairs (centred values): a
    bin that holds a subpopulation of wider or narrower values is still a correlation."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return prod.sum(0) / np.sqrt(sa.sum(0) * sb.sum(0))


def _permuted(lg: Lagged, rng: np.random.Generator) -> np.ndarray:
    """The values permuted within their centring groups (positions kept)."""
    ok = np.isfinite(lg.x)
    idx = np.flatnonzero(ok)
    grp = lg.centre[idx]
    home = idx[np.lexsort((idx, grp))]
    shuffled = idx[np.lexsort((rng.random(len(idx)), grp))]
    out = lg.x.copy()
    out[home] = lg.x[shuffled]
    return out


def lagged(
    lg: Lagged,
    *,
    max_lag: int,
    by: str = "lag",
    gap_edges_s: np.ndarray | None = None,
    rng: np.random.Generator,
    null_reps: int = NULL_REPS,
    boot_reps: int = BOOT_REPS,
) -> tuple[pd.DataFrame, dict]:
    """The autocorrelation per lag (``by="lag"``) or per gap bin (``by="gap"``, bins
    ``gap_edges_s``), its permutation null, and the fitted correlation time.

    Returns:
        (table, fit): the table has per bin the pairs, their median gap, ``r``, the
        null's mean and 2.5/97.5 % band, and ``excess`` = r - null mean; the fit is
        :func:`fit_tau`'s on the excess with its bootstrap 95 % interval.
    """
    a, b, lag, gap = _pairs(lg, max_lag)
    if by == "lag":
        bins, labels = lag - 1, [str(k) for k in range(1, max_lag + 1)]
    else:
        bins = np.searchsorted(gap_edges_s, gap, side="right") - 1
        keep = (bins >= 0) & (bins < len(gap_edges_s) - 1)
        a, b, lag, gap, bins = a[keep], b[keep], lag[keep], gap[keep], bins[keep]
        labels = [f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(gap_edges_s)]
    n_bins, n_seq = len(labels), int(lg.seq.max()) + 1 if len(lg.seq) else 0
    pieces = _sums(lg.x, a, b, bins, n_bins, lg.seq, n_seq)
    r = _corr(*pieces)
    nulls = np.array(
        [
            _corr(*_sums(_permuted(lg, rng), a, b, bins, n_bins, lg.seq, n_seq))
            for _ in range(null_reps)
        ]
    )
    null_mean = np.nanmean(nulls, axis=0)
    pairs = pieces[1].sum(0)
    gap_med = np.array(
        [np.median(gap[bins == k]) if (bins == k).any() else np.nan for k in range(n_bins)]
    )
    table = pd.DataFrame(
        {
            "bin": labels,
            "pairs": pairs.astype(int),
            "gap_s": gap_med,
            "r": r,
            "null": null_mean,
            "null_lo": np.nanquantile(nulls, 0.025, axis=0),
            "null_hi": np.nanquantile(nulls, 0.975, axis=0),
            "excess": r - null_mean,
        }
    )
    fit = fit_tau(gap_med, r - null_mean, pairs)
    boots = []
    for _ in range(boot_reps):
        pick = rng.integers(0, n_seq, n_seq)
        rb = _corr(*(p[pick] for p in pieces))
        pb = pieces[1][pick].sum(0)
        boots.append(fit_tau(gap_med, rb - null_mean, pb))
    for k in ("share", "tau_s"):
        got = np.array([b[k] for b in boots], dtype=float)
        lo_hi = np.nanquantile(got, (0.025, 0.975)).tolist() if len(got) else [np.nan] * 2
        fit[f"{k}_lo"], fit[f"{k}_hi"] = lo_hi
    return table, fit


def fit_tau(gap_s: np.ndarray, excess: np.ndarray, pairs: np.ndarray) -> dict:
    """``excess(gap) = share * exp(-gap / tau_s)``, weighted by pairs, ``share`` in [0, 1]:
    the tau on :data:`_TAU_GRID_S` of least squared error (share in closed form)."""
    ok = np.isfinite(gap_s) & np.isfinite(excess) & (pairs > 0)
    g, y, w = gap_s[ok], excess[ok], pairs[ok].astype(float)
    if not len(g):
        return {"share": np.nan, "tau_s": np.nan}
    f = np.exp(-g[None, :] / _TAU_GRID_S[:, None])
    share = np.clip((w * y * f).sum(1) / np.maximum((w * f * f).sum(1), 1e-300), 0.0, 1.0)
    sse = (w * (y - share[:, None] * f) ** 2).sum(1)
    k = int(np.argmin(sse))
    if share[k] <= 0:
        return {"share": 0.0, "tau_s": 0.0}
    return {"share": float(share[k]), "tau_s": float(_TAU_GRID_S[k])}


# -- the three data sources ---------------------------------------------------------


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
    """Per part (edge, cloud), every sample of the own profiles in the order timed:
    one sequence per (source, model, condition, point, visit), time = repeat index x
    one sweep's seconds (the sum of the condition's point medians). Centred per visit
    (``per_visit``) or per condition and point over all visits."""
    from adaptsim.store.io import read_store

    frame, meta = read_store(store)
    out = {}
    for part in ("edge", "cloud"):
        s = frame[(frame["stat"] == "sample") & (frame["host_role"] == part)].copy()
        s = s[s[f"{part}_s"] > _MIN_S]
        cond = ["source", "model", f"{part}_cpu_pct", f"{part}_mem_pct"]
        med = frame[(frame["stat"] == "median") & (frame["host_role"] == part)]
        sweep_s = med.groupby(cond)[f"{part}_s"].sum().rename("sweep_s")
        s = s.join(sweep_s, on=cond)
        s["rep"] = s.groupby([*cond, "point"]).cumcount()
        n_rep = s.groupby([*cond, "point"])["rep"].transform("max") + 1
        rounds = s["source"].map(lambda src: int(meta["sources"].get(src, {}).get("rounds", 1)))
        per_round = np.ceil(n_rep / rounds)
        s["visit"] = (s["rep"] // per_round).astype(int)
        key = s[[*cond, "point"]].astype(str).agg("|".join, axis=1)
        seq = key + "|" + s["visit"].astype(str)
        out[part] = pd.DataFrame(
            {
                "seq": seq,
                "centre": seq if per_visit else key,
                "t_s": s["rep"] * s["sweep_s"],
                "log_ratio": np.log(s[f"{part}_s"].to_numpy(float)),
            }
        ).reset_index(drop=True)
    return out


def adaptivednn_series(data: Path) -> dict[str, pd.DataFrame]:
    """Per part, the within-file rest of every AdaptiveDNN line in the order measured
    (point order within a file); time = 3 x the line's total, summed over the lines
    before it (the mid-point of its own 3 inferences)."""
    from adaptsim.calibration.build import measured_rows
    from adaptsim.calibration.spread import PARTS, file_decomposition
    from adaptsim.importers import import_adaptivednn
    from adaptsim.store.schema import FACTORS

    tmp = Path(tempfile.mkdtemp(prefix=f"persist-{os.getpid()}-")) / "s.parquet"
    import_adaptivednn(
        [data / "adaptivednn" / "2020-05-27", data / "adaptivednn" / "2021-08-20"], tmp
    )
    rows = measured_rows(tmp).rows
    cond = list(FACTORS.values())
    total = rows[["edge_s", "cloud_s", "comm_s"]].clip(lower=0).sum(axis=1)
    out = {}
    for part in PARTS:
        w = file_decomposition(rows, part)["within"].to_numpy()
        r = rows.assign(_w=w, _tot=3.0 * total).sort_values(["model", *cond, "point"])
        file = r[["model", *cond]].astype(str).agg("|".join, axis=1)
        start = r.groupby(file, sort=False)["_tot"].cumsum() - r["_tot"]
        out[part] = pd.DataFrame(
            {"seq": file, "centre": file, "t_s": start + r["_tot"] / 2, "log_ratio": r["_w"]}
        ).reset_index(drop=True)
    return out


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
