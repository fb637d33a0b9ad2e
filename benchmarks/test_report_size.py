"""A 100,000-frame run's report: page size and load time in headless Chromium.

Excluded from the default run (``-m benchmark`` runs it). The run is the shipped
vehicle scenario at 1 frame/s over 6,667 s (5 policies x 3 seeds = 100,005
frames). In a fresh page each time, median of five: *open*, from ``goto`` to the
load event (verdict and tables readable, charts on screen drawn); *all charts*,
from ``goto`` until every chart is drawn when the page is told to draw them all at
once (as for printing; a reader scrolling gets them one by one); Chromium's
main-thread task time for the same loads (CDP ``Performance.getMetrics``); and a
blank page in the same browser (the floor on a shared machine).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from adaptsim.report import build_report
from adaptsim.report.browser import missing, open_browser
from adaptsim.simulator import load_scenario, run_scenario, write_results

REPO = Path(__file__).resolve().parent.parent
DRAWN = (
    "() => ['cdf-plot', 'timeline-plot', 'stages-plot']"
    ".every(id => document.querySelector('#' + id + ' .main-svg'))"
)


def _big_run(folder: Path) -> Path:
    doc = yaml.safe_load((REPO / "scenarios/vehicle_trace.yaml").read_text())
    doc["duration_s"] = 6667
    doc["arrivals"] = {"kind": "periodic", "rate_hz": 1.0}
    doc["traces"]["bandwidth_mbps"]["file"] = str(REPO / "scenarios/traces/norway_car_3.txt")
    path = folder / "big.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = folder / "big"
    write_results(run_scenario(load_scenario(path)), out)
    return out


@pytest.mark.benchmark
def test_large_run_report_is_light(tmp_path, capsys):
    if missing():
        pytest.skip(missing())
    out = _big_run(tmp_path)
    t0 = time.perf_counter()
    build_report(out)
    build_s = time.perf_counter() - t0
    html = out / "report.html"
    size_mb = html.stat().st_size / 1e6
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><title>blank</title><p>blank</p>")
    loads, alls, tasks, blanks = [], [], [], []
    with open_browser(tmp_path / "profile") as ctx:
        for _ in range(5):
            page = ctx.new_page()
            t0 = time.perf_counter()
            page.goto(blank.as_uri(), wait_until="load")
            blanks.append(time.perf_counter() - t0)
            page.close()
            page = ctx.new_page()
            cdp = ctx.new_cdp_session(page)
            cdp.send("Performance.enable")
            t0 = time.perf_counter()
            page.goto(html.as_uri(), wait_until="load")
            loads.append(time.perf_counter() - t0)
            page.evaluate("window.adaptsimDrawAll()")
            page.wait_for_function(DRAWN)
            alls.append(time.perf_counter() - t0)
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            tasks.append(metrics["TaskDuration"])
            page.close()
    frames = len(pd.read_parquet(out / "records.parquet"))
    result = {
        "frames": frames,
        "page_mb": round(size_mb, 2),
        "build_s": round(build_s, 2),
        "load_s": [round(x, 2) for x in loads],
        "load_median_s": round(statistics.median(loads), 2),
        "all_charts_s": [round(x, 2) for x in alls],
        "all_charts_median_s": round(statistics.median(alls), 2),
        "main_thread_task_median_s": round(statistics.median(tasks), 2),
        "blank_page_median_s": round(statistics.median(blanks), 3),
    }
    with capsys.disabled():
        print("\n" + json.dumps(result))
    assert frames >= 100_000
    assert size_mb < 10
    assert statistics.median(loads) < 3
