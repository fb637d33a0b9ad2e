"""The validation report (report.html + report.md) against the folder's own CSVs.

The real run needs root, namespaces and minutes; the report does not. Here the
"measured" side is a stand-in: the same scenario simulated with a fold-back
(edge x1.7, cloud x2.2, +3 ms per message), so its numbers differ from the
twin's as a real run's would. The real run's own report is checked in
tests/test_testbed_run.py.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from adaptsim.errors import UserError
from adaptsim.simulator import run_scenario
from adaptsim.testbed import scenario_for_testbed
from adaptsim.testbed.foldback import FoldBack, apply_foldback
from adaptsim.testbed.report import write_validation_report
from adaptsim.testbed.validate import write_validation

DATA = Path(__file__).parent / "data"
SCENARIO = DATA / "testbed_lenet.yaml"
CALIBRATION = Path(__file__).parents[1] / "src" / "adaptsim" / "data" / "calibration_own_2core.json"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    sc = scenario_for_testbed(SCENARIO, CALIBRATION)
    from dataclasses import replace

    sc = replace(sc, policies=tuple(p for p in sc.policies if p.policy != "oracle"))
    stand_in = FoldBack(edge_scale=1.7, cloud_scale=2.2, uplink_extra_s=0.003, return_s=0.002,
                        pause_s=0.0, frames=90)  # fmt: skip
    real = run_scenario(apply_foldback(sc, stand_in))
    twin = run_scenario(sc)
    folded = run_scenario(apply_foldback(sc, FoldBack(1.5, 2.0, 0.002, 0.001, 0.0, 90)))
    facts = {
        "scenario": str(SCENARIO), "calibration": str(CALIBRATION), "time_scale": 1.0,
        "duration_s": sc.duration_s, "seeds": list(sc.seeds),
        "placement": {"edge_cpus": [0], "cloud_cpus": [1], "cloud_workers": 1,
                      "memory_stress_cpus": [1]},
        "one_way_latency": "added in the application (the kernel has no netem)",
        "zero_rate": "tbf at its smallest rate (8 kbit/s), not an exact stall",
        "notes": ["oracle: left out; it sees the true future, so it has no real run"],
        "load_average": [1.0, 1.0, 1.0], "interrupted": False,
        "applied": {"static-best/1": [[0.0, 20, 0, 0], [3.0, 1, 0, 0], [6.0, 20, 50, 0]]},
        "fold_back": {"from": "another-run", "edge_scale": 1.5, "cloud_scale": 2.0,
                      "uplink_extra_s": 0.002, "return_s": 0.001, "pause_s": 0.0, "frames": 90},
    }  # fmt: skip
    return write_validation(tmp_path_factory.mktemp("v") / "validation", real, twin, facts, folded)


def _values(page: str) -> dict[str, float]:
    return {
        html.unescape(k): float(v)
        for k, v in re.findall(r'data-key="([^"]+)" data-value="([^"]+)"', page)
    }


def test_report_numbers_are_the_csvs(folder):
    page = (folder / "report.html").read_text()
    md = (folder / "report.md").read_text()
    got = _values(page)
    comp = pd.read_csv(folder / "comparison.csv")
    assert len(comp) == 4  # static-best, all-cloud, reactive, mpc
    for _, r in comp.iterrows():
        p = r["policy"]
        for col in ("measured_mean_s", "simulated_mean_s", "mean_error_pct", "measured_p50_s",
                    "simulated_p50_s", "p50_error_pct", "measured_p95_s", "simulated_p95_s",
                    "p95_error_pct", "measured_miss_rate", "simulated_miss_rate"):  # fmt: skip
            assert got[f"{p}/{col}"] == pytest.approx(r[col], rel=1e-12), (p, col)
        # the markdown row says the same numbers, as printed (ms, %)
        row = next(line for line in md.splitlines() if line.startswith(f"| {p} | {r['frames']}"))
        assert f"{r['measured_mean_s'] * 1e3:.1f}" in row
        assert f"{r['simulated_p95_s'] * 1e3:.1f}" in row
        assert f"{r['p95_error_pct']:+.1f} %" in row
    stages = pd.read_csv(folder / "stages.csv")
    for _, r in stages.iterrows():
        key = f"{r['policy']}/{r['stage']}"
        assert got[f"{key}/measured_s"] == pytest.approx(r["measured_s"], rel=1e-12)
        assert got[f"{key}/diff_s"] == pytest.approx(r["diff_s"], rel=1e-12, abs=1e-15)
    assert {"edge_s", "uplink_s", "cloud_s", "edge_wait_s", "uplink_wait_s",
            "cloud_wait_s"} <= set(stages["stage"])  # fmt: skip
    after = pd.read_csv(folder / "comparison_folded.csv").set_index("policy")
    for p in comp["policy"]:
        assert got[f"{p}/after/mean_error_pct"] == pytest.approx(after.loc[p, "mean_error_pct"])
    rank = json.loads((folder / "validation.json").read_text())["ranking"]
    tau, opposite = rank["kendall_tau"], rank["discordant_pairs"]
    for text in (html.unescape(page), md):
        assert f"Kendall's tau {tau:.2f}" in text
        # the pairs ordered oppositely, not only tau (the twin's ties not counted)
        assert (
            f"tau {tau:.2f}; {opposite} pair{'s' if opposite != 1 else ''} of policies "
            "ordered oppositely" in text
        )
        assert "no netem" in text and "8 kbit/s" in text
        assert "Before and after the fold-back" in text and "oracle: left out" in text


def test_report_page_is_self_contained_and_overlays_both_timelines(folder):
    page = (folder / "report.html").read_text()
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)  # the page, not JS
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", markup, re.I)
    assert "<link" not in markup and "<script src" not in page
    assert "Plotly" in page  # the JS is embedded, not linked
    spec = json.loads(re.search(r'id="timeline-spec">(.*?)</script>', page, re.S)[1]
                      .replace("<\\/", "</"))  # fmt: skip
    names = {t["name"] for t in spec["data"]}
    for p in pd.read_csv(folder / "comparison.csv")["policy"]:
        assert {f"{p} measured", f"{p} simulated"} <= names
    real = pd.read_parquet(folder / "real" / "records.parquet")
    trace = next(t for t in spec["data"] if t["name"] == "all-cloud measured")
    want = real[real["policy"] == "all-cloud"].sort_values("arrival_s")["latency_s"]
    assert len(trace["y"]) == len(want)


def test_report_rebuilds_from_the_folder_and_refuses_a_foreign_one(folder, tmp_path):
    before = (folder / "report.md").read_text()
    (folder / "report.md").unlink()
    write_validation_report(folder)
    assert (folder / "report.md").read_text() == before
    (tmp_path / "comparison.csv").write_text("policy\n")
    with pytest.raises(UserError, match="not a validation folder"):
        write_validation_report(tmp_path)


def test_stage_labels_are_the_run_reports_words(folder, tmp_path):
    """The validation page names each stage as `adaptsim report` of the same records does."""
    import shutil

    from adaptsim.report import build_report

    run = tmp_path / "real"
    shutil.copytree(folder / "real", run)
    build_report(run, images=False)
    run_md = (run / "report.md").read_text()
    header = next(line for line in run_md.splitlines() if line.startswith("| policy |")
                  and "total (s)" in line)  # the run report's stage table  # fmt: skip
    run_labels = {c.strip()[: -len(" (s)")] for c in header.strip("|").split("|")
                  if c.strip().endswith(" (s)") and c.strip() != "total (s)"}  # fmt: skip
    assert len(run_labels) == 6  # the six stages a frame meets
    md = (folder / "report.md").read_text()
    shown = {
        line.split("|")[2].strip()
        for line in md.splitlines()
        if line.startswith("| static-best | ") and line.count("|") == 7  # its stage rows
    }
    stage_columns = set(pd.read_csv(folder / "stages.csv")["stage"])
    assert len(shown) == len(stage_columns)
    # every stage the run report has is shown under its own words; only the rows a
    # run report cannot have (end to end; the way back, of a real run) are the page's own
    assert run_labels <= shown
    assert "end to end" in shown - run_labels <= {"end to end", "way back (real only)"}


def test_scorecard_prints_both_seeds_before_and_after_and_checks_the_targets(tmp_path):
    """The protocol's tables: the folded twin is the stand-in's own scenario, so after the
    fold-back every error is 0 and every policy meets the targets; before, none does."""
    from dataclasses import asdict

    from adaptsim.testbed.scorecard import scorecard
    from standins import STAND_IN as stand_in
    from standins import lenet_stand_in

    sc, real, twin = lenet_stand_in()
    facts = {"scenario": "x.yaml", "calibration": str(CALIBRATION), "time_scale": 1.0,
             "duration_s": 4.0, "rate_hz": 10.0,
             "frames_per_run": 40, "seeds": [1], "applied": {}, "notes": [],
             "placement": {"edge_cpus": [0], "cloud_cpus": [1], "cloud_workers": 1,
                           "memory_stress_cpus": [1]},
             "one_way_latency": "added in the application", "zero_rate": "tbf",
             "load_average": [1.0, 1.0, 1.0], "interrupted": False}  # fmt: skip
    one = write_validation(tmp_path / "seed1", real, twin, facts)
    two = write_validation(
        tmp_path / "seed2", real, twin,
        {**facts, "fold_back": {"from": str(one), **asdict(stand_in)}},
        run_scenario(apply_foldback(sc, stand_in)),
    )  # fmt: skip
    text = scorecard(one, two)
    parts = text.split("### ")
    before = next(p for p in parts if p.startswith("seed 2 before"))
    after = next(p for p in parts if p.startswith("seed 2 after"))
    comp = pd.read_csv(two / "comparison.csv")
    for _, r in comp.iterrows():
        row = next(line for line in before.splitlines() if line.startswith(f"| {r['policy']} |"))
        assert f"{r['mean_error_pct']:+.1f} %" in row and f"{r['p95_error_pct']:+.1f} %" in row
        assert row.endswith("| no |")
        row = next(line for line in after.splitlines() if line.startswith(f"| {r['policy']} |"))
        assert "+0.0 %" in row and row.endswith("| yes |")
    assert "met by 2 of 2 policies" in after and "met by 0 of 2 policies" in before
    assert "edge_scale 1.7" in text and "uplink transfer" in text  # factors, run report's words
    with pytest.raises(UserError, match="was not folded back from"):
        scorecard(two, two)  # seed 2 was fitted on seed 1, not on itself
    with pytest.raises(UserError, match=r"comparison_folded\.csv missing"):
        scorecard(two, one)  # seed 1 has no fold-back to score


def test_ranking_counts_opposite_pairs_but_not_the_twins_ties():
    from adaptsim.testbed.compare import ranking

    t = pd.DataFrame({"policy": ["a", "b", "c", "d"],
                      "measured_mean_s": [0.35, 0.40, 0.37, 0.80],
                      "simulated_mean_s": [0.19, 0.19, 0.19, 0.85]})  # fmt: skip
    r = ranking(t)
    assert r["kendall_tau"] < 1 and r["discordant_pairs"] == 0 and r["same_but_ties"]
    t.loc[3, "simulated_mean_s"] = 0.10  # d now simulated fastest, measured slowest
    r = ranking(t)
    assert r["discordant_pairs"] == 3 and not r["same_but_ties"]


def test_fold_back_fits_and_applies_an_edge_scale_per_cpu_stress_level(tmp_path):
    """A real edge slowed less by stress than its profile (the sporadic frame the
    scheduler favours over the stressor) shows as a scale per CPU level: fitted from
    the frames at each level, applied to that level's calibrated times."""
    from dataclasses import replace as dc_replace

    from adaptsim.simulator.engine import Tables
    from adaptsim.simulator.scenario import PolicySpec
    from adaptsim.testbed.foldback import fit_foldback
    from adaptsim.testbed.validate import write_validation

    sc = scenario_for_testbed(SCENARIO, CALIBRATION)  # edge CPU 0 % then 50 % from 4.5 s
    sc = dc_replace(sc, policies=(PolicySpec(policy="all-edge"),))  # every frame computes
    stand_in = FoldBack(edge_scale=1.0, cloud_scale=1.0, uplink_extra_s=0.0, return_s=0.0,
                        pause_s=0.0, frames=90,
                        edge_scale_by_cpu=((0.0, 1.3), (50.0, 0.6)))  # fmt: skip
    # applied: each level's heads scaled by its own factor, none by the single scale
    after = apply_foldback(sc, stand_in)
    for cpu, k in ((0.0, 1.3), (50.0, 0.6), (25.0, 0.95)):  # 25 %: between the two
        before_s, after_s = Tables(sc).at(cpu, 0.0)[0], Tables(after).at(cpu, 0.0)[0]
        assert before_s[-1] > 0
        assert after_s == pytest.approx(k * before_s, rel=1e-9)
    # fitted: a "real" run made with those factors gives them back, level by level
    real, twin = run_scenario(after), run_scenario(sc)
    real.records["return_s"] = 0.0  # a real run's own column (the result's way back)
    facts = {"scenario": "x.yaml", "calibration": str(CALIBRATION), "time_scale": 1.0,
             "duration_s": sc.duration_s, "seeds": list(sc.seeds), "applied": {}, "notes": [],
             "placement": {"edge_cpus": [0], "cloud_cpus": [1], "cloud_workers": 1,
                           "memory_stress_cpus": [1]},
             "one_way_latency": "added in the application", "zero_rate": "tbf",
             "load_average": [1.0, 1.0, 1.0], "interrupted": False}  # fmt: skip
    fb = fit_foldback(write_validation(tmp_path / "v", real, twin, facts))
    levels = dict(fb.edge_scale_by_cpu)
    assert sorted(levels) == [0.0, 50.0]
    assert levels[0.0] == pytest.approx(1.3, rel=0.02)
    assert levels[50.0] == pytest.approx(0.6, rel=0.02)
    assert 0.6 < fb.edge_scale < 1.3  # the single scale mixes the two


def test_rescoring_fits_the_fold_back_against_the_current_twin_not_the_saved_one(tmp_path):
    """A folder's saved twin goes stale when the calibration changes (here: saved with
    the edge x0.5, as an old profile would have said); re-scoring must fit the
    fold-back against the twin simulated now, or it carries the old error along."""
    from dataclasses import replace as dc_replace

    from adaptsim.simulator.scenario import PolicySpec
    from adaptsim.testbed.rescore import rescore_folder

    sc = scenario_for_testbed(SCENARIO, CALIBRATION, duration_s=6.0)
    sc = dc_replace(sc, policies=(PolicySpec(policy="all-edge"),))
    stand_in = FoldBack(edge_scale=1.4, cloud_scale=1.0, uplink_extra_s=0.0, return_s=0.0,
                        pause_s=0.0, frames=60)  # fmt: skip
    stale = FoldBack(edge_scale=0.5, cloud_scale=1.0, uplink_extra_s=0.0, return_s=0.0,
                     pause_s=0.0, frames=60)  # fmt: skip
    facts = {"scenario": str(SCENARIO), "calibration": str(CALIBRATION), "time_scale": 1.0,
             "duration_s": 6.0, "seeds": list(sc.seeds), "applied": {}, "notes": [],
             "placement": {"edge_cpus": [0], "cloud_cpus": [1], "cloud_workers": 1,
                           "memory_stress_cpus": [1]},
             "one_way_latency": "added in the application", "zero_rate": "tbf",
             "load_average": [1.0, 1.0, 1.0], "interrupted": False}  # fmt: skip
    folders = []
    for name in ("seed1", "seed2"):
        real = run_scenario(apply_foldback(sc, stand_in))
        real.records["return_s"] = 0.0  # a real run's own column
        folders.append(
            write_validation(tmp_path / name, real, run_scenario(apply_foldback(sc, stale)), facts)
        )
    comp, fb = rescore_folder(folders[1], fold_back_from=folders[0])
    assert fb.edge_scale == pytest.approx(1.4, rel=0.03)  # the stale twin would give 2.8
    # the folded twin is the stand-in's own scenario: its mean is the measured one
    # up to the spread of the twin's noise draws (median of 9 against draw 0); the
    # stale fit would be ~2x off
    assert comp["mean_error_pct"].abs().max() < 5.0
