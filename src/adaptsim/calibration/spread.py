"""The spread of a calibration: quantiles of log(measured / predicted) per part.

The simulator samples each part's time (edge, cloud, link) as the predicted time
times ``exp(q(u))`` for a uniform ``u``, where ``q`` interpolates these quantiles.
Fits (:mod:`adaptsim.calibration.fit`) take them from their residuals, own
profiles (:mod:`adaptsim.calibration.profiles`) from their repeats; both use
:func:`quantiles` so that every calibration carries the same probabilities.

A part may also carry ``by_point``: the quantiles of each point's own samples,
keyed by the point's ordinal (a string, as JSON keys are). Relative noise shrinks
with the length of a service: on this project's own profiles the 95th percentile
of sample / summary is 1.8-4x for edge services under 10 ms and 1.18 for those of
0.1-0.3 s, while all of them pooled give 1.44. Replaying the pooled spread on a
whole ResNet50 (0.19 s) made the twin's p95 20-30 % too high in validation runs
(docs/validation.md); each point's own spread does not. A point without enough
samples of its own (:data:`MIN_POINT_SAMPLES`) borrows those of the points nearest
to it in median time, where the samples' times are known (own profiles: a
profile under a CPU quota with 10 repeats a point had a pooled edge p95 of 1.31x,
from its millisecond points quantised by the quota's period, while its four
whole-model points' own p90 was 1.02-1.15x and the real frames' spread narrower
still); else it uses the pooled quantiles.

Per-partition data without repeats (AdaptiveDNN) may take its spread from its
near-repeats (:func:`near_repeat_spread`). Each of its lines is the mean of two
inferences, so a line's spread is narrower than one inference's; how much depends
on what the two share (:class:`LineScaling`). :func:`file_decomposition` splits a
line's near-repeat ratio into its file's component (the median of the file's other
points' ratios), which both inferences share and which is kept as it is, and the
within-file rest, scaled by sqrt(2). On the AdaptiveDNN data the file's share is
small (6 % of one inference's variance for the cloud, 9 % edge, 2 % link, pooled;
52 % for VGG19's cloud), and the rest is correlated between neighbouring points of
a file (cloud 0.65, link 0.45, edge 0.18), so that part of it is shared by a
line's two inferences too: the file-shared scaling is still an upper bound, only
a little under x sqrt(2) (benchmarks/near_repeat_spread.py).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pandas as pd

from adaptsim.store.schema import FACTORS

__all__ = [
    "FLAT",
    "INFERENCES_PER_LINE",
    "MIN_FILE_POINTS",
    "MIN_POINT_SAMPLES",
    "NEAR_REPEAT_FACTORS",
    "PARTS",
    "SPREAD_PROBS",
    "LineScaling",
    "SpreadSource",
    "by_point",
    "by_size",
    "file_decomposition",
    "near_repeat_log_ratio",
    "near_repeat_spread",
    "quantiles",
]


class SpreadSource(StrEnum):
    """Where a fit of per-partition data without repeats takes its spread from."""

    residuals = "residuals"  # the fit's own residuals, pooled per part (model error too)
    near_repeats = "near-repeats"  # the data's near-repeats, per part and per point


class LineScaling(StrEnum):
    """How a line's near-repeat ratio (the mean of several inferences) becomes one inference's.

    In log space the mean of ``n`` independent draws has ``1/sqrt(n)`` of one draw's
    spread. The inferences of one line are not independent where the whole file ran
    slow or fast (the cloud's tails in the AdaptiveDNN data are whole slow files):
    that share is the same for every inference and does not shrink by averaging.
    """

    line = "line"  # keep the line's spread (a lower bound for one inference)
    independent = "independent"  # x sqrt(n): all of it independent per inference (upper bound)
    file_shared = "file-shared"  # the file's own component kept, the rest x sqrt(n)


# Quantiles of log(measured / predicted) kept as the spread. The extreme 1 % on each
# side is left out: in the AdaptiveDNN data it holds clock glitches and 20-70x
# outliers that are not the per-inference variation a simulator should replay.
SPREAD_PROBS = (0.01, *np.round(np.linspace(0.05, 0.95, 19), 2).tolist(), 0.99)
PARTS = ("edge", "cloud", "comm")  # the parts a spread has, as the simulator reads them
FLAT = {"probs": [0.0, 1.0], "log_ratio": [0.0, 0.0]}  # no spread at all
# Fewer samples than this at a point: its tails would be a handful of draws, so the
# point keeps the pooled quantiles (an own profile has repeats x conditions, 150+).
MIN_POINT_SAMPLES = 50
# Per part, the condition columns that may vary among near-repeats: the part does not
# run where they act. In the AdaptiveDNN data each of their levels moves the part's
# median by under 1 % and is the slowest of its group about 1/3 of the time, while
# the factors kept fixed move it by 40-140 % (benchmarks/near_repeat_spread.py prints
# the check). The link (total - edge - cloud) is held to fixed CPU levels: cloud CPU
# stress moves it (its 100 % level is the slowest in 48 % of groups).
NEAR_REPEAT_FACTORS = {
    "edge": ("cloud_cpu_pct", "cloud_mem_pct", "bandwidth_mbps"),
    "cloud": ("edge_cpu_pct", "edge_mem_pct", "bandwidth_mbps"),
    "comm": ("cloud_mem_pct", "edge_mem_pct"),
}
# Each AdaptiveDNN line is the mean of 2 inferences (a third, the first, was discarded).
INFERENCES_PER_LINE = 2
# A file's own component is the median of its other points' near-repeat ratios: with
# fewer other points than this it would be a point or two's noise, so the file's lines
# get no per-inference ratio (every AdaptiveDNN file has 10 points or more).
MIN_FILE_POINTS = 5
# Below this a time is a clock artefact or a rounding, not a service (the fit's own floor)
_MIN_TIME_S = 1e-3
_CONDITIONS = tuple(FACTORS.values())


def quantiles(log_ratio: np.ndarray) -> dict[str, list[float]]:
    """The :data:`SPREAD_PROBS` quantiles of the finite values of ``log_ratio`` (zero if none)."""
    lr = log_ratio[np.isfinite(log_ratio)]
    if not len(lr):
        lr = np.zeros(1)
    return {
        "probs": list(SPREAD_PROBS),
        "log_ratio": np.quantile(lr, SPREAD_PROBS).round(6).tolist(),
    }


def by_point(
    log_ratio: np.ndarray, points: np.ndarray, centre_s: np.ndarray | None = None
) -> dict[str, list[float]]:
    """Per point ordinal, the :data:`SPREAD_PROBS` quantiles of its ``log_ratio``
    (``points``: the ordinal of each value); the keys are the ordinals as strings.

    A point needs :data:`MIN_POINT_SAMPLES` finite values. Without ``centre_s`` a
    point with fewer gets none (it keeps the pooled quantiles). With ``centre_s``
    (each value's summary time in seconds), such a point borrows the values of the
    points nearest to it in median time (log scale), nearest first, until it has
    enough: noise depends on how long a service runs (see the module doc), so a
    short profile's whole model takes the spread of the other long points, not
    the pool that its millisecond points dominate."""
    ok = np.isfinite(log_ratio)
    lr, pt = log_ratio[ok], np.asarray(points)[ok].astype(int)
    own = {int(p): lr[pt == p] for p in np.unique(pt)}
    out = {}
    if centre_s is None:
        for p, mine in own.items():
            if len(mine) >= MIN_POINT_SAMPLES:
                out[str(p)] = quantiles(mine)["log_ratio"]
        return out
    c = np.asarray(centre_s, dtype=float)[ok]
    log_time = {p: np.log(max(float(np.median(c[pt == p])), _MIN_TIME_S)) for p in own}
    for p in own:
        near = sorted(own, key=lambda q: (abs(log_time[q] - log_time[p]), q != p, q))
        taken, n = [], 0
        for q in near:
            taken.append(own[q])
            n += len(own[q])
            if n >= MIN_POINT_SAMPLES:
                out[str(p)] = quantiles(np.concatenate(taken))["log_ratio"]
                break
    return out


def by_size(
    log_ratio: np.ndarray, sizes_bytes: np.ndarray, point_bytes: dict[int, float]
) -> dict[str, list[float]]:
    """Per point ordinal, the :data:`SPREAD_PROBS` quantiles of the link samples whose
    message size is nearest the point's payload (log scale), nearest size first, until
    there are :data:`MIN_POINT_SAMPLES` of them (whole sizes are taken).

    The link is profiled once for every model, with messages from 1 kB up
    (``log_ratio``: each probe's log(time / its size's summary), ``sizes_bytes``: its
    size), and its relative noise shrinks with the message as the edge's does with
    the service: a probe smaller than tbf's token bucket leaves at line rate or at
    the rate as the bucket happens to be: on the Xeon host's link profile (1 kB-3.1 MB
    at 5-50 Mbit/s, 10 probes each) the probes under 50 kB ranged 0.03-4.4x their
    size's mean, those of 200 kB and more 0.95-1.03x (1-99 %), and pooled (0.05-3.8x)
    the small ones set a 602 kB input's tails (docs/validation.md, "The twin's uplink
    spread"). ``point_bytes``: each point's payload; a point that sends nothing gets
    none."""
    ok = np.isfinite(log_ratio) & (np.asarray(sizes_bytes, dtype=float) > 0)
    lr, size = log_ratio[ok], np.asarray(sizes_bytes, dtype=float)[ok]
    groups = {float(s): lr[size == s] for s in np.unique(size)}
    if sum(len(g) for g in groups.values()) < MIN_POINT_SAMPLES:
        return {}
    out = {}
    for point, payload in point_bytes.items():
        if not payload > 0:
            continue
        near = sorted(groups, key=lambda s: (abs(np.log(s / payload)), s))
        taken, n = [], 0
        for s in near:
            taken.append(groups[s])
            n += len(groups[s])
            if n >= MIN_POINT_SAMPLES:
                break
        out[str(int(point))] = quantiles(np.concatenate(taken))["log_ratio"]
    return out


def _leave_one_out_median(x: np.ndarray) -> np.ndarray:
    """For each element of ``x`` (finite, two or more), the median of the others."""
    n = len(x)
    order = np.argsort(x, kind="stable")
    s = x[order]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)

    def remaining(j: int) -> np.ndarray:  # element j of the sorted rest, per left-out rank
        return np.where(j < rank, s[j], s[min(j + 1, n - 1)])

    m = n - 1
    if m % 2:
        return remaining((m - 1) // 2)
    return (remaining(m // 2 - 1) + remaining(m // 2)) / 2


def _line_ratio(rows: pd.DataFrame, part: str, free: tuple[str, ...]) -> pd.Series:
    """Each row's ``log(part time / its near-repeats' centre)`` as measured (per line)."""
    keys = ["model", "point", *(c for c in _CONDITIONS if c not in free)]
    v = rows[f"{part}_s"].to_numpy(dtype=np.float64)
    ok = v > _MIN_TIME_S
    logv = np.log(np.where(ok, v, np.nan))
    out = np.full(len(rows), np.nan)
    where = np.flatnonzero(ok)
    for idx in rows.iloc[where].groupby(keys, sort=False).indices.values():
        n = len(idx)
        if n < 2:
            continue
        pos = where[idx]
        x = logv[pos]
        out[pos] = (x - _leave_one_out_median(x)) * np.sqrt((n - 1) / n)
    return pd.Series(out, index=rows.index)


def file_decomposition(
    rows: pd.DataFrame, part: str, free: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """Each row's near-repeat ratio split into its file's component and the rest.

    A file is one condition of one model (all its points were measured in one run).
    ``line`` is the row's near-repeat ratio (see :func:`near_repeat_log_ratio`, per
    line); ``file`` the median of the same file's OTHER points' ``line`` (leaving the
    row out, so that the row's own noise is not in it and ``within`` is not shrunk
    toward zero; files with fewer than :data:`MIN_FILE_POINTS` other points give NaN);
    ``within = line - file``. Why: a slow file is slow for every inference of every
    line (141 AdaptiveDNN files have half their points' cloud time over 1.5x, against
    about 3 were lines independent), so that share does not shrink by averaging a
    line's inferences, and only ``within`` may be scaled to one inference.

    Returns:
        a frame on ``rows``' index with float columns ``line``, ``file``, ``within``.
    """
    free = NEAR_REPEAT_FACTORS[part] if free is None else tuple(free)
    line = _line_ratio(rows, part, free).to_numpy()
    file = np.full(len(rows), np.nan)
    for idx in rows.groupby(["model", *_CONDITIONS], sort=False).indices.values():
        pos = idx[np.isfinite(line[idx])]
        if len(pos) > MIN_FILE_POINTS:
            file[pos] = _leave_one_out_median(line[pos])
    return pd.DataFrame({"line": line, "file": file, "within": line - file}, index=rows.index)


def near_repeat_log_ratio(
    rows: pd.DataFrame,
    part: str,
    free: tuple[str, ...] | None = None,
    inferences_per_line: int = INFERENCES_PER_LINE,
    scaling: LineScaling = LineScaling.file_shared,
) -> pd.Series:
    """Each row's ``log(part time / its near-repeats' centre)``, scaled to one inference.

    A row's near-repeats are the rows of the same model and point whose conditions
    differ only in the ``free`` columns (default :data:`NEAR_REPEAT_FACTORS`). The
    centre is the median of the OTHER near-repeats' log times (leaving the row out,
    so that with three repeats the middle one is not a zero by construction); the
    difference is scaled by ``sqrt((n - 1) / n)``, which makes its variance that of
    one row's exactly when the centre is a mean of logs. To one inference
    (``scaling``): ``line`` keeps it; ``independent`` multiplies it by
    ``sqrt(inferences_per_line)``; ``file_shared`` keeps the file's component of
    :func:`file_decomposition` and multiplies only the within-file rest. Rows alone
    in their group, with a time under 1 ms, or (``file_shared``) in a file with too
    few points, are NaN.

    Args:
        rows: per-partition rows (``model``, ``point``, the condition columns and
            ``<part>_s``), as :func:`adaptsim.calibration.build.measured_rows` gives.
        part: ``edge``, ``cloud`` or ``comm``.
        free: the condition columns that may differ among near-repeats.
        inferences_per_line: how many inferences each row's time is the mean of.
        scaling: how a line's ratio becomes one inference's.
    """
    free = NEAR_REPEAT_FACTORS[part] if free is None else tuple(free)
    scale = np.sqrt(inferences_per_line)
    scaling = LineScaling(scaling)
    if scaling is LineScaling.file_shared:
        d = file_decomposition(rows, part, free)
        return d["file"] + scale * d["within"]
    line = _line_ratio(rows, part, free)
    return line * scale if scaling is LineScaling.independent else line


def near_repeat_spread(
    rows: pd.DataFrame,
    inferences_per_line: int = INFERENCES_PER_LINE,
    scaling: LineScaling = LineScaling.file_shared,
) -> dict[str, dict]:
    """Per model, each part's spread from its near-repeats (see :func:`near_repeat_log_ratio`):
    pooled over the model's points, and ``by_point`` for points with
    :data:`MIN_POINT_SAMPLES` or more, in the form :func:`fit_model` keeps."""
    ratios = {p: near_repeat_log_ratio(rows, p, None, inferences_per_line, scaling) for p in PARTS}
    out = {}
    for model, idx in rows.groupby("model").indices.items():
        spread = {}
        for part, lr in ratios.items():
            mine = lr.to_numpy()[idx]
            spread[part] = quantiles(mine)
            own = by_point(mine, rows["point"].to_numpy()[idx])
            if own:
                spread[part]["by_point"] = own
        out[str(model)] = spread
    return out
