"""The verdict's "no verdict" sentence names what is missing and reads as English."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from adaptsim.cli import app
from adaptsim.report.verdict import verdict

VEHICLE = Path(__file__).resolve().parents[1] / "scenarios" / "vehicle_trace.yaml"
pytestmark = pytest.mark.slow  # a real run through the CLI


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("v") / "run"
    r = CliRunner().invoke(app, ["run", str(VEHICLE), "--duration", "60", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return pd.read_parquet(out / "records.parquet"), json.loads((out / "run.json").read_text())


@pytest.mark.parametrize(
    ("left_out", "says"),
    [
        (["oracle"], "the run has no oracle to compare against"),
        (["oracle", "static-best"], "the run has no static-best and oracle to compare against"),
        (["reactive", "all-edge", "all-cloud"], "has no practical (non-clairvoyant) policy to"),
    ],
)
def test_no_verdict_names_what_to_add(run, left_out, says):
    records, meta = run
    v = verdict(records[~records["policy"].isin(left_out)], meta)
    assert v.sentence.startswith("No verdict: ") and says in v.sentence, v.sentence
    add = "one" if "practical" in says else "it" if len(left_out) == 1 else "them"
    assert v.sentence.endswith(f"; add {add} to the scenario's policies."), v.sentence
