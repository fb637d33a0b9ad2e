"""Property: any scenario document either is refused cleanly or runs and counts every frame.

Hypothesis generates scenario documents and traces, adversarial ones included
(NaN and infinite numbers, negative and huge values, unsorted or duplicated step
times, steps not starting at t = 0, bandwidth that drops to zero for good, words
where numbers belong, random bytes as trace files, odd policy parameters). For
each: either loading raises a one-line :class:`UserError` (what the CLI turns
into exit 2), or the run's summary accounts for every frame that arrived
(finished + unfinished = the arrivals of every run) and every latency statistic
is finite and non-negative (or absent when no frame finished).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from adaptsim.cli import app
from adaptsim.errors import UserError
from adaptsim.simulator import run_scenario, scenario_from_dict
from adaptsim.simulator.draws import draw

CAL_CACHE: dict = {}
runner = CliRunner()
WORK = Path(tempfile.mkdtemp(prefix=f"adaptsim-props-{os.getpid()}-"))


@pytest.fixture(scope="module", autouse=True)
def _remove_work():
    """Hypothesis examples share one folder (fixtures are not reset per example)."""
    yield
    shutil.rmtree(WORK, ignore_errors=True)


# One in RARE draws is adversarial, so that about half the documents run.
RARE = 8
rarely = st.sampled_from([False] * (RARE - 1) + [True])

weird_numbers = st.sampled_from(
    [float("nan"), float("inf"), -1.0, 0.0, 1e300, "5e-1", "fast", None, "1e3"]
)
weird_bandwidth = st.sampled_from([0.0, 1e-300, 1e-6, 1e12, -2.0, float("nan")])
good_bandwidth = st.floats(min_value=0.5, max_value=100.0)


@st.composite
def values(draw_, good, weird):
    return draw_(weird) if draw_(rarely) else draw_(good)


@st.composite
def step_traces(draw_, good=good_bandwidth, weird=weird_bandwidth, may_stall=True):
    n = draw_(st.integers(1, 6))
    if not draw_(rarely):  # well-formed: from t = 0, increasing
        gaps = draw_(st.lists(st.floats(0.01, 5.0), min_size=n - 1, max_size=n - 1))
        times = [0.0, *np.cumsum(gaps).tolist()]
    else:  # anything: unsorted, duplicated, negative, late start
        times = draw_(st.lists(st.floats(-5.0, 50.0), min_size=n, max_size=n))
    steps = [[t, draw_(values(good, weird))] for t in times]
    end = draw_(st.sampled_from(["loop", "hold"]))
    if may_stall and draw_(st.booleans()):  # a stall: zero for a while, or for good
        steps.append([max(times) + draw_(st.floats(0.01, 5.0)), 0.0])
        if draw_(st.booleans()):
            steps.append([steps[-1][0] + draw_(st.floats(0.01, 10.0)), draw_(good)])
    return {"steps": steps, "end": end}


@st.composite
def file_traces(draw_):
    fmt = draw_(st.sampled_from(["two_column", "csv", "mahimahi"]))
    if draw_(rarely):
        content = draw_(st.binary(max_size=60))
    elif fmt == "mahimahi":
        stamps = sorted(draw_(st.lists(st.integers(0, 5000), min_size=1, max_size=40)))
        content = ("\n".join(map(str, stamps)) + "\n").encode()
    else:
        n = draw_(st.integers(1, 6))
        gaps = draw_(st.lists(st.floats(0.01, 20.0), min_size=n, max_size=n))
        times = np.cumsum(gaps).tolist()  # a file may start late: it is shifted to 0
        rows = [(t, draw_(values(good_bandwidth, weird_bandwidth))) for t in times]
        sep = "," if fmt == "csv" else " "
        head = "time_s,value\n" if fmt == "csv" else ""
        content = (head + "".join(f"{t}{sep}{v}\n" for t, v in rows)).encode()
    f = Path(tempfile.mkstemp(dir=WORK, suffix=".trace")[1])
    f.write_bytes(content)
    spec = {"file": str(f), "format": fmt, "end": draw_(st.sampled_from(["loop", "hold"]))}
    if fmt == "mahimahi":
        spec["bin_ms"] = draw_(st.sampled_from([50, 100, 1000]))
    return spec


good_policies = st.sampled_from(
    [
        {"policy": "static-best"},
        {"policy": "oracle"},
        {"policy": "all-edge"},
        {"policy": "all-cloud"},
        {"policy": "static", "params": {"point": 6}},
        {"policy": "static", "params": {"point": 6.0}},
        {"policy": "reactive", "params": {"alpha": 0.5, "period_s": 1.0}},
        {"policy": "reactive", "params": {"alpha": "5e-1", "threshold": "1e-1"}},
        {"policy": "reactive", "params": {"period_s": 0}},
    ]
)
bad_policies = st.sampled_from(
    [
        {"policy": "static", "params": {"point": 4.5}},
        {"policy": "static", "params": {"point": -3}},
        {"policy": "reactive", "params": {"period_s": float("nan")}},
        {"policy": "reactive", "params": {"alpha": None}},
    ]
)


@st.composite
def policy_lists(draw_):
    n = draw_(st.integers(1, 3))
    chosen = [draw_(values(good_policies, bad_policies)) for _ in range(n)]
    return [dict(p, label=f"{p['policy']}-{i}") for i, p in enumerate(chosen)]


FIELDS = [
    ("duration_s",),
    ("arrivals", "rate_hz"),
    ("deadline_s",),
    ("observe", "period_s"),
    ("one_way_latency_s",),
    ("seeds",),
    ("model",),
    ("name",),
]


@st.composite
def scenario_docs(draw_):
    """A sensible scenario with adversarial traces, and sometimes one adversarial field."""
    kind = draw_(st.sampled_from(["constant", "steps", "steps", "file", "dies"]))
    if kind == "constant":
        bandwidth = {"constant": draw_(values(good_bandwidth, weird_bandwidth))}
    elif kind == "dies":  # the link goes down for good: frames behind it never finish
        bandwidth = {"steps": [[0, draw_(good_bandwidth)], [draw_(st.floats(0.01, 5.0)), 0]]}
        bandwidth["end"] = "hold"
    elif kind == "steps":
        bandwidth = draw_(step_traces())
    else:
        bandwidth = draw_(file_traces())
    doc = {
        "name": "p",
        "model": draw_(st.sampled_from(["alexnet", "lenet"])),
        "duration_s": draw_(st.floats(0.05, 40.0)),
        "arrivals": {
            "kind": draw_(st.sampled_from(["periodic", "poisson"])),
            "rate_hz": draw_(st.floats(0.1, 20.0)),
        },
        "deadline_s": draw_(st.floats(0.01, 5.0)),
        "one_way_latency_s": draw_(st.sampled_from([0.0, 0.01, 0.5])),
        "traces": {"bandwidth_mbps": bandwidth},
        "observe": {"period_s": draw_(st.floats(0.1, 5.0))},
        "policies": draw_(policy_lists()),
        "seeds": draw_(st.lists(st.integers(0, 5), min_size=1, max_size=2, unique=True)),
    }
    if draw_(st.booleans()):
        cpu = step_traces(st.floats(0.0, 100.0), st.just(150.0), may_stall=False)
        doc["traces"]["edge_cpu_pct"] = draw_(cpu)
    if draw_(rarely):  # one field made adversarial
        *head, last = draw_(st.sampled_from(FIELDS))
        node = doc
        for k in head:
            node = node[k]
        node[last] = draw_(
            st.one_of(weird_numbers, st.sampled_from(["../p", "a/b", "lenet-9", [-1], [1, 1]]))
        )
    return doc


def _load(doc):
    """The scenario, or the one-line refusal (any other exception fails the test)."""
    try:
        return scenario_from_dict(doc, "gen.yaml", WORK, CAL_CACHE), None
    except UserError as exc:
        return None, str(exc)


def _expected_frames(sc, seed: int) -> int:
    return len(draw(sc, seed).arrivals_s)


@settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_docs())
def test_every_scenario_is_refused_cleanly_or_counts_every_frame(doc):
    sc, refusal = _load(doc)
    if refusal is not None:
        assert refusal and "\n" not in refusal and "Traceback" not in refusal
        return
    res = run_scenario(sc)
    rec, summ = res.records, res.summary
    # every policy x seed ran (or stopped with a policy error, which built-ins never raise)
    assert not res.errors
    for _policy, runs in rec.groupby("policy"):
        assert sorted(runs["seed"].unique()) == sorted(set(runs["seed"]))
    expected = sum(_expected_frames(sc, s) for s in sc.seeds) * len(sc.policies)
    assert len(rec) == expected
    assert len(summ) == len(sc.policies) and (summ["seeds"] == len(sc.seeds)).all()
    assert (summ["requests"] == summ["finished"] + summ["unfinished"]).all()
    assert summ["requests"].sum() == expected
    assert (summ["censored"] == (summ["unfinished"] > 0)).all()
    fin = rec[rec["finished"]]
    parts = ["edge_wait_s", "edge_s", "uplink_wait_s", "uplink_s", "cloud_wait_s", "cloud_s"]
    assert np.isfinite(fin[["latency_s", *parts]].to_numpy()).all()
    assert (fin[["latency_s", *parts]].to_numpy() >= 0).all()
    unfinished = rec[~rec["finished"]]
    assert np.isinf(unfinished["latency_s"]).all() and not unfinished["deadline_met"].any()
    assert not np.isnan(rec[["latency_s", *parts]].to_numpy()).any()
    for row in summ.itertuples(index=False):
        stats = [row.mean_s, row.p50_s, row.p95_s, row.p99_s]
        if row.finished:
            assert all(math.isfinite(v) and v >= 0 for v in stats), row
        else:
            assert all(math.isnan(v) for v in stats)
        if row.requests:
            assert 0.0 <= row.deadline_miss_rate <= 1.0
        else:  # a short Poisson run can see no frame at all: no rate to give
            assert math.isnan(row.deadline_miss_rate) and row.finished == 0
        assert math.isfinite(row.throughput_rps) and row.throughput_rps >= 0


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_docs())
def test_the_cli_exits_0_or_2_with_one_line(doc):
    path = Path(tempfile.mkstemp(dir=WORK, suffix=".yaml")[1])
    path.write_text(yaml.safe_dump(doc))
    out = WORK / f"res-{path.stem}"
    r = runner.invoke(app, ["run", str(path), "--out", str(out)])
    assert "Traceback" not in r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert r.exit_code in (0, 2), (r.exit_code, r.stderr)
    if r.exit_code == 2:
        assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()
    else:
        assert (out / "summary.csv").is_file()


@pytest.mark.parametrize(
    "steps, end, finished_share",
    [
        ([[0, 20], [5, 0]], "hold", 0.25),  # zero for good from t = 5 s of 20 s
        ([[0, 0], [5, 20]], "hold", 1.0),  # a stall at the start, then it clears
    ],
)
def test_a_stalled_link_is_counted_not_hidden(steps, end, finished_share):
    doc = {
        "name": "stall",
        "model": "alexnet",
        "duration_s": 20.0,
        "arrivals": {"rate_hz": 2.0},
        "deadline_s": 100.0,
        "traces": {"bandwidth_mbps": {"steps": steps, "end": end}},
        "service": {"noise": False},
        "policies": [{"policy": "all-cloud"}],
    }
    sc, refusal = _load(doc)
    assert refusal is None
    s = run_scenario(sc).summary.iloc[0]
    assert s["requests"] == 40
    assert s["finished"] / s["requests"] == pytest.approx(finished_share, abs=0.05)
    assert s["censored"] == (finished_share < 1)
    # the frames that never finish are deadline misses even under a 100 s deadline
    assert s["deadline_miss_rate"] == pytest.approx(1 - s["finished"] / s["requests"])
