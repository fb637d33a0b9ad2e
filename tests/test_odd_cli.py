"""Odd input to every command: one line, exit 2, nothing written, and never a hang.

Found by driving every command of ``adaptsim --help`` with odd input (the audit in
docs/testing.md, "Odd input to every command"). Each group is a class of input, fixed
where it is checked:

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
    **{
        f"{policy} service_feedback 'no' (a non-empty word is true)": (
            policy,
            {"service_feedback": "no"},
            ("service_feedback must be true or false",),
        )
        for policy in ("neurosurgeon", "mpc", "changepoint")
    },
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
    "risk horizon x quantiles (3 s a decision)": (
        RISK,
        {"horizon": 1000, "quantiles": 256},
        ("horizon x quantiles must be at most 16000", "1000 x 256"),
    ),
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
        (RISK, {"horizon": 62, "quantiles": 256, "max_lag": 100}),
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


# -- the audit's other findings: work that started before its input was checked ----------


@pytest.fixture
def no_heavy_work(monkeypatch):
    """Fail the test the moment a command would start its real work (a real testbed run, a
    Dask cluster, a profile, a server, a benchmark): its input must be refused first.
    Without the checks, these cases started that work (validate deleted a foreign --out
    folder after its run; sweep --workers 1000000 forked a million processes)."""
    import importlib

    import distributed

    import adaptsim.profiler as profiler
    import adaptsim.simulator.bench as bench
    import adaptsim.testbed.server as server

    tv = importlib.import_module("adaptsim.testbed.validate")  # the package exports validate()

    def started(*_a, **_k):
        raise AssertionError("the real work started before the input was refused")

    monkeypatch.setattr(tv, "real_run", started)
    monkeypatch.setattr(distributed, "LocalCluster", started)
    monkeypatch.setattr(profiler, "profile_compute", started)
    monkeypatch.setattr(profiler, "profile_link", started)
    monkeypatch.setattr(server, "build_tails", started)
    monkeypatch.setattr(bench, "bench", started)


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as fh:
        fh.truncate(size)  # zero bytes; takes no disk space
    return path


# case: (argv with {s} the scenario, {w} the folder; what the one line must say)
STARTED_TOO_SOON = {
    "validate --out a folder of something else (deleted after the run)": (
        ["validate", "{s}", "--out", "{w}/mine"],
        ("--out", "mine", "new folder name"),
    ),
    "validate --out . (a traceback after the run)": (
        ["validate", "{s}", "--out", "."],
        ("--out .", "folder name"),
    ),
    "validate --out where nothing can be written": (
        ["validate", "{s}", "--out", "/proc/adaptsim-v"],
        ("cannot write in /proc",),
    ),
    "validate --duration beyond the scenario (silently all of it)": (
        ["validate", "{s}", "--duration", "1e300", "--out", "{w}/v"],
        ("--duration 1e+300", "only shortens"),
    ),
    "validate --time-scale leaving no frame": (
        ["validate", "{s}", "--time-scale", "1e300", "--out", "{w}/v"],
        ("--time-scale 1e+300", "less than one frame"),
    ),
    "validate --rate-hz past the scenario's limits": (
        ["validate", "{s}", "--rate-hz", "1e9", "--out", "{w}/v"],
        ("--rate-hz 1e+09", "limits.max_frames"),
    ),
    "validate a trace faster than tc shapes (tc failed mid-run)": (
        ["validate", "{w}/fast.yaml", "--out", "{w}/v"],
        ("fast.yaml: field traces.bandwidth_mbps", "5e+06 Mbit/s", "tc tbf"),
    ),
    "validate a trace slower than tc shapes (shaped faster than the twin)": (
        ["validate", "{w}/slow.yaml", "--out", "{w}/v"],
        ("slow.yaml: field traces.bandwidth_mbps", "0.001 Mbit/s", "from 0.008"),
    ),
    "sweep --workers 1000000": (["sweep", "{w}/w.yaml", "--workers", "1000000"], ("--workers",)),
    "sweep --out a file (a traceback)": (
        ["sweep", "{w}/w.yaml", "--out", "{w}/mine/keep.txt"],
        ("is a file",),
    ),
    "sweep --out a folder of something else (written among its files)": (
        ["sweep", "{w}/w.yaml", "--out", "{w}/mine"],
        ("does not hold a sweep",),
    ),
    "sweep --out where nothing can be written (a traceback)": (
        ["sweep", "{w}/w.yaml", "--out", "/proc/adaptsim-sweep"],
        ("cannot write in /proc",),
    ),
    "import --out where nothing can be written (a traceback)": (
        ["import", "scission", str(REPO / "tests/data/scission/blocks.csv"), "--out", "/proc/i.p"],
        ("--out /proc/i.p", "cannot write in /proc"),
    ),
    "profile --out where nothing can be written (found after the first condition)": (
        ["profile", "--host", "edge", "-m", "lenet", "--out", "/proc/p.parquet"],
        ("cannot write in /proc",),
    ),
    "profile --threads 1e9": (
        ["profile", "--host", "edge", "-m", "lenet", "--threads", "1000000000"],
        ("--threads 1000000000",),
    ),
    "profile --mem-budget-bytes beyond memory": (
        [
            "profile",
            "--host",
            "edge",
            "-m",
            "lenet",
            "--mem-budget-bytes",
            "1" + "0" * 20,
            "--out",
            "{w}/p",
        ],
        ("--mem-budget-bytes", "half this host's memory"),
    ),
    "profile --repeats 1e12": (
        [
            "profile",
            "--host",
            "edge",
            "-m",
            "lenet",
            "--repeats",
            "1000000000000",
            "--out",
            "{w}/p",
        ],
        ("--repeats 1000000000000",),
    ),
    "profile --cpus '0-' (read as 0)": (
        ["profile", "--host", "edge", "-m", "lenet", "--cpus", "0-"],
        ("--cpus '0-'",),
    ),
    "profile --seed 2**64 (no int64 seed)": (
        ["profile", "--host", "link", "--seed", str(2**64)],
        ("--seed 18446744073709551616", "2**63"),
    ),
    "serve --one-way-latency-s inf (each frame waited forever)": (
        ["serve", "--role", "cloud", "--listen", "127.0.0.1:0", "--one-way-latency-s", "inf"],
        ("--one-way-latency-s inf",),
    ),
    "calibrate --check --seed -1 (a traceback after the calibration was written)": (
        [
            "calibrate",
            str(REPO / "docs/own_profiles/own.parquet"),
            "--out",
            "{w}/c.json",
            "--check",
            "--seed",
            "-1",
            "-m",
            "lenet",
        ],
        ("--seed -1", "2**63"),
    ),
    "serve --secret-file 64 MB (read whole, zeros taken as the key)": (
        ["serve", "--role", "cloud", "--listen", "127.0.0.1:0", "--secret-file", "{w}/big.bin"],
        ("--secret-file", "more than 4096 bytes"),
    ),
}


@pytest.mark.parametrize("case", list(STARTED_TOO_SOON), ids=list(STARTED_TOO_SOON))
def test_input_is_refused_before_the_work_it_would_spoil(case, ws, no_heavy_work, monkeypatch):
    argv, says = STARTED_TOO_SOON[case]
    s = scenario(ws, {"policy": "all-cloud"}, {"policy": "all-edge"})
    fast = base_doc(traces={"bandwidth_mbps": 5e6}, limits={"max_bandwidth_mbps": 1e7})
    (ws / "fast.yaml").write_text(yaml.safe_dump(fast))
    slow = base_doc(traces={"bandwidth_mbps": {"steps": [[0, 0.001], [1, 5]]}})
    (ws / "slow.yaml").write_text(yaml.safe_dump(slow))
    (ws / "w.yaml").write_text("name: w\nbase: s.yaml\n")
    (ws / "mine").mkdir()
    (ws / "mine" / "keep.txt").write_text("precious")
    _sparse(ws / "big.bin", 64 << 20)
    monkeypatch.chdir(ws)
    refused(ws, [a.format(s=s, w=ws) for a in argv], says)


def test_a_study_folder_is_whole_or_the_old_one(ws, monkeypatch):
    """``study --out`` wrote its files one by one into any folder: a foreign one got them
    among its own, and Ctrl-C among the writes left new tables beside an old summary.md.
    Now a folder of something else is refused before the store is read, and the study
    is built beside its folder and swapped in whole."""
    (ws / "mine").mkdir()
    (ws / "mine" / "keep.txt").write_text("precious")
    refused(ws, ["study", "--out", str(ws / "mine"), "-m", "lenet"], ("holds other files",))
    first = runner.invoke(app, ["study", "--out", str(ws / "st"), "-m", "lenet", "--no-plots"])
    assert first.exit_code == 0, first.stderr
    before = {p.name: p.read_bytes() for p in (ws / "st").iterdir()}
    import adaptsim.study.run as study_run

    def ctrl_c(*_a, **_k):  # Ctrl-C after the tables, before the summary
        raise KeyboardInterrupt

    monkeypatch.setattr(study_run, "write_summary", ctrl_c)
    again = runner.invoke(app, ["study", "--out", str(ws / "st"), "-m", "alexnet", "--no-plots"])
    assert again.exit_code == 130, again.stderr
    assert {p.name: p.read_bytes() for p in (ws / "st").iterdir()} == before
    assert sorted(p.name for p in ws.iterdir() if p.name.startswith(".")) == []
