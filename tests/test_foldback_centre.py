"""The fold-back fitted per policy run with a robust centre: one disturbed run among
normal ones does not move it, a run slow because its host was slow is no model error,
and ``validate --resume --fold-back`` re-folds a saved validation.

The folders are written as ``adaptsim validate`` writes them (the harness of
tests/test_testbed_probe.py): the "measured" side is the LeNet testbed scenario
simulated with each policy run's edge and cloud at a known host speed (its probes
planted as that host would have timed them) times a known pipeline factor the probes
do not see; one run's pipeline factor is disturbed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adaptsim.cli import app
from adaptsim.errors import UserError
from adaptsim.simulator.scenario import PolicySpec
from adaptsim.testbed import scenario_for_testbed
from adaptsim.testbed.foldback import FoldBack, centre_of, fit_foldback, folded_twin
from adaptsim.testbed.host_speed import run_keys
from adaptsim.testbed.rescore import folder_speeds, rescore_folder
from test_testbed_probe import CALIBRATION, SCENARIO
from test_testbed_probe import _folder as probe_folder

POLICIES = ("all-edge", "all-cloud", "static-best")
PIPELINE = (1.08, 1.15)  # what the real pipeline adds beyond the host's speed (edge, cloud)
DISTURBED = "all-edge/12"  # something the probes did not see slowed this run's edge
DISTURBANCE = 1.6
runner = CliRunner()


def _scenario(seeds: tuple[int, ...]):
    sc = scenario_for_testbed(SCENARIO, CALIBRATION)
    return replace(sc, policies=tuple(PolicySpec(policy=p) for p in POLICIES), seeds=seeds)


def _speeds(sc, slow: dict | None = None) -> dict[str, tuple[float, float]]:
    """Each run's host speed (edge, cloud): a few apart, ``slow`` overriding some."""
    keys = [k for _, k in run_keys(sc)]
    base = {k: (1.0 + 0.05 * (i % 4), 1.1 + 0.04 * (i % 3)) for i, k in enumerate(keys)}
    return {**base, **(slow or {})}


def _unsteady(probes: dict) -> dict:
    """The same probes on a host whose speed wandered: spread around the same median."""
    out = dict(probes)
    for role in ("edge_s", "cloud_s"):
        v = sorted(probes[role])
        m = v[len(v) // 2]
        out[role] = [m * f for f in (0.6, 0.7, 0.8, 0.9, 1.0, 1.0, 1.1, 1.2, 1.3, 1.4)]
    return out


def _folder(tmp_path: Path, name: str, sc, speeds: dict, disturbed: dict | None = None,
            unsteady: tuple[str, ...] = ()) -> Path:  # fmt: skip
    """A validation folder whose policy runs ran at ``speeds[key]`` (probed) times the
    pipeline's factor, and ``disturbed[key]`` more on that run's edge (not probed);
    the runs in ``unsteady`` probed a host whose speed wandered around the same median."""
    pipeline = {k: (PIPELINE[0] * (disturbed or {}).get(k, 1.0), PIPELINE[1]) for k in speeds}
    folder, _ = probe_folder(tmp_path, name, sc, speeds, pipeline)
    path = folder / "validation.json"
    facts = json.loads(path.read_text())
    for k in unsteady:
        facts["host_speed"][k] = _unsteady(facts["host_speed"][k])
    path.write_text(json.dumps({**facts, "notes": ["kept note"], "noise_draws": 1}))
    return folder


FIT_SEEDS, SCORED_SEEDS = (11, 12, 13), (21, 22, 23)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The fit folder (one run disturbed, one run on a host probed x1.6 slower) and the
    scored one (every run normal), each with 3 seeds of 3 policies."""
    tmp = tmp_path_factory.mktemp("centre")
    sc1, sc2 = _scenario(FIT_SEEDS), _scenario(SCORED_SEEDS)
    slow_host = {"static-best/13": (1.6, 1.5)}  # slow because the host was: probed
    fit = _folder(tmp, "fit", sc1, _speeds(sc1, slow_host), {DISTURBED: DISTURBANCE})
    scored = _folder(tmp, "scored", sc2, _speeds(sc2))
    return fit, scored, sc1, sc2


def test_one_disturbed_run_does_not_move_the_median_fit(folders):
    fit, _, sc1, _ = folders
    fb = fit_foldback(fit, scenario=sc1)  # the runs' own fits' steady median, by default
    assert fb.centre == "steady" and fb.host_relative  # every host steady: the median
    # the pipeline's own factor, exactly: neither the disturbed run nor the slow host in it
    assert fb.edge_scale == pytest.approx(PIPELINE[0], rel=1e-6)
    assert fb.cloud_scale == pytest.approx(PIPELINE[1], rel=1e-6)
    assert [s for _, s in fb.edge_scale_by_cpu] == pytest.approx([PIPELINE[0]] * 2, rel=1e-6)
    own = {k: (e, c) for k, e, c in fb.run_scales}
    assert own[DISTURBED][0] == pytest.approx(PIPELINE[0] * DISTURBANCE, rel=1e-6)
    assert own["all-cloud/11"][0] is None and own["all-edge/11"][1] is None  # no such frames
    # the disturbed run is named, with its scale and the centre; the slow host's run is not
    assert [(k, r) for k, r, _, _ in fb.outliers()] == [(DISTURBED, "edge")]
    (note,) = fb.outlier_notes("FIT")
    assert DISTURBED in note and "x1.73" in note and "x1.08" in note and "+60 %" in note
    # pooled over every frame, as before: the disturbed run drags the whole fit
    pooled = fit_foldback(fit, scenario=sc1, centre="pooled")
    assert pooled.edge_scale > PIPELINE[0] * 1.1
    assert pooled.cloud_scale == pytest.approx(PIPELINE[1], rel=1e-6)  # no cloud disturbed
    # the trimmed mean drops the disturbed run's scale too
    trimmed = fit_foldback(fit, scenario=sc1, centre="trimmed")
    assert trimmed.edge_scale == pytest.approx(PIPELINE[0], rel=1e-6)


def test_the_per_run_fit_is_relative_to_each_runs_host_speed(folders):
    """A run slow because its host was (the probes say so) is no model error: its own
    scale is the pipeline's, and it is not named; without the probes it would be."""
    fit, _, sc1, _ = folders
    fb = fit_foldback(fit, scenario=sc1)
    own = {k: (e, c) for k, e, c in fb.run_scales}
    assert own["static-best/13"][1] == pytest.approx(PIPELINE[1], rel=1e-6)
    assert "static-best/13" not in {k for k, *_ in fb.outliers()}
    plain = fit_foldback(fit, scenario=sc1, host_speed=False)
    assert "static-best/13" in {k for k, *_ in plain.outliers()}


def test_the_scored_run_meets_its_targets_after_the_median_fold_back_not_the_pooled(folders):
    fit, scored, _, _ = folders
    after, fb = rescore_folder(scored, fold_back_from=fit, draws=1)
    assert fb.centre == "steady"
    assert after["mean_error_pct"].abs().max() < 0.5
    pooled, _ = rescore_folder(scored, fold_back_from=fit, draws=1, centre="pooled")
    # all-edge's frames: the disturbed run's edge dragged into the pooled fit
    assert pooled.set_index("policy").loc["all-edge", "mean_error_pct"] > 2.0
    with pytest.raises(UserError, match="another run"):
        rescore_folder(scored, fold_back_from=scored, draws=1)


def test_the_fold_back_round_trips_with_its_runs_and_centre(folders):
    fit, _, sc1, _ = folders
    fb = fit_foldback(fit, scenario=sc1)
    assert FoldBack.from_dict(json.loads(fb.to_json())) == fb
    old = {"edge_scale": 1.2, "cloud_scale": 1.1, "uplink_extra_s": 0.0, "return_s": 0.0,
           "pause_s": 0.0, "frames": 10}  # fmt: skip
    older = FoldBack.from_dict(old)  # written before the per-run fit: pooled, no runs
    assert older.centre == "pooled" and older.run_scales == () and older.outliers() == []
    for bad in ({"centre": "mean"}, {"run_scales": [["a/1", "x", None]]},
                {"run_scales": [["a/1", 1.0]]}):  # fmt: skip
        with pytest.raises(UserError, match=f"fold_back.{next(iter(bad))}"):
            FoldBack.from_dict({**old, **bad})


def test_centre_of():
    assert centre_of([1.0, 1.0, 5.0], "median") == 1.0
    # steady: weights 1 / spread**2 (floored at 0.05); equal weights: the median
    assert centre_of([1.0, 2.0, 3.0], "steady", [0.4, 0.4, 0.01]) == 3.0
    assert centre_of([1.0, 2.0, 3.0, 4.0], "steady", [0.1] * 4) == 2.5
    assert centre_of([1.0, 2.0, 3.0], "steady", [0.4, None, 0.05]) == 3.0  # None: the median
    assert centre_of([1.0, 2.0, 3.0], "steady", [0.01, 0.02, 0.3]) == 2.0  # floored: equal
    assert centre_of([1.0, 2.0, 9.0], "steady", [None] * 3) == 2.0
    assert centre_of([1.0, 2.0, 3.0, 100.0], "trimmed") == 2.5
    assert centre_of([1.0, 100.0, 2.0], "trimmed") == 2.0  # below 4 runs: the median


def test_refold_a_saved_validation_without_its_real_runs(folders, tmp_path):
    """``validate --out DIR --resume --fold-back FIT``: DIR's real run kept, its folded
    twin fitted on FIT now (median of FIT's runs), the disturbed run named in the notes,
    an earlier fold-back's notes replaced; --fold-centre pooled as before."""
    fit, scored, _, _ = folders
    out = tmp_path / "scored"
    import shutil

    shutil.copytree(scored, out)
    real_before = pd.read_parquet(out / "real" / "records.parquet")
    args = ["validate", str(SCENARIO), "--out", str(out), "--resume", "--fold-back", str(fit)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, (r.stderr, r.exception)
    assert DISTURBED in r.stderr  # said as it runs
    facts = json.loads((out / "validation.json").read_text())
    assert facts["fold_back"]["from"] == str(fit) and facts["fold_back"]["centre"] == "steady"
    assert facts["fold_back"]["edge_scale"] == pytest.approx(PIPELINE[0], rel=1e-6)
    notes = facts["notes"]
    assert notes[0] == "kept note" and sum(DISTURBED in n for n in notes) == 1
    assert DISTURBED in (out / "report.md").read_text()
    folded = pd.read_csv(out / "comparison_folded.csv")
    assert folded["mean_error_pct"].abs().max() < 0.5
    assert (out / "comparison_folded_plain.csv").is_file()  # relative: the plain one beside
    pd.testing.assert_frame_equal(pd.read_parquet(out / "real" / "records.parquet"), real_before)
    np.testing.assert_allclose(
        pd.read_csv(out / "comparison.csv")["mean_error_pct"],
        pd.read_csv(scored / "comparison.csv")["mean_error_pct"],
        rtol=1e-9,
    )
    # again, pooled: the note is not repeated, the folded twin misses
    r = runner.invoke(app, [*args, "--fold-centre", "pooled"])
    assert r.exit_code == 0, (r.stderr, r.exception)
    facts = json.loads((out / "validation.json").read_text())
    assert facts["fold_back"]["centre"] == "pooled"
    assert sum(DISTURBED in n for n in facts["notes"]) == 1
    assert pd.read_csv(out / "comparison_folded.csv")["mean_error_pct"].abs().max() > 2.0


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--fold-centre", "mean"], "--fold-centre 'mean'"),
        ([], "fit on another run"),  # --fold-back the folder it scores
    ],
)
def test_refold_refuses_bad_input_in_one_line_exit_2(folders, tmp_path, extra, says):
    _, scored, _, _ = folders
    before = (scored / "validation.json").read_text()
    r = runner.invoke(app, ["validate", str(SCENARIO), "--out", str(scored), "--resume",
                            "--fold-back", str(scored), *extra])  # fmt: skip
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.exception)
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert (scored / "validation.json").read_text() == before


def test_the_folded_twin_applies_the_centre_at_each_scored_runs_speed(folders):
    fit, scored, sc1, sc2 = folders
    fb = fit_foldback(fit, scenario=sc1)
    speeds = folder_speeds(scored, sc2)
    twin = folded_twin(sc2, fb, speeds, 1)[0].records
    real = pd.read_parquet(scored / "real" / "records.parquet")
    both = real.merge(twin, on=["policy", "seed", "request"], suffixes=("", "_twin"))
    np.testing.assert_allclose(both["edge_s_twin"], both["edge_s"], rtol=1e-6)


def test_the_steady_centre_weighs_runs_by_how_steady_their_host_was(tmp_path):
    """Two of three all-edge runs disturbed, both on a host whose probes wandered (the
    norway_train_1 seed 1 case): the median takes a disturbed run's scale, the steady
    centre the steady run's, the pipeline's own."""
    sc = _scenario(FIT_SEEDS)
    two = {"all-edge/12": DISTURBANCE, "all-edge/13": DISTURBANCE * 1.1}
    fit = _folder(tmp_path, "fit", sc, _speeds(sc), two, unsteady=tuple(two))
    median = fit_foldback(fit, scenario=sc, centre="median")
    assert median.edge_scale == pytest.approx(PIPELINE[0] * DISTURBANCE, rel=1e-6)
    steady = fit_foldback(fit, scenario=sc)
    assert steady.centre == "steady"
    assert steady.edge_scale == pytest.approx(PIPELINE[0], rel=1e-6)
    assert [s for _, s in steady.edge_scale_by_cpu] == pytest.approx([PIPELINE[0]] * 2, rel=1e-6)
    assert {k for k, *_ in steady.outliers()} == set(two)


def test_a_bad_fold_centre_is_refused_before_any_real_run(tmp_path):
    out = tmp_path / "v"
    r = runner.invoke(app, ["validate", str(SCENARIO), "--calibration", str(CALIBRATION),
                            "--fold-centre", "mean", "--out", str(out)])  # fmt: skip
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.exception)
    assert len(lines) == 1 and "--fold-centre 'mean'" in lines[0] and "steady" in lines[0]
    assert not out.exists()
