"""The near-repeat spread recovers a known per-inference noise from a hand-made store.

Rows are built as AdaptiveDNN lines are: every (point, condition) line is the mean
of two inferences, each the part's true time times lognormal noise of a known
sigma, and (where planted) times its file's own lognormal factor, shared by every
line and both inferences of that file (a run that was slow throughout). The true
times depend strongly on the factors that act on each part (edge CPU for the
edge, cloud CPU for the cloud, bandwidth for the link), so a
grouping that let those factors vary among "near-repeats" would report their
effect as noise; the tests would catch it. The last tests write such a store as
AdaptiveDNN text files, import it with the real importer and calibrate it with
``--spread near-repeats`` (library and CLI).
"""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from adaptsim.calibration.build import build_calibration
from adaptsim.calibration.spread import (
    MIN_FILE_POINTS,
    MIN_POINT_SAMPLES,
    LineScaling,
    _leave_one_out_median,
    file_decomposition,
    near_repeat_log_ratio,
    near_repeat_spread,
)
from adaptsim.cli import app
from adaptsim.errors import UserError
from adaptsim.importers import import_adaptivednn
from adaptsim.store import ChoiceError
from adaptsim.store.schema import FACTORS

LEVELS = {
    "edge_cpu_pct": (0.0, 50.0, 100.0),
    "edge_mem_pct": (0.0, 50.0, 100.0),
    "bandwidth_mbps": (10.0, 25.0, 50.0),
    "cloud_cpu_pct": (0.0, 50.0, 100.0),
    "cloud_mem_pct": (0.0, 50.0, 100.0),
}
Z95 = 1.6449  # the standard normal's 95th percentile
runner = CliRunner()


def _store(
    sigma_of_point: dict[int, float],
    seed: int = 7,
    model: str = "toy",
    sigma_file: float = 0.0,
) -> pd.DataFrame:
    """One row per (point, condition) of all 3^5 conditions; each part's time the mean
    of two inferences with lognormal noise of the point's sigma, times the file's own
    lognormal factor of ``sigma_file`` (one draw per condition and part)."""
    rng = np.random.default_rng(seed)
    cols = list(FACTORS.values())
    conds = list(itertools.product(*(LEVELS[c] for c in cols)))
    file_rng = np.random.default_rng([seed, 1])
    slow = {cond: np.exp(file_rng.normal(0, sigma_file, 3)) for cond in conds}
    rows = []
    for point, sigma in sigma_of_point.items():
        for cond in conds:
            c = dict(zip(cols, cond, strict=True))
            true = {
                "edge_s": 0.05 * point * (1 + 2 * c["edge_cpu_pct"] / 100),
                "cloud_s": 0.02 * point * (1 + 3 * c["cloud_cpu_pct"] / 100),
                "comm_s": 0.01 + 8e5 / (c["bandwidth_mbps"] * 1e6),
            }
            line = {
                k: float(np.mean(v * f * np.exp(rng.normal(0, sigma, 2))))
                for (k, v), f in zip(true.items(), slow[cond], strict=True)
            }
            rows.append({"model": model, "point": point, **c, **line})
    frame = pd.DataFrame(rows)
    frame["total_s"] = frame[["edge_s", "cloud_s", "comm_s"]].sum(axis=1)
    return frame


def _sigma(log_ratio: list[float] | np.ndarray, probs=None) -> float:
    """Sigma implied by the 5 %..95 % width of quantiles (or of samples)."""
    if probs is None:
        lo, hi = np.quantile(np.asarray(log_ratio), (0.05, 0.95))
    else:
        lo, hi = np.interp((0.05, 0.95), probs, log_ratio)
    return float((hi - lo) / (2 * Z95))


@pytest.mark.parametrize("part", ["edge", "cloud", "comm"])
def test_recovers_the_per_inference_sigma_and_ignores_the_factors_that_act(part):
    sigma = 0.1
    rows = _store({p: sigma for p in range(1, 9)})
    spread = near_repeat_spread(rows)["toy"][part]
    # the edge's 3x CPU effect, the cloud's 4x and the link's 5x are not noise: had they
    # leaked into the groups, the width would be several times sigma
    assert _sigma(spread["log_ratio"], spread["probs"]) == pytest.approx(sigma, rel=0.12)
    assert abs(np.interp(0.5, spread["probs"], spread["log_ratio"])) < 0.02


def test_a_line_is_scaled_up_to_one_inference_by_sqrt_two():
    rows = _store({p: 0.1 for p in range(1, 9)})
    per_line = near_repeat_log_ratio(rows, "edge", inferences_per_line=1).dropna()
    independent = near_repeat_log_ratio(rows, "edge", scaling=LineScaling.independent).dropna()
    # a line (mean of 2) carries about sigma / sqrt(2)
    assert _sigma(per_line) == pytest.approx(0.1 / np.sqrt(2), rel=0.12)
    assert _sigma(independent) / _sigma(per_line) == pytest.approx(np.sqrt(2), rel=1e-6)
    # with no file component planted, keeping the file's share changes little
    assert _sigma(near_repeat_log_ratio(rows, "edge").dropna()) == pytest.approx(0.1, rel=0.12)
    same = near_repeat_log_ratio(rows, "edge", scaling="line").dropna()
    assert np.allclose(same, per_line, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", range(2, 10))
def test_the_leave_one_out_median_is_the_median_of_the_others(n):
    rng = np.random.default_rng(n)
    x = rng.integers(0, 4, n).astype(float)  # ties on purpose
    want = [np.median(np.delete(x, i)) for i in range(n)]
    assert np.array_equal(_leave_one_out_median(x), want)


MODELS = ("m1", "m2", "m3", "m4")
N_FILES = len(MODELS) * 3**5  # independent files behind a pooled quantile


@functools.cache
def _filed(sigma_file: float, sigma_within: float) -> pd.DataFrame:
    """Four models of 8 points; file and per-inference components planted."""
    return pd.concat(
        [
            _store({p: sigma_within for p in range(1, 9)}, 20 + i, m, sigma_file)
            for i, m in enumerate(MODELS)
        ],
        ignore_index=True,
    )


def _tolerance(prob: float, sigma: float, n: int = N_FILES, z: float = 4.0) -> float:
    """z standard errors of a normal's ``prob`` quantile estimated from ``n`` draws
    (asymptotic: sqrt(p(1-p)/n) / density). ``n`` is the number of files: a file's
    component repeats over its points, so the lines are not all independent and the
    files are the conservative count."""
    zp = stats.norm.ppf(prob)
    return z * sigma * np.sqrt(prob * (1 - prob) / n) / stats.norm.pdf(zp)


PROBS = (0.05, 0.25, 0.5, 0.75, 0.95)


@pytest.mark.parametrize("part", ["edge", "cloud", "comm"])
@pytest.mark.parametrize(
    ("sigma_file", "sigma_within", "wrong"),
    [
        (0.3, 0.05, LineScaling.independent),  # slow files: x sqrt(2) would be far too wide
        (0.03, 0.3, LineScaling.line),  # independent inferences: a line is too narrow
        (0.2, 0.2, None),
    ],
)
def test_the_per_inference_spread_recovers_planted_file_and_within_components(
    part, sigma_file, sigma_within, wrong
):
    rows = _filed(sigma_file, sigma_within)
    # one inference is its file's factor times its own draw
    sigma = float(np.hypot(sigma_file, sigma_within))
    got = near_repeat_log_ratio(rows, part).dropna().to_numpy()
    assert len(got) > 0.9 * len(rows)
    for prob in PROBS:
        want = sigma * stats.norm.ppf(prob)
        assert np.quantile(got, prob) == pytest.approx(want, abs=_tolerance(prob, sigma)), prob
    if wrong is not None:  # the check is sharp enough to tell the wrong scaling apart
        bad = near_repeat_log_ratio(rows, part, scaling=wrong).dropna().to_numpy()
        off = abs(np.quantile(bad, 0.95) - sigma * stats.norm.ppf(0.95))
        assert off > 1.5 * _tolerance(0.95, sigma)


def test_the_decomposition_puts_each_planted_share_where_it_belongs():
    rows = _filed(0.2, 0.1)
    d = file_decomposition(rows, "cloud")
    # the file's component: the planted file factor (one value per file)
    per_file = d.groupby([rows["model"], *(rows[c] for c in FACTORS.values())])["file"].median()
    tol = _tolerance(0.95, 0.2)
    assert np.quantile(per_file, 0.95) == pytest.approx(0.2 * Z95, abs=tol)
    # the rest: one line's own draw, the mean of two inferences (sigma 0.1 / sqrt 2)
    within = d["within"].dropna()
    line_sigma = 0.1 / np.sqrt(2)
    assert np.quantile(within, 0.95) == pytest.approx(line_sigma * Z95, abs=tol)
    # and the file's component does not move from point to point of one file
    spread_in_file = d.groupby([rows["model"], *(rows[c] for c in FACTORS.values())])["file"]
    assert float(spread_in_file.std().median()) < 0.35 * line_sigma


def test_a_file_with_too_few_points_gives_no_per_inference_ratio():
    rows = _store({p: 0.1 for p in range(1, MIN_FILE_POINTS + 2)}, sigma_file=0.2)
    assert near_repeat_log_ratio(rows, "edge").notna().all()
    fewer = rows[rows["point"] <= MIN_FILE_POINTS]  # MIN_FILE_POINTS - 1 others per line
    assert near_repeat_log_ratio(fewer, "edge").isna().all()
    assert near_repeat_log_ratio(fewer, "edge", scaling=LineScaling.line).notna().all()


def test_each_point_keeps_its_own_spread():
    # two points only: too few for a file component, so each inference is taken as independent
    rows = _store({1: 0.03, 2: 0.3})
    spread = near_repeat_spread(rows, scaling=LineScaling.independent)["toy"]["edge"]
    probs = spread["probs"]
    assert set(spread["by_point"]) == {"1", "2"}
    quiet, noisy = (_sigma(spread["by_point"][k], probs) for k in ("1", "2"))
    assert quiet == pytest.approx(0.03, rel=0.2)
    assert noisy == pytest.approx(0.3, rel=0.2)
    # the pooled spread lies between them: neither point's
    assert quiet < _sigma(spread["log_ratio"], probs) < noisy


def test_a_point_with_too_few_near_repeats_keeps_the_pooled_spread():
    rows = _store({1: 0.1, 2: 0.1})
    # point 2 measured at one edge condition only: 27 lines, under MIN_POINT_SAMPLES
    sparse = (rows["point"] == 1) | (
        (rows["edge_cpu_pct"] == 0) & (rows["edge_mem_pct"] == 0) & (rows["point"] == 2)
    )
    assert (sparse & (rows["point"] == 2)).sum() < MIN_POINT_SAMPLES
    spread = near_repeat_spread(rows[sparse], scaling=LineScaling.independent)["toy"]["edge"]
    assert set(spread["by_point"]) == {"1"}


def test_lonely_rows_and_sub_millisecond_times_give_no_ratio():
    rows = _store({1: 0.1})  # one point: no file component, so per line
    one = rows[(rows["cloud_cpu_pct"] == 0) & (rows["cloud_mem_pct"] == 0)]
    one = one[one["bandwidth_mbps"] == 50.0]  # every edge cell now has a single line
    assert near_repeat_log_ratio(one, "edge", scaling="line").isna().all()
    tiny = rows.assign(comm_s=np.where(rows["cloud_mem_pct"] == 0, 1e-4, rows["comm_s"]))
    lr = near_repeat_log_ratio(tiny, "comm", scaling="line")
    assert lr[tiny["cloud_mem_pct"] == 0].isna().all()
    assert lr[tiny["cloud_mem_pct"] != 0].notna().all()


def _write_adaptivednn(folder: Path, sigma: float, seed: int = 11) -> Path:
    """A hand-made AdaptiveDNN run of LeNet (10 cuts x 3^5 condition files, the authors'
    text format): each line's parts the mean of two inferences with lognormal noise."""
    rng = np.random.default_rng(seed)
    out = folder / "outputs_lenet"
    out.mkdir(parents=True)
    bw_mbps, stress = (50.0, 25.0, 10.0), (0.0, 0.5, 1.0)
    for code in itertools.product(range(3), repeat=5):
        net, cloud_cpu, _edge_mem, _cloud_mem, edge_cpu = code
        lines = []
        for cut in range(1, 11):
            true = (
                0.02 * cut * (1 + 2 * stress[edge_cpu]),
                0.02 * (11 - cut) * (1 + 3 * stress[cloud_cpu]),
                0.03 + 2.0 / bw_mbps[net],
            )
            e, c, m = (float(np.mean(t * np.exp(rng.normal(0, sigma, 2)))) for t in true)
            lines.append(f"{e + c + m} {e} {c} {cut}")
        (out / f"weights_{''.join(map(str, code))}.txt").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def noisy_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nearrep")
    import_adaptivednn([_write_adaptivednn(tmp / "run", sigma=0.1)], tmp / "store.parquet")
    return tmp / "store.parquet"


def test_calibrate_takes_the_near_repeat_spread_when_asked(noisy_store):
    near = build_calibration(noisy_store, spread="near-repeats").calibration
    assert near.provenance["spread"] == "near-repeats"
    for part in ("edge", "cloud", "comm"):
        s = near.models["lenet"].spread[part]
        assert _sigma(s["log_ratio"], s["probs"]) == pytest.approx(0.1, rel=0.15), part
        assert len(s["by_point"]) >= 9  # every point has 243 lines (the last cloud-less)
    # the default is unchanged: the residual spread, pooled, without by_point
    default = build_calibration(noisy_store).calibration
    assert "spread" not in default.provenance
    assert "by_point" not in default.models["lenet"].spread["edge"]


def test_the_near_repeat_choice_is_refused_where_it_does_not_apply(noisy_store, tmp_path):
    with pytest.raises(UserError, match="'nearest': not a spread source; choose one of"):
        build_calibration(noisy_store, spread="nearest")
    own = Path(__file__).parent.parent / "docs/own_profiles/own.parquet"
    with pytest.raises(ChoiceError, match="applies to per-partition data without repeats"):
        build_calibration(own, spread="near-repeats")
    res = runner.invoke(
        app,
        ["calibrate", str(own), "--out", str(tmp_path / "c.json"), "--spread", "near-repeats"],
    )
    assert res.exit_code == 2 and "per-partition data without repeats" in res.output
    assert not (tmp_path / "c.json").exists()


def test_the_cli_writes_the_near_repeat_spread(noisy_store, tmp_path):
    out = tmp_path / "cal.json"
    res = runner.invoke(
        app, ["calibrate", str(noisy_store), "--out", str(out), "--spread", "near-repeats"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["provenance"]["spread"] == "near-repeats"
    assert "by_point" in doc["models"]["lenet"]["spread"]["cloud"]
