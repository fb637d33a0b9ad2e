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


def test_a_keras_file_that_is_no_zip_archive_is_said_so_not_missing(tmp_path):
    bad = tmp_path / "m.keras"
    bad.write_text("not a model\n")
    r = runner.invoke(app, ["points", "--model-file", str(bad)])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "is not a loadable Keras model: a .keras file is a zip archive" in lines[0]
    assert "not found" not in lines[0].lower()
