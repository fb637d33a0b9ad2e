"""The AdaptiveDNN importer on hand-made folders: each bad input's exact line, and what
a good folder's store records about where its rows came from.

Every file is written here from plain numbers (clean rows as in
``test_importer_flags.py``); each bad input changes one thing, and the test checks
the whole message (file, line, what is wrong, what to do), not a fragment of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adaptsim.errors import UserError
from adaptsim.importers import import_adaptivednn
from adaptsim.importers.adaptivednn import parse_code
from adaptsim.store import read_store
from adaptsim.store.catalog import catalog_cuts

N_LENET = len(catalog_cuts("lenet"))
CUTS = Path(__file__).parent / "data/adaptivednn/cut_points.csv"


def _rows(n: int = N_LENET, cut: bool = True) -> list[str]:
    """Clean lines: edge grows, cloud shrinks, the link takes 0.2 s (LeNet needs 50 ms)."""
    out = []
    for k in range(n):
        edge, cloud = 0.004 + 0.002 * k, 0.004 + 0.002 * (n - k)
        line = f"{edge + cloud + 0.2!r} {edge!r} {cloud!r}"
        out.append(f"{line} {k + 1}" if cut else line)
    return out


def _folder(root: Path, files: dict[str, list[str]], model: str = "lenet") -> Path:
    d = root / "run" / f"outputs_{model}"
    d.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (d / name).write_text("\n".join(lines) + "\n")
    return root / "run"


def _error(*args, **kwargs) -> str:
    with pytest.raises(UserError) as err:
        import_adaptivednn(*args, **kwargs)
    return str(err.value)


def test_condition_codes_must_be_five_digits_0_1_2():
    for code in ("2100", "210021", "2100a", "21003"):
        with pytest.raises(UserError) as err:
            parse_code(code, Path("f.txt"))
        assert str(err.value) == (
            f"f.txt: condition code {code!r} must be five digits 0/1/2 "
            "[network, cloud_cpu, edge_mem, cloud_mem, edge_cpu]"
        )
    assert parse_code("12012", Path("f.txt")) == {
        "bandwidth_mbps": 25.0,
        "cloud_cpu_pct": 100.0,
        "edge_mem_pct": 0.0,
        "cloud_mem_pct": 50.0,
        "edge_cpu_pct": 100.0,
    }


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        (["0.1 0.05 0.02 1", "0.1 0.05 0.02"], ":2: 3 columns after 4-column lines"),
        (["0.1 0.05 0.02 1", "0.1 0.05"], ":2: expected 3 or 4 space-separated columns "
         "(total_s edge_s cloud_s [cut]), found 2"),
        (["0.1 nan 0.02 1"], ":1: times must be finite numbers"),
        (["0.1 0.05 inf"], ":1: times must be finite numbers"),
        (["0.1 0.05 0.02 1.5"], ":1: cut '1.5' is not a whole number"),
        (["0.1 0.05 0,02 1"], ":1: non-numeric value in '0.1 0.05 0,02 1'"),
        (["", "  "], ": no measurement lines; remove the file or re-export it"),
    ],
)  # fmt: skip
def test_a_bad_line_is_named_with_its_file_and_line(tmp_path, lines, says):
    run = _folder(tmp_path, {"weights_00000.txt": _rows(), "weights_00001.txt": lines})
    bad = run / "outputs_lenet/weights_00001.txt"
    assert _error([run], tmp_path / "s.parquet") == f"{bad}{says}"
    assert not (tmp_path / "s.parquet").exists()


def test_folders_that_are_not_adaptivednn_data(tmp_path):
    missing = tmp_path / "nope"
    assert _error([missing], tmp_path / "s.parquet") == (
        f"{missing}: no such folder; pass folders holding outputs_<model>/ folders"
    )
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "outputs_lenet.txt").write_text("a file, not a folder")
    assert _error([tmp_path / "empty"], tmp_path / "s.parquet") == (
        f"{tmp_path / 'empty'}: no outputs_<model>/ folders inside; "
        "is this an AdaptiveDNN data folder?"
    )
    run = _folder(tmp_path / "a", {"weights_0000.txt": _rows()})
    assert _error([run], tmp_path / "s.parquet") == (
        f"{run / 'outputs_lenet/weights_0000.txt'}: expected a name like weights_01201.txt "
        "(five digits 0/1/2)"
    )
    run = _folder(tmp_path / "b", {"readme.txt": ["notes"]})
    assert _error([run], tmp_path / "s.parquet") == (
        f"{run / 'outputs_lenet'}: no weights_<code>.txt files"
    )
    run = _folder(tmp_path / "c", {"weights_00000.txt": _rows()}, model="vgg16")
    assert _error([run], tmp_path / "s.parquet", models=["lenet"]) == (
        "no measurements found for the models asked for"
    )
    assert not (tmp_path / "s.parquet").exists()


def test_cuts_that_are_not_the_models_points(tmp_path):
    lines = _rows()
    lines[4] = lines[4].rsplit(" ", 1)[0] + " 42"
    run = _folder(tmp_path / "a", {"weights_00000.txt": lines})
    bad = run / "outputs_lenet/weights_00000.txt"
    assert _error([run], tmp_path / "s.parquet") == (
        f"{bad}: cut ordinals [42] are not valid points of lenet"
    )
    # a file whose cuts include 0 numbers them by Keras layer index
    lines = [f"{line.rsplit(' ', 1)[0]} {k}" for k, line in enumerate(_rows())]
    lines[3] = lines[3].rsplit(" ", 1)[0] + " 99"
    run = _folder(tmp_path / "b", {"weights_00000.txt": lines})
    bad = run / "outputs_lenet/weights_00000.txt"
    assert (
        _error([run], tmp_path / "s.parquet")
        == f"{bad}: layer index 99 is not a valid cut of lenet"
    )


def test_cut_points_files_that_cannot_be_used(tmp_path):
    run = _folder(tmp_path, {"weights_00000.txt": _rows()})
    missing = tmp_path / "cuts.csv"
    assert _error([run], tmp_path / "s.parquet", cut_points=missing) == (
        f"cut points file {missing} does not exist"
    )
    short = tmp_path / "short.csv"
    short.write_text("model,cut_ordinal,cut_layer_index,cut_layer_name\nlenet,1,0,conv2d\n")
    assert _error([run], tmp_path / "s.parquet", cut_points=short) == (
        f"{short}: cut_points.csv lacks columns ['output_bytes_fp32']"
    )
    other = tmp_path / "other.csv"
    other.write_text(
        "\n".join(line for line in CUTS.read_text().splitlines() if "lenet" not in line)
    )
    assert _error([run], tmp_path / "s.parquet", cut_points=other) == (
        "cut_points.csv has no rows for model lenet"
    )
    assert not (tmp_path / "s.parquet").exists()


def test_a_folder_given_as_outputs_model_and_what_the_store_records(tmp_path):
    run = _folder(tmp_path, {"weights_00000.txt": _rows(), "weights_20000.txt": _rows(cut=False)})
    store = tmp_path / "s.parquet"
    frame, summaries = import_adaptivednn([run / "outputs_lenet"], store)
    # the source is named after the folder holding outputs_lenet
    assert list(summaries) == ["adaptivednn-run"] and set(frame["source"]) == {"adaptivednn-run"}
    s = summaries["adaptivednn-run"]
    assert (s.files, s.rows, s.models) == (2, 2 * N_LENET, {"lenet": 2 * N_LENET})
    assert s.flags == dict.fromkeys(s.flags, 0) and len(s.flags) == 7
    assert frame["point"].tolist() == list(range(1, N_LENET + 1)) * 2
    assert frame["provenance"].iloc[N_LENET] == "outputs_lenet/weights_20000.txt:1"
    assert set(frame["repeats"]) == {2} and set(frame["stat"]) == {"mean"}
    assert set(frame["record"]) == {"partition"} and set(frame["host_role"]) == {"edge+cloud"}
    assert set(frame["edge_host"]) == {"adaptivednn-edge"} and set(frame["edge_cores"]) == {1.0}
    assert set(frame["cloud_arch"]) == {"x86_64"} and set(frame["cloud_cores"]) == {2.0}
    assert frame["edge_cpu_quota"].isna().all()
    assert sorted(set(frame["bandwidth_mbps"])) == [10.0, 50.0]
    assert frame["comm_s"].round(9).eq(0.2).all()  # total - edge - cloud
    _, meta = read_store(store)
    src = meta["sources"]["adaptivednn-run"]
    assert src["importer"] == "adaptivednn" and "McNamee" in src["citation"]
    assert src["paths"] == [str((run / "outputs_lenet").resolve())]
    assert src["summary"]["rows"] == 2 * N_LENET and src["summary"]["files"] == 2
    assert set(src["flags"]) == set(s.flags)


def test_files_shorter_than_the_models_cuts_say_so(tmp_path):
    run = _folder(tmp_path, {"weights_00000.txt": _rows(N_LENET - 1)})
    frame, summaries = import_adaptivednn([run], tmp_path / "s.parquet")
    assert frame["point"].tolist() == list(range(1, N_LENET))
    assert summaries["adaptivednn-run"].notes == [
        f"lenet: {N_LENET - 1} lines per file for {N_LENET} cuts and no cut_points.csv; "
        "lines taken as ordinals 1..N"
    ]


def test_cut_points_that_disagree_on_bytes_are_noted_and_ours_kept(tmp_path):
    run = _folder(tmp_path, {"weights_00000.txt": _rows()})
    lines = CUTS.read_text().splitlines()
    agree = tmp_path / "agree.csv"
    agree.write_text("\n".join(lines) + "\n")
    _, summaries = import_adaptivednn([run], tmp_path / "a.parquet", cut_points=agree)
    assert summaries["adaptivednn-run"].notes == []  # the data's bytes are the project's
    # ordinal 3 (pool1, 15680 bytes) said to send 999
    planted = [
        ",".join([*line.split(",")[:-1], "999"]) if line.startswith("lenet,3,") else line
        for line in lines
    ]
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("\n".join(planted) + "\n")
    frame, summaries = import_adaptivednn([run], tmp_path / "w.parquet", cut_points=wrong)
    assert summaries["adaptivednn-run"].notes == [
        "lenet: output bytes disagree with cut_points.csv at ordinals ['3 (15680 vs 999)']"
    ]
    assert frame.loc[frame["point"] == 3, "output_bytes"].tolist() == [15680.0]
