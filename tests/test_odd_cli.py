"""Odd input to every command: one line, exit 2, nothing written, and never a hang.

Found by driving every command of ``adaptsim --help`` with odd input (the audit in
docs/testing.md, "Odd input"). Each group is a class of input, fixed where it is checked:

- ``POLICY_PARAMS``: a built-in policy's parameters out of range. A size that
  drives a loop or an allocation (``horizon: 1e9``: a decision of mpc planned a
  billion frames at every point, the first decision never ended) is bounded; a
  NaN, an infinity, a true/false or a word where a number belongs, and a word
  where true/false belongs (``switch_cost: "no"`` was true) are refused.
- ``LABELS``: a policy's name (its label, or the name it gives itself) names its
  rows in every table, CSV, report and ``validate --policies``: control
  characters, path separators, blanks at the ends and very long names are refused
  the same way by run, sweep and validate; report escapes whatever an older
  results folder holds.
- ``profile --host link``: rates beyond what tc tbf takes, or payloads beyond
  memory, are refused before any network namespace is made.

Every refusal is timed: a check that comes after the work it guards shows as a
hang here, cut short by an alarm, not as a stuck test run.
"""

from __future__ import annotations

import json
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from adaptsim.cli import app
from test_odd_inputs import _refused

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CAL = REPO / "src/adaptsim/data/calibration_adaptivednn.json"
RISK = "adaptsim.simulator.risk:RiskAware"
runner = CliRunner()


class TookTooLong(Exception):
    pass


@contextmanager
def deadline(seconds: int):
    """Turn a hang into a failure after ``seconds`` (SIGALRM: the main thread only)."""

    def ring(*_):
        raise TookTooLong(f"still running after {seconds} s: the check came too late")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def refused(root: Path, argv: list[str], says=(), seconds: int = 20) -> str:
    """:func:`test_odd_inputs._refused` (exit 2, one short line saying ``says``, nothing
    written under root) within ``seconds``."""
    t0 = time.perf_counter()
    with deadline(seconds):
        line = _refused(root, argv, says)
    assert time.perf_counter() - t0 < seconds
    return line


def base_doc(**fields) -> dict:
    doc = {
        "name": "odd",
        "model": "alexnet",
        "calibration": "cal.json",
        "duration_s": 10.0,
        "arrivals": {"rate_hz": 2.0},
        "deadline_s": 1.0,
        "traces": {"bandwidth_mbps": {"constant": 5.0}},
        "policies": [{"policy": "all-cloud"}],
        "seeds": [1],
    }
    doc.update(fields)
    return doc


@pytest.fixture
def ws(tmp_path) -> Path:
    """A folder with a one-model calibration (the shipped one's AlexNet)."""
    cal = json.loads(SHIPPED_CAL.read_text())
    cal["models"] = {"alexnet": cal["models"]["alexnet"]}
    (tmp_path / "cal.json").write_text(json.dumps(cal))
    return tmp_path


def scenario(ws: Path, *policies: dict, name: str = "s.yaml") -> str:
    (ws / name).write_text(yaml.safe_dump(base_doc(policies=list(policies))))
    return str(ws / name)


# -- policy parameters --------------------------------------------------------------------

# case: (policy, params, what the one line must say)
POLICY_PARAMS = {
    "mpc horizon 1e9 (the first decision never ended)": (
        "mpc",
        {"horizon": 1e9},
        ("policies.0", "horizon", "from 1 to 1000"),
    ),
    "mpc horizon an integer beyond any float": ("mpc", {"horizon": 10**400}, ("horizon",)),
    "mpc k 1e30 (an OverflowError traceback)": ("mpc", {"k": 1e30}, ("k must", "10000")),
    "mpc k true": ("mpc", {"k": True}, ("k must be a number", "True")),
    "mpc discount unknown": ("mpc", {"discount": "hope"}, ("discount", "planned")),
    "neurosurgeon switch_cost 'no' (was true)": (
        "neurosurgeon",
        {"switch_cost": "no"},
        ("switch_cost must be true or false",),
    ),
    "neurosurgeon source unknown": ("neurosurgeon", {"source": "radio"}, ("monitor, transfers",)),
    "changepoint threshold NaN (was accepted)": (
        "changepoint",
        {"threshold": float("nan")},
        ("threshold must be a finite number",),
    ),
    "changepoint threshold a word (a TypeError's text)": (
        "changepoint",
        {"threshold": "high"},
        ("threshold must be a number",),
    ),
    "changepoint threshold true (read as 1)": ("changepoint", {"threshold": True}, ("threshold",)),
    "changepoint threshold 1e300 (never detects)": (
        "changepoint",
        {"threshold": 1e300},
        ("threshold", "at most 1000"),
    ),
    "changepoint drift infinite": ("changepoint", {"drift": float("inf")}, ("drift",)),
    "reactive hysteresis 1e18 (never switches)": (
        "reactive",
        {"hysteresis": 1e18},
        ("hysteresis", "from 1 to 1000"),
    ),
    "reactive threshold 5 (a gain is below 1: never switches)": (
        "reactive",
        {"threshold": 5},
        ("threshold", "below 1"),
    ),
    "risk horizon 1e9": (RISK, {"horizon": 1e9}, ("horizon", "1000")),
    "risk history 1e12 (memory for a trillion readings)": (
        RISK,
        {"history": 1e12},
        ("history", "10000"),
    ),
    "risk max_lag 1e9 (a (1e9 x 16) table)": (RISK, {"max_lag": 1e9}, ("max_lag", "1000")),
    "risk quantiles 1e9": (RISK, {"quantiles": 1e9}, ("quantiles", "256")),
    "risk k 1e30": (RISK, {"k": 1e30}, ("k must",)),
}


@pytest.mark.parametrize("case", list(POLICY_PARAMS), ids=list(POLICY_PARAMS))
def test_policy_parameters_out_of_range_are_one_line_naming_the_range(case, ws):
    policy, params, says = POLICY_PARAMS[case]
    path = scenario(ws, {"policy": policy, "params": params})
    refused(ws, ["run", path, "--out", str(ws / "r")], ("s.yaml", *says))


@pytest.mark.parametrize(
    ("policy", "params"),
    [
        ("mpc", {"horizon": 1000, "k": 10_000}),
        (RISK, {"horizon": 1000, "quantiles": 16, "history": 10_000, "max_lag": 1000}),
        (RISK, {"horizon": 60, "quantiles": 256, "max_lag": 100}),
        ("reactive", {"hysteresis": 1000, "threshold": 0.99}),
        ("changepoint", {"threshold": 1000, "drift": 1000}),
    ],
)
def test_parameters_at_their_bounds_run_in_bounded_time(policy, params, ws):
    """The bounds are far below a hang: a short run at them finishes in seconds
    (decisions every second over 10 s of a scenario at 2 frames a second)."""
    path = scenario(ws, {"policy": policy, "params": params})
    t0 = time.perf_counter()
    with deadline(60):
        r = runner.invoke(app, ["run", path, "--out", str(ws / "r")])
    assert r.exit_code == 0, r.stderr
    assert time.perf_counter() - t0 < 60


# -- policy names -------------------------------------------------------------------------

# case: (the policy entry, what the one line must say)
LABELS = {
    "a slash": ({"policy": "all-edge", "label": "edge/fast"}, ("path separator",)),
    "a backslash": ({"policy": "all-edge", "label": "edge\\fast"}, ("path separator",)),
    "only dots": ({"policy": "all-edge", "label": ".."}, ("only dots",)),
    "a NUL": ({"policy": "all-edge", "label": "a\x00b"}, ("control character",)),
    "a line break": ({"policy": "all-edge", "label": "two\nlines"}, ("control character",)),
    "a right-to-left override": ({"policy": "all-edge", "label": "a\u202eb"}, ("control",)),
    "5000 characters": ({"policy": "all-edge", "label": "x" * 5000}, ("at most 100",)),
    "empty": ({"policy": "all-edge", "label": ""}, ("is empty",)),
    "blanks at the end": ({"policy": "all-edge", "label": "edge "}, ("blanks",)),
}


@pytest.mark.parametrize("command", ["run", "sweep", "validate"])
@pytest.mark.parametrize("case", list(LABELS), ids=list(LABELS))
def test_a_policy_name_that_breaks_a_table_or_a_path_is_refused_alike(case, command, ws):
    """The same check, the same line, whichever command builds the policies (validate
    is refused before its real run: nothing of it starts)."""
    entry, says = LABELS[case]
    path = scenario(ws, {"policy": "all-cloud"}, entry)
    if command == "run":
        argv = ["run", path, "--out", str(ws / "r")]
    elif command == "sweep":
        (ws / "w.yaml").write_text("name: w\nbase: s.yaml\n")
        argv = ["sweep", str(ws / "w.yaml"), "--dry-run"]
    else:
        argv = ["validate", path, "--out", str(ws / "v")]
    at = "policies." if command == "sweep" else "policies.1"  # a sweep adds its baselines first
    refused(ws, argv, (at, "policy name", *says, "label"))


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_a_built_in_is_named_by_its_label_not_a_name_parameter(command, ws):
    """``params: {name: ../../mpc}`` renamed mpc in run (past the label's checks) and
    was dropped silently in sweep (which labels every policy): now both refuse it."""
    path = scenario(ws, {"policy": "mpc", "params": {"name": "../../mpc"}})
    (ws / "w.yaml").write_text("name: w\nbase: s.yaml\n")
    argv = ["run", path, "--out", str(ws / "r")] if command == "run" else []
    argv = argv or ["sweep", str(ws / "w.yaml"), "--dry-run"]
    refused(ws, argv, ("policies.", "takes no parameter 'name'", "label: '../../mpc'"))


def test_a_policy_file_in_a_folder_is_named_by_its_file_not_its_path(ws):
    """``policies/rule.py:decide`` without a label was named with its path; it is
    ``rule.py:decide``, in run and in sweep alike."""
    (ws / "policies").mkdir()
    (ws / "policies" / "rule.py").write_text("def decide(view):\n    return 6\n")
    path = scenario(ws, {"policy": "all-cloud"}, {"policy": "policies/rule.py:decide"})
    r = runner.invoke(app, ["run", path, "--out", str(ws / "r")])
    assert r.exit_code == 0, r.stderr
    summary = (ws / "r" / "summary.csv").read_text()
    assert "rule.py:decide" in summary and "policies/rule.py" not in summary
    (ws / "w.yaml").write_text("name: w\nbase: s.yaml\nseeds: 1\n")
    from adaptsim.sweep import load_plan

    labels = [v.label for v in load_plan(ws / "w.yaml").variants]
    assert "rule.py:decide" in labels and not any("/" in x for x in labels)


def test_report_escapes_the_names_an_older_results_folder_holds(ws):
    """Results written before names were checked (or by hand) still report: every name
    escaped in the page and the markdown, and nothing written beside the two reports."""
    path = scenario(ws, {"policy": "all-cloud"}, {"policy": "all-edge", "label": "edge"})
    assert runner.invoke(app, ["run", path, "--out", str(ws / "r")]).exit_code == 0
    import pandas as pd

    odd = "</script><b>x|y</b>/../z"
    rec = pd.read_parquet(ws / "r" / "records.parquet")
    rec["policy"] = rec["policy"].replace({"edge": odd})
    rec.to_parquet(ws / "r" / "records.parquet", index=False)
    s = pd.read_csv(ws / "r" / "summary.csv")
    s["policy"] = s["policy"].replace({"edge": odd})
    s.to_csv(ws / "r" / "summary.csv", index=False)
    before = set(p.name for p in ws.rglob("*"))
    r = runner.invoke(app, ["report", str(ws / "r")])
    assert r.exit_code == 0, r.stderr
    assert set(p.name for p in ws.rglob("*")) - before <= {
        "report.html",
        "report.md",
        "latency_cdf.png",
        "timeline.png",
    }
    page = (ws / "r" / "report.html").read_text()
    assert odd not in page and "&lt;/script&gt;&lt;b&gt;x|y&lt;/b&gt;/../z" in page
    assert page.count("</script>") == page.count("<script")
    md = (ws / "r" / "report.md").read_text()
    assert "x\\|y" in md


# -- profile --host link ------------------------------------------------------------------


@pytest.fixture
def no_namespace(monkeypatch):
    """Fail the test the moment a network namespace would be made (the check must come
    first; the real namespaces are tested in test_tc_takes_the_bounds_it_is_checked_against)."""
    import adaptsim.emulation.netns as netns

    def made(self):
        raise AssertionError(f"a namespace was made for {self.bandwidth_mbps:g} Mbit/s")

    monkeypatch.setattr(netns.NetnsPair, "__enter__", made)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--bandwidth", "1e12"], ("--bandwidth 1e+12 Mbit/s", "tc tbf shapes rates")),
        (["--bandwidth", "5,1e7"], ("--bandwidth 1e+07 Mbit/s",)),
        (["--bandwidth", "0.001"], ("--bandwidth 0.001 Mbit/s", "from 0.008")),
        (["--bandwidth", "0"], ("--bandwidth 0 Mbit/s",)),
        (["--bandwidth", "nan"], ("--bandwidth nan Mbit/s",)),
        (["--bandwidth", "5,5"], ("a rate is repeated",)),
        (["--max-transfer-s", "1e9"], ("--max-transfer-s 1e+09", "at most 60")),
        (["--bandwidth", "10000", "--max-transfer-s", "1"], ("largest payload", "1.25e+09")),
        (["--repeats", "1000000000"], ("--repeats 1000000000", "at most 10000")),
    ],
)
def test_a_link_profile_tc_cannot_make_is_refused_before_any_namespace(
    argv, says, tmp_path, no_namespace
):
    out = str(tmp_path / "p.parquet")
    refused(tmp_path, ["profile", "--host", "link", *argv, "--out", out], says)


@pytest.mark.needs_root
def test_tc_takes_the_bounds_it_is_checked_against():
    """The bound is tc's own: the fastest rate check_rate lets through is a qdisc tc
    makes (with the profiler's 10 ms bucket), and one Mbit/s more is refused by tc
    itself (its bucket no longer fits 32 bits) as by check_rate."""
    import subprocess

    from adaptsim.emulation import MAX_RATE_MBPS, NetnsPair, check_rate
    from adaptsim.emulation.netns import _tbf_args
    from adaptsim.errors import UserError

    with NetnsPair(MAX_RATE_MBPS, tag=f"odd{os.getpid()}") as pair:
        shown = subprocess.run(
            ["tc", "-n", pair.edge, "qdisc", "show", "dev", pair.edge_dev],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert "tbf" in shown and "Gbit" in shown, shown
        above = subprocess.run(
            ["tc", "-n", pair.edge, "qdisc", "change", "dev", pair.edge_dev, "root",
             *_tbf_args(MAX_RATE_MBPS + 1, pair.burst_s, pair.min_burst_bytes)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert above.returncode != 0 and "burst" in above.stderr, above.stderr
    with pytest.raises(UserError, match="tc tbf shapes rates"):
        check_rate(MAX_RATE_MBPS + 1, "--bandwidth")
