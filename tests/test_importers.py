"""Importers and the measurement store, on real (subset) data files."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adaptsim.cli import app
from adaptsim.errors import UserError
from adaptsim.importers import import_adaptivednn, import_scission
from adaptsim.importers.adaptivednn import parse_code
from adaptsim.store import COLUMNS, read_store


@pytest.fixture
def adnn(data_dir):
    return data_dir / "adaptivednn"


def test_parse_code_digit_order(tmp_path):
    c = parse_code("21002", tmp_path)
    # [network, cloud_cpu, edge_mem, cloud_mem, edge_cpu]
    assert c == {
        "bandwidth_mbps": 10.0,
        "cloud_cpu_pct": 50.0,
        "edge_mem_pct": 0.0,
        "cloud_mem_pct": 0.0,
        "edge_cpu_pct": 100.0,
    }
    with pytest.raises(UserError, match="five digits"):
        parse_code("21003", tmp_path)


def test_import_lenet_keeps_every_row_and_matches_raw_file(adnn, tmp_path):
    store = tmp_path / "s.parquet"
    frame, summaries = import_adaptivednn([adnn / "2020-05-27"], store)
    assert len(frame) == 243 * 10
    s = summaries["adaptivednn-2020-05-27"]
    assert s.files == 243 and s.rows == 2430
    back, meta = read_store(store)
    assert list(back.columns) == list(COLUMNS)
    assert meta["sources"]["adaptivednn-2020-05-27"]["summary"]["rows"] == 2430
    # One cell recomputed by hand from the raw file: weights_21002.txt line 4.
    raw = (adnn / "2020-05-27/outputs_lenet/weights_21002.txt").read_text().split("\n")[3].split()
    row = back[back["provenance"] == "outputs_lenet/weights_21002.txt:4"].iloc[0]
    assert row["point"] == int(raw[3])
    assert row["total_s"] == float(raw[0]) and row["edge_s"] == float(raw[1])
    assert row["comm_s"] == pytest.approx(float(raw[0]) - float(raw[1]) - float(raw[2]))
    assert (row["bandwidth_mbps"], row["cloud_cpu_pct"], row["edge_cpu_pct"]) == (10, 50, 100)
    # Output bytes come from the project's own analysis: point 4 = conv2, 14x14x50 fp32.
    assert row["output_bytes"] == 14 * 14 * 50 * 4


def test_layer_index_convention_maps_to_ordinals(adnn, tmp_path):
    frame, _ = import_adaptivednn([adnn / "2021-08-20"], tmp_path / "s.parquet")
    f = frame[frame["provenance"].str.startswith("outputs_vgg19/weights_00000.txt")]
    # The file's cut 0 (the input layer) is ordinal 1; its cut 24 (fc2) ordinal 25.
    assert f["point"].tolist() == list(range(1, 26))
    assert f["layer_name"].iloc[-1] == "fc2"
    assert f["output_bytes"].iloc[0] == 224 * 224 * 3 * 4


def test_an_input_line_that_repeated_the_next_cut_is_flagged_and_left_out(adnn, tmp_path):
    from adaptsim.calibration.build import measured_rows

    store = tmp_path / "s.parquet"
    frame, summaries = import_adaptivednn([adnn / "2021-08-20"], store)
    # weights_00001/00002 line 1 (layer 0, the raw input): block1_conv1's edge time and
    # 12.8 MB transfer, as on line 2. weights_00000 line 1 sent the raw input (2 ms edge).
    flagged = frame[frame["flags"].str.contains("input_is_next_cut")]
    assert sorted(flagged["provenance"]) == [
        "outputs_vgg19/weights_00001.txt:1",
        "outputs_vgg19/weights_00002.txt:1",
    ]
    assert summaries["adaptivednn-2021-08-20"].flags["input_is_next_cut"] == 2
    assert len(frame) == 3 * 25  # kept in the store
    fit = measured_rows(store)
    rows = fit.rows
    assert fit.left_out_counts() == {"input_is_next_cut": 2} and len(rows) == len(frame) - 2
    assert sorted(fit.left_out["provenance"]) == sorted(flagged["provenance"])
    assert rows[rows["point"] == 1]["provenance"].tolist() == ["outputs_vgg19/weights_00000.txt:1"]
    r = runner.invoke(app, ["calibrate", str(store), "--out", str(tmp_path / "c.json")])
    assert r.exit_code == 0 and "left out 2 rows flagged input_is_next_cut" in r.stderr


def test_flags_are_kept_and_counted(adnn, tmp_path):
    frame, summaries = import_adaptivednn([adnn / "2020-05-27"], tmp_path / "s.parquet")
    s = summaries["adaptivednn-2020-05-27"]
    fast = frame["flags"].str.contains("fast_transfer")
    assert s.flags["fast_transfer"] == int(fast.sum()) > 0
    # A flagged row really is faster than the bandwidth allows.
    r = frame[fast].iloc[0]
    assert r["comm_s"] < r["output_bytes"] * 8 / (r["bandwidth_mbps"] * 1e6)
    assert len(frame) == 2430  # nothing dropped


def test_reimport_replaces_its_source_and_keeps_others(adnn, data_dir, tmp_path):
    store = tmp_path / "s.parquet"
    import_adaptivednn([adnn / "2020-05-27"], store)
    import_scission(data_dir / "scission/blocks.csv", store)
    import_adaptivednn([adnn / "2020-05-27"], store)
    frame, meta = read_store(store)
    assert frame["source"].value_counts().to_dict() == {
        "adaptivednn-2020-05-27": 2430,
        "scission": 52,
    }
    assert set(meta["sources"]) == {"adaptivednn-2020-05-27", "scission"}


def test_scission_rows(data_dir, tmp_path):
    frame, summary = import_scission(data_dir / "scission/blocks.csv", tmp_path / "s.parquet")
    pi = frame[(frame["edge_host"] == "device-raspi4") & (frame["model"] == "vgg19")]
    assert len(pi) == 25 and (pi["host_role"] == "edge").all()
    assert pi["output_bytes"].iloc[0] == 12845056  # .npy size minus its 128-byte header
    assert pi["cloud_s"].isna().all() and (pi["edge_s"] > 0).all()
    cloud = frame[frame["cloud_host"] == "cloud-6700k(NoGPU)"]
    assert (cloud["host_role"] == "cloud").all() and cloud["edge_s"].isna().all()
    assert "device-raspi4" in summary["systems"]


def _copy(adnn, tmp_path):
    dst = tmp_path / "data"
    shutil.copytree(adnn / "2020-05-27", dst)
    shutil.copy(adnn / "cut_points.csv", tmp_path / "cut_points.csv")
    return dst


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda d: (d / "outputs_lenet/weights_00000.txt").write_text("1 2\n"),
            "weights_00000.txt:1: expected 3 or 4",
        ),
        (
            lambda d: (d / "outputs_lenet/weights_00001.txt").write_text("1 2 x 1\n"),
            "weights_00001.txt:1: non-numeric",
        ),
        (
            lambda d: (d / "outputs_lenet/weights_00003.txt").write_text("1 2 3 1\n"),
            "weights_00003.txt: condition code",
        ),
        (lambda d: (d / "outputs_lenet").rename(d / "outputs_foonet"), "unknown model 'foonet'"),
        (
            lambda d: (d / "outputs_lenet/weights_00002.txt").write_bytes(b"\x00\x01PK\x03"),
            "weights_00002.txt is a binary file",
        ),
        (
            lambda d: (d / "outputs_lenet/weights_00002.txt").write_bytes(b"1 2 3 \xe9\n"),
            "weights_00002.txt is not UTF-8",
        ),
        (
            lambda d: (d / "cut_points.csv").write_bytes(b"\x00\x00\x00"),
            "cut_points.csv is a binary",
        ),
    ],
)
def test_bad_input_leaves_store_untouched(adnn, tmp_path, mutate, message):
    d = _copy(adnn, tmp_path)
    store = tmp_path / "s.parquet"
    import_scission(adnn.parent / "scission/blocks.csv", store)
    before = store.read_bytes()
    mutate(d)
    with pytest.raises(UserError, match=message):
        import_adaptivednn([d], store)
    assert store.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_models_option_reads_only_the_folders_it_asks_for(adnn, tmp_path):
    d = _copy(adnn, tmp_path)
    shutil.copytree(d / "outputs_lenet", d / "outputs_foonet")
    frame, _ = import_adaptivednn([d], tmp_path / "s.parquet", models=["lenet"])
    assert set(frame["model"]) == {"lenet"} and len(frame) == 2430
    with pytest.raises(UserError, match="unknown model 'foonet'"):  # unasked, it is named
        import_adaptivednn([d], tmp_path / "t.parquet")


def test_three_column_files_and_blank_lines(adnn, tmp_path):
    d = _copy(adnn, tmp_path)
    for p in (d / "outputs_lenet").iterdir():
        lines = [" ".join(line.split()[:3]) for line in p.read_text().splitlines()]
        p.write_text("\n\n".join(lines) + "\n\n")
    frame, _ = import_adaptivednn([d], tmp_path / "s.parquet")
    assert len(frame) == 2430
    assert sorted(frame["point"].unique()) == list(range(1, 11))


runner = CliRunner()


def test_cli_import_summary_and_errors(adnn, tmp_path):
    store = tmp_path / "s.parquet"
    ok = runner.invoke(
        app, ["import", "adaptivednn", str(adnn / "2020-05-27"), "--out", str(store)]
    )
    assert ok.exit_code == 0, ok.output
    assert "243 files, 2430 rows" in ok.stderr and "flagged (kept)" in ok.stderr
    missing = runner.invoke(
        app, ["import", "adaptivednn", str(tmp_path / "nope"), "--out", str(store)]
    )
    assert missing.exit_code == 2 and "no such folder" in missing.stderr
    bad = runner.invoke(
        app, ["import", "adaptivednn", str(adnn / "2020-05-27"), "-m", "foo", "--out", str(store)]
    )
    assert bad.exit_code == 2 and "--models: foo not in the AdaptiveDNN models" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_store_rejects_foreign_parquet(tmp_path):
    p = tmp_path / "x.parquet"
    pd.DataFrame({"a": np.arange(3)}).to_parquet(p)
    with pytest.raises(UserError, match="not an adaptsim store"):
        read_store(p)


def _line(frame: pd.DataFrame) -> pd.Series:
    return frame["provenance"].str.rsplit(":", n=1).str[1].astype(int)


def test_resnet50_misplaced_lines_move_to_the_cuts_they_measured(data_dir, tmp_path):
    d = data_dir / "adaptivednn_resnet50/2020-05-27"
    frame, summaries = import_adaptivednn([d], tmp_path / "s.parquet")
    line = _line(frame)
    assert len(frame) == 3 * 23  # every line kept
    moved3, moved23 = frame[line == 3], frame[line == 23]
    assert (moved3["point"] == 23).all() and set(moved3["layer_name"]) == {"activation_58"}
    assert (moved23["point"] == 24).all() and set(moved23["layer_name"]) == {"avg_pool"}
    assert (moved23["output_bytes"] == 8192).all()
    assert 3 not in set(frame["point"])  # conv1 was not measured
    # What the move rests on: line 3's edge time is as long as the whole body's.
    last = frame[line == 22]["edge_s"].to_numpy()
    assert (moved3["edge_s"].to_numpy() > 0.9 * last).all()
    notes = " ".join(summaries["adaptivednn-2020-05-27"].notes)
    assert "line 3 -> ordinal 23, line 23 -> ordinal 24" in notes
    assert "3 of 3 files as numbered" in notes


def test_resnet50_lines_stay_ordinals_where_the_files_do_not_bear_a_move(data_dir, tmp_path):
    src = data_dir / "adaptivednn_resnet50"
    shutil.copytree(src, tmp_path / "d")
    for f in (tmp_path / "d/2020-05-27/outputs_resnet50").iterdir():
        lines = f.read_text().splitlines()
        fourth = lines[3].split()
        lines[2] = " ".join([*fourth[:3], "3"])  # line 3 now measures what line 4 does
        f.write_text("\n".join(lines) + "\n")
    frame, summaries = import_adaptivednn([tmp_path / "d/2020-05-27"], tmp_path / "s.parquet")
    line = _line(frame)
    assert (frame[line == 3]["point"] == 3).all() and (frame[line == 23]["point"] == 23).all()
    assert any("not borne out" in n for n in summaries["adaptivednn-2020-05-27"].notes)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"system,model\n\xff\xfe,1\n"), "is not UTF-8"),
        (lambda p: p.write_bytes(b"\x00" * 32), "is a binary file"),
        (lambda p: p.mkdir(), "is a folder"),
    ],
)
def test_scission_files_that_are_not_csv_text_are_one_line(tmp_path, make, message):
    bad = tmp_path / "blocks.csv"
    make(bad)
    r = runner.invoke(app, ["import", "scission", str(bad), "--out", str(tmp_path / "s.parquet")])
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "s.parquet").exists()
