"""The run report without a browser: folders it refuses, warnings, the verdict's
direction, markdown and HTML agreeing, self-containment, honest downsampling.

Runs are real simulations of the shipped vehicle scenario (shortened); variants
(unfinished frames, a failed policy, one seed) are made by editing a real run's
records the way such a run would have written them.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from adaptsim.cli import app
from adaptsim.errors import UserError
from adaptsim.report import build_report, read_run, verdict
from adaptsim.report.figures import (
    OKABE_ITO,
    cdf_points,
    envelope,
    figure_block,
    policy_colours,
)
from adaptsim.report.page import PARTIAL_TRACES, plotly_js
from adaptsim.simulator import load_scenario, run_scenario, write_results

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "vehicle"
    sc = load_scenario(REPO / "scenarios/vehicle_trace.yaml").shortened(300.0, (1, 2, 3))
    write_results(run_scenario(sc), out)
    return out


@pytest.fixture
def copy(run_dir, tmp_path) -> Path:
    """A private copy of the run to edit."""
    return Path(shutil.copytree(run_dir, tmp_path / "copy"))


def _edit(folder: Path, records: pd.DataFrame | None = None, **meta) -> None:
    if records is not None:
        records.to_parquet(folder / "records.parquet", index=False)
    m = json.loads((folder / "run.json").read_text())
    m.update(meta)
    (folder / "run.json").write_text(json.dumps(m))


def _one_line_exit_2(folder: Path, *needles: str) -> None:
    before = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else None
    r = runner.invoke(app, ["report", str(folder)])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    if before is not None:  # nothing written into a folder it refused
        assert sorted(p.name for p in folder.iterdir()) == before


def test_missing_truncated_and_foreign_folders(copy, tmp_path):
    _one_line_exit_2(tmp_path / "nope", "no such results folder")
    (tmp_path / "file").write_text("x")
    _one_line_exit_2(tmp_path / "file", "is a file")
    (tmp_path / "empty").mkdir()
    _one_line_exit_2(tmp_path / "empty", "missing records.parquet, summary.csv, run.json")

    data = (copy / "records.parquet").read_bytes()
    (copy / "records.parquet").write_bytes(data[: len(data) // 2])
    _one_line_exit_2(copy, "records.parquet", "truncated")
    (copy / "records.parquet").write_bytes(data)

    pd.DataFrame({"a": [1, 2]}).to_parquet(copy / "records.parquet")
    _one_line_exit_2(copy, "not adaptsim run records", "latency_s")
    (copy / "records.parquet").write_bytes(data)

    meta = (copy / "run.json").read_text()
    (copy / "run.json").write_text('{"name": "something else"}')
    _one_line_exit_2(copy, "run.json", "not written by `adaptsim run`")
    (copy / "run.json").write_text(meta[:100])
    _one_line_exit_2(copy, "run.json", "not valid JSON")
    (copy / "run.json").write_text(meta)

    assert len(read_run(copy).records) == 5 * 3 * 60  # whole again: read


def test_old_folder_without_newer_fields(copy):
    """A folder from an older run: no trace steps, source, calibration, errors or wall time."""
    m = json.loads((copy / "run.json").read_text())
    for k in ("traces", "source", "calibration", "errors", "wall_s", "description", "points"):
        m.pop(k, None)
    (copy / "run.json").write_text(json.dumps(m))
    rec = pd.read_parquet(copy / "records.parquet").drop(columns=["finished"], errors="ignore")
    rec.to_parquet(copy / "records.parquet", index=False)
    r = runner.invoke(app, ["report", str(copy)])
    assert r.exit_code == 0, r.output
    paths = [copy / n for n in ("report.html", "report.md", "latency_cdf.png", "timeline.png")]
    assert all(p.is_file() for p in paths)
    md = (copy / "report.md").read_text()
    sentence = md.split("## Verdict\n\n")[1].splitlines()[0]
    assert sentence in " ".join(r.stderr.split())  # the CLI says the verdict too
    for png in re.findall(r"!\[[^]]*\]\(([^)]+)\)", (copy / "report.md").read_text()):
        assert (copy / png).is_file(), png
    assert "No verdict" not in (copy / "report.md").read_text()


def test_newer_folder_with_more_columns(copy):
    """Columns a newer `adaptsim run` may add (seeds, unfinished, censored...) are shown or
    passed over, never a crash."""
    summary = pd.read_csv(copy / "summary.csv")
    if "seeds" not in summary:  # columns `adaptsim run` writes since the robustness work
        summary.insert(1, "seeds", 3)
    summary["unfinished"] = 0
    summary["censored"] = False
    summary["something_new"] = "x"
    summary.to_csv(copy / "summary.csv", index=False)
    rec = pd.read_parquet(copy / "records.parquet")
    rec["finished"] = True
    rec["dropped"] = False
    rec.loc[rec.index[(rec["policy"] == "oracle")][:3], "dropped"] = True
    _edit(copy, rec, placement={"edge": [0]})
    build_report(copy, images=False)
    html = (copy / "report.html").read_text()
    header = _html_cells(html, "summary-table")[0]
    assert header[:3] == ["policy", "seeds", "requests"] and "unfinished" in header
    assert "something_new" not in html
    assert "oracle: 3 of 180 frames (1.7 %) were dropped by admission control;" in html


def test_unfinished_frames_and_a_failed_policy_are_warned_about(copy):
    rec = pd.read_parquet(copy / "records.parquet")
    victim = rec.index[(rec["policy"] == "reactive") & (rec["seed"] == 1)][-7:]
    rec.loc[victim, ["latency_s", "done_s", "cloud_s"]] = np.inf
    rec.loc[victim, "deadline_met"] = False
    _edit(copy, rec, errors=["policy wobbly, seed 3, t=12.0 s: returned point 4.7"])
    build_report(copy, images=False)
    md = (copy / "report.md").read_text()
    html = (copy / "report.html").read_text()
    for text in (md, html):
        assert "reactive: 7 of 180 frames (3.9 %) never finished" in text
        assert "A policy failed: policy wobbly, seed 3" in text
    assert "Crosses above the latencies: 7 frames that never finished" in html  # seed 1
    # A policy with unfinished frames cannot be the best practical one on latency.
    v = verdict(rec, json.loads((copy / "run.json").read_text()))
    assert v.best != "reactive"
    assert v.best in {"all-edge", "all-cloud"}


def test_backlog_and_saturation_are_warned_about(copy):
    rec = pd.read_parquet(copy / "records.parquet")
    m = json.loads((copy / "run.json").read_text())
    slow = rec["policy"] == "all-edge"
    # From 40 % of the run on, every frame waits a second longer per second of arrival
    # (a stage offered twice what it serves): the backlog grows to the end.
    onset = 0.4 * m["duration_s"]
    rec.loc[slow, "edge_wait_s"] += (rec.loc[slow, "arrival_s"] - onset).clip(lower=0)
    early = slow & (rec["arrival_s"] < m["duration_s"] - m["deadline_s"]) & (rec["seed"] == 1)
    last = rec.index[early][-1]
    rec.loc[last, "done_s"] = m["duration_s"] + 1.0
    warnings = verdict(rec, m).warnings
    sat = [w for w in warnings if w.startswith("all-edge saturated at t=")]
    assert len(sat) == 1, warnings
    at_s = float(sat[0].split("t=")[1].split(" s")[0].replace(",", ""))
    assert onset <= at_s <= onset + 5  # the last frame that found the queues empty
    # a busy but steady queue (a constant extra wait) is not saturation
    steady = rec.copy()
    steady.loc[slow, "edge_wait_s"] = 2 * m["deadline_s"]
    assert not any("saturated" in w for w in verdict(steady, m).warnings)
    assert any("all-edge: 1 of 180 frames arrived at least a deadline" in w for w in warnings)
    assert not any(w.startswith("static-best") for w in warnings)


def test_verdict_direction_follows_the_records(run_dir):
    rec = pd.read_parquet(run_dir / "records.parquet")
    meta = json.loads((run_dir / "run.json").read_text())
    better = rec.copy()
    better.loc[better["policy"] == "reactive", "latency_s"] *= 0.5
    v = verdict(better, meta)
    assert v.best == "reactive"
    assert v.sentence.startswith("Adapting pays here: reactive's mean latency is")
    base = rec[rec["policy"] == "static-best"].groupby("seed")["latency_s"].mean()
    mine = better[better["policy"] == "reactive"].groupby("seed")["latency_s"].mean()
    cut = 100 * (1 - mine.mean() / base.mean())
    assert f"is {cut:.1f} % below static-best's" in v.sentence

    worse = rec.copy()
    practical = ~worse["policy"].isin(["static-best", "oracle"])
    worse.loc[practical, "latency_s"] = worse.loc[practical, "latency_s"] * 2 + 0.1
    v = verdict(worse, meta)
    assert v.sentence.startswith("No practical policy beats static-best here")


def test_one_seed_and_missing_baselines_are_said_plainly(run_dir):
    rec = pd.read_parquet(run_dir / "records.parquet")
    meta = json.loads((run_dir / "run.json").read_text())
    one = verdict(rec[rec["seed"] == 1], meta)
    assert "no interval" in one.sentence
    assert any(w.startswith("One seed only") for w in one.warnings)
    assert "no interval" in one.table.markdown()
    none = verdict(rec[rec["policy"] != "oracle"], meta)
    assert none.sentence.startswith("No verdict: the run has no oracle")
    assert none.table is None


def _html_cells(html: str, table_id: str) -> list[list[str]]:
    body = re.search(rf'<table class="data" id="{table_id}">(.*?)</table>', html).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", body)
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r) for r in rows]


def test_markdown_and_html_show_the_same_numbers(run_dir):
    assert len(build_report(run_dir, images=False)) == 2
    html = (run_dir / "report.html").read_text()
    md = (run_dir / "report.md").read_text()
    for table_id in ("verdict-table", "scores-table", "summary-table", "stage-table"):
        cells = _html_cells(html, table_id)
        assert len(cells) >= 4, table_id
        for row in cells:
            line = "| " + " | ".join(c.replace("&amp;", "&") for c in row) + " |"
            assert line in md, (table_id, line)
    sentence = re.search(r'id="verdict-sentence">(.*?)</p>', html).group(1)
    assert sentence.replace("&#x27;", "'") in md
    assert "![" not in md  # no image links without the images


def test_scenario_and_the_command_that_reproduces_it(run_dir):
    build_report(run_dir, images=False)
    md = (run_dir / "report.md").read_text()
    source = json.loads((run_dir / "run.json").read_text())["source"]
    command = f"adaptsim run {source} --duration 300 --seed 1 --seed 2 --seed 3"
    assert command in md and command in (run_dir / "report.html").read_text()
    assert "file traces/norway_car_3.txt (x10, end: loop)" in md
    assert "**arrivals:** periodic, 0.2 frames/s" in md
    assert "**frames:** 900 in 15 runs" in md
    assert "McNamee et al." in md  # the calibration's source


def test_the_reproduce_command_gives_the_same_records(run_dir, tmp_path):
    build_report(run_dir, images=False)
    md = (run_dir / "report.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("adaptsim run "))
    args = shlex.split(line)[1:]
    args[args.index("--out") + 1] = str(tmp_path / "again")
    args.remove("--report")
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    again = pd.read_parquet(tmp_path / "again" / "records.parquet")
    pd.testing.assert_frame_equal(again, pd.read_parquet(run_dir / "records.parquet"))


def test_page_is_self_contained(run_dir):
    build_report(run_dir, images=False)
    html = (run_dir / "report.html").read_text()
    markup = re.sub(r"<script[^>]*>.*?</script>", "", html, flags=re.S)  # the page, not JS
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup)
    assert "<link" not in markup and "<script src" not in html
    js, which = plotly_js(frozenset({"scatter", "bar"}))
    assert which == "cartesian" and html.count(js) == 1  # the bundle, once
    assert html.count('class="plotly-graph-div lazy-plot"') == 3
    assert html.count('<script type="application/json"') == 3
    assert len(html) < 3_000_000


def test_figure_data_cannot_break_out_of_its_script():
    import plotly.graph_objects as go

    name = "</script><!--<script>alert(1)</script>"
    block = figure_block(go.Figure(go.Bar(x=["a"], y=[1], name=name)), "f", "caption")
    assert block.html.count("</script>") == 1 and "<!--" not in block.html
    spec = re.search(r'id="f-spec">(.*)</script>', block.html).group(1)
    assert json.loads(spec)["data"][0]["name"] == name  # the name itself survives


def test_full_bundle_when_a_figure_needs_a_trace_the_partial_one_lacks():
    assert "scattergl" not in PARTIAL_TRACES
    js, which = plotly_js(frozenset({"scatter", "scattergl"}))
    assert which == "full" and len(js) > 3_000_000


def test_cdf_downsampling_keeps_exact_quantiles():
    rng = np.random.default_rng(7)
    lat = rng.exponential(1.0, 20_000)
    lat[:50] = np.inf  # unfinished: in the total, not on the curve
    x, y, sampled = cdf_points(lat, len(lat), max_points=500)
    assert sampled and len(x) <= 500
    finite = np.sort(lat[np.isfinite(lat)])
    ranks = np.rint(y * len(lat)).astype(int)
    assert np.array_equal(x, finite[ranks - 1])  # every point a real order statistic
    assert x[-1] == finite.max() and y[-1] == pytest.approx(19_950 / 20_000)
    x, y, sampled = cdf_points(lat[:300], 300, max_points=500)
    assert not sampled and len(x) == 250


def test_timeline_downsampling_keeps_each_bins_extremes():
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 1000, 50_000))
    y = rng.gamma(2.0, 0.5, t.size)
    y[12_345] = 99.0  # a spike must survive
    kt, ky, bin_s = envelope(t, y, max_points=1000)
    assert bin_s > 0 and len(kt) <= 1000
    assert 99.0 in ky and y.min() in ky
    bins = np.minimum(((t - t.min()) / bin_s).astype(int), 499)
    kb = np.minimum(((kt - t.min()) / bin_s).astype(int), 499)
    for b in (0, 250, 499):
        assert set(ky[kb == b]) == {y[bins == b].min(), y[bins == b].max()}
    same = envelope(t[:800], y[:800], max_points=1000)
    assert same[2] == 0 and len(same[0]) == 800


def test_policy_colours_are_fixed_safe_and_distinct():
    names = ["static-best", "oracle", "reactive", "all-edge", "all-cloud", "mine", "yours"]
    c = policy_colours(names)
    assert set(c.values()) <= set(OKABE_ITO) and len(set(c.values())) == len(names)
    assert policy_colours(["reactive", "mine"])["reactive"] == c["reactive"]


def test_report_of_no_records_is_refused(copy):
    rec = pd.read_parquet(copy / "records.parquet").iloc[:0]
    _edit(copy, rec)
    with pytest.raises(UserError, match="recorded no requests"):
        build_report(copy)


def test_the_reproduce_command_keeps_an_overridden_calibration_and_the_folder(tmp_path):
    """`run --calibration CAL --out DIR --report`: the page's command names both, so running
    it reproduces the records (the shipped calibration would give other numbers)."""
    from importlib import resources

    cal = tmp_path / "own.json"
    cal.write_text(
        resources.files("adaptsim").joinpath("data/calibration_own_2core.json").read_text()
    )
    scenario = Path(__file__).parents[1] / "scenarios" / "vehicle_trace.yaml"
    out = tmp_path / "mine"
    r = runner.invoke(app, ["run", str(scenario), "--duration", "60", "--seed", "4",
                            "--calibration", str(cal), "--out", str(out), "--report"])  # fmt: skip
    assert r.exit_code == 0, r.output
    line = next(
        x for x in (out / "report.md").read_text().splitlines() if x.startswith("adaptsim run ")
    )
    args = shlex.split(line)[1:]
    assert args[args.index("--calibration") + 1] == str(cal.resolve())
    assert args[args.index("--out") + 1] == str(out)
    args[args.index("--out") + 1] = str(tmp_path / "again")
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    again = pd.read_parquet(tmp_path / "again" / "records.parquet")
    pd.testing.assert_frame_equal(again, pd.read_parquet(out / "records.parquet"))


def test_run_with_report_prints_the_pages_verdict(tmp_path):
    """`run --report` says the verdict in the terminal, the same sentence as the page."""
    scenario = Path(__file__).parents[1] / "scenarios" / "vehicle_trace.yaml"
    out = tmp_path / "vt"
    r = runner.invoke(
        app, ["run", str(scenario), "--duration", "120", "--out", str(out), "--report"]
    )
    assert r.exit_code == 0, r.output
    from adaptsim.report import run_report

    sentence = run_report(out, images=False)[1].sentence
    assert sentence and sentence in r.stderr.replace("\n", " ")
