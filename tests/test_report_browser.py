"""The run report opened in a real headless Chromium (Debian's, driven by Playwright).

Skipped with a reason where Debian's chromium or the ``playwright`` package is
missing (``scripts/setup.sh`` installs both when run as root, as CI does). The
numbers the page shows are checked against ones computed here from the records
and summary.csv, not read back from the report's own code.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from adaptsim.report import build_report
from adaptsim.report.browser import missing, open_browser
from adaptsim.simulator import load_scenario, run_scenario, write_results

REPO = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(missing() is not None, reason=str(missing())),
]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    """The shipped vehicle scenario, run in full and reported."""
    out = tmp_path_factory.mktemp("vehicle")
    write_results(run_scenario(load_scenario(REPO / "scenarios/vehicle_trace.yaml")), out)
    build_report(out, images=False)
    return out


@pytest.fixture(scope="module")
def browser_page(report_dir, tmp_path_factory):
    """The report loaded in Chromium, with every console error and request collected."""
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user-data-dir
    seen = {"errors": [], "requests": []}
    with open_browser(profile) as ctx:
        page = ctx.new_page()
        page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
        page.on("pageerror", lambda e: seen["errors"].append(str(e)))
        page.on("request", lambda r: seen["requests"].append(r.url))
        page.goto((report_dir / "report.html").as_uri(), wait_until="load")
        # Charts far below the screen are drawn when the reader gets there.
        seen["drawn_at_load"] = page.locator(".lazy-plot .main-svg").count()
        for chart in ("#cdf-plot", "#timeline-plot", "#stages-plot"):
            page.locator(chart).scroll_into_view_if_needed()
            page.wait_for_selector(f"{chart} .main-svg")
        seen["context"] = ctx
        yield page, seen


def _per_seed(records: pd.DataFrame) -> pd.DataFrame:
    """Mean and p95 of finished frames per (policy, seed), computed here with numpy."""
    rows = []
    for (p, s), r in records.groupby(["policy", "seed"]):
        lat = r["latency_s"].to_numpy(dtype=float)
        lat = lat[np.isfinite(lat)]
        rows.append({"policy": p, "seed": s, "mean": lat.mean(), "p95": np.percentile(lat, 95)})
    return pd.DataFrame(rows)


def _paired_pct(per_seed: pd.DataFrame, policy: str, metric: str):
    w = per_seed.pivot(index="seed", columns="policy", values=metric)
    d = (w[policy] - w["static-best"]).to_numpy()
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    base = w["static-best"].mean()
    return 100 * d.mean() / base, 100 * (d.mean() - half) / base, 100 * (d.mean() + half) / base


def _cell(page, key: str) -> str:
    return page.locator(f'#verdict-table [data-key="{key}"]').inner_text().strip()


def test_loads_offline_without_console_errors(browser_page):
    page, seen = browser_page
    assert seen["errors"] == [], seen["errors"]
    assert seen["drawn_at_load"] < 3  # the stage chart, far down, waits for the reader
    foreign = [u for u in seen["requests"] if not u.startswith(("file:", "data:", "about:"))]
    assert foreign == [], f"network requests from an offline report: {foreign}"
    assert page.title() == "adaptsim: vehicle_trace"
    # The table of contents links to sections that exist.
    for href in page.locator("nav.toc a").evaluate_all("as => as.map(a => a.hash)"):
        assert page.locator(href).count() == 1, href


def test_verdict_shows_the_numbers_of_the_records(browser_page, report_dir):
    page, _ = browser_page
    records = pd.read_parquet(report_dir / "records.parquet")
    summary = pd.read_csv(report_dir / "summary.csv")
    per_seed = _per_seed(records)
    practical = per_seed[~per_seed["policy"].isin(["static-best", "oracle"])]
    best = practical.groupby("policy")["mean"].mean().idxmin()
    header = page.locator("#verdict-table thead th").all_inner_texts()
    assert header[1] == best
    assert best in page.locator("#verdict-sentence").inner_text()

    means = per_seed.groupby("policy")[["mean", "p95"]].mean()
    for who, col in ((best, "best"), ("static-best", "static-best"), ("oracle", "oracle")):
        assert _cell(page, f"mean_s:{col}") == f"{means.loc[who, 'mean']:.3f}"
        assert _cell(page, f"p95_s:{col}") == f"{means.loc[who, 'p95']:.3f}"
    # Periodic arrivals: every seed has the same number of frames, so the mean of the
    # seed means is summary.csv's pooled mean, as the summary table on the page says.
    pooled = summary.set_index("policy")["mean_s"]
    assert _cell(page, "mean_s:static-best") == f"{pooled['static-best']:.3f}"
    summary_cell = page.locator('#summary-table [data-key="static-best:mean_s"]')
    assert summary_cell.inner_text().strip() == f"{pooled['static-best']:.3f}"

    est, lo, hi = _paired_pct(per_seed, best, "mean")
    assert _cell(page, "mean_s:vs_static_best") == f"{est:+.1f} %"
    assert _cell(page, "mean_s:vs_static_best:ci") == f"[{lo:+.1f}, {hi:+.1f}] %"
    missed = 1 - records[records["policy"] == best]["deadline_met"].mean()
    assert _cell(page, "deadline_miss_rate:best") == f"{100 * missed:.1f} %"


def _shown(page, div: str, policy: str) -> list:
    return page.evaluate(
        "([div, p]) => document.getElementById(div).data"
        ".filter(t => t.legendgroup === p).map(t => t.visible === undefined ? true : t.visible)",
        [div, policy],
    )


def test_toggling_a_policy_hides_its_traces(browser_page, report_dir, tmp_path):
    page, seen = browser_page
    lines = "#cdf-plot .scatterlayer .trace"
    before = page.locator(lines).count()
    assert _shown(page, "cdf-plot", "all-edge") == [True]
    page.locator('#policy-toggle input[data-policy="all-edge"]').uncheck()
    page.wait_for_function(
        "() => document.getElementById('cdf-plot').data"
        ".some(t => t.legendgroup === 'all-edge' && t.visible === 'legendonly')"
    )
    assert _shown(page, "cdf-plot", "all-edge") == ["legendonly"]
    assert _shown(page, "stages-plot", "all-edge") == ["legendonly"]
    assert page.locator(lines).count() == before - 1  # the line is gone from the drawing
    assert _shown(page, "cdf-plot", "oracle") == [True]  # the others stay
    page.locator('#policy-toggle input[data-policy="all-edge"]').check()
    page.wait_for_function(
        "() => document.getElementById('cdf-plot').data"
        ".every(t => t.legendgroup !== 'all-edge' || t.visible === true)"
    )
    assert page.locator(lines).count() == before

    # Clicking a policy in a chart's legend hides it on that chart too.
    page.locator("#cdf-plot .legend .traces", has_text="oracle").click()
    page.wait_for_function(
        "() => document.getElementById('cdf-plot').data"
        ".some(t => t.legendgroup === 'oracle' && t.visible === 'legendonly')"
    )

    # Each policy has one colour on every chart.
    colours = page.evaluate(
        "() => ['cdf-plot', 'stages-plot', 'timeline-plot']"
        ".flatMap(id => document.getElementById(id).data"
        ".filter(t => t.legendgroup && t.legendgroup !== 'conditions')"
        ".map(t => [t.legendgroup, (t.line && t.line.color) || t.marker.color]))"
    )
    per_policy: dict[str, set] = {}
    for policy, colour in colours:
        per_policy.setdefault(policy, set()).add(colour)
    assert set(per_policy) == set(pd.read_csv(report_dir / "summary.csv")["policy"])
    assert all(len(c) == 1 for c in per_policy.values()), per_policy
    assert len({next(iter(c)) for c in per_policy.values()}) == len(per_policy)

    # The timeline shows one policy at a time: the verdict's best one first.
    best = page.locator("#verdict-table thead th").all_inner_texts()[1]
    for p in per_policy:
        assert all(v is (p == best) for v in _shown(page, "timeline-plot", p)), p

    shot = Path(os.environ.get("ADAPTSIM_REPORT_SCREENSHOT", tmp_path / "report.png"))
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one
    assert seen["errors"] == []


def test_a_policy_ticked_off_before_its_chart_is_drawn_stays_hidden(browser_page, report_dir):
    _, seen = browser_page
    page = seen["context"].new_page()
    page.goto((report_dir / "report.html").as_uri(), wait_until="load")
    assert page.locator("#stages-plot .main-svg").count() == 0
    page.locator('#policy-toggle input[data-policy="oracle"]').uncheck()
    page.locator("#stages-plot").scroll_into_view_if_needed()
    page.wait_for_selector("#stages-plot .main-svg")
    assert _shown(page, "stages-plot", "oracle") == ["legendonly"]
    assert _shown(page, "stages-plot", "reactive") == [True]
    page.close()
