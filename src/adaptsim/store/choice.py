"""Choices a caller makes over what a store or calibration holds, and the error when
the data cannot meet one.

Libraries speak of a choice in their own words ("models", "edge host"); a command
line names the flag that made it (``--models``, ``--edge-host``). A
:class:`ChoiceError` keeps its message as a template with a field per choice, so
that the library's ``str()`` reads in words and the CLI renders the same sentence
with its flags (:meth:`ChoiceError.render`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from adaptsim.errors import UserError

__all__ = ["WORDS", "ChoiceError", "choose_models"]

# How the library names each choice; a CLI maps the same keys to its flags.
WORDS = {
    "models": "models",
    "edge_host": "edge host",
    "cloud_host": "cloud host",
    "summary": "summary",
    "source": "source",
    "check": "check",
}


class ChoiceError(UserError):
    """A choice (models, hosts, summary, ...) the data cannot meet.

    Args:
        template: the message; ``{models}``, ``{edge_host}``, ... (the keys of
            :data:`WORDS`) stand for the choices, other fields for ``values``.
        values: the message's other fields (inserted as they are).
    """

    def __init__(self, template: str, **values: object):
        self.template, self.values = template, values
        super().__init__(self.render(WORDS))

    def render(self, names: Mapping[str, str]) -> str:
        """The message with each choice called by ``names`` (e.g. a CLI's flags)."""
        return self.template.format(**{**WORDS, **names, **self.values})


def choose_models(asked: Iterable[str] | None, available: Iterable[str], holder: str) -> list[str]:
    """The models asked for, in the order of ``available``; all of them when none is asked.

    Args:
        asked: model names the caller chose, or None for all.
        available: the models ``holder`` has.
        holder: what holds them, for the message ("the store", "the calibration").

    Raises:
        ChoiceError: naming every model asked for that ``holder`` lacks, and what it has.
    """
    have = list(available)
    if not asked:
        return have
    wanted = set(asked)
    unknown = sorted(wanted - set(have))
    if unknown:
        raise ChoiceError(
            "{models}: {unknown} not in {holder}; it has {have}",
            unknown=", ".join(unknown),
            holder=holder,
            have=", ".join(have) or "none",
        )
    return [m for m in have if m in wanted]
