"""The library's choices as this command line's flags, and output paths checked early.

Libraries name a choice in words (``ChoiceError``: "models", "edge host"); the
commands that make those choices render the same message with their flags, so
``calibrate``, ``study`` and ``import`` say ``--models`` and ``--edge-host`` alike.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from adaptsim.atomic import check_writable_place
from adaptsim.errors import UserError

__all__ = ["FLAGS", "as_flags", "check_seeds", "model_list", "output_file", "store_output"]

# The library's choices (adaptsim.store.WORDS) by the flags that make them.
FLAGS = {
    "models": "--models",
    "edge_host": "--edge-host",
    "cloud_host": "--cloud-host",
    "summary": "--summary",
    "source": "--source",
    "check": "--check",
}


@contextlib.contextmanager
def as_flags():
    """Re-raise a library :class:`~adaptsim.store.ChoiceError` naming this CLI's flags."""
    from adaptsim.store import ChoiceError

    try:
        yield
    except ChoiceError as exc:
        raise UserError(exc.render(FLAGS)) from None


def model_list(values: list[str] | None) -> list[str] | None:
    """``--models`` as every command takes it: repeated, comma-separated, or both
    (``-m alexnet,mobilenet -m resnet50``); None (every model) when not given."""
    if not values:
        return None
    names = [m.strip() for v in values for m in v.split(",") if m.strip()]
    if not names:
        raise UserError("--models: no model named; give e.g. --models alexnet,resnet50")
    return names


def check_seeds(seeds, flag: str = "--seed") -> None:
    """Refuse, before any work, a seed numpy's generators cannot take (they take 0 to
    2**63 - 1 here, a store's int64): a negative one failed after the work was done."""
    bad = [s for s in seeds if not 0 <= s < 2**63]
    if bad:
        raise UserError(f"{flag} {bad[0]}: seeds are integers from 0 to 2**63 - 1")


def output_file(path: Path, what: str) -> Path:
    """``path`` as a file this command can write, checked before any work starts."""
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name")
    check_writable_place(path, what)  # the nearest existing folder must take a new file
    return path


def store_output(path: Path, what: str = "--out") -> Path:
    """``path`` as a store this command can write or merge into, checked before any work.

    Commands that write a store merge into an existing one: a file there that is not
    a store (a calibration, a CSV) would otherwise be found only at the first write,
    after the import or, for ``profile``, after minutes of measuring.
    """
    output_file(path, what)
    if path.exists():
        from adaptsim.store import read_store

        try:
            read_store(path)
        except UserError as exc:
            raise UserError(
                f"{what} {path} exists and is not a store to merge into ({exc}); "
                "name a new file or the store itself"
            ) from None
    return path
