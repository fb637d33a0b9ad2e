"""A write that fails midway leaves the old file as it was and no temporary file behind."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from adaptsim.atomic import write_atomic
from adaptsim.errors import UserError
from adaptsim.store import read_store, write_store


class Planted(Exception):
    """The failure a test plants in the middle of a write."""


def _half_then(exc: BaseException, seen: list):
    """A writer that writes half its content to the temporary file, then fails."""

    def write(tmp):
        with open(tmp, "w") as fh:
            fh.write("new content, first half ")
            fh.flush()
            seen.append((tmp, tmp.read_text()))  # the half really is on disk
            raise exc

    return write


@pytest.mark.parametrize(
    "exc", [Planted("disk full"), KeyboardInterrupt()], ids=["error", "ctrl-c"]
)
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, exc):
    path = tmp_path / "out" / "result.csv"
    path.parent.mkdir()
    path.write_text("old content\n")
    seen: list = []
    with pytest.raises(type(exc)):
        write_atomic(path, _half_then(exc, seen))
    ((tmp, half),) = seen
    assert half.startswith("new content") and tmp.parent == path.parent  # same filesystem
    assert path.read_text() == "old content\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.csv"]


def test_a_failed_first_write_leaves_nothing(tmp_path):
    path = tmp_path / "fresh.csv"
    with pytest.raises(Planted):
        write_atomic(path, _half_then(Planted("boom"), []))
    assert list(tmp_path.iterdir()) == []


def test_a_whole_write_replaces_the_file(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text("old")
    write_atomic(path, lambda tmp: tmp.write_text("new"))
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["r.txt"]


@pytest.mark.needs_root
def test_a_store_write_that_runs_out_of_disk_keeps_the_old_store(tmp_path, data_dir):
    """The real store writer on a real, too small filesystem (a tmpfs): Parquet fails
    midway with ENOSPC, and the store that was there is still whole."""
    from adaptsim.importers import import_adaptivednn, import_scission

    old_frame, _ = import_scission(data_dir / "scission/blocks.csv", tmp_path / "old.parquet")
    new_frame, _ = import_adaptivednn(
        [data_dir / "adaptivednn/2020-05-27"], tmp_path / "new.parquet"
    )
    old_size = (tmp_path / "old.parquet").stat().st_size
    new_size = (tmp_path / "new.parquet").stat().st_size
    assert new_size > 4 * old_size
    small = tmp_path / "small"
    small.mkdir()
    size = (old_size + new_size // 2) // 4096 * 4096 + 4096
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(small)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        store = small / "s.parquet"
        shutil.copy(tmp_path / "old.parquet", store)
        before = store.read_bytes()
        sources = {s: {} for s in new_frame["source"].unique()}
        with pytest.raises(UserError, match=r"cannot write .*No space left on device"):
            write_store(store, new_frame, sources)  # one line for the user, not a traceback
        assert store.read_bytes() == before
        assert [p.name for p in small.iterdir()] == ["s.parquet"]
        assert len(read_store(store)[0]) == len(old_frame)
    finally:
        subprocess.run(["umount", str(small)], check=True)


def _swap_killed(tmp_path, sig: str, ignored: bool = False):
    """A staged folder swapped over an old one while ``sig`` comes in the middle of the
    swap (between its two renames), in a child process (``ignored``: one that ignores
    ``sig``, as nohup does SIGHUP)."""
    script = f"""
import os, signal
from pathlib import Path
from adaptsim.atomic import StagedFolder
if {ignored}:
    signal.signal(signal.{sig}, signal.SIG_IGN)
target = Path({str(tmp_path / "out")!r})
with StagedFolder(target, "--out", lambda _: True) as staged:
    (staged.path / "new.txt").write_text("new")
    real_rename = os.rename
    def rename(a, b):  # the signal lands right after the old folder moved away
        real_rename(a, b)
        if Path(b).name.startswith(".out.old"):
            os.kill(os.getpid(), signal.{sig})
    os.rename = rename
    staged.commit()
"""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_kill_in_the_middle_of_a_folder_swap_waits_for_its_end(tmp_path, sig):
    """Only Ctrl-C was held back for the swap: a SIGTERM between its two renames ended
    the process with the target gone and the old folder under a hidden name; a Ctrl-C
    held there was raised before the old folder was removed, which stayed hidden."""
    done = _swap_killed(tmp_path, sig)
    assert done.returncode != 0  # the signal still ends it, after the swap
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], done.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["new.txt"]


def test_an_ignored_signal_stays_ignored_during_a_swap(tmp_path):
    """nohup ignores SIGHUP: holding it back for the swap must not make it an interrupt."""
    done = _swap_killed(tmp_path, "SIGHUP", ignored=True)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["new.txt"]
