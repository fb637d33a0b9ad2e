"""The measurement store's own rules: which run of a source family stands for a model
(``select_runs``), and what reading a store that is not there says.

The frames are hand-made store rows (validated by the store's schema), so each
expected row is known by construction; the store files are real Parquet.
"""

from __future__ import annotations

import pandas as pd
import pytest

from adaptsim.errors import UserError
from adaptsim.store import COLUMNS, read_store, select_runs, validate_frame, write_store


def _rows(model: str, source: str, cpus: list[float], role: str = "edge+cloud") -> list[dict]:
    """One partition row per edge CPU stress level (the condition), edge time = the level
    / 100 + 1 s from a 2020 source, + 2 s from a 2021 one (so a row tells its source)."""
    out = []
    for cpu in cpus:
        row = dict.fromkeys(COLUMNS, float("nan"))
        row.update(source=source, provenance="", record="partition", host_role=role)
        row.update(edge_host="pi", edge_arch="", edge_cpu="", cloud_host="vm", cloud_arch="")
        row.update(cloud_cpu="", model=model, point=1, layer_name="", repeats=1, stat="mean")
        row.update(flags="", edge_cpu_pct=cpu, edge_mem_pct=0.0, cloud_cpu_pct=0.0)
        row.update(cloud_mem_pct=0.0, bandwidth_mbps=10.0, output_bytes=1000.0)
        offset = 1.0 if "2020" in source else 2.0
        row.update(edge_s=cpu / 100 + offset, cloud_s=0.1, comm_s=0.2, total_s=0.0)
        out.append(row)
    return out


def _store_frame(*groups: list[dict]) -> pd.DataFrame:
    return validate_frame(pd.DataFrame([r for g in groups for r in g]), "test rows")


def _chosen(frame: pd.DataFrame, model: str) -> set[tuple[str, float]]:
    rows = frame[frame["model"] == model]
    return set(zip(rows["source"], rows["edge_cpu_pct"], strict=True))


A, B = "adaptivednn-2020-05-27", "adaptivednn-2021-08-20"


def test_a_later_run_replaces_the_conditions_it_covers_when_it_covers_enough():
    """VGG19's re-run covers half its conditions: it replaces those, the first run keeps
    the others. VGG16's covers a quarter, under the default half: the first run stays
    whole. A profiler's per-host halves are not end-to-end rows: left out."""
    frame = _store_frame(
        _rows("vgg19", A, [0, 25, 50, 75]),
        _rows("vgg19", B, [0, 50]),
        _rows("vgg16", A, [0, 25, 50, 75]),
        _rows("vgg16", B, [0]),
        _rows("vgg16", B, [25], role="edge"),
    )
    chosen = select_runs(frame)
    assert _chosen(chosen, "vgg19") == {(A, 25), (A, 75), (B, 0), (B, 50)}
    assert _chosen(chosen, "vgg16") == {(A, 0), (A, 25), (A, 50), (A, 75)}
    assert len(chosen) == 8 and set(chosen["host_role"]) == {"edge+cloud"}
    # the rows themselves are the chosen run's (edge time tells the source)
    b = chosen[(chosen["model"] == "vgg19") & (chosen["edge_cpu_pct"] == 50)]
    assert b["edge_s"].tolist() == [2.5]
    # a lower bar lets VGG16's quarter in, for the one condition it covers
    low = select_runs(frame, min_coverage=0.25)
    assert _chosen(low, "vgg16") == {(B, 0), (A, 25), (A, 50), (A, 75)}


def test_sources_are_taken_in_name_order_whatever_the_rows_order():
    """Dates sort: the 2021 run is the later one even when its rows come first."""
    frame = _store_frame(_rows("vgg19", B, [0, 50]), _rows("vgg19", A, [0, 25, 50, 75]))
    assert _chosen(select_runs(frame), "vgg19") == {(A, 25), (A, 75), (B, 0), (B, 50)}


def test_a_missing_store_says_how_to_make_one(tmp_path):
    with pytest.raises(UserError) as err:
        read_store(tmp_path / "none.parquet")
    assert str(err.value) == (
        f"store {tmp_path / 'none.parquet'} does not exist: create it with "
        f"`adaptsim import ... --out {tmp_path / 'none.parquet'}`"
    )


def test_a_store_round_trips_through_real_parquet(tmp_path):
    """What is written is read back, row for row, in the schema's column order."""
    frame = _store_frame(_rows("vgg19", A, [0, 25]))
    write_store(tmp_path / "s.parquet", frame, {A: {"citation": "x"}})
    back, meta = read_store(tmp_path / "s.parquet")
    pd.testing.assert_frame_equal(back, frame)
    assert meta["sources"] == {A: {"citation": "x"}} and list(back.columns) == list(COLUMNS)


def test_a_store_path_that_is_a_folder_is_named_as_the_store(tmp_path):
    """`adaptsim calibrate out/` (a folder given for the store file) says so, naming it
    as the store."""
    (tmp_path / "s.parquet").mkdir()
    with pytest.raises(UserError) as err:
        read_store(tmp_path / "s.parquet")
    assert str(err.value) == f"store {tmp_path / 's.parquet'} is a folder; give a file"


def test_a_file_that_is_not_a_store_says_what_it_is_and_what_to_give(tmp_path):
    """A calibration (JSON) or a CSV given where the store goes: each its own line."""
    cal = tmp_path / "cal.json"
    cal.write_text('{"models": {}}')
    csv = tmp_path / "rows.csv"
    csv.write_text("edge_s,cloud_s\n1,2\n")
    for path, line in (
        (
            cal,
            f"store {cal} is JSON (a calibration?), not a measurement store: give the "
            "Parquet store that `adaptsim import` or `adaptsim profile` wrote",
        ),
        (
            csv,
            f"store {csv} is not a Parquet file: give the store that `adaptsim import` or "
            "`adaptsim profile` wrote",
        ),
    ):
        with pytest.raises(UserError) as err:
            read_store(path)
        assert str(err.value) == line


def test_a_value_no_importer_writes_is_one_line_naming_row_column_and_fix(tmp_path):
    """The line names the frame, the row (from 1), the model and point, the value, what
    is wrong and how to fix it."""
    rows = _rows("vgg19", A, [0, 25])
    rows[1]["output_bytes"] = -5.0
    with pytest.raises(UserError) as err:
        _store_frame(rows)
    line = str(err.value)
    assert line.startswith("test rows: row 2 (vgg19, point 1): output_bytes is ")
    assert line.endswith("; it is never negative; re-import or re-profile the data")
    frame = pd.DataFrame(rows).drop(columns=["stat"])
    with pytest.raises(UserError) as err:
        validate_frame(frame)  # the public function's own default name for what it checks
    assert str(err.value).startswith("store: not an adaptsim measurement store (missing")


def test_a_store_of_a_newer_schema_says_which_versions_this_adaptsim_reads(tmp_path):
    import json

    import pyarrow.parquet as pq

    path = tmp_path / "s.parquet"
    write_store(path, _store_frame(_rows("vgg19", A, [0])), {A: {}})
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"adaptsim"])
    newer = {**table.schema.metadata, b"adaptsim": json.dumps({**meta, "schema_version": 3})}
    pq.write_table(table.replace_schema_metadata(newer), path)
    with pytest.raises(UserError) as err:
        read_store(path)
    assert str(err.value) == (
        f"store {path} has schema version 3, this adaptsim reads 1, 2: re-import the data"
    )


def test_the_refused_value_is_shown_as_a_number_not_numpys_repr():
    """The line showed ``np.float64(-5.0)`` (numpy 2's repr of the cell) where a user
    wrote -5.0; an infinity read ``np.float64(inf)``."""
    rows = _rows("vgg19", A, [0, 25])
    rows[1]["output_bytes"] = -5.0
    with pytest.raises(UserError, match=r"output_bytes is -5\.0; it is never negative"):
        _store_frame(rows)
    rows = _rows("vgg19", A, [0])
    rows[0]["edge_s"] = float("inf")
    with pytest.raises(UserError, match=r"edge_s is inf; a measurement is never infinite"):
        _store_frame(rows)


def test_layer_names_lose_keras_numbering_and_every_input_layer_is_input():
    """The AdaptiveDNN importer matches the data's cut layers to the catalog's by these
    names: Keras 2 numbers its layers (``conv2d_7``, ``input_1``), Keras 3 names the
    input ``input_layer``."""
    from adaptsim.store.catalog import normalise_layer_name

    names = ["conv2d_7", "input_1", "input_layer", "input", "flatten", "dense_12"]
    normalised = [normalise_layer_name(n) for n in names]
    assert normalised == ["conv2d", "input", "input", "input", "flatten", "dense"]


def test_an_empty_store_frame_has_every_column_with_its_type():
    from adaptsim.store import empty_frame

    frame = empty_frame()
    assert list(frame.columns) == list(COLUMNS) and frame.empty
    assert frame["point"].dtype == "int64" and frame["edge_s"].dtype == "float64"
    assert validate_frame(frame).equals(frame)  # a valid store with no rows
