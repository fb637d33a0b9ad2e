"""The validation's numbers at their edges: errors, targets, ranking, stages (no real run).

What a reader of a scorecard relies on: an error is (simulated - measured) / measured,
positive when the simulator is pessimistic, and none where nothing was measured; a
policy meets the targets at exactly 10 % (mean) and 15 % (p95) either way, not a hair
over; Kendall's tau on tied simulated means is tau-b; a pair of policies is "told apart"
by the real run only from 10 common frames; per stage, only finished frames count. The
summaries and records here are hand-made where the numbers are worked by hand; the
scorecard's folders are written by the real writer from simulated stand-ins (as in
tests/test_testbed_report.py) and their comparison CSVs set to the boundary values,
since the scorecard prints what the folder's files hold.
"""

from __future__ import annotations

import html
import json
import math
import re
import shutil
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest

from adaptsim.simulator import run_scenario
from adaptsim.testbed.compare import (
    STAGES,
    compare_policies,
    compare_stages,
    err_pct,
    ranking,
    separated,
)
from adaptsim.testbed.foldback import apply_foldback
from adaptsim.testbed.validate import write_validation
from standins import STAND_IN, lenet_stand_in

DATA = Path(__file__).parent / "data"
SCENARIO = DATA / "testbed_lenet.yaml"
CALIBRATION = Path(__file__).parents[1] / "src" / "adaptsim" / "data" / "calibration_own_2core.json"


def test_an_error_is_signed_relative_to_the_measured_value_and_none_without_one():
    assert err_pct(0.15, 0.125) == pytest.approx(20.0)  # pessimistic: positive
    assert err_pct(0.1, 0.125) == pytest.approx(-20.0)
    assert err_pct(0.25, 0.25) == 0.0
    for measured in (0.0, math.nan, math.inf, -math.inf):
        assert math.isnan(err_pct(0.1, measured)), measured


def _summary(policy, mean_s, p50_s, p95_s, miss, reparts=0, requests=30) -> dict:
    return {"policy": policy, "requests": requests, "mean_s": mean_s, "p50_s": p50_s,
            "p95_s": p95_s, "deadline_miss_rate": miss, "repartitions": reparts}  # fmt: skip


def test_compare_policies_puts_each_measured_statistic_beside_its_simulated_one():
    real = pd.DataFrame([_summary("a", 0.5, 0.25, 1.0, 0.125, 3, 31),
                         _summary("b", 0.25, 0.25, 0.5, 0.0),
                         _summary("only-real", 1.0, 1.0, 1.0, 0.0)])  # fmt: skip
    sim = pd.DataFrame([_summary("b", 0.375, 0.125, 0.5, 0.25, 1),
                        _summary("a", 0.625, 0.25, 0.75, 0.0625, 2)])  # fmt: skip
    t = compare_policies(real, sim)
    assert t["policy"].tolist() == ["a", "b"]  # the real run's order; one not simulated: out
    a = t.iloc[0].to_dict()
    assert a == {
        "policy": "a", "frames": 31,
        "measured_mean_s": 0.5, "simulated_mean_s": 0.625, "mean_error_pct": 25.0,
        "measured_p50_s": 0.25, "simulated_p50_s": 0.25, "p50_error_pct": 0.0,
        "measured_p95_s": 1.0, "simulated_p95_s": 0.75, "p95_error_pct": -25.0,
        "measured_miss_rate": 0.125, "simulated_miss_rate": 0.0625, "miss_rate_diff": -0.0625,
        "measured_repartitions": 3, "simulated_repartitions": 2,
    }  # fmt: skip
    b = t.iloc[1]
    assert b["mean_error_pct"] == 50.0 and b["p50_error_pct"] == -50.0
    assert b["miss_rate_diff"] == 0.25


def _table(measured, simulated) -> pd.DataFrame:
    names = [chr(ord("a") + i) for i in range(len(measured))]
    return pd.DataFrame({"policy": names, "measured_mean_s": measured,
                         "simulated_mean_s": simulated})  # fmt: skip


def test_kendalls_tau_is_tau_b_on_ties_and_the_opposite_pairs_are_counted():
    # the twin ties a and b: tau-b = 5 / sqrt(6 x 5), no pair ordered oppositely
    r = ranking(_table([0.1, 0.2, 0.3, 0.4], [0.1, 0.1, 0.3, 0.4]))
    assert r["kendall_tau"] == pytest.approx(5 / math.sqrt(30))
    assert r["discordant_pairs"] == 0 and r["same_but_ties"] is True
    assert r["measured"] == ["a", "b", "c", "d"]
    # a and b swapped: one pair of six discordant, tau = (5 - 1) / 6
    r = ranking(_table([0.1, 0.2, 0.3, 0.4], [0.2, 0.1, 0.3, 0.4]))
    assert r["kendall_tau"] == pytest.approx(4 / 6)
    assert r["discordant_pairs"] == 1 and r["same_but_ties"] is False and r["same"] is False
    assert r["simulated"] == ["b", "a", "c", "d"]
    # reversed: every pair
    r = ranking(_table([0.1, 0.2, 0.3], [0.3, 0.2, 0.1]))
    assert r["kendall_tau"] == pytest.approx(-1.0) and r["discordant_pairs"] == 3
    # the same order: tau 1
    r = ranking(_table([0.1, 0.2, 0.3], [0.15, 0.25, 0.35]))
    assert r == {"measured": ["a", "b", "c"], "simulated": ["a", "b", "c"], "same": True,
                 "kendall_tau": pytest.approx(1.0), "discordant_pairs": 0,
                 "same_but_ties": True}  # fmt: skip
    # one policy: no ranking to score
    r = ranking(_table([0.1], [0.2]))
    assert math.isnan(r["kendall_tau"]) and r["discordant_pairs"] == 0


def _records(a_s, b_s, seed=1) -> pd.DataFrame:
    rows = [{"policy": p, "seed": seed, "request": i, "latency_s": v}
            for p, values in (("a", a_s), ("b", b_s)) for i, v in enumerate(values)]  # fmt: skip
    return pd.DataFrame(rows)


def test_a_pair_is_told_apart_from_ten_common_frames_that_differ():
    base = [0.1] * 12
    slower = [0.1 + 0.001 * (k + 1) for k in range(12)]
    # ten frames, every one slower under b: the signed-rank test's p is 2 / 2^10
    assert separated(_records(base[:10], slower[:10]), "a", "b")
    assert separated(_records(base[:10], slower[:10]), "b", "a")  # either order
    # nine: too few to tell
    assert not separated(_records(base[:9], slower[:9]), "a", "b")
    # ten common frames, but one of them equal and one unfinished: eight count
    b = slower[:10]
    b[3] = 0.1
    b[5] = math.nan
    assert not separated(_records(base[:10], b), "a", "b")
    # twelve frames, one unfinished and one equal: ten differ, told apart
    b = list(slower)
    b[3], b[5] = 0.1, math.nan
    assert separated(_records(base, b), "a", "b")
    # frames are paired by seed and request: another seed's frames are not common
    other = pd.concat([_records(base[:5], slower[:5]),
                       _records(base[5:10], slower[5:10], seed=2)])  # fmt: skip
    assert separated(other, "a", "b")  # 5 + 5 common frames (request numbers repeat)
    shifted = pd.concat([_records(base[:10], [], seed=1), _records([], slower[:10], seed=2)])
    assert not separated(shifted, "a", "b")
    # differences of both signs, balanced: not told apart
    mixed = [0.1 + (0.001 if k % 2 else -0.001) * (k + 1) for k in range(12)]
    assert not separated(_records(base, mixed), "a", "b")


def test_the_ranking_counts_only_separated_opposite_pairs_with_the_records():
    table = _table([0.1, 0.2], [0.2, 0.1])  # a and b ordered oppositely
    told = _records([0.1] * 10, [0.1 + 0.001 * k for k in range(1, 11)])
    assert ranking(table, told)["separated_discordant_pairs"] == 1
    assert ranking(table, _records([0.1] * 9, [0.2] * 9))["separated_discordant_pairs"] == 0


def _stage_records(policy: str, rows: list[tuple]) -> pd.DataFrame:
    cols = [*STAGES, "latency_s"]
    return pd.DataFrame([{"policy": policy, **dict(zip(cols, r, strict=True))} for r in rows])


def test_stages_compare_the_means_of_finished_frames_on_both_sides():
    six = len(STAGES)
    real = pd.concat([
        _stage_records("a", [(1.0,) * six + (6.0,), (3.0,) * six + (18.0,),
                             (100.0,) * six + (math.nan,)]),  # never finished: left out
        _stage_records("lost", [(1.0,) * six + (6.0,)]),  # not simulated: left out
    ])  # fmt: skip
    real["return_s"] = [0.5, 1.5, 9.0, 0.0]
    sim = _stage_records("a", [(1.5,) * six + (9.0,), (1.5,) * six + (9.0,),
                               (50.0,) * six + (math.inf,)])  # fmt: skip
    t = compare_stages(real, sim)
    assert t["policy"].unique().tolist() == ["a"]
    assert t["stage"].tolist() == [*STAGES, "latency_s", "return_s (real only)"]
    edge = t[t["stage"] == STAGES[0]].iloc[0]
    assert (edge["measured_s"], edge["simulated_s"]) == (2.0, 1.5)
    assert edge["diff_s"] == -0.5 and edge["error_pct"] == -25.0
    total = t[t["stage"] == "latency_s"].iloc[0]
    assert (total["measured_s"], total["simulated_s"], total["error_pct"]) == (12.0, 9.0, -25.0)
    back = t[t["stage"] == "return_s (real only)"].iloc[0]
    assert back.to_dict() == {"policy": "a", "stage": "return_s (real only)", "measured_s": 1.0,
                              "simulated_s": 0.0, "diff_s": -1.0, "error_pct": -100.0}  # fmt: skip
    # a twin without the real run's return_s column: no such row
    plain = compare_stages(real.drop(columns="return_s"), sim)
    assert plain["stage"].tolist() == [*STAGES, "latency_s"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A seed-1 folder and a seed-2 folder folded back from it, as validate writes them."""
    sc, real, twin = lenet_stand_in()
    stand_in = STAND_IN
    facts = {"scenario": "x.yaml", "calibration": str(CALIBRATION), "time_scale": 1.0,
             "duration_s": 4.0, "rate_hz": 10.0, "frames_per_run": 40, "seeds": [1],
             "applied": {}, "notes": ["oracle: left out (it sees the true future)."],
             "placement": {"edge_cpus": [0], "cloud_cpus": [1], "cloud_workers": 1,
                           "memory_stress_cpus": [1]},
             "one_way_latency": "added in the application", "zero_rate": "tbf",
             "load_average": [1.0, 1.0, 1.0], "interrupted": False}  # fmt: skip
    root = tmp_path_factory.mktemp("scores")
    one = write_validation(root / "seed1", real, twin, {**facts, "host_speed": SPEEDS})
    two = write_validation(root / "seed2", real, twin,
                           {**facts, "fold_back": {"from": str(one), **asdict(stand_in)},
                            "host_speed": SPEEDS, "probe_frames": 2},
                           run_scenario(apply_foldback(sc, stand_in)),
                           twin_probed=[run_scenario(apply_foldback(sc, stand_in))])  # fmt: skip
    return one, two


# each policy run's probes as validate records them (record_speeds), by hand
SPEEDS = {
    "static-best/1": {"edge_s": [0.012, 0.013], "cloud_s": [0.004, 0.005], "at": ["b", "a"],
                      "edge": 1.25, "cloud": 0.5, "edge_median_s": 0.0125, "cloud_median_s": 0.0045,
                      "edge_predicted_s": 0.01, "cloud_predicted_s": 0.009},
    "all-cloud/1": {"edge_s": [0.011], "cloud_s": [0.0095], "at": ["before"], "edge": 1.1,
                    "cloud": 1.0625, "edge_median_s": 0.011, "cloud_median_s": 0.0095,
                    "edge_predicted_s": 0.01, "cloud_predicted_s": 0.009},
}  # fmt: skip


def _set_errors(path: Path, errors: dict[str, tuple[float, float]]) -> None:
    t = pd.read_csv(path)
    for policy, (mean, p95) in errors.items():
        t.loc[t["policy"] == policy, ["mean_error_pct", "p95_error_pct"]] = [mean, p95]
    t.to_csv(path, index=False)


def _row(section: str, policy: str) -> str:
    return next(line for line in section.splitlines() if line.startswith(f"| {policy} |"))


def test_the_targets_are_met_at_exactly_10_and_15_percent_either_way(folders, tmp_path):
    from adaptsim.testbed.scorecard import MEAN_TARGET_PCT, P95_TARGET_PCT, scorecard

    assert (MEAN_TARGET_PCT, P95_TARGET_PCT) == (10.0, 15.0)
    one, two = (shutil.copytree(f, tmp_path / f.name) for f in folders)  # edited below
    facts = json.loads((two / "validation.json").read_text())
    facts["fold_back"]["from"] = str(one)
    (two / "validation.json").write_text(json.dumps(facts))
    # before the fold-back: both at the boundary, one pessimistic and one optimistic
    _set_errors(two / "comparison.csv", {"static-best": (10.0, -15.0), "all-cloud": (-10.0, 15.0)})
    # after: each a hair over one target, the other met
    _set_errors(two / "comparison_folded.csv",
                {"static-best": (10.001, 0.0), "all-cloud": (0.0, -15.001)})  # fmt: skip
    # seed 1: a mean error none can be measured against (NaN) does not meet the target
    _set_errors(one / "comparison.csv", {"static-best": (math.nan, 0.0), "all-cloud": (0.0, 0.0)})
    text = scorecard(one, two)
    parts = {p.split("\n", 1)[0]: p for p in text.split("### ")}
    before = parts["seed 2 before the fold-back"]
    row = _row(before, "static-best")
    assert "| +10.0 % |" in row and "| -15.0 % |" in row and row.endswith("| yes |")
    assert _row(before, "all-cloud").endswith("| yes |")
    assert "met by 2 of 2 policies" in before
    after = next(v for k, v in parts.items() if k.startswith("seed 2 after the fold-back"))
    assert _row(after, "static-best").endswith("| no |")
    assert _row(after, "all-cloud").endswith("| no |")
    assert "met by 0 of 2 policies" in after
    first = parts["seed 1 (measured vs simulated)"]
    row = _row(first, "static-best")
    assert "| n/a |" in row and row.endswith("| no |")
    assert _row(first, "all-cloud").endswith("| yes |")
    assert "met by 1 of 2 policies" in first
    assert "targets (mean within 10 %, p95 within 15 %)" in text
    # the draws' 10-90 % spread beside each simulated statistic, in ms
    comp = pd.read_csv(two / "comparison.csv").set_index("policy")
    lo, hi = (
        comp.loc["all-cloud", "simulated_p95_s_p10"],
        comp.loc["all-cloud", "simulated_p95_s_p90"],
    )
    assert f"| {lo * 1e3:.1f}-{hi * 1e3:.1f} |" in _row(before, "all-cloud")
    # the host's speed per policy run, under its own heading, for both seeds
    for seed in ("seed 1", "seed 2"):
        heading = (
            f"{seed}: the host's speed per policy run (median probe / calibration's at no stress)"
        )
        assert parts[heading] == (f"{heading}\n\nstatic-best/1 edge x1.250 cloud x0.500, "
                                  "all-cloud/1 edge x1.100 cloud x1.062\n\n")  # fmt: skip
    assert text.startswith("## x.yaml: 40 frames per policy and run, traces x1.0 faster, 4.0 s ")


def _values(page: str) -> dict[str, float]:
    return {
        html.unescape(k): float(v)
        for k, v in re.findall(r'data-key="([^"]+)" data-value="([^"]+)"', page)
    }


def test_the_validation_report_rebuilt_shows_the_stages_the_probes_and_the_notes(folders, tmp_path):
    """The report of a probed, folded-back folder: the stage table under its own
    columns, the host's speed per run with the probes' numbers, the plain twin against the
    probed one per statistic, the ranking with tau to two decimals, and the run's notes."""
    from adaptsim.report import fmt_number
    from adaptsim.testbed.report import write_validation_report

    two = shutil.copytree(folders[1], tmp_path / "seed2")
    (two / "report.md").unlink()
    write_validation_report(two)  # rebuilt here from the folder's files, as on the page
    md = (two / "report.md").read_text()
    got = _values((two / "report.html").read_text())
    assert ("| policy | stage | measured (ms) | simulated (ms) | simulated - measured (ms) "
            "| error |") in md  # fmt: skip
    for run, p in SPEEDS.items():
        for key in ("edge_median_s", "edge_predicted_s", "cloud_median_s", "cloud_predicted_s"):
            assert got[f"{run}/{key}"] == p[key], (run, key)
        assert got[f"{run}/edge_speed"] == p["edge"] and got[f"{run}/cloud_speed"] == p["cloud"]
    comp = pd.read_csv(two / "comparison.csv").set_index("policy")
    probed = pd.read_csv(two / "comparison_probed.csv").set_index("policy")
    for p in comp.index:
        for stat in ("mean", "p50", "p95"):
            c = f"{stat}_error_pct"
            assert got[f"{p}/probed/plain twin/{c}"] == pytest.approx(comp.loc[p, c])
            assert got[f"{p}/probed/probed twin/{c}"] == pytest.approx(probed.loc[p, c])
    heads = [f"{stat} error {twin}" for stat in ("mean", "p50", "p95")
             for twin in ("plain twin", "probed twin")]  # fmt: skip
    heads += ["miss rate diff plain twin", "miss rate diff probed twin"]
    assert "| " + " | ".join(["policy", *heads]) + " |" in md
    order = " < ".join(probed.sort_values("simulated_mean_s").index)
    assert f"Ranking at the probed speed: {order}; " in md
    rank = json.loads((two / "validation.json").read_text())["ranking"]
    assert f"Kendall's tau {fmt_number(rank['kendall_tau'], 2)}; " in md
    assert "2 probe frames per role each time" in md
    assert "oracle: left out (it sees the true future)." in md


def test_the_timeline_draws_measured_solid_and_simulated_dotted_under_the_bandwidth():
    from adaptsim.testbed.report import _timeline

    rec = pd.DataFrame({"policy": ["a", "a", "b"], "seed": [1, 1, 1], "arrival_s": [0.5, 0.1, 0.2],
                        "latency_s": [0.2, 0.1, math.nan]})  # fmt: skip
    applied = {"a/1": [[0.0, 20.0, 0.0, 0.0], [3.0, 1.0, 50.0, 0.0]]}
    fig = _timeline(rec, rec.assign(latency_s=0.3), {"a": "#111111", "b": "#222222"}, applied, 1)
    bandwidth, *frames = fig.data
    assert bandwidth.name == "bandwidth"
    assert list(bandwidth.x) == [0.0, 3.0, 3.0] and list(bandwidth.y) == [20.0, 1.0, 1.0]
    seen = {t.name: t for t in frames}
    assert sorted(seen) == ["a measured", "a simulated", "b measured", "b simulated"]
    for p, colour in (("a", "#111111"), ("b", "#222222")):
        assert (
            seen[f"{p} measured"].line.dash == "solid" and seen[f"{p} simulated"].line.dash == "dot"
        )
        assert seen[f"{p} measured"].line.color == seen[f"{p} simulated"].line.color == colour
    assert list(seen["a measured"].x) == [0.1, 0.5] and list(seen["a measured"].y) == [0.1, 0.2]
    assert list(seen["b measured"].y) == [None]  # never finished: a gap, not a point
