"""Sweeps: plans and seeds, a real two-process LocalCluster, resume, interrupt, summary, report.

The cluster tests start a real dask.distributed LocalCluster of two worker
processes (one per module, shared) and run a small sweep of 30 simulated seconds.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from adaptsim.cli import app
from adaptsim.report.figures import policy_colours
from adaptsim.simulator import load_scenario, run_scenario
from adaptsim.sweep import load_plan, read_records, read_runs, run_sweep, write_outputs
from adaptsim.sweep.execute import run_batch
from adaptsim.sweep.report import headlines
from adaptsim.sweep.runner import _tasks, choose_batch_size

SMALL = Path(__file__).parent / "data" / "sweep" / "small.yaml"
runner = CliRunner()


def _sweep_file(tmp_path: Path, name: str = "s.yaml", **changes) -> Path:
    """The small sweep with some fields changed, written beside its policy file."""
    doc = yaml.safe_load(SMALL.read_text())
    doc.update(changes)
    shutil.copy(SMALL.parent / "failing_policy.py", tmp_path / "failing_policy.py")
    repo = Path(__file__).resolve().parent.parent
    doc["base"] = str(repo / "scenarios" / "vehicle_trace.yaml")
    if "traces" not in changes:
        doc["traces"] = {"files": [str(SMALL.parent / "traces")]}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


# -- plans and seeds (no cluster) -------------------------------------------------------


def test_plan_counts_and_common_seeds_across_policies():
    plan = load_plan(SMALL)
    # 2 traces x 1 model x 1 field combination x 5 policies x 2 seeds
    assert len(plan.runs) == 20 and len(plan.cells) == 2
    by_cell_rep: dict = {}
    for r in plan.runs:
        by_cell_rep.setdefault((r.cell, r.replicate), set()).add(r.seed)
    assert all(len(s) == 1 for s in by_cell_rep.values()), "policies of a cell must share seeds"
    assert len({next(iter(s)) for s in by_cell_rep.values()}) == 4, "cells/replicates differ"
    assert len({r.run_id for r in plan.runs}) == 20


def test_adding_a_policy_trace_or_model_changes_no_other_run(tmp_path):
    before = load_plan(_sweep_file(tmp_path, "a.yaml"))
    doc = yaml.safe_load(SMALL.read_text())
    after = load_plan(
        _sweep_file(
            tmp_path,
            "b.yaml",
            models=["alexnet", "lenet"],
            policies=[*doc["policies"], {"policy": "all-edge"}],
        )
    )
    old = {r.run_id: r.seed for r in before.runs}
    new = {r.run_id: r.seed for r in after.runs}
    assert len(after.runs) == 2 * 2 * 6 * 2
    assert all(new.get(k) == v for k, v in old.items())  # every old run, same id and seed


def test_sweep_seed_changes_every_seed(tmp_path):
    a = load_plan(_sweep_file(tmp_path, "a.yaml"))
    b = load_plan(_sweep_file(tmp_path, "b.yaml", seed=12))
    assert not {r.seed for r in a.runs} & {r.seed for r in b.runs}


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"modles": ["alexnet"]}, "field modles"),
        ({"fields": {"repartition.pause_x": [0.1]}}, "repartition.pause_x"),
        ({"fields": {"repartition.pause_s": [-1]}}, "repartition.pause_s"),
        ({"models": ["alexnet", "nosuchnet"]}, "nosuchnet"),
        ({"traces": {"files": ["no/such/folder"]}}, "no/such/folder"),
        ({"fields": {"model": ["vgg16"]}}, "cannot be swept"),
        ({"seeds": 0}, "field seeds"),
        # found by the robustness audit (1 Dec): each was accepted before
        ({"models": ["alexnet", "alexnet"]}, "alexnet is given twice"),  # every run twice
        ({"fields": {"duration_s": [30, 30]}}, "given twice"),
        # a field that replaces the trace the traces axis gives: every "trace" the same
        ({"fields": {"traces.bandwidth_mbps": [{"constant": 5}]}}, "traces axis"),
        ({"fields": {"traces.bandwidth_mbps.file": ["x.txt"]}}, "traces axis"),
    ],
)
def test_bad_sweep_is_one_line_exit_2(tmp_path, changes, needle):
    path = _sweep_file(tmp_path, **changes)
    res = runner.invoke(app, ["sweep", str(path), "--dry-run"])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and needle in lines[0]
    assert "Traceback" not in res.output


@pytest.mark.parametrize("name", ["../elsewhere", "", "a/b"])
def test_a_sweep_name_that_is_not_one_folder_is_refused(tmp_path, name):
    """The name is the default results folder, sweeps-out/NAME: ``../elsewhere`` wrote
    beside sweeps-out, ``""`` into sweeps-out itself."""
    path = _sweep_file(tmp_path)
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "name": name}))
    res = runner.invoke(app, ["sweep", str(path), "--dry-run"])
    assert res.exit_code == 2, res.output
    assert "field name" in res.output and len(res.output.strip().splitlines()) == 1


def test_a_sweep_too_big_is_refused_before_it_is_expanded(tmp_path, monkeypatch):
    """The run count is computed from the axes (grid products, added baselines, field
    combinations, seeds) before any run is listed: ``seeds: 1000000000`` used to list
    them all and took the machine's memory. The count must equal the plan's exactly."""
    from adaptsim.sweep import plan as plan_module

    path = _sweep_file(tmp_path, fields={"duration_s": [30, 20], "arrivals.rate_hz": [1.0]})
    n = len(load_plan(path).runs)  # 2 traces x 2 field combinations x 5 policies x 2 seeds
    assert n == 40
    monkeypatch.setattr(plan_module, "MAX_RUNS", n)
    assert len(load_plan(path).runs) == n
    monkeypatch.setattr(plan_module, "MAX_RUNS", n - 1)
    res = runner.invoke(app, ["sweep", str(path), "--dry-run"])
    assert res.exit_code == 2, res.output
    assert "40 runs (2 traces x 1 models x 2 field combinations x 5 policies x 2 seeds)" in (
        res.output
    )
    assert len(res.output.strip().splitlines()) == 1 and str(path) in res.output  # which file


def test_a_sweep_or_base_file_that_is_not_text_is_named_for_what_it_is(tmp_path):
    """The one line says which of the two files it could not read, and why."""
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: x\x00\x01")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    path = _sweep_file(tmp_path)
    doc = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**doc, "base": "latin.yaml"}))
    for argv, says in (
        ([str(binary)], f"sweep file {binary} is a binary file, not text"),
        ([str(path)], f"base scenario {latin} is not UTF-8 text (byte 9)"),
    ):
        res = runner.invoke(app, ["sweep", *argv, "--dry-run"])
        assert res.exit_code == 2, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], lines


def test_a_part_of_a_swept_trace_may_be_swept(tmp_path):
    path = _sweep_file(tmp_path, fields={"traces.bandwidth_mbps.scale": [1, 10]})
    scales = {
        json.loads(c.doc_json)["traces"]["bandwidth_mbps"]["scale"] for c in load_plan(path).cells
    }
    assert scales == {1, 10}


def test_dry_run_prints_count_and_sample(tmp_path):
    res = runner.invoke(app, ["sweep", str(SMALL), "--dry-run", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("20 runs in 2 cells")
    assert "norway_car_3.txt" in res.output or "norway_bus_1.txt" in res.output
    assert not (tmp_path / "o").exists()


def test_batch_size_rule():
    assert choose_batch_size(1000, 2) == 50  # capped
    assert choose_batch_size(160, 2) == 10  # eight batches per worker
    assert choose_batch_size(3, 4) == 1


def test_lean_summary_row_equals_run_scenario_summary():
    """Without --records a run's row is computed without pandas; it must equal what
    ``run_scenario`` (the --records path and ``adaptsim run``) summarises."""
    plan = load_plan(SMALL)
    tasks = _tasks(
        plan, [r for r in plan.runs if "fail_at_s=5" not in plan.coordinates(r)["policy"]][:6]
    )
    lean, _ = run_batch(tasks, keep_records=False)
    full, records = run_batch(tasks, keep_records=True)
    cols = ["requests", "mean_s", "p50_s", "p95_s", "p99_s", "deadline_miss_rate"]
    cols += ["throughput_rps", "bytes_sent", "repartitions", "switching_s"]
    cols += ["dropped", "drop_rate", "goodput_rps"]
    pd.testing.assert_frame_equal(lean[cols], full[cols], check_dtype=False, rtol=1e-12)
    assert records["run_id"].nunique() == 6


# -- a real LocalCluster of two worker processes ---------------------------------------


@pytest.fixture(scope="module")
def client():
    from adaptsim.sweep import open_client

    c = open_client(workers=2)
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


@pytest.mark.slow
def test_cluster_sweep_equals_single_runs_and_records_failures(client, tmp_path):
    out = tmp_path / "out"
    plan = load_plan(SMALL)
    outcome = run_sweep(plan, out, client=client, keep_records=True, batch_size=3)
    assert outcome.workers == 2 and outcome.done == 20 and not outcome.interrupted
    runs = read_runs(out)
    failed = runs[runs["error"].notna()]
    # the planted failure: fail_at_s=5 raises in every run of it, and only there
    assert set(failed["policy"]) == {"flaky(fail_at_s=5)"} and len(failed) == 4
    assert failed["error"].str.contains("planted failure at t=5").all()
    assert outcome.failed == 4 and runs["error"].isna().sum() == 16

    # a run in the sweep = `adaptsim run` of its scenario with its seed
    run = next(r for r in plan.runs if plan.variants[r.variant].policy == "reactive")
    res = runner.invoke(app, ["sweep", str(SMALL), "--show-run", run.run_id])
    assert res.exit_code == 0, res.output
    scenario_file = tmp_path / "run.yaml"
    scenario_file.write_text(res.output)
    single = run_scenario(load_scenario(scenario_file))
    records = read_records(out)
    mine = records[records["run_id"] == run.run_id].drop(columns=["run_id", "model"])
    pd.testing.assert_frame_equal(
        mine.reset_index(drop=True), single.records.reset_index(drop=True)
    )
    row = runs[runs["run_id"] == run.run_id].iloc[0]
    assert row["mean_s"] == single.summary["mean_s"].iloc[0]
    assert row["seed"] == single.scenario.seeds[0]

    # summary: paired by seed within a cell, against an independent computation
    paths = write_outputs(plan, out, outcome)
    summary = pd.read_csv(out / "sweep_summary.csv")
    ok = runs[runs["error"].isna()]
    for (trace, policy), g in ok.groupby(["trace", "policy"]):
        sb = ok[(ok["trace"] == trace) & (ok["policy"] == "static-best")].set_index("seed")
        mine = g.set_index("seed")["mean_s"]
        expect_pct = (mine - sb["mean_s"]).mean() / sb["mean_s"].mean() * 100
        got = summary[(summary["trace"] == trace) & (summary["policy"] == policy)].iloc[0]
        assert got["mean_s_vs_static_best_pct"] == pytest.approx(expect_pct, abs=1e-9)
        assert got["mean_s"] == pytest.approx(mine.mean())
        assert got["n_seeds"] == 2
    flaky = summary[summary["policy"] == "flaky(fail_at_s=5)"]
    assert (flaky["n_failed"] == 2).all() and (flaky["n_seeds"] == 0).all()
    _check_report(out, paths, summary)


def _check_report(out: Path, paths: list[Path], summary: pd.DataFrame) -> None:
    """The sweep's page: headline numbers as computed from sweep_summary.csv, a heatmap,
    the gain CDF in the policies' colours, self-contained; report.md points to it."""
    page = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert out / "report.html" in paths and out / "report.md" in paths
    assert not list(out.glob("*.png"))  # Plotly on the page, no images beside it
    heads = headlines(summary)
    best = heads[0]
    # the headline, recomputed here from the CSV: cells whose paired interval is below 0
    rows = summary[summary["policy"] == best.policy]
    beat = rows["mean_s_vs_static_best_pct_hi"] < 0
    assert best.beats == int(beat.sum()) and best.cells == len(rows)
    if best.beats:
        gain = float(np.median(-rows.loc[beat, "mean_s_vs_static_best_pct"]))
        assert best.median_gain_pct == pytest.approx(gain)
    m = re.search(r'<p class="verdict" id="sweep-headline"([^>]*)>([^<]*)</p>', page)
    assert m, "no headline on the page"
    assert html.unescape(m.group(2)) == f"{best.sentence()}."
    assert "beats the best static split" in m.group(2)
    attrs = dict(re.findall(r'data-([\w-]+)="([^"]*)"', m.group(1)))
    assert html.unescape(attrs["policy"]) == best.policy
    assert int(attrs["cells"]) == best.cells and int(attrs["beats"]) == best.beats
    assert float(attrs["beats-pct"]) == pytest.approx(best.beats_pct)
    assert f"**{best.sentence()}.**" in md
    # the policy table: every adaptive policy's numbers, raw values in data-value
    for h in heads:
        key = re.escape(html.escape(h.policy))
        cell = re.search(rf'data-key="{key}/beats_pct" data-value="([^"]+)"', page)
        assert cell and float(cell.group(1)) == pytest.approx(h.beats_pct)
        if h.beats:
            cell = re.search(rf'data-key="{key}/median_gain_pct" data-value="([^"]+)"', page)
            assert cell and float(cell.group(1)) == pytest.approx(h.median_gain_pct)

    def spec(div_id: str) -> dict:
        found = re.search(
            rf'<script type="application/json" id="{div_id}-spec">(.*?)</script>', page, re.S
        )
        assert found, div_id
        return json.loads(found.group(1))

    (heat,) = spec("heatmap-plot")["data"]
    assert heat["type"] == "heatmap" and "%{z" in heat["hovertemplate"]
    assert heat.get("zmid") == 0
    colours = policy_colours(list(dict.fromkeys(summary["policy"])))
    lines = spec("gain-cdf-plot")["data"]
    assert lines and all(t["line"]["color"] == colours[t["name"]] for t in lines)
    assert "static-best" not in {t["name"] for t in lines}
    # self-contained: nothing fetched from elsewhere
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)  # the page, not JS
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup)
    assert "<link" not in markup and "<script src" not in page
    assert "(interactive in report.html)" in md and "![" not in md


@pytest.mark.slow
def test_resume_and_interrupt_lose_only_runs_in_flight(client, tmp_path):
    out = tmp_path / "out"
    plan = load_plan(SMALL)

    def stop_after_first(done, todo):
        if done > 0:
            raise KeyboardInterrupt

    first = run_sweep(plan, out, client=client, batch_size=2, progress=stop_after_first)
    assert first.interrupted and 0 < first.done < 20
    written = read_runs(out)
    assert len(written) == first.done  # whole batches only, nothing half-written
    assert not list(out.rglob("*.tmp"))
    second = run_sweep(plan, out, client=client, batch_size=2)
    assert second.skipped == first.done and second.done == 20 - first.done
    third = run_sweep(plan, out, client=client)  # nothing left: no task at all
    assert third.done == 0 and third.skipped == 20
    runs = read_runs(out)
    assert sorted(runs["run_id"]) == sorted(r.run_id for r in plan.runs)
    # failed runs are kept, and run again only when asked
    fourth = run_sweep(plan, out, client=client, retry_failed=True)
    assert fourth.done == 4 and fourth.failed == 4
    assert len(read_runs(out)) == 20


DIES = """
import os


class Dies:
    \"\"\"Kills the process it runs in (a worker) at its first decision.\"\"\"

    def __init__(self, period_s: float = 1.0):
        self.period_s = period_s
        self.name = "dies"

    def decide(self, view) -> int:
        os._exit(3)
"""


@pytest.mark.slow
def test_a_batch_whose_worker_dies_is_written_as_failed_runs_and_the_sweep_goes_on(tmp_path):
    """A policy that kills its worker process: Dask gives up on the batch (no failure
    allowed here, so at once) and the sweep writes the batch's runs with the reason,
    runs the rest and counts them failed, instead of stopping with a traceback."""
    import dask
    import distributed  # noqa: F401  (its config defaults, before the set below undoes its own)

    from adaptsim.sweep import open_client

    (tmp_path / "dies.py").write_text(DIES)
    path = _sweep_file(tmp_path, policies=[{"policy": "dies.py:Dies", "label": "dies"}])
    plan = load_plan(path)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        client = open_client(workers=1)
    try:
        outcome = run_sweep(plan, tmp_path / "out", client=client, batch_size=1)
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    runs = read_runs(tmp_path / "out")
    assert sorted(runs["run_id"]) == sorted(r.run_id for r in plan.runs)  # every run written
    dead = runs[runs["policy"] == "dies"]
    assert len(dead) == 4 and dead["error"].str.startswith("task failed: KilledWorker").all()
    assert outcome.done == len(plan.runs) and outcome.failed == int(runs["error"].notna().sum())
    assert not outcome.interrupted


def test_a_base_trace_file_is_found_from_the_base_scenarios_folder(tmp_path):
    """Without a traces axis the runs use the base scenario's own trace file, which it
    names relative to its folder: each run's scenario names it absolutely, and the
    cell is named by the trace's label."""
    plan = load_plan(_sweep_file(tmp_path, traces=None))
    assert [c.trace for c in plan.cells] == ["Norway HSDPA car_3 x10 (uplink capacity, scaled)"]
    bw = plan.run_doc(plan.runs[0])["traces"]["bandwidth_mbps"]
    repo = Path(__file__).resolve().parent.parent
    assert bw["file"] == str(repo / "scenarios" / "traces" / "norway_car_3.txt")


def _summary_rows(intervals: list[tuple[float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trace": f"t{i}",
            "model": "m",
            "policy": "reactive",
            "adaptive": True,
            "mean_s_vs_static_best_pct": est,
            "mean_s_vs_static_best_pct_lo": lo,
            "mean_s_vs_static_best_pct_hi": hi,
        }
        for i, (est, lo, hi) in enumerate(intervals)
    )


def test_headline_counts_cells_beaten_with_intervals_below_zero():
    rows = _summary_rows([(-10, -12, -8), (-20, -25, -15), (-5, -9, 1)])
    (h,) = headlines(rows)
    assert h.cells == 3 and h.beats == 2 and h.median_gain_pct == pytest.approx(15.0)
    assert "67 % of 3 cells by a median of 15.0 %" in h.sentence()
    assert np.isclose(h.median_gain_all_pct, 10.0)


def test_trace_files_keep_the_base_trace_spec_and_fields_reach_nested_values(tmp_path):
    steps = [[[0, 0]], [[0, 0], [10, 50]]]
    plan = load_plan(
        _sweep_file(tmp_path, fields={"traces.edge_cpu_pct.steps": steps, "duration_s": [20]})
    )
    assert len(plan.cells) == 4  # 2 traces x 2 stress step functions
    doc = plan.run_doc(plan.runs[-1])
    bw = doc["traces"]["bandwidth_mbps"]
    assert bw["scale"] == 10 and bw["end"] == "loop"  # from vehicle_trace.yaml
    assert Path(bw["file"]).is_absolute() and Path(bw["file"]).name == "norway_car_3.txt"
    assert doc["traces"]["edge_cpu_pct"]["steps"] == steps[1]
    coords = plan.coordinates(plan.runs[-1])
    assert coords["traces.edge_cpu_pct.steps"] == "[[0, 0], [10, 50]]"
    # the stress level is validated like a scenario's: 150 % is outside the calibration
    bad = _sweep_file(tmp_path, "bad.yaml", fields={"traces.edge_cpu_pct.steps": [[[0, 150]]]})
    res = runner.invoke(app, ["sweep", str(bad), "--dry-run"])
    assert res.exit_code == 2 and "traces.edge_cpu_pct" in res.output


def test_an_error_inside_the_progress_bar_is_exactly_one_line(tmp_path):
    """The progress bar (drawn on terminals only) left a blank line before the error
    when a scheduler could not be reached: the line must be the whole of stderr."""
    r = runner.invoke(
        app, ["sweep", str(SMALL), "--out", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:1"]
    )
    assert r.exit_code == 2, (r.stderr, r.exception)
    assert r.stderr.startswith("adaptsim: error: cannot reach the Dask scheduler")
    assert r.stderr.count("\n") == 1


def test_the_headline_says_when_one_seed_left_no_interval():
    """With intervals the headline is the paired one; with a single seed (no interval)
    it says that the estimate alone decided."""
    (paired,) = headlines(_summary_rows([(-10, -12, -8), (-4, -9, 1)]))
    assert paired.paired
    assert paired.sentence() == (
        "adapting (reactive) beats the best static split in 50 % of 2 cells by a median "
        "of 10.0 % mean latency"
    )
    nan = float("nan")
    (single,) = headlines(_summary_rows([(-10, nan, nan), (-4, nan, nan), (3, nan, nan)]))
    assert not single.paired and single.beats == 2
    assert single.sentence() == (
        "adapting (reactive) beats the best static split in 67 % of 3 cells by a median "
        "of 7.0 % mean latency (one seed: no interval, the estimate alone decides)"
    )
