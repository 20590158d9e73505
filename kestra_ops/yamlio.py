"""Load YAML safely, keeping the line and column of every node (ruamel round-trip).

The one YAML loader of values files, flow files, kestra-ops.yaml and ConfigMap documents (a
neutral module: settings, values, checks and workflows all read YAML through it).

Hostile input is refused with a :class:`YamlLoadError` naming the rule, file, line and column:
anything that is not a regular file (a FIFO, /dev/zero: refused before reading), files over
:data:`MAX_BYTES` (read with a hard cap), bytes that are not UTF-8, syntax errors (tabs get their
own rule), duplicate keys, several documents, alias bombs whose expansion exceeds
:data:`MAX_NODES`, and the shape limits of :mod:`kestra_ops.yamlshape` (depth, nodes as written,
merge keys, collections as keys): checked by :func:`check_shape`, an event pass (libyaml: no
composing, no recursion) BEFORE any composer runs, so that no input can recurse the C composer
into a crash or make the Python one build millions of nodes; the round-trip composer checks the
same while composing (texts under :data:`SHAPE_PASS_CHARS` rely on that alone: they cannot hold
enough nodes to be slow).
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Any

from kestra_ops.errors import InvalidInput
from kestra_ops.yamlshape import (MAX_DEPTH, MAX_DOC_NODES, MAX_MERGES,  # noqa: F401
                                  ShapeError, guarded_classes, scan)

MAX_BYTES = 4 * 1024 * 1024  # values files are kilobytes; anything this large is a mistake
MAX_NODES = 200_000  # nodes after alias expansion
# below this size the round-trip composer's own guards (depth, nodes, complex keys, merges) bound
# the work to about a second, and the event pass (which imports PyYAML, ~10 ms) is skipped
SHAPE_PASS_CHARS = 64 * 1024


@dataclass(frozen=True)
class Location:
    """Where a node stands: 1-based line and column."""

    file: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class YamlLoadError(InvalidInput):
    """The file cannot be read as a YAML document of values."""

    def __init__(self, rule: str, location: Location, message: str, hint: str | None = None):
        super().__init__(f"{location}: {message}", hint=hint)
        self.rule = rule
        self.location = location
        self.detail = message


@dataclass
class YamlDoc:
    """One loaded YAML document: its data and how messages name its file."""

    path: Path
    data: Any  # CommentedMap / CommentedSeq / scalar / None (empty document)
    name: str = ""  # how messages name the file
    line: int = 1  # where the document's content starts (for errors about the whole document)

    @property
    def empty(self) -> bool:
        return self.data is None


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.Scanner, yaml.Composer, yaml.Constructor = guarded_classes()
    yaml.allow_duplicate_keys = False
    yaml.preserve_quotes = True
    return yaml


def _mark_loc(name: str, mark) -> Location:
    return Location(name, mark.line + 1, mark.column + 1) if mark else Location(name)


def _syntax_mark(err):
    """Where to point for a syntax error: the parser's problem mark, except when that is the end
    of the stream or the error is an unclosed flow collection / quoted scalar: then the place
    where the unclosed construct opened says more (the end of the file says nothing)."""
    context = err.context or ""
    if err.context_mark is not None and (
            "end of stream" in (err.problem or "")
            or context.startswith(("while parsing a flow sequence", "while parsing a flow mapping",
                                   "while scanning a quoted",
                                   "while scanning a double-quoted",
                                   "while scanning a single-quoted"))):
        return err.context_mark
    return err.problem_mark or err.context_mark


def _document_start(yaml, text: str, index: int) -> int | None:
    """1-based line where document ``index`` (0-based) starts, or None."""
    from ruamel.yaml.events import DocumentStartEvent

    seen = 0
    try:
        for event in yaml.parse(text):
            if isinstance(event, DocumentStartEvent):
                if seen == index:
                    return event.start_mark.line + 1
                seen += 1
    except Exception:  # noqa: BLE001 - only used to improve an error message
        return None
    return None


def content_line(text: str) -> int:
    """1-based line of the first line that is not blank, a comment, a directive or '---'."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "%")) and stripped != "---":
            return number
    return 1


_SHAPE_MESSAGES = {
    "too-deep": ("yaml/too-deep", f"nesting deeper than {MAX_DEPTH} levels", None),
    "too-many": ("yaml/too-large", f"too many nodes: the document holds more than "
                 f"{MAX_DOC_NODES:,} YAML nodes", "values files and flows hold a few thousand; "
                 "is this the right file?"),
    "complex-key": ("yaml/syntax", "invalid YAML: a mapping or a list is used as a mapping key",
                    "keys are plain names: Helm and Kestra accept no other"),
    "merges": ("yaml/alias-bomb", f"more than {MAX_MERGES:,} merge keys (<<) in one document",
               "a values file never needs this many merges; is it hostile?"),
    "recursive-alias": ("yaml/alias-bomb", "an alias refers to the node that contains it", None),
}


def _shape_error(err: ShapeError, name: str) -> YamlLoadError:
    rule, message, hint = _SHAPE_MESSAGES[err.kind]
    return YamlLoadError(rule, _mark_loc(name, err.mark), message, hint)


def check_shape(text: str, name: str) -> None:
    """Refuse ``text`` (:class:`YamlLoadError`) when :func:`kestra_ops.yamlshape.scan` finds it
    too deep, too large in nodes or merge keys, or with a collection as a key: libyaml's event
    stream, no node composed and nothing recursing, run before any composer."""
    try:
        scan(text)
    except ShapeError as err:
        raise _shape_error(err, name) from None


def load_yaml_text(text: str, name: str) -> Any:
    """Parse ``text`` (one document); errors name ``name`` and the line."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    if len(text) > SHAPE_PASS_CHARS:
        check_shape(text, name)
    yaml = _yaml()
    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(max(limit, 4000))
        with warnings.catch_warnings():  # e.g. a reused anchor: ruamel prints the source
            warnings.simplefilter("ignore")  # lines (a secret among them) to stderr
            docs = list(yaml.load_all(text))
    except ShapeError as err:
        raise _shape_error(err, name) from None
    except MarkedYAMLError as err:
        if "'\\t'" in (err.problem or ""):
            mark = err.problem_mark or err.context_mark
        else:
            mark = _syntax_mark(err)
        loc = _mark_loc(name, mark)
        problem = (err.problem or err.context or "invalid YAML").strip()
        if "duplicate key" in problem or type(err).__name__ == "DuplicateKeyError":
            # ruamel adds 'with value "..." (original value: "...")': values stay unsaid
            raise YamlLoadError("yaml/duplicate-key", loc,
                                problem.splitlines()[0].split(" with value ", 1)[0],
                                "remove or rename one of the two keys") from None
        if "'\\t'" in problem:
            raise YamlLoadError("yaml/tabs", loc, "a tab character is used for indentation",
                                "YAML indents with spaces only; replace the tabs") from None
        if (mark is not None and mark is err.context_mark and err.problem_mark is not None
                and err.problem_mark.line != mark.line):
            problem = f"{(err.context or '').strip()}: {problem} (line {err.problem_mark.line + 1})"
        raise YamlLoadError("yaml/syntax", loc, f"invalid YAML: {problem}") from None
    except RecursionError:
        raise YamlLoadError("yaml/too-deep", Location(name),
                            "nesting deeper than Python can parse") from None
    except YAMLError as err:
        raise YamlLoadError("yaml/syntax", Location(name),
                            f"invalid YAML: {str(err).splitlines()[0]}") from None
    finally:
        sys.setrecursionlimit(limit)
    if len(docs) > 1:
        line = _document_start(_yaml(), text, 1)
        raise YamlLoadError("yaml/multi-document", Location(name, line or 1),
                            f"{len(docs)} YAML documents in one values file",
                            "a values file is a single document: remove the '---' separators")
    data = docs[0] if docs else None
    _check_expansion(data, name)
    return data


def display_name(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (for messages)."""
    if path.is_absolute():
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            pass
    return str(path)


def load_yaml_file(path: Path | str, max_bytes: int = MAX_BYTES) -> YamlDoc:
    path = Path(path)
    name = display_name(path)
    raw = read_bytes(path, name, max_bytes)
    text = decode_utf8(raw, name)
    data = load_yaml_text(text, name)
    return YamlDoc(path, data, name, 1 if isinstance(data, dict) else content_line(text))


def read_bytes(path: Path, name: str, max_bytes: int = MAX_BYTES, *,
               nofollow: bool = False) -> bytes:
    """The bytes of the regular file ``path`` (:func:`kestra_ops.readfile.read_regular`: a FIFO,
    a device or a directory is refused before it is read, and never more than ``max_bytes``);
    :class:`YamlLoadError` ``yaml/too-large`` or ``io/unreadable`` otherwise."""
    from kestra_ops.readfile import NotReadable, read_regular

    try:
        return read_regular(path, max_bytes, nofollow=nofollow)
    except NotReadable as err:
        if err.too_large:
            raise YamlLoadError("yaml/too-large", Location(name),
                                f"file {err.reason}; values files and flows are limited to "
                                f"{max_bytes:,}", "is this the right file?") from None
        raise YamlLoadError("io/unreadable", Location(name), err.reason) from None


def decode_utf8(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        col = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise YamlLoadError("yaml/encoding", Location(name, line, col),
                            f"byte 0x{raw[err.start]:02x} is not valid UTF-8",
                            "save the file as UTF-8") from None


def _check_expansion(data: Any, name: str) -> None:
    """Refuse documents whose aliases expand past MAX_NODES (billion laughs) or recurse."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any, depth: int) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise YamlLoadError("yaml/alias-bomb", _where(node, name),
                                "an alias refers to the node that contains it")
        if depth > MAX_DEPTH:
            raise YamlLoadError("yaml/too-deep", _where(node, name),
                                f"nesting deeper than {MAX_DEPTH} levels")
        active.add(key)
        children = node.values() if isinstance(node, dict) else node
        total = 1 + sum(size(child, depth + 1) for child in children)
        active.discard(key)
        sizes[key] = total
        if total > MAX_NODES:
            raise YamlLoadError("yaml/alias-bomb", _where(node, name),
                                f"aliases expand this document past {MAX_NODES:,} nodes",
                                "a values file never needs this many aliases; is it hostile?")
        return total

    size(data, 0)


def _where(node: Any, name: str) -> Location:
    lc = getattr(node, "lc", None)
    if lc is not None and lc.line is not None:
        return Location(name, lc.line + 1, (lc.col or 0) + 1)
    return Location(name)


def to_plain(node: Any) -> Any:
    """ruamel nodes -> plain dict/list/str/int/float/bool/None (as Helm would see them)."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if type(node).__name__ == "ScalarBoolean":
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    # a date or time exists only once the datetime module is imported (ruamel's constructor
    # imports it): not importing it here saves ~1 ms of every run that reads no timestamp
    dates = sys.modules.get("datetime")
    if dates is not None and isinstance(node, dates.date):  # datetime is a date too
        return node.isoformat()
    if isinstance(node, str):
        return str(node)
    value = getattr(node, "value", None)  # TaggedScalar and friends
    return str(value if value is not None else node)
