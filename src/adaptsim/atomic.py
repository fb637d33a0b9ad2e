"""Writing files and folders so that a crash or Ctrl-C never leaves a half-written one.

:func:`write_atomic` writes one file beside its target and renames it into place;
:func:`write_together` does so for files that belong together (a report's page and
its images): all are written first, then all renamed, so a failure or Ctrl-C
leaves the previous set, not a mix of old and new.
:class:`StagedFolder` does the same for a whole folder (a run's results): the
folder is built as a hidden sibling and swapped into place at the end, with
Ctrl-C (and SIGTERM, SIGHUP) held back during the swap, so the target is always either the previous
folder untouched or the new one complete.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from adaptsim.errors import UserError

__all__ = [
    "StagedFolder",
    "check_writable_place",
    "sigint_deferred",
    "write_atomic",
    "write_together",
]


# held back with Ctrl-C while files are swapped: a kill then lands after the swap
_STOPPING = (signal.SIGTERM, signal.SIGHUP)


def check_writable_place(path: str | Path, what: str) -> None:
    """Refuse, before any work, a ``path`` whose nearest existing folder above it is a
    file or cannot take a new entry (what a write would find only at its end)."""
    p = Path(path)
    for parent in p.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{what} {p}: {parent} is not a folder")
            # os.access says yes to root anywhere: a file made and removed again says
            # what a write will meet (a read-only or special file system, a full quota)
            probe = parent / f".{p.name or 'adaptsim'}.probe-{os.getpid()}"
            try:
                os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                os.unlink(probe)
            except OSError as exc:
                raise UserError(
                    f"{what} {p}: cannot write in {parent} ({exc.strerror}); give a place "
                    "you can write to"
                ) from None
            return


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place
    (a write the system refuses is a :class:`UserError`; the old file stays)."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        tmp.replace(p)
    except OSError as exc:  # a full disk, a read-only or vanished folder: one line, not a trace
        raise UserError(f"cannot write {p} ({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return p


def write_together(writers: dict[Path, Callable[[Path], object]]) -> list[Path]:
    """Call each ``write(tmp)`` on a temporary file beside its target, then rename them
    all into place with Ctrl-C held back: the targets are all old or all new.

    A target that is a folder is refused before anything is written; a write the
    system refuses is a :class:`UserError` (the old files stay, no temporary stays).
    """
    for path in writers:
        if Path(path).is_dir():
            raise UserError(f"cannot write {path}: it is a folder; move it away")
    tmps = {Path(p): Path(p).with_name(f".{Path(p).name}.{os.getpid()}.tmp") for p in writers}
    try:
        for path, write in writers.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            write(tmps[Path(path)])
        with sigint_deferred(also=_STOPPING):
            for path, tmp in tmps.items():
                tmp.replace(path)
    except OSError as exc:
        where = exc.filename or next(iter(writers))
        raise UserError(f"cannot write {where} ({exc.strerror or exc})") from None
    finally:
        for tmp in tmps.values():
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    return list(tmps)


@contextmanager
def sigint_deferred(also: tuple[int, ...] = ()) -> Iterator[None]:
    """Hold Ctrl-C (and the signals ``also``, e.g. SIGTERM, unless ignored) back for a few
    statements; raise KeyboardInterrupt after them if one came.

    A Python-level handler, not a signal mask: a mask covers one thread only, and
    the libraries adaptsim uses run threads of their own that would take the signal.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = [signal.SIGINT, *(s for s in also if signal.getsignal(s) is not signal.SIG_IGN)]
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if caught:
        raise KeyboardInterrupt


def _remove_orphans(parent: Path, name: str) -> None:
    """Staging and old folders of ``name`` left by a process that was killed (kill -9)."""
    for p in parent.glob(f".{glob.escape(name)}.*-*"):
        kind, _, pid = p.name.rpartition("-")
        if not (kind.endswith((".staging", ".old")) and pid.isdigit()) or not p.is_dir():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass  # alive, or not ours to ask about: leave it


class StagedFolder:
    """A folder built beside its target and swapped into place whole.

    Creating one checks the target up front (before any expensive work): it must
    not be a file, an existing folder must be one ``replaceable`` accepts (so a
    typo cannot wipe an unrelated folder), and its parent must exist (unless
    ``make_parent``); entering it creates the hidden staging folder there, which
    proves the parent writable before any work.

    Use as a context manager: leaving it by an exception (Ctrl-C included) removes
    the staging folder and leaves the target as it was; :meth:`commit` swaps it in.

    Args:
        target: the folder to produce.
        what: how error messages name it (e.g. ``--out``).
        replaceable: whether an existing folder may be replaced.
        make_parent: create a missing parent instead of refusing.
    """

    def __init__(
        self,
        target: str | Path,
        what: str,
        replaceable: Callable[[Path], bool],
        make_parent: bool = False,
    ):
        self.target = Path(target)
        t, parent = self.target, self.target.parent
        if t.name in ("", ".", ".."):
            raise UserError(f"{what} {t}: give a folder name (not '.', '..' or '/')")
        if t.exists() and not t.is_dir():
            raise UserError(f"{what} {t} is a file, not a folder; give a folder name")
        if t.is_dir() and not replaceable(t):
            raise UserError(
                f"{what} {t} is a folder that does not hold adaptsim results; "
                "give a new folder name (adaptsim replaces only its own results folders)"
            )
        if parent.exists() and not parent.is_dir():
            raise UserError(f"{what} {t}: {parent} is a file, not a folder")
        self._made_parent = not parent.exists()
        if self._made_parent:
            if not make_parent:
                raise UserError(f"{what} {t}: folder {parent} does not exist; create it first")
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"{what} {t}: cannot create {parent} ({exc.strerror})") from None
        _remove_orphans(parent, t.name)
        self.path = parent / f".{t.name}.staging-{os.getpid()}"
        self.committed = False
        self._what = what

    def commit(self) -> Path:
        """Swap the staged folder into place (the previous one, if any, is removed)."""
        trash = self.target.parent / f".{self.target.name}.old-{os.getpid()}"
        try:
            with sigint_deferred(also=_STOPPING):  # raises a held signal at its end
                moved = self.target.exists()
                if moved:
                    os.rename(self.target, trash)
                try:
                    os.rename(self.path, self.target)
                except OSError:
                    if moved:
                        os.rename(trash, self.target)
                    raise
                self.committed = True
        finally:  # the previous folder goes, an interrupt held for the swap or not
            if self.committed:
                shutil.rmtree(trash, ignore_errors=True)
        return self.target

    def discard(self) -> None:
        """Remove the staging folder (the target stays as it was); a Ctrl-C that comes
        meanwhile waits until it is gone."""
        if not self.committed:
            with sigint_deferred(also=_STOPPING):
                shutil.rmtree(self.path, ignore_errors=True)
                if self._made_parent:  # leave no empty results/ behind either
                    with contextlib.suppress(OSError):
                        self.target.parent.rmdir()

    def __enter__(self) -> StagedFolder:
        """Make the staging folder (so an unwritable place is refused before any work),
        with Ctrl-C held back and the folder removed again if one came: an interrupt
        at any moment leaves no staging folder behind."""
        t, parent = self.target, self.target.parent
        try:
            with sigint_deferred(also=_STOPPING):
                shutil.rmtree(self.path, ignore_errors=True)
                try:
                    self.path.mkdir()
                except OSError as exc:
                    raise UserError(
                        f"{self._what} {t}: cannot write in {parent} ({exc.strerror})"
                    ) from None
        except KeyboardInterrupt:
            self.discard()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.discard()
