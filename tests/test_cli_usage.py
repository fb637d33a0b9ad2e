"""typer's own refusals through the real entry point: one line, exit 2, no usage box."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = [
    (["run", "--duration", "abc", "x.yaml"], "--duration"),
    (["bench", "--repeats", "0"], "--repeats"),
    (["models", "--format", "xml"], "--format"),
    (["study", "--source", "foo"], "--source"),
    (["run", "x.yaml", "--nosuch"], "--nosuch"),
    (["run"], "scenario"),
    (["nosuchcommand"], "nosuchcommand"),
    # sizes that started a billion of something: threads, benchmark runs, twin draws
    (["serve", "--role", "cloud", "--listen", ":0", "--workers", "1000000000"], "--workers"),
    (["bench", "--repeats", "1000000000"], "--repeats"),
    (["validate", "x.yaml", "--noise-draws", "1000000000"], "--noise-draws"),
]


def _main(args: list[str]) -> subprocess.CompletedProcess:
    code = "from adaptsim.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(("args", "names"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_usage_errors_are_one_line_and_exit_2(args, names):
    r = _main(args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("adaptsim: error: ") and names in lines[0]
    assert "Traceback" not in r.stderr and "╭" not in r.stderr and r.stdout == ""


def test_help_still_exits_0_and_no_command_shows_help():
    r = _main(["--help"])
    assert r.returncode == 0 and "run" in r.stdout
    r = _main([])
    assert r.returncode == 2 and "Usage" in r.stdout + r.stderr
