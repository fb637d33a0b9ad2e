"""A calibration file edited into nonsense is refused on load: one line, file and key named.

Each case takes the shipped calibration (one model kept), plants one bad value of a
class the simulator would turn into a wrong number or a traceback (NaN, negative,
missing key, absurd spread, wrong type), and loads it through the commands that
read calibrations: `adaptsim study` and `adaptsim run` (a scenario's
``calibration:``). Each must exit 2 with one line on stderr naming the file and the
key, no traceback, and write nothing.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adaptsim.calibration import load_calibration, save_calibration
from adaptsim.cli import app
from adaptsim.errors import UserError

runner = CliRunner()
SCENARIOS = Path(__file__).parent.parent / "scenarios"


def _shipped(model: str = "resnet50") -> dict:
    text = resources.files("adaptsim").joinpath("data/calibration_adaptivednn.json").read_text()
    doc = json.loads(text)
    doc["models"] = {model: doc["models"][model]}
    return doc


def _set(doc: dict, path: str, value) -> None:
    """Set ``a.b[0].c`` in ``doc``; the special value ``DELETE`` removes the key."""
    *parents, last = path.replace("]", "").replace("[", ".").split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


DELETE = object()
M = "models.resnet50"

# (key to plant, value, the key the message must name, words it must hold)
CASES = [
    (f"{M}.edge_block_s.values[0][0][3]", float("nan"), "edge_block_s.values[0][0][3]", "finite"),
    (f"{M}.cloud_block_s.values[1][2][0]", float("inf"), "cloud_block_s.values[1][2][0]", "finite"),
    (f"{M}.cloud_extra_s.values[0][0][2]", -0.5, "cloud_extra_s.values[0][0][2]", ">= 0"),
    (f"{M}.link.values[0][0][4][1]", -1.0, "link.values[0][0][4][1]", ">= 0"),
    (f"{M}.link_table.values[2][2][5][0]", float("nan"), "link_table.values[2][2][5][0]", "finite"),
    (f"{M}.points[3].output_bytes", -100.0, "points[3].output_bytes", ">= 0"),
    (f"{M}.points[3].output_bytes", float("nan"), "points[3].output_bytes", "finite"),
    (f"{M}.points[2].ordinal", 2.5, "points[2].ordinal", "whole number"),
    (f"{M}.points[2].ordinal", "two", "points[2].ordinal", "must be a number"),
    (f"{M}.points[2].kind", "middle", "points[2].kind", "must be one of"),
    (f"{M}.edge_block_s.cpu_levels[1]", float("nan"), "edge_block_s.cpu_levels[1]", "finite"),
    (f"{M}.edge_block_s.mem_levels", [0.0, 100.0, 50.0], "edge_block_s.mem_levels", "increasing"),
    (f"{M}.link_table.bandwidth_levels_mbps[0]", 0.0, "bandwidth_levels_mbps[0]", "positive"),
    (
        f"{M}.link_table.bandwidth_levels_mbps[1]",
        float("nan"),
        "bandwidth_levels_mbps[1]",
        "finite",
    ),
    (f"{M}.spread.edge.log_ratio[20]", 50.0, "spread.edge.log_ratio[20]", "factor of 10,000"),
    (f"{M}.spread.comm.log_ratio[0]", -1e308, "spread.comm.log_ratio[0]", "within"),
    (f"{M}.spread.cloud.log_ratio[10]", float("nan"), "spread.cloud.log_ratio[10]", "finite"),
    (f"{M}.spread.cloud.log_ratio[0]", 0.5, "spread.cloud.log_ratio", "must not decrease"),
    (f"{M}.spread.edge.probs[20]", 1.5, "spread.edge.probs", "within 0..1"),
    (f"{M}.spread.edge.by_point", {"3": [0.0, 1.0]}, "spread.edge.by_point.3", "one per prob"),
    (f"{M}.spread.edge.by_point", {"x": [0.0] * 21}, "spread.edge.by_point.x", "ordinal"),
    (f"{M}.spread.cloud.by_point", {"2": [0.1] + [0.0] * 20}, "by_point.2", "must not decrease"),
    (f"{M}.spread.edge.by_point", {"2": [0.0] * 20 + [99.0]}, "by_point.2[20]", "10,000"),
    (f"{M}.spread.edge.by_point", {"2": ["a"] * 21}, "by_point.2", "numbers only"),
    (f"{M}.spread.edge.by_point", [1, 2], "spread.edge.by_point", "JSON object"),
    (f"{M}.spread.edge.probs", [0.5], "spread.edge", "equal length"),
    (f"{M}.spread.comm", DELETE, "spread.comm", "is missing"),
    (f"{M}.spread", DELETE, f"{M}.spread", "is missing"),
    (f"{M}.spread.edge", [1, 2], "spread.edge", "must be a JSON object"),
    (f"{M}.link_table", DELETE, f"{M}.link_table", "is missing"),
    (f"{M}.edge_block_s", DELETE, f"{M}.edge_block_s", "is missing"),
    (f"{M}.edge_block_s.values", "fast", "edge_block_s.values", "must be a list"),
    (f"{M}.cloud_block_s.values[0][0][1]", "slow", "cloud_block_s.values", "numbers only"),
    (f"{M}.cloud_block_s.values[0][0][1]", True, "cloud_block_s.values", "numbers only"),
    (f"{M}.quality", DELETE, f"{M}.quality", "is missing"),
    (f"{M}.points", [], f"{M}.points", "is empty"),
    (f"{M}.notes", [1, 2], f"{M}.notes", "strings"),
    (M, 5, M, "must be a JSON object"),
    ("models", {}, "models", "is empty"),
    ("provenance", [], "provenance", "must be a JSON object"),
]


def _plant(tmp_path: Path, key: str, value) -> Path:
    doc = _shipped()
    _set(doc, key, value)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))  # NaN and Infinity as JSON's common extension writes them
    return path


def _one_clean_line(result, *words: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output and "Error:" not in result.stderr.split(": ", 1)[-1]
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.mark.parametrize(("key", "value", "named", "words"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_value_is_refused_in_one_line_naming_file_and_key(tmp_path, key, value, named, words):
    path = _plant(tmp_path, key, value)
    with pytest.raises(UserError) as exc:
        load_calibration(path)
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg and named in msg and words in msg, msg
    out = tmp_path / "study"
    r = runner.invoke(app, ["study", str(path), "--out", str(out), "--no-plots"])
    _one_clean_line(r, str(path), named)
    assert not out.exists()  # nothing written


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        (f"{M}.spread.edge.log_ratio[20]", 1e6, "spread.edge.log_ratio[20]"),
        (f"{M}.points[0].output_bytes", -602112.0, "points[0].output_bytes"),
        (f"{M}.link.values[0][0][0][0]", float("nan"), "link.values[0][0][0][0]"),
        (f"{M}.spread", DELETE, "spread"),
    ],
)
def test_a_scenario_on_a_bad_calibration_stops_before_simulating(tmp_path, key, value, named):
    # The simulator reads calibrations through load_calibration: a scenario that names
    # an edited file stops with the same line, and no results folder is written.
    shutil.copytree(SCENARIOS / "traces", tmp_path / "traces")
    cal = _plant(tmp_path, key, value)
    text = (SCENARIOS / "vehicle_trace.yaml").read_text()
    text = text.replace("model: resnet50\n", f"model: resnet50\ncalibration: {cal}\n")
    text = text.replace("duration_s: 600", "duration_s: 20").replace(
        "seeds: [1, 2, 3]", "seeds: [1]"
    )
    scenario = tmp_path / "s.yaml"
    scenario.write_text(text)
    results = tmp_path / "results"
    r = runner.invoke(app, ["run", str(scenario), "--out", str(results)])
    _one_clean_line(r, str(cal), named)
    assert not results.exists() or not any(results.iterdir())


def test_the_planted_file_is_otherwise_sound(tmp_path):
    # The cases above fail for the value planted, not for the way the file is cut down.
    path = tmp_path / "one.json"
    path.write_text(json.dumps(_shipped()))
    cal = load_calibration(path)
    assert list(cal.models) == ["resnet50"]
    save_calibration(cal, tmp_path / "again.json")
    again = load_calibration(tmp_path / "again.json").model("resnet50")
    assert (
        again.predict(50, 50, 0, 0, 25).total_s
        == cal.model("resnet50").predict(50, 50, 0, 0, 25).total_s
    ).all()


def test_files_are_told_apart_by_content_not_name(tmp_path):
    # A calibration named like a store loads; a store given as a calibration says so.
    named_parquet = tmp_path / "cal.parquet"
    named_parquet.write_text(json.dumps(_shipped()))
    assert list(load_calibration(named_parquet).models) == ["resnet50"]
    store = tmp_path / "store.json"
    store.write_bytes(b"PAR1" + b"\0" * 64)
    with pytest.raises(UserError, match="is a measurement store"):
        load_calibration(store)
    folder = tmp_path / "folder.json"
    folder.mkdir()
    with pytest.raises(UserError, match="is a folder"):
        load_calibration(folder)
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\x00\x01\x02garbage")
    with pytest.raises(UserError, match="binary"):
        load_calibration(binary)
