"""Pieces of the run report a reader relies on, checked on a real run's report: each
policy in its own colour on every chart, a hover that names it, the small-run CDF's
steps, and the facts an older results folder lacks.

The run is a real simulation of the shipped vehicle scenario (shortened, shared by
the tests: they only read it and write its report); the report is built in each test.
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

from adaptsim.errors import UserError
from adaptsim.report import build_report, fmt_pct
from adaptsim.report.figures import cdf_points, policy_colours
from adaptsim.report.folder import RECORD_NEEDS, check_records
from adaptsim.simulator import load_scenario, run_scenario, write_results

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "vehicle"
    sc = load_scenario(REPO / "scenarios/vehicle_trace.yaml").shortened(120.0, (1, 2))
    write_results(run_scenario(sc), out)
    return out


def _specs(page: str) -> dict[str, dict]:
    return {
        m.group(1): json.loads(m.group(2))
        for m in re.finditer(
            r'<script type="application/json" id="([\w-]+)-spec">(.*?)</script>', page, re.S
        )
    }


def test_every_policy_trace_has_the_policys_colour_and_a_hover_naming_it(run_dir, tmp_path):
    """One fixed colour per policy on every chart (the CDF, the timeline's split and
    latency traces, the stage bars), and hovering any of its traces names the policy."""
    folder = Path(shutil.copytree(run_dir, tmp_path / "run"))
    build_report(folder, images=False)
    specs = _specs((folder / "report.html").read_text())
    assert {"cdf-plot", "timeline-plot", "stages-plot"} <= set(specs)
    policies = ["static-best", "oracle", "reactive", "all-edge", "all-cloud"]
    colours = policy_colours(policies)
    seen = {name: set() for name in specs}
    for name, spec in specs.items():
        for t in spec["data"]:
            p = t.get("legendgroup")
            if p not in colours:
                continue  # the conditions (greys), not a policy
            colour = (t.get("line") or {}).get("color") or (t.get("marker") or {}).get("color")
            assert colour == colours[p], (name, p, t.get("type"), t.get("mode"))
            assert html.escape(p) in (t.get("hovertemplate") or ""), (name, p, t.get("mode"))
            seen[name].add(p)
    assert all(seen[n] == set(policies) for n in ("cdf-plot", "timeline-plot", "stages-plot"))


def test_a_small_runs_cdf_rises_one_frame_at_a_time_over_every_frame():
    """Up to ``max_points`` finished frames the curve is every frame: the k-th fastest
    at k / (all frames, unfinished ones included)."""
    lat = np.array([0.5, np.inf, 0.2, 0.9, 0.4, np.inf, 0.1, 0.3, 0.7, 0.6])
    x, y, sampled = cdf_points(lat, len(lat), max_points=500)
    assert not sampled
    np.testing.assert_array_equal(x, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9])
    np.testing.assert_allclose(y, np.arange(1, 9) / 10)


def test_an_older_folder_without_admission_rules_says_every_frame_was_kept(run_dir, tmp_path):
    folder = Path(shutil.copytree(run_dir, tmp_path / "run"))
    meta = json.loads((folder / "run.json").read_text())
    meta.pop("admission", None)
    (folder / "run.json").write_text(json.dumps(meta))
    build_report(folder, images=False)
    md = (folder / "report.md").read_text()
    assert "- **admission:** drop never; unbounded queues (every frame kept)" in md


def test_the_summary_table_shows_every_latency_to_the_millisecond(run_dir, tmp_path):
    """mean, p50, p95 and p99: the same rounding in every latency column (a raw float
    in one of them reads as a different kind of number)."""
    folder = Path(shutil.copytree(run_dir, tmp_path / "run"))
    build_report(folder, images=False)
    page = (folder / "report.html").read_text()
    body = re.search(r'<table class="data" id="summary-table">(.*?)</table>', page).group(1)
    rows = [
        re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r) for r in re.findall(r"<tr>(.*?)</tr>", body)
    ]
    header = rows[0]
    for column in ("mean (s)", "p50 (s)", "p95 (s)", "p99 (s)"):
        j = header.index(column)
        cells = [r[j] for r in rows[1:]]
        assert len(cells) == 5 and all(re.fullmatch(r"\d+\.\d{3}", c) for c in cells), cells


def test_the_pages_head_holds_only_elements_no_stray_text(run_dir, tmp_path):
    """Text in <head> outside its title, style and scripts is shown by browsers at the
    top of the page: the head must hold none."""
    from html.parser import HTMLParser

    class Head(HTMLParser):
        def __init__(self):
            super().__init__()
            self.open: list[str] = []
            self.stray: list[str] = []
            self.heads = 0

        def handle_starttag(self, tag, attrs):
            self.heads += tag == "head"
            if tag not in ("meta", "link"):  # void elements
                self.open.append(tag)

        def handle_endtag(self, tag):
            if self.open and self.open[-1] == tag:
                self.open.pop()

        def handle_data(self, data):
            if self.open[-1:] == ["head"] and data.strip():
                self.stray.append(data.strip())

    folder = Path(shutil.copytree(run_dir, tmp_path / "run"))
    build_report(folder, images=False)
    page = (folder / "report.html").read_text()
    parser = Head()
    parser.feed(page[: page.index("<body>")])
    assert parser.stray == [] and parser.heads == 1  # the head was read, and is clean


def _records(**columns) -> pd.DataFrame:
    """Three frames of a well-formed run, with ``columns`` replaced."""
    frame = {c: np.zeros(3) for c in RECORD_NEEDS}
    frame.update(
        policy=["p"] * 3, seed=np.ones(3, dtype=np.int64), point=np.ones(3, dtype=np.int64)
    )
    frame.update(deadline_met=np.ones(3, dtype=bool), **columns)
    return pd.DataFrame(frame)


@pytest.mark.parametrize(
    ("columns", "says"),
    [
        ({"policy": ["p", "", "p"]}, "column policy must hold policy names"),
        ({"seed": np.array([1, -2, 1])}, "column seed holds a negative seed"),
    ],
)
def test_records_a_run_never_writes_are_one_line_naming_the_column(columns, says):
    check_records(_records(), Path("r.parquet"))  # the well-formed ones pass
    with pytest.raises(UserError) as err:
        check_records(_records(**columns), Path("r.parquet"))
    assert str(err.value).startswith(f"r.parquet: {says}; ")


def test_percentages_carry_a_sign_only_when_asked():
    """Shares (a deadline-miss rate, cells beaten) read 12.3 %; changes read +7.3 % or -7.3 %."""
    assert fmt_pct(12.34) == "12.3 %" and fmt_pct(12.34, 2) == "12.34 %"
    assert fmt_pct(7.3, signed=True) == "+7.3 %" and fmt_pct(-7.3, signed=True) == "-7.3 %"
    assert fmt_pct(float("nan")) == "n/a"
