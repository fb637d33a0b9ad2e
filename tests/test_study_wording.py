"""The study's summary.md reads as English whichever way Q3 comes out."""

from __future__ import annotations

from pathlib import Path

from adaptsim.study import run_study

OWN = Path(__file__).parents[1] / "src/adaptsim/data/calibration_own_2core.json"


def test_q3_says_plainly_when_combinations_do_not_give_larger_gains(tmp_path):
    # LeNet on the own-profile calibration: the median gain is 0 % both ways
    text = run_study(OWN, tmp_path / "o", models=["lenet"], plots=False)["summary"]
    assert "Combinations do not give larger gains than single factors (median " in text
    assert "give not larger" not in text


def test_q3_says_so_when_combinations_give_larger_gains(tmp_path):
    text = run_study(None, tmp_path / "o", models=["resnet50"], plots=False)["summary"]
    assert "Combinations give larger gains than single factors (median " in text
