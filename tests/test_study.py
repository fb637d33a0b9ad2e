"""The study on real data (LeNet subset) and on a tiny hand-written fixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adaptsim.cli import app
from adaptsim.importers import import_adaptivednn
from adaptsim.study import run_study

DATA = Path(__file__).parent / "data"
runner = CliRunner()


def _raw_totals(path: Path) -> list[float]:
    return [float(line.split()[0]) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def lenet_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    store = tmp / "s.parquet"
    import_adaptivednn([DATA / "adaptivednn/2020-05-27"], store)
    return run_study(store, tmp / "out", plots=False), tmp / "out"


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    store = tmp / "s.parquet"
    import_adaptivednn([DATA / "study_tiny"], store)
    return run_study(store, tmp / "out"), tmp / "out"


@pytest.mark.parametrize("code", ["00000", "21002", "12120"])
def test_best_point_matches_raw_file(lenet_study, code):
    result, _ = lenet_study
    totals = _raw_totals(DATA / f"adaptivednn/2020-05-27/outputs_lenet/weights_{code}.txt")
    bw = (50.0, 25.0, 10.0)[int(code[0])]
    lv = (0.0, 50.0, 100.0)
    best = result["best_points"]
    row = best[
        (best["bandwidth_mbps"] == bw)
        & (best["cloud_cpu_pct"] == lv[int(code[1])])
        & (best["edge_mem_pct"] == lv[int(code[2])])
        & (best["cloud_mem_pct"] == lv[int(code[3])])
        & (best["edge_cpu_pct"] == lv[int(code[4])])
    ].iloc[0]
    assert row["best_point"] == int(np.argmin(totals)) + 1
    assert row["best_latency_s"] == round(min(totals), 3)
    assert row["runner_up_latency_s"] == round(sorted(totals)[1], 3)


def test_gain_recomputed_by_hand(lenet_study):
    result, _ = lenet_study
    base = _raw_totals(DATA / "adaptivednn/2020-05-27/outputs_lenet/weights_00000.txt")
    low_bw = _raw_totals(DATA / "adaptivednn/2020-05-27/outputs_lenet/weights_20000.txt")
    static = int(np.argmin(base))
    g = result["gains"]
    row = g[(g["factor"] == "bandwidth") & (g["level"] == 10.0)].iloc[0]
    assert row["static_point"] == static + 1
    assert row["static_latency_s"] == round(low_bw[static], 3)
    assert row["best_point"] == int(np.argmin(low_bw)) + 1
    expected = (low_bw[static] - min(low_bw)) / low_bw[static] * 100
    assert row["gain_pct"] == pytest.approx(round(expected, 2), abs=0.011)


def test_output_files_and_columns(lenet_study):
    result, out = lenet_study
    for name in (
        "latency.parquet",
        "best_points.csv",
        "best_point_distribution.csv",
        "sensitivity.csv",
        "gains.csv",
        "summary.md",
    ):
        assert (out / name).is_file()
    gains = pd.read_csv(out / "gains.csv")
    assert list(gains.columns) == [
        "model",
        "factor",
        "level",
        "static_point",
        "static_latency_s",
        "best_point",
        "best_latency_s",
        "gain_pct",
        "flagged_static_latency_s",
        "note",
    ]
    # one row per non-baseline level of each of the three factors
    assert sorted(gains["factor"].value_counts().to_dict().items()) == [
        ("bandwidth", 2),
        ("edge_cpu", 2),
        ("edge_mem", 2),
    ]
    latency = pd.read_parquet(out / "latency.parquet")
    assert len(latency) == 243 * 10
    dist = pd.read_csv(out / "best_point_distribution.csv")
    shares = dist[dist["slice"] == "all"]["share"]
    assert len(shares) <= 5 and shares.sum() <= 1.0 + 1e-9
    assert "## Q1" in result["summary"] and "## Q3" in result["summary"]


def test_tiny_fixture_known_answers(tiny_study):
    result, out = tiny_study
    best = result["best_points"].set_index(["bandwidth_mbps", "edge_cpu_pct", "edge_mem_pct"])[
        "best_point"
    ]
    assert best[(50.0, 0.0, 0.0)] == 3
    assert best[(25.0, 0.0, 0.0)] == 4
    assert best[(10.0, 0.0, 0.0)] == 5
    assert best[(50.0, 0.0, 50.0)] == 1
    tie = result["best_points"].query("edge_cpu_pct == 100").iloc[0]
    assert (tie["best_point"], tie["runner_up_point"], tie["tie"]) == (4, 6, True)
    g = result["gains"].set_index(["factor", "level"])
    # bandwidth 10: static point 3 costs 0.120, point 5 costs 0.080 -> 33.33 %
    assert g.loc[("bandwidth", 10.0), "gain_pct"] == pytest.approx(33.33)
    assert g.loc[("edge_cpu", 50.0), "gain_pct"] == 0
    # edge memory 100 % was never measured: no row, and the summary counts the gaps
    assert ("edge_mem", 100.0) not in g.index
    # the levels seen span 3 x 3 x 2 = 18 conditions, of which 6 were measured
    assert "missing from the full grid: 12" in result["summary"]
    assert (
        "Best-point ties" in result["summary"] and "lowest ordinal wins): 1." in result["summary"]
    )
    assert (out / "best_points_single_bandwidth.png").stat().st_size > 1000


def test_single_point_model(tmp_path):
    from adaptsim.study.analysis import best_points
    from adaptsim.study.latency import LatencyGrid

    conds = pd.DataFrame(
        {
            "edge_cpu_pct": [0.0, 100.0],
            "edge_mem_pct": [0.0, 0.0],
            "bandwidth_mbps": [50.0, 50.0],
            "cloud_cpu_pct": [0.0, 0.0],
            "cloud_mem_pct": [0.0, 0.0],
        }
    )
    g = LatencyGrid("one", conds, np.array([1]), ("only",), np.array([[0.5], [0.9]]), {})
    b = best_points(g)
    assert b["best_point"].tolist() == [1, 1]
    assert b["runner_up_point"].tolist() == [-1, -1] and not b["tie"].any()


def test_cli_study_on_shipped_calibration(tmp_path):
    r = runner.invoke(
        app,
        ["study", "--out", str(tmp_path / "o"), "--no-plots", "-m", "vgg19", "-m", "resnet50v2"],
    )
    assert r.exit_code == 0, r.output
    gains = pd.read_csv(tmp_path / "o/gains.csv")
    assert set(gains["model"]) == {"vgg19", "resnet50v2"}
    assert (gains["gain_pct"] >= 0).all()
    bad = runner.invoke(app, ["study", "--source", "measured", "--out", str(tmp_path / "p")])
    assert bad.exit_code == 2 and "needs a measurement store" in bad.stderr
