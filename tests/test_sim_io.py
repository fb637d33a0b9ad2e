"""The simulator's inputs and outputs, pinned where mutation testing found them loose:
trace files read to the exact step, user policy files each loaded as their own
module, results folders rewritten in place, and error lines that point at the
right file and line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adaptsim.errors import UserError
from adaptsim.simulator import load_scenario, run_scenario, scenario_from_dict, write_results
from adaptsim.simulator.policies import resolve_policy
from adaptsim.simulator.scenario import PolicySpec
from adaptsim.simulator.traces import End, Trace, read_trace
from simkit import toy_calibration, toy_scenario

REPO = Path(__file__).resolve().parent.parent


def test_two_column_file_lasts_one_step_past_its_last_time(tmp_path):
    p = tmp_path / "bw.txt"
    p.write_text(
        "10 5\n12 7\n15 9\n"
    )  # shifted to start at 0; the last step as long as the one before
    t = read_trace(p, end=End.hold)
    assert t.times == (0.0, 2.0, 5.0) and t.values == (5.0, 7.0, 9.0)
    assert t.duration_s == 8.0 and t.end is End.hold and t.label == "bw.txt"


def test_mahimahi_bins_start_at_whole_bins(tmp_path):
    p = tmp_path / "m.trace"
    p.write_text("\n".join(["0"] * 3 + ["1500"] * 6) + "\n")  # 3 packets in bin 0, 6 in bin 3
    t = read_trace(p, "mahimahi", bin_ms=500)
    assert t.times == (0.0, 0.5, 1.0, 1.5)
    assert t.values == pytest.approx((3 * 1500 * 8 / 0.5e6, 0.0, 0.0, 6 * 1500 * 8 / 0.5e6))


def test_breakpoints_unroll_a_looping_trace_from_zero():
    t = Trace((0.0, 1.5), (8.0, 2.0), 2.0, End.loop)
    assert t.breakpoints(5.0) == [0.0, 1.5, 2.0, 3.5, 4.0]
    assert Trace((0.0, 1.5), (8.0, 2.0), 2.0, End.hold).breakpoints(5.0) == [0.0, 1.5]


@pytest.mark.parametrize("end", [End.loop, End.hold])
def test_scaling_keeps_the_trace_s_end(end):
    t = Trace((0.0, 1.0), (8.0, 2.0), 2.0, end).scaled(3.0)
    assert (
        t.end is end and t.values == (24.0, 6.0) and t.at(2.5) == (24.0 if end is End.loop else 6.0)
    )


@pytest.mark.parametrize(
    "fmt, content, kw, message",
    [
        ("csv", "time_s,value\n0,1\n1,x\n", {}, r"t\.csv:3: value 'x' is not a number"),
        (
            "gnettrack",
            "Timestamp,UL_bitrate\n2019.09.25_10.00.00,3000\n25/09/2019 10:00,2000\n",
            {},
            r"t\.csv:3: timestamp '25/09/2019 10:00' is not YYYY",
        ),
    ],
)
def test_bad_rows_name_the_file_line_and_value(tmp_path, fmt, content, kw, message):
    p = tmp_path / "t.csv"
    p.write_text(content)
    with pytest.raises(UserError, match=message):
        read_trace(p, fmt, **kw)


def _policy_file(folder: Path, point: int) -> None:
    folder.mkdir()
    (folder / "mine.py").write_text(f"def decide(view):\n    return {point}\n")


def test_two_policy_files_with_the_same_name_are_two_policies(tmp_path, monkeypatch):
    """Each file is its own module, even when the file and callable names are the
    same; a relative path is taken from the scenario's folder, or the working folder."""
    sc = load_scenario(REPO / "scenarios/vehicle_trace.yaml")
    _policy_file(tmp_path / "a", 6)
    _policy_file(tmp_path / "b", 9)
    a = resolve_policy(PolicySpec(policy="a/mine.py:decide"), sc.model, base_dir=tmp_path)
    b = resolve_policy(PolicySpec(policy="b/mine.py:decide"), sc.model, base_dir=tmp_path)
    assert (a.decide(None), b.decide(None)) == (6, 9)
    monkeypatch.chdir(tmp_path / "b")
    c = resolve_policy(PolicySpec(policy="mine.py:decide"), sc.model, base_dir=None)
    assert c.decide(None) == 9
    absolute = str(tmp_path / "a" / "mine.py") + ":decide"
    d = resolve_policy(PolicySpec(policy=absolute), sc.model, base_dir=tmp_path / "b")
    assert d.decide(None) == 6


def test_results_are_rewritten_in_place_with_the_scenario_facts(tmp_path):
    sc = load_scenario(REPO / "scenarios/busy_edge.yaml").shortened(30.0, (1,))
    res = run_scenario(sc)
    out = tmp_path / "res"
    write_results(res, out)
    first = (out / "summary.csv").read_text()
    write_results(res, out)  # a second run into the same folder replaces the files
    assert (out / "summary.csv").read_text() == first
    assert first.splitlines()[0].startswith("policy,seeds,requests,")  # no index column
    meta = json.loads((out / "run.json").read_text())
    assert meta["description"] == sc.description and meta["scenario"] == "busy_edge"
    assert meta["points"]["1"] == sc.model.layer_names[0]
    assert len(meta["points"]) == len(sc.model.ordinals)
    assert sorted(os.listdir(out)) == ["records.parquet", "run.json", "summary.csv"]


def test_bad_yaml_names_its_line(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: x\nmodel: alexnet\nduration_s: [1, 2\n")
    with pytest.raises(UserError, match=r"s\.yaml:4: not valid YAML \(expected ',' or '\]'"):
        load_scenario(p)


def test_records_carry_the_true_conditions_at_each_arrival():
    """The conditions columns are the traces' values at each frame's arrival (read
    here with Trace.at, one frame at a time), one row per frame and policy, and the
    table's index counts rows once."""
    sc = load_scenario(REPO / "scenarios/combined.yaml").shortened(300.0, (1, 2))
    rec = run_scenario(sc).records
    assert rec.index.is_unique and list(rec.index) == list(range(len(rec)))
    for col, trace in (
        ("bandwidth_mbps", sc.bandwidth),
        ("edge_cpu_pct", sc.edge_cpu),
        ("edge_mem_pct", sc.edge_mem),
    ):
        assert rec[col].tolist() == [trace.at(t) for t in rec["arrival_s"]], col
    assert rec["edge_cpu_pct"].nunique() > 1 and rec["bandwidth_mbps"].nunique() > 10
    assert (rec["deadline_met"] == (rec["latency_s"] <= sc.deadline_s)).all()


def _doc(**over):
    doc = {
        "name": "x",
        "model": "alexnet",
        "duration_s": 10,
        "arrivals": {"rate_hz": 1},
        "deadline_s": 1,
        "traces": {"bandwidth_mbps": {"constant": 5}},
        "policies": [{"policy": "all-edge"}],
    }
    return {**doc, **over}


def test_a_field_error_says_how_many_more_there_are():
    with pytest.raises(UserError) as one:
        scenario_from_dict(_doc(duration_s=-1), "src")
    assert str(one.value) == "src: field duration_s: Input should be greater than 0"
    with pytest.raises(UserError) as two:
        scenario_from_dict(_doc(duration_s=-1, deadline_s=-1), "src")
    assert str(two.value).endswith("greater than 0 (and 1 more)")


def test_a_misspelt_field_is_named_before_the_field_it_left_missing():
    doc = {k: v for k, v in _doc().items() if k != "deadline_s"} | {"deadlin_s": 1}
    with pytest.raises(UserError) as err:
        scenario_from_dict(doc, "s.yaml")
    assert str(err.value) == (
        "s.yaml: field deadlin_s: Extra inputs are not permitted (no such field: misspelt?) "
        "(and 1 more)"
    )
    with pytest.raises(UserError) as nested:
        scenario_from_dict(_doc(arrivals={"rate_hz": 1, "knd": "poisson"}), "s.yaml")
    assert str(nested.value).startswith("s.yaml: field arrivals.knd: Extra inputs are not")


def test_scaled_traces_say_so_in_their_label():
    t = Trace((0.0,), (8.0,), 1.0, End.hold, "car")
    assert t.scaled(10).label == "car x10" and t.scaled(1).label == "car"


@pytest.mark.parametrize(
    "fmt, content, message",
    [
        ("mahimahi", "0\n1\nten\n", r"t\.csv:3: expected an integer millisecond, got 'ten'"),
        (
            "gnettrack",
            "Timestamp,UL_bitrate\n2019.09.25_10.00.05,3000\n2019.09.25_10.00.01,2000\n",
            r"t\.csv:3: timestamps go backwards",
        ),
    ],
)
def test_more_bad_rows_name_the_file_and_line(tmp_path, fmt, content, message):
    p = tmp_path / "t.csv"
    p.write_text(content)
    with pytest.raises(UserError, match=message):
        read_trace(p, fmt)


def test_a_frame_exactly_at_the_deadline_meets_it_and_summaries_keep_policy_order(tmp_path):
    """Toy: 0.25 s edge, 250 kB at 1 MB/s, 0.5 s cloud: exactly 1 s (exact in binary)."""
    cal = toy_calibration(
        tmp_path / "toy.json", edge_s=(0.25, 0.5), wire_bytes=(150_528.0, 250_000.0, 4_000.0)
    )
    sc = toy_scenario(
        cal,
        deadline_s=1.0,
        duration_s=3.0,
        policies=[
            {"policy": "static", "label": "zz-cut", "params": {"point": 2}},
            {"policy": "all-edge", "label": "aa-edge"},
        ],
    )
    res = run_scenario(sc)
    cut = res.records[res.records["policy"] == "zz-cut"]
    assert (cut["latency_s"] == 1.0).all() and cut["deadline_met"].all()
    assert res.summary["policy"].tolist() == ["zz-cut", "aa-edge"]
    assert res.summary.iloc[0]["deadline_miss_rate"] == 0.0


def test_errors_name_a_default_place_when_none_is_given():
    sc = load_scenario(REPO / "scenarios/vehicle_trace.yaml")
    with pytest.raises(UserError, match=r"^policy: policy 'clever' is neither"):
        resolve_policy(PolicySpec(policy="clever"), sc.model)
    with pytest.raises(UserError, match=r"^<scenario>: field duration_s"):
        scenario_from_dict(_doc(duration_s=-1))
