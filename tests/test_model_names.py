"""An unknown model name: one line that offers only what the command takes."""

from __future__ import annotations

from typer.testing import CliRunner

from adaptsim.cli import app

runner = CliRunner()


def test_profile_does_not_offer_a_model_file_option_it_lacks(tmp_path):
    out = tmp_path / "own.parquet"
    r = runner.invoke(app, ["profile", "--host", "edge", "-m", "nosuch", "--out", str(out)])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown model 'nosuch': known models are " in lines[0]
    assert "lenet" in lines[0] and "--model-file" not in lines[0]
    assert not out.exists()


def test_points_still_offers_its_model_file_option():
    r = runner.invoke(app, ["points", "nosuch"])
    assert r.exit_code == 2, r.output
    assert "unknown model 'nosuch'" in r.stderr and "(or pass --model-file " in r.stderr
