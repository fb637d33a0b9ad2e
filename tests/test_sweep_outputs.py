"""A sweep's outputs (sweep_summary.csv, report.html, report.md) from real runs.

The runs are the small sweep's, each run by :func:`adaptsim.sweep.execute.run_batch`
(what a Dask worker calls) in this process, written with the sweep's own
``write_batch`` and summarised by ``write_outputs``: the same files a cluster sweep
writes (``test_sweep.py`` runs the cluster). The numbers on the page are checked
against numbers computed here from the runs, not against the code's own.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adaptsim.sweep import load_plan, read_runs, write_outputs
from adaptsim.sweep.execute import run_batch
from adaptsim.sweep.runner import _tasks
from adaptsim.sweep.store import batch_id, write_batch

SMALL = Path(__file__).parent / "data" / "sweep" / "small.yaml"


@pytest.fixture
def swept(tmp_path):
    """The small sweep run in this process and its outputs written (per test, so each
    test calls the code it checks)."""
    plan = load_plan(SMALL)
    out = tmp_path / "out"
    runs, _ = run_batch(_tasks(plan, plan.runs))
    write_batch(out, runs, None, batch_id([r.run_id for r in plan.runs]))
    write_outputs(plan, out)
    return plan, out


def _numbers(value) -> np.ndarray:
    """A Plotly JSON array: a list, or typed data ({"dtype", "bdata"})."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value, dtype=float)


def _spec(page: str, div_id: str) -> dict:
    found = re.search(
        rf'<script type="application/json" id="{div_id}-spec">(.*?)</script>', page, re.S
    )
    assert found, div_id
    return json.loads(found.group(1))


def _value(page: str, key: str) -> float | None:
    found = re.search(rf'data-key="{re.escape(html.escape(key))}" data-value="([^"]+)"', page)
    return float(found.group(1)) if found else None


def test_the_page_says_how_many_seeds_each_cell_ran(swept):
    _, out = swept
    page, md = (out / "report.html").read_text(), (out / "report.md").read_text()
    lead = "Runs: 16 finished, 4 failed, 20 planned; seeds per cell: 2."
    assert lead in page and lead in md


def test_the_policy_table_gives_each_policys_medians_over_its_cells(swept):
    """Median gain over all cells and median gap closed, per policy, as computed here
    from sweep_summary.csv; a policy whose every run failed has none (blank value)."""
    _, out = swept
    page = (out / "report.html").read_text()
    summary = pd.read_csv(out / "sweep_summary.csv")
    checked = 0
    for policy, g in summary.groupby("policy"):
        gain = -g["mean_s_vs_static_best_pct"].to_numpy(dtype=float)
        gap = g["gap_closed_mean_s"].to_numpy(dtype=float)
        for key, values in (("median_gain_all_pct", gain), ("gap_closed", gap)):
            got = _value(page, f"{policy}/{key}")
            if np.isfinite(values).any():
                assert got == pytest.approx(float(np.nanmedian(values))), (policy, key)
                checked += 1
            else:
                assert got is None, (policy, key)
    assert checked >= 6  # static-best, oracle, reactive and flaky(-1) have numbers


def test_the_gain_cdf_is_every_successful_runs_gain_over_static_best(swept):
    """Each policy's curve: its runs' gains ((static-best's mean - its mean) / static-best's
    mean, same trace and seed), sorted, at heights 1/n .. n/n."""
    _, out = swept
    runs = read_runs(out)
    ok = runs[runs["error"].isna()]
    base = ok[ok["policy"] == "static-best"].set_index(["trace", "seed"])["mean_s"]
    page = (out / "report.html").read_text()
    lines = {t["name"]: t for t in _spec(page, "gain-cdf-plot")["data"]}
    assert set(lines) == set(ok["policy"]) - {"static-best"}
    for policy, g in ok[ok["policy"] != "static-best"].groupby("policy"):
        sb = base.loc[list(zip(g["trace"], g["seed"], strict=True))].to_numpy()
        gains = np.sort((sb - g["mean_s"].to_numpy()) / sb * 100)
        x, y = _numbers(lines[policy]["x"]), _numbers(lines[policy]["y"])
        np.testing.assert_allclose(x, gains, rtol=1e-12)
        np.testing.assert_allclose(y, np.arange(1, len(gains) + 1) / len(gains))
