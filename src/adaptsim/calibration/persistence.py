"""How long a slow spell lasts: the correlation time of service noise, from data in time order.

The simulator can replay a part's service noise as persistent in time
(``persistence_s`` and ``persistence_share`` of a calibration's spread,
:mod:`adaptsim.simulator.draws`). This module measures them: per part, the
correlation of normal scores of log(measured / typical) between a value and the
next ones of the same sequence (a run, a file, a visit), against a null that
permutes the values within their centring groups, and the fit
``r(gap) - null = share * exp(-gap / tau_s)`` (:func:`fit_tau`) over lags or gap
bins, with a bootstrap interval over whole sequences (:func:`lagged`).

Two sources in the stores ``adaptsim calibrate`` reads keep their time order:

- own profiles (:func:`profile_series`): each point's repeats are stored in the
  order they were timed, one sweep over every point (in a random order) apart;
  centred per visit (one stress-ng run), so a visit's own regime is not counted.
- AdaptiveDNN per-partition lines (:func:`within_file_series`): the points of a
  file were measured one after another; the within-file rest of each line's
  near-repeat ratio (:func:`adaptsim.calibration.spread.file_decomposition`)
  against the same file's next lines, a line taken as 3 of its own totals long
  (3 inferences each; loading each point's sub-models is not in the data, so the
  times, and the correlation times from them, are lower bounds).

``benchmarks/noise_persistence.py`` adds the testbed's real runs and prints the
tables (benchmarks/spread_tables/noise_persistence.md, docs/policies.md).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri

from adaptsim.calibration.spread import PARTS, file_decomposition
from adaptsim.store.schema import FACTORS

__all__ = [
    "BOOT_REPS",
    "NULL_REPS",
    "Lagged",
    "fit_tau",
    "lagged",
    "measured_persistence",
    "normal_scores",
    "profile_series",
    "within_file_series",
]

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


def profile_series(
    frame: pd.DataFrame, meta: dict, per_visit: bool = True
) -> dict[str, pd.DataFrame]:
    """Per part (edge, cloud), every sample of the own profiles in the order timed:
    one sequence per (source, model, condition, point, visit), time = repeat index x
    one sweep's seconds (the sum of the condition's point medians). Centred per visit
    (``per_visit``) or per condition and point over all visits."""
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


def within_file_series(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per part, the within-file rest of every AdaptiveDNN line in the order measured
    (point order within a file); time = 3 x the line's total, summed over the lines
    before it (the mid-point of its own 3 inferences)."""
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


def measured_persistence(
    series: dict[str, pd.DataFrame], seed: int = 0, max_lag: int = 5
) -> dict[str, dict[str, float]]:
    """Per part, ``persistence_s`` and ``persistence_share`` fitted by lag (lags 1 to
    ``max_lag``, each at its pairs' median gap) to the excess over the permutation
    null; a part without excess gets 0 (i.i.d.). Seeded: the same data give the
    same values."""
    rng = np.random.default_rng(seed)
    out = {}
    for part, d in series.items():
        lg = Lagged.of(d["log_ratio"].to_numpy(), d["t_s"].to_numpy(), d["seq"].to_numpy(),
                       d["centre"].to_numpy())  # fmt: skip
        _, fit = lagged(lg, max_lag=max_lag, by="lag", rng=rng, null_reps=50, boot_reps=0)
        tau, share = fit["tau_s"], fit["share"]
        ok = np.isfinite(tau) and np.isfinite(share) and tau > 0 and share > 0
        out[part] = {
            "persistence_s": round(float(tau), 3) if ok else 0.0,
            "persistence_share": round(float(share), 3) if ok else 0.0,
        }
    return out
