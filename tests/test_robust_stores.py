"""Measurement stores with values no importer or profiler writes: refused where every
reader and writer of a store passes (``store.schema.validate_frame``).

An adversarial audit (1 Dec) found that a store's columns were checked for their
presence and type but not their values: an infinite or unflagged negative time,
a negative output size or stress level, a row missing the very time it is of, or a
split without a model went into calibrations and studies silently (a wrong
calibration, a wrong best point), or crashed SciPy's solver with a traceback (a
column of NaN). Each case below is one such store; each must give one line naming
the store, the row and the column, exit 2, and write nothing. Real data keeps
passing: the importers' own flagged glitches (``negative_time``) are accepted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from adaptsim.cli import app

runner = CliRunner()
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A real store: the LeNet subset of the AdaptiveDNN data, imported."""
    out = tmp_path_factory.mktemp("store") / "store.parquet"
    r = runner.invoke(
        app, ["import", "adaptivednn", str(DATA / "adaptivednn" / "2020-05-27"), "--out", str(out)]
    )
    assert r.exit_code == 0, r.stderr
    return out


def _damaged(store: Path, dest: Path, edit: Callable[[pd.DataFrame], None]) -> Path:
    """The store with ``edit`` applied to its rows, its adaptsim metadata kept."""
    table = pq.read_table(store)
    frame = table.to_pandas()
    edit(frame)
    new = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(new.replace_schema_metadata(table.schema.metadata), dest)
    return dest


def _set(column: str, value, rows: slice = slice(3, 9)) -> Callable[[pd.DataFrame], None]:
    def edit(frame: pd.DataFrame) -> None:
        frame.loc[frame.index[rows], column] = value

    return edit


BAD: dict[str, tuple[Callable[[pd.DataFrame], None], str]] = {
    "edge time infinite": (_set("edge_s", np.inf), "edge_s"),
    "total time infinite": (_set("total_s", -np.inf), "total_s"),
    "edge time negative, not flagged": (_set("edge_s", -0.5), "edge_s"),
    "transfer time negative, not flagged": (_set("comm_s", -0.1), "comm_s"),
    "edge time missing everywhere": (_set("edge_s", np.nan, slice(None)), "edge_s"),
    "cloud time missing in a row": (_set("cloud_s", np.nan), "cloud_s"),
    "output bytes negative": (_set("output_bytes", -5.0), "output_bytes"),
    "bandwidth negative": (_set("bandwidth_mbps", -5.0), "bandwidth_mbps"),
    "cpu stress negative": (_set("edge_cpu_pct", -50.0), "edge_cpu_pct"),
    "repeats zero": (_set("repeats", 0), "repeats"),
    "model empty": (_set("model", ""), "model"),
}

COMMANDS = {
    "calibrate": lambda s, tmp: ["calibrate", str(s), "--out", str(tmp / "cal.json")],
    "study": lambda s, tmp: ["study", str(s), "--out", str(tmp / "study")],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(BAD))
def test_a_store_with_impossible_values_is_one_line_exit_2(store, tmp_path, case, command):
    edit, column = BAD[case]
    bad = _damaged(store, tmp_path / "bad.parquet", edit)
    r = runner.invoke(app, COMMANDS[command](bad, tmp_path))
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(bad) in lines[0] and column in lines[0] and "row " in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.parquet"]


def test_a_negative_time_the_importer_flagged_is_kept(store, tmp_path):
    """The AdaptiveDNN data holds real clock glitches: flagged, never dropped."""

    def glitch(frame: pd.DataFrame) -> None:
        _set("edge_s", -0.001, slice(3, 4))(frame)
        frame.loc[frame.index[3], "flags"] = "negative_time"

    ok = _damaged(store, tmp_path / "ok.parquet", glitch)
    r = runner.invoke(app, ["calibrate", str(ok), "--out", str(tmp_path / "cal.json")])
    assert r.exit_code == 0, r.stderr
    assert json.loads((tmp_path / "cal.json").read_text())["models"]["lenet"]


def test_an_import_that_would_write_an_unnamed_model_writes_nothing(tmp_path):
    """A Scission CSV with an empty model cell made a model named '' in the store."""
    text = (DATA / "scission" / "blocks.csv").read_text()
    (tmp_path / "blocks.csv").write_text(text.replace("(GPU),vgg19,0", "(GPU),,0", 1))
    (tmp_path / "network_stats.csv").write_text(
        (DATA / "scission" / "network_stats.csv").read_text()
    )
    out = tmp_path / "st.parquet"
    r = runner.invoke(app, ["import", "scission", str(tmp_path / "blocks.csv"), "--out", str(out)])
    assert r.exit_code == 2, (r.stderr, r.exception)
    assert "model" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()
