"""Input files recognised by their content, not their name, with one-line errors.

Every command reads files the user names: YAML scenarios, traces, stores,
calibrations, models. These helpers say in one line what is wrong with such a
file and how to fix it (missing, a folder where a file is wanted, binary, UTF-16
or not UTF-8), tell a Parquet store from a JSON calibration by their first bytes,
read YAML refusing what PyYAML would otherwise accept silently (a key given
twice: the last one would win unseen), and read JSON with its line and column
named when it is malformed (or nested too deeply for Python's parser).

Files saved by spreadsheet programs and Windows editors start with a UTF-8 byte
order mark; it is dropped, not treated as part of the first line or column name.
Messages that quote a file's content quote at most :data:`EXCERPT_CHARS`
characters of it (:func:`excerpt`), so a one-line error stays one short line even
for a malformed line megabytes long.
"""

from __future__ import annotations

import codecs
import json
from enum import StrEnum
from pathlib import Path

import yaml

from adaptsim.errors import UserError

__all__ = [
    "EXCERPT_CHARS",
    "MAX_YAML_NODES",
    "FileKind",
    "excerpt",
    "input_file",
    "kind_of",
    "load_json",
    "load_yaml",
    "read_text",
]

_PARQUET_MAGIC = b"PAR1"
EXCERPT_CHARS = 60
# Values a YAML document may expand to (a scenario or sweep has hundreds; an inline
# trace of 100,000 steps has 300,000): beyond, aliases of aliases are a "billion laughs".
MAX_YAML_NODES = 2_000_000
_UTF16_32_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


class FileKind(StrEnum):
    parquet = "parquet"
    json = "json"
    other = "other"


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``repr`` of ``text`` cut to about ``limit`` characters, for error messages."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def input_file(path: str | Path, what: str) -> Path:
    """``path`` as an existing regular file, or a one-line :class:`UserError`."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{what} {p} is a folder; give a file")
    if not p.exists():
        raise UserError(f"{what} {p} does not exist")
    if not p.is_file():
        raise UserError(f"{what} {p} is not a regular file")
    return p


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path`` (a leading byte order mark dropped), or a one-line error
    naming it (binary, UTF-16/32, not UTF-8)."""
    p = input_file(path, what)
    with p.open("rb") as fh:  # the head first: a wrong file (a video, a pcap) is not read whole
        data = fh.read(8192)
        if data and b"\x00" not in data:
            data += fh.read()
    for bom, name in _UTF16_32_BOMS:
        if data.startswith(bom):
            raise UserError(f"{what} {p} is {name} text; save it as UTF-8")
    if b"\x00" in data[:8192]:
        raise UserError(f"{what} {p} is a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{what} {p} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None


def kind_of(path: str | Path, what: str) -> FileKind:
    """Parquet (by its magic bytes), JSON (first non-blank character ``{``) or other."""
    p = input_file(path, what)
    with p.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(_PARQUET_MAGIC):
        return FileKind.parquet
    if head.removeprefix(codecs.BOM_UTF8).lstrip().startswith(b"{"):
        return FileKind.json
    return FileKind.other


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that gives a key twice."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue  # merge keys (<<) may be overridden; complex keys PyYAML refuses
                key = self.construct_object(key_node)
                if key in seen:
                    raise _DuplicateKey(key, seen[key], key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key, first_line: int, mark):
        super().__init__(f"key {key!r} is given twice (first on line {first_line})")
        self.problem = f"key {key!r} is given twice, first on line {first_line}; keep one"
        self.problem_mark = mark


def load_yaml(path: str | Path, what: str):
    """The YAML document in ``path`` (safe types only), or a one-line error with its line.

    A key given twice in one mapping is refused (PyYAML would keep the last one
    silently), as are tags that build Python objects, documents nested too deeply
    to be a configuration, and aliases that expand to more than
    :data:`MAX_YAML_NODES` values (ten lines of ``&a [*b, *b, ...]`` are a billion
    values: validating them took minutes and gigabytes).
    """
    p = Path(path)
    text = read_text(p, what)
    try:
        loader = _UniqueKeyLoader(text)  # a SafeLoader: safe types only
    except yaml.YAMLError as exc:  # its reader checks every character first
        raise _not_yaml(p, text, exc) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_YAML_NODES:  # aliases of aliases: a few lines that expand to billions
            raise UserError(
                f"{p}: YAML that expands to {size:,} values through its aliases (*name); at "
                f"most {MAX_YAML_NODES:,} make a {what}: write the values out, or put a long "
                "trace in a file"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _not_yaml(p, text, exc) from None
    except RecursionError:
        raise UserError(f"{p}: YAML nested too deeply to be a {what}") from None
    finally:
        loader.dispose()


def _not_yaml(p: Path, text: str, exc: yaml.YAMLError) -> UserError:
    """The one line for YAML that does not parse, with its line where known."""
    mark = getattr(exc, "problem_mark", None)
    line = f":{mark.line + 1}" if mark else ""
    at = getattr(exc, "position", None)  # a ReaderError (a control character): no mark
    if not mark and isinstance(at, int):
        line = f":{text.count(chr(10), 0, at) + 1}"
    # a ReaderError has no ``problem`` and its text runs over two lines: the first
    why = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return UserError(f"{p}{line}: not valid YAML ({why})")


def _expanded_size(node: yaml.Node, seen: dict[int, int]) -> int:
    """How many nodes ``node`` holds once every alias is expanded (a node an alias
    shares is counted each time it is used, computed once)."""
    key = id(node)
    if key not in seen:
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        seen[key] = 1 + sum(_expanded_size(c, seen) for c in children)
    return seen[key]


def load_json(path: str | Path, what: str):
    """The JSON document in ``path``, or a one-line error naming the file, line and column.

    The text is read as :func:`read_text` reads it (a byte order mark dropped; binary,
    UTF-16/32 and non-UTF-8 files refused); NaN and infinities, which Python writes
    and reads, are accepted as they are: callers check their values.
    """
    p = Path(path)
    text = read_text(p, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{what} {p}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})"
        ) from None
    except RecursionError:
        raise UserError(f"{what} {p}: JSON nested too deeply to be a {what}") from None
