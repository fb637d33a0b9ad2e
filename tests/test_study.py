"""The study on real data (LeNet subset) and on a tiny hand-written fixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adaptsim.calibration import load_calibration
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


@pytest.fixture(scope="module")
def flagged_study(tmp_path_factory):
    """LeNet (2020) beside VGG19's re-run (2021), whose raw-input lines at edge CPU 50 and
    100 % repeat the next cut (flagged input_is_next_cut, left out)."""
    tmp = tmp_path_factory.mktemp("flagged")
    store = tmp / "s.parquet"
    import_adaptivednn([DATA / "adaptivednn/2020-05-27", DATA / "adaptivednn/2021-08-20"], store)
    return run_study(store, tmp / "out", plots=False), store


def test_summary_names_the_model_of_each_maximum_and_prints_no_nan(flagged_study):
    import re

    result, _ = flagged_study
    text, gains = result["summary"], result["gains"]
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)
    known = gains[gains["gain_pct"].notna()]
    # Each factor's line names the model and level whose gain is that factor's largest.
    lines = re.findall(
        r"^- (\w+): median gain .*?, max ([\d.]+) % \((\w+) at ([\d.]+):", text, re.M
    )
    assert {f for f, *_ in lines} == {"edge_cpu", "edge_mem", "bandwidth"}
    for factor, top, model, level in lines:
        best = known[known["factor"] == factor]["gain_pct"].max()
        assert float(top) == pytest.approx(best, abs=0.05)
        row = known[(known["factor"] == factor) & (known["model"] == model)]
        assert row[row["level"] == float(level)]["gain_pct"].iloc[0] == best
    # VGG19's static split (the raw input) has no usable line at edge CPU 50 and 100 %.
    assert "re-partitioning" not in text.split("## Q2")[1].split("\n")[2]
    assert "(2 more cannot be computed: gains.csv's note says why)" in text


def test_gains_say_why_a_cell_is_empty_and_what_the_left_out_line_reads(flagged_study):
    from adaptsim.store import read_store

    result, store = flagged_study
    gains = result["gains"]
    empty = gains[gains["gain_pct"].isna()]
    assert sorted(empty["level"]) == [50.0, 100.0] and set(empty["model"]) == {"vgg19"}
    assert empty["static_latency_s"].isna().all()
    assert empty["note"].str.contains("static point 1 .* flagged input_is_next_cut").all()
    assert (gains[gains["gain_pct"].notna()]["note"].fillna("") == "").all()
    frame, _ = read_store(store)
    lines = frame[frame["flags"].str.contains("input_is_next_cut")]
    for r in empty.itertuples():
        line = lines[lines["edge_cpu_pct"] == r.level]
        assert r.flagged_static_latency_s == pytest.approx(line["total_s"].iloc[0], abs=5e-4)
    text = result["summary"]
    caveats = text.split("## Data caveats")[1]
    assert "2 lines flagged `input_is_next_cut` (vgg19 2)" in caveats
    assert "14.307 s at the raw input against 3.254 s at its best point, a 77.26 % gain" in caveats
    for r in empty.itertuples():
        s, b = r.flagged_static_latency_s, r.best_latency_s
        assert f"reads {s:.3f} s against {b:.3f} s" in caveats
        assert f"would be {(s - b) / s * 100:.2f} %" in caveats


def test_a_summary_without_left_out_lines_has_no_caveats(lenet_study):
    assert "## Data caveats" not in lenet_study[0]["summary"]


def test_study_reads_a_store_by_content_whatever_its_name(tmp_path):
    store = tmp_path / "s.parquet"
    import_adaptivednn([DATA / "study_tiny"], store)
    want = pd.read_csv(_study(store, tmp_path / "a") / "best_points.csv")
    for name in ("store.json", "store"):
        renamed = tmp_path / name
        renamed.write_bytes(store.read_bytes())
        got = pd.read_csv(_study(renamed, tmp_path / f"o-{name}") / "best_points.csv")
        pd.testing.assert_frame_equal(got, want)
    lenet = tmp_path / "lenet.json"  # a Parquet store, whatever its name says
    import_adaptivednn([DATA / "adaptivednn/2020-05-27"], lenet)
    r = runner.invoke(app, ["calibrate", str(lenet), "--out", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    assert "lenet" in load_calibration(tmp_path / "c").models
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    r = runner.invoke(app, ["study", str(junk), "--out", str(tmp_path / "j")])
    assert r.exit_code == 2 and "neither a measurement store" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "j").exists()


def _study(path: Path, out: Path, *extra: str) -> Path:
    r = runner.invoke(app, ["study", str(path), "--out", str(out), "--no-plots", *extra])
    assert r.exit_code == 0, r.output
    return out


def test_study_on_per_block_data_takes_the_hosts_as_calibrate_does(tmp_path):
    from adaptsim.importers import import_scission

    store = tmp_path / "s.parquet"
    import_scission(DATA / "scission/blocks.csv", store)
    hosts = ["--edge-host", "device-raspi4", "--cloud-host", "cloud-6700k(NoGPU)"]
    # Without hosts: the flags study has, not options it lacks.
    r = runner.invoke(app, ["study", str(store), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--edge-host" in r.stderr and "--cloud-host" in r.stderr
    assert "device-raspi4" in r.stderr and not (tmp_path / "x").exists()
    r = runner.invoke(
        app, ["study", str(store), "--out", str(tmp_path / "x"), *hosts, "--summary", "median"]
    )
    assert r.exit_code == 2 and "--summary applies to own profiles" in r.stderr
    out = _study(store, tmp_path / "o", *hosts)
    best = pd.read_csv(out / "best_points.csv")
    # The same latencies as `adaptsim calibrate` with the same hosts gives.
    r = runner.invoke(app, ["calibrate", str(store), "--out", str(tmp_path / "c.json"), *hosts])
    assert r.exit_code == 0, r.output
    for row in best.itertuples():
        m = load_calibration(tmp_path / "c.json").model(row.model)
        total = m.predict(0, 0, 0, 0, row.bandwidth_mbps).total_s[0]
        assert row.best_latency_s == pytest.approx(total.min(), abs=5e-4)
        assert row.best_point == m.ordinals[total.argmin()]
    r = runner.invoke(
        app, ["study", str(store), "--source", "measured", *hosts, "--out", str(tmp_path / "m")]
    )
    assert r.exit_code == 2 and "--source measured" in r.stderr


def test_study_on_own_profiles_composes_them_as_calibrate_does(tmp_path):
    from adaptsim.calibration.profiles import compose
    from adaptsim.store import read_store

    own = Path(__file__).parent.parent / "docs/own_profiles/own.parquet"
    # the store holds two clouds (both cores; the testbed's CPU 1): the testbed's
    out = _study(own, tmp_path / "o", "-m", "lenet", "--summary", "median",
                 "--cloud-host", "vm-cloud1")  # fmt: skip
    latency = pd.read_parquet(out / "latency.parquet")
    rows = compose(read_store(own)[0], ["lenet"], cloud_host="vm-cloud1", summary="median")
    key = [
        "edge_cpu_pct",
        "edge_mem_pct",
        "bandwidth_mbps",
        "cloud_cpu_pct",
        "cloud_mem_pct",
        "point",
    ]
    merged = latency.merge(rows, on=key)
    assert len(merged) == len(rows) == len(latency)
    np.testing.assert_allclose(merged["latency_s"], merged["total_s"])
    r = runner.invoke(app, ["study", str(own), "--out", str(tmp_path / "x"), "-m", "vgg99",
                            "--cloud-host", "vm-cloud1"])  # fmt: skip
    assert r.exit_code == 2 and r.stderr.startswith("adaptsim: error: --models: vgg99 not in")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--edge-host", "pi"], "the --edge-host, --cloud-host and --summary choose how a store"),
        (["--summary", "median"], "a calibration is already built"),
        (["--source", "measured"], "--source measured needs a measurement store"),
    ],
)
def test_study_on_a_calibration_refuses_store_choices_by_their_flags(tmp_path, args, says):
    r = runner.invoke(app, ["study", "--out", str(tmp_path / "o"), *args])
    assert r.exit_code == 2 and says in r.stderr, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_a_study_reports_each_step_before_it_starts(tmp_path):
    """A study of the full data runs half a minute: it must say what it is doing (it
    said nothing until it had finished). Each step is told once, in order, the files
    last (an interrupt before them leaves no folder)."""
    store = tmp_path / "s.parquet"
    import_adaptivednn([DATA / "study_tiny"], store)
    told: list[tuple[str, int, int]] = []

    def progress(step: str, done: int, total: int) -> None:
        told.append((step, done, total))
        if step == "writing the files":
            assert not (tmp_path / "out").exists()

    run_study(store, tmp_path / "out", plots=False, progress=progress)
    steps = ["reading the data", "best points", "sensitivity", "gains", "writing the files"]
    assert told == [(s, i, len(steps)) for i, s in enumerate(steps)]
    assert (tmp_path / "out" / "summary.md").is_file()
