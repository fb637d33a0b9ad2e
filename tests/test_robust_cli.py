"""`adaptsim run` on bad input: one line, exit 2, no traceback, nothing written.

Each case below is a distinct bad input a user could give (a scenario field, a
trace, a calibration, a policy, a command-line override, the ``--out`` folder).
For every one the test asserts: exit code 2; stderr is exactly one line that
names the file or the field at fault; no traceback; and the workspace (where
the default ``results/`` folder would go, and any ``--out``) is byte for byte
as it was: nothing created, nothing changed. Everything runs through the real
CLI (typer's CliRunner), the real shipped calibration and real files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from adaptsim.cli import app

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CAL = REPO / "src/adaptsim/data/calibration_adaptivednn.json"
runner = CliRunner()


def base_doc() -> dict:
    return {
        "name": "t",
        "model": "alexnet",
        "duration_s": 20.0,
        "arrivals": {"kind": "periodic", "rate_hz": 2.0},
        "deadline_s": 1.0,
        "traces": {"bandwidth_mbps": {"constant": 20.0}},
        "policies": [{"policy": "static", "params": {"point": 6}}, {"policy": "all-edge"}],
        "seeds": [1],
    }


class Workspace:
    """A temporary folder with a scenario, its traces and a small calibration."""

    def __init__(self, root: Path):
        self.root = root
        cal = json.loads(SHIPPED_CAL.read_text())
        cal["models"] = {"alexnet": cal["models"]["alexnet"]}
        self.cal_doc = cal
        (root / "cal.json").write_text(json.dumps(cal))
        (root / "traces").mkdir()
        self.doc = base_doc()

    def scenario(self, doc: dict | None = None, name: str = "s.yaml") -> str:
        p = self.root / name
        p.write_text(yaml.safe_dump(doc if doc is not None else self.doc))
        return str(p)

    def file(self, name: str, content: str | bytes) -> Path:
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        return p

    def with_trace(self, spec: dict) -> str:
        self.doc["traces"]["bandwidth_mbps"] = spec
        return self.scenario()

    def with_policy(self, spec: dict) -> str:
        self.doc["policies"] = [spec]
        return self.scenario()

    def with_cal(self, path: str) -> str:
        self.doc["calibration"] = path
        return self.scenario()

    def edited_cal(self, edit: Callable[[dict], None]) -> str:
        cal = json.loads(json.dumps(self.cal_doc))
        edit(cal["models"]["alexnet"])
        self.file("edited.json", json.dumps(cal))
        return self.with_cal("edited.json")


def _set(path: str, value) -> Callable[[Workspace], tuple[list[str], str]]:
    """A case that sets one (dotted) field of the scenario; stderr must name the field."""

    def case(ws: Workspace):
        node = ws.doc
        *head, last = path.split(".")
        for k in head:
            node = node.setdefault(k, {})
        node[last] = value
        return [ws.scenario()], path

    return case


def _parquet(ws: Workspace, name: str) -> Path:
    p = ws.root / name
    pd.DataFrame({"model": ["alexnet"], "point": [1], "latency_s": [0.1]}).to_parquet(p)
    return p


def _user_policy(ws: Workspace, body: str, target: str, params: dict | None = None):
    ws.file("pol.py", body)
    spec = {"policy": f"pol.py:{target}", **({"params": params} if params else {})}
    return [ws.with_policy(spec)], "policies.0"


def _alias_bomb(doc: dict, levels: int) -> str:
    """The scenario with its bandwidth steps an alias of aliases: 10**(levels+1) values."""
    lines = ["  a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    body = yaml.safe_dump({k: v for k, v in doc.items() if k != "traces"})
    return (
        "x-bomb:\n"
        + "\n".join(lines)
        + f"\n{body}traces:\n  bandwidth_mbps: {{steps: *a{levels}}}\n"
    )


CASES: dict[str, Callable[[Workspace], tuple[list[str], str]]] = {
    # -- the scenario file itself --------------------------------------------------
    "scenario missing": lambda ws: ([str(ws.root / "nope.yaml")], "nope.yaml"),
    "scenario is a folder": lambda ws: (
        [str(ws.file("d/x", "").parent)],
        str(ws.root / "d"),
    ),
    "scenario binary": lambda ws: ([str(ws.file("b.yaml", b"\x00\x01\x02name"))], "b.yaml"),
    "scenario not utf-8": lambda ws: (
        [str(ws.file("l.yaml", "name: caf\xe9\n".encode("latin-1")))],
        "l.yaml",
    ),
    "scenario is parquet": lambda ws: ([str(_parquet(ws, "p.yaml"))], "p.yaml"),
    "scenario bad yaml": lambda ws: ([str(ws.file("y.yaml", "name: [t\n"))], "y.yaml"),
    "scenario a list": lambda ws: ([str(ws.file("l.yaml", "- 1\n- 2\n"))], "l.yaml"),
    "scenario empty": lambda ws: ([str(ws.file("e.yaml", ""))], "e.yaml"),
    # ten short lines of aliases of aliases: 23 million values ("a billion laughs" at
    # two levels more took minutes and gigabytes before it was refused by its size)
    "scenario YAML aliases that expand to millions": lambda ws: (
        [str(ws.file("bomb.yaml", _alias_bomb(ws.doc, levels=6)))],
        "aliases",
    ),
    "scenario python tag": lambda ws: (
        [str(ws.file("t.yaml", "name: !!python/object:os.system ls\n"))],
        "t.yaml",
    ),
    # -- scenario fields -------------------------------------------------------------
    "model missing": lambda ws: (ws.doc.pop("model"), [ws.scenario()], "model")[1:],
    "unknown field": _set("colour", "red"),
    "duration negative": _set("duration_s", -5),
    "duration nan": _set("duration_s", float("nan")),
    "duration inf": _set("duration_s", float("inf")),
    "duration a word": _set("duration_s", "long"),
    "rate zero": _set("arrivals.rate_hz", 0),
    "rate nan": _set("arrivals.rate_hz", float("nan")),
    "arrival kind unknown": _set("arrivals.kind", "bursty"),
    "deadline negative": _set("deadline_s", -1),
    "one way latency negative": _set("one_way_latency_s", -0.1),
    "cloud servers zero": _set("cloud.servers", 0),
    "cloud servers fractional": _set("cloud.servers", 1.5),
    "observe noise negative": _set("observe.noise", -1),
    "pause negative": _set("repartition.pause_s", -1),
    "name escapes results": _set("name", "../../x"),
    "name with a slash": _set("name", "a/b"),
    "name empty": _set("name", ""),
    "seed negative": _set("seeds", [-1]),
    "seed repeated": _set("seeds", [1, 1]),
    "seed a word": _set("seeds", ["one"]),
    "seeds empty": _set("seeds", []),
    "policies empty": _set("policies", []),
    "limits max_frames zero": _set("limits.max_frames", 0),
    # -- traces ------------------------------------------------------------------
    "trace two sources": lambda ws: (
        [ws.with_trace({"constant": 5, "file": "traces/x.txt"})],
        "traces.bandwidth_mbps",
    ),
    "trace constant negative": lambda ws: ([ws.with_trace({"constant": -3})], "bandwidth_mbps"),
    "steps not from zero": lambda ws: (
        [ws.with_trace({"steps": [[10, 5], [20, 50]]})],
        "traces.bandwidth_mbps.steps",
    ),
    "steps empty": lambda ws: ([ws.with_trace({"steps": []})], "traces.bandwidth_mbps"),
    "steps nan": lambda ws: (
        [ws.with_trace({"steps": [[0, 5], [1, float("nan")]]})],
        "traces.bandwidth_mbps",
    ),
    "steps time goes back": lambda ws: (
        [ws.with_trace({"steps": [[0, 5], [10, 6], [5, 7]]})],
        "traces.bandwidth_mbps.steps",
    ),
    "bandwidth zero throughout": lambda ws: (
        [ws.with_trace({"steps": [[0, 0], [5, 0]], "end": "loop"})],
        "traces.bandwidth_mbps",
    ),
    "trace value huge": lambda ws: ([ws.with_trace({"constant": 1e300})], "bandwidth_mbps"),
    "trace scaled huge": lambda ws: (
        [ws.with_trace({"constant": 10, "scale": 1e299})],
        "traces.bandwidth_mbps",
    ),
    "trace file missing": lambda ws: ([ws.with_trace({"file": "traces/none.txt"})], "none.txt"),
    "trace file a folder": lambda ws: ([ws.with_trace({"file": "traces"})], "traces"),
    "trace file binary": lambda ws: (
        (ws.file("traces/b.txt", b"0 1\x00\x00\xff"), [ws.with_trace({"file": "traces/b.txt"})])[1],
        "b.txt",
    ),
    "trace file not utf-8": lambda ws: (
        (
            ws.file("traces/l.txt", "0 1 # caf\xe9\n".encode("latin-1")),
            [ws.with_trace({"file": "traces/l.txt"})],
        )[1],
        "l.txt",
    ),
    "trace three columns": lambda ws: (
        (ws.file("traces/c.txt", "0 1 2\n"), [ws.with_trace({"file": "traces/c.txt"})])[1],
        "c.txt:1",
    ),
    "trace non-numeric": lambda ws: (
        (ws.file("traces/n.txt", "0 fast\n"), [ws.with_trace({"file": "traces/n.txt"})])[1],
        "n.txt:1",
    ),
    "trace time in the far future": lambda ws: (
        (ws.file("traces/f.txt", "0 1\n1e12 2\n"), [ws.with_trace({"file": "traces/f.txt"})])[1],
        "f.txt:2",
    ),
    "csv trace missing column": lambda ws: (
        (
            ws.file("traces/a.csv", "t,v\n0,1\n"),
            [ws.with_trace({"file": "traces/a.csv", "format": "csv"})],
        )[1],
        "a.csv",
    ),
    # a row longer than the header (its cells would be read shifted) and a header that
    # names the value column twice (the last one was read, silently): audit of 1 Dec
    "csv trace row longer than the header": lambda ws: (
        (
            ws.file("traces/r.csv", "time_s,value\n0,5,7,8\n1,6\n"),
            [ws.with_trace({"file": "traces/r.csv", "format": "csv"})],
        )[1],
        "r.csv:2",
    ),
    "csv trace value column twice": lambda ws: (
        (
            ws.file("traces/d.csv", "time_s,value,value\n0,5,6\n"),
            [ws.with_trace({"file": "traces/d.csv", "format": "csv"})],
        )[1],
        "d.csv:1",
    ),
    "mahimahi stamp 1e12 ms": lambda ws: (
        (
            ws.file("traces/m.txt", "0\n1\n1000000000000\n"),
            [ws.with_trace({"file": "traces/m.txt", "format": "mahimahi"})],
        )[1],
        "m.txt",
    ),
    "mahimahi not an integer": lambda ws: (
        (
            ws.file("traces/m2.txt", "0\n1.5\n"),
            [ws.with_trace({"file": "traces/m2.txt", "format": "mahimahi"})],
        )[1],
        "m2.txt:2",
    ),
    "gnettrack bad timestamp": lambda ws: (
        (
            ws.file("traces/g.csv", "Timestamp,UL_bitrate\nyesterday,100\n"),
            [ws.with_trace({"file": "traces/g.csv", "format": "gnettrack"})],
        )[1],
        "g.csv:2",
    ),
    "trace format unknown": lambda ws: (
        [ws.with_trace({"file": "traces/x.txt", "format": "pcap"})],
        "traces.bandwidth_mbps.format",
    ),
    "edge cpu above calibrated": lambda ws: (
        (ws.doc["traces"].update(edge_cpu_pct={"constant": 150}), [ws.scenario()])[1],
        "traces.edge_cpu_pct",
    ),
    # -- calibration ---------------------------------------------------------------
    "model not calibrated": _set("model", "resnet152"),
    "calibration missing": lambda ws: ([ws.with_cal("none.json")], "none.json"),
    "calibration is a folder": lambda ws: ([ws.with_cal("traces")], "traces"),
    "calibration is a parquet store": lambda ws: (
        (_parquet(ws, "store.json"), [ws.with_cal("store.json")])[1],
        "store.json",
    ),
    "calibration binary": lambda ws: (
        (ws.file("bin.cal", b"\x89PNG\x00\x00"), [ws.with_cal("bin.cal")])[1],
        "bin.cal",
    ),
    "calibration truncated": lambda ws: (
        (ws.file("t.json", (ws.root / "cal.json").read_text()[:500]), [ws.with_cal("t.json")])[1],
        "t.json",
    ),
    "calibration foreign json": lambda ws: (
        (ws.file("f.json", '{"hello": 1}'), [ws.with_cal("f.json")])[1],
        "f.json",
    ),
    "calibration negative output bytes": lambda ws: (
        [ws.edited_cal(lambda m: m["points"][3].update(output_bytes=-5))],
        "edited.json",
    ),
    "calibration NaN spread": lambda ws: (
        [ws.edited_cal(lambda m: m["spread"]["edge"]["log_ratio"].__setitem__(0, float("nan")))],
        "edited.json",
    ),
    "calibration huge spread": lambda ws: (
        [ws.edited_cal(lambda m: m["spread"]["cloud"]["log_ratio"].__setitem__(-1, 1e6))],
        "edited.json",
    ),
    "calibration block time 1e308 s": lambda ws: (  # finite, yet every frame never finished
        [ws.edited_cal(lambda m: m["edge_block_s"]["values"][0][0].__setitem__(3, 1e308))],
        "edited.json",
    ),
    "calibration negative block time": lambda ws: (
        [ws.edited_cal(lambda m: m["edge_block_s"]["values"][0][0].__setitem__(3, -0.5))],
        "edited.json",
    ),
    # -- policies ------------------------------------------------------------------
    "policy unknown": lambda ws: ([ws.with_policy({"policy": "clever"})], "policies.0"),
    "static point missing": lambda ws: ([ws.with_policy({"policy": "static"})], "policies.0"),
    "static point 99": lambda ws: (
        [ws.with_policy({"policy": "static", "params": {"point": 99}})],
        "policies.0",
    ),
    "static point 4.7": lambda ws: (
        [ws.with_policy({"policy": "static", "params": {"point": 4.7}})],
        "policies.0",
    ),
    "reactive alpha 3": lambda ws: (
        [ws.with_policy({"policy": "reactive", "params": {"alpha": 3}})],
        "policies.0",
    ),
    "reactive alpha a word": lambda ws: (
        [ws.with_policy({"policy": "reactive", "params": {"alpha": "fast"}})],
        "policies.0",
    ),
    "reactive period negative": lambda ws: (
        [ws.with_policy({"policy": "reactive", "params": {"period_s": -1}})],
        "policies.0",
    ),
    "reactive period nan": lambda ws: (
        [ws.with_policy({"policy": "reactive", "params": {"period_s": float("nan")}})],
        "policies.0",
    ),
    "reactive hysteresis 1.5": lambda ws: (
        [ws.with_policy({"policy": "reactive", "params": {"hysteresis": 1.5}})],
        "policies.0",
    ),
    "reactive unknown param": lambda ws: (
        [ws.with_policy({"policy": "reactive", "params": {"speed": 1}})],
        "policies.0",
    ),
    "policy file missing": lambda ws: ([ws.with_policy({"policy": "no.py:f"})], "policies.0"),
    "policy module missing": lambda ws: (
        [ws.with_policy({"policy": "no_such_mod_xyz:f"})],
        "policies.0",
    ),
    "policy import fails": lambda ws: _user_policy(ws, "raise RuntimeError('boom')\n", "f"),
    "policy not callable": lambda ws: _user_policy(ws, "f = 3\n", "f"),
    "function policy period negative": lambda ws: _user_policy(
        ws, "def f(view):\n    return 6\n", "f", {"period_s": -2}
    ),
    "function policy period a word": lambda ws: _user_policy(
        ws, "def f(view):\n    return 6\n", "f", {"period_s": "soon"}
    ),
    "function policy extra param": lambda ws: _user_policy(
        ws, "def f(view):\n    return 6\n", "f", {"speed": 2}
    ),
    "class policy init fails": lambda ws: _user_policy(
        ws,
        "class P:\n    def __init__(self):\n        raise ValueError('no')\n",
        "P",
    ),
    "duplicate policy names": lambda ws: (
        (
            ws.doc.update(policies=[{"policy": "all-edge"}, {"policy": "all-edge"}]),
            [ws.scenario()],
        )[1],
        "policies.1",
    ),
    # -- bounded resources ---------------------------------------------------------
    "duration 1e9": _set("duration_s", 1e9),
    "rate 1e6 per second": _set("arrivals.rate_hz", 1e6),
    "observe period 1e-9": _set("observe.period_s", 1e-9),
    "policy period 1e-7": lambda ws: (
        [ws.with_policy({"policy": "reactive", "params": {"period_s": 1e-7}})],
        "period_s",
    ),
    "looped trace steps over a long run": lambda ws: (
        (
            ws.doc.update(duration_s=1e6, arrivals={"rate_hz": 0.001}),
            [ws.with_trace({"steps": [[0, 5], [1e-3, 6]], "end": "loop"})],
        )[1],
        "traces.bandwidth_mbps",
    ),
    # -- command-line overrides ----------------------------------------------------
    "--seed -1": lambda ws: ([ws.scenario(), "--seed", "-1"], "--seed"),
    "--seed twice": lambda ws: ([ws.scenario(), "--seed", "3", "--seed", "3"], "--seed"),
    "--duration -5": lambda ws: ([ws.scenario(), "--duration", "-5"], "--duration"),
    "--duration nan": lambda ws: ([ws.scenario(), "--duration", "nan"], "--duration"),
    "--duration 0": lambda ws: ([ws.scenario(), "--duration", "0"], "--duration"),
    "--duration inf": lambda ws: ([ws.scenario(), "--duration", "inf"], "--duration"),
    "--duration past the scenario": lambda ws: (
        [ws.scenario(), "--duration", "30"],
        "--duration",
    ),
    # -- the results folder --------------------------------------------------------
    "--out an existing file": lambda ws: (
        [ws.scenario(), "--out", str(ws.file("taken.txt", "mine"))],
        "--out",
    ),
    "--out a foreign folder": lambda ws: (
        [ws.scenario(), "--out", str(ws.file("mine/notes.txt", "keep").parent)],
        "--out",
    ),
    "--out a folder whose run.json is nested too deeply": lambda ws: (
        [ws.scenario(), "--out", str(ws.file("deep/run.json", "[" * 10**5 + "]" * 10**5).parent)],
        "--out",
    ),
    "--out parent missing": lambda ws: (
        [ws.scenario(), "--out", str(ws.root / "no" / "such" / "res")],
        "--out",
    ),
    "--out parent a file": lambda ws: (
        [ws.scenario(), "--out", str(ws.file("f.txt", "x") / "res")],
        "--out",
    ),
    "--out not writable": lambda ws: ([ws.scenario(), "--out", "/proc/adaptsim-res"], "--out"),
    "--out the current folder": lambda ws: ([ws.scenario(), "--out", "."], "--out"),
    # -- admission ----------------------------------------------------------------------
    "admission drop unknown": _set("admission.drop", "late"),
    "admission drop a number": _set("admission.drop", 1),
    "admission queue limit negative": _set("admission.queue_limit.edge", -1),
    "admission queue limit fractional": _set("admission.queue_limit.uplink", 2.5),
    "admission queue limit a word": _set("admission.queue_limit.cloud", "many"),
    "admission queue limit unknown stage": _set("admission.queue_limit.gpu", 2),
    "admission unknown field": _set("admission.stale_s", 2),
    "admission not a mapping": _set("admission", "stale"),
}


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under root with a hash of its bytes."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        out[str(d.relative_to(root)) + "/"] = ""
        for f in filenames:
            if "__pycache__" in dirpath:
                continue
            out[str((d / f).relative_to(root))] = hashlib.sha256((d / f).read_bytes()).hexdigest()
        dirnames[:] = [x for x in dirnames if x != "__pycache__"]
    return out


def test_there_are_at_least_sixty_distinct_cases():
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, monkeypatch):
    ws = Workspace(tmp_path)
    args, names = CASES[case](ws)
    monkeypatch.chdir(tmp_path)  # the default results/NAME would land here
    before = _snapshot(tmp_path)
    r = runner.invoke(app, ["run", *args])
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2, (r.exit_code, r.stderr, r.exception)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("adaptsim: error: ")
    assert names in lines[0], (names, lines[0])
    assert _snapshot(tmp_path) == before, "the refusal created or changed files"
    assert not Path("/proc/adaptsim-res").exists()


def test_a_good_run_in_the_same_workspace_writes_results(tmp_path, monkeypatch):
    """The workspace the cases start from is itself valid: each case's error is its own."""
    ws = Workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["run", ws.scenario()])
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "results/t/summary.csv").is_file()
    assert not [p for p in (tmp_path / "results").iterdir() if p.name.startswith(".")]
    shutil.rmtree(tmp_path / "results")
