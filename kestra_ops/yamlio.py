"""Load YAML safely, keeping the line and column of every node (ruamel round-trip).

The one YAML loader of values files, flow files, kestra-ops.yaml and ConfigMap documents (a
neutral module: settings, values, checks and workflows all read YAML through it).

Hostile input is refused with a :class:`YamlLoadError` naming the rule, file, line and column:
anything that is not a regular file (a FIFO, /dev/zero: refused before reading), files over
:data:`MAX_BYTES` (read with a hard cap), bytes that are not UTF-8, syntax errors (tabs get their
own rule), duplicate keys, several documents, alias bombs whose expansion exceeds
:data:`MAX_NODES`, and documents that nest deeper than :data:`MAX_DEPTH` or hold more than
:data:`MAX_DOC_NODES` nodes, or use a collection as a key. Depth and node count are checked by
:func:`check_shape`, an event pass with counters (libyaml: no composing, no recursion) BEFORE any
composer runs, so that no input can recurse the C composer into a crash or make the Python one
build millions of nodes; the round-trip composer checks the same while composing (texts under
:data:`SHAPE_PASS_CHARS` rely on that alone: they cannot hold enough nodes to be slow).
"""

from __future__ import annotations

import datetime
import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kestra_ops.errors import InvalidInput

MAX_BYTES = 4 * 1024 * 1024  # values files are kilobytes; anything this large is a mistake
MAX_NODES = 200_000  # nodes after alias expansion
# nodes as written, keys included (the round-trip composer takes ~35 us a node: 100,000 is ~3.5 s,
# and 10 x the largest values file we know of)
MAX_DOC_NODES = 100_000
# below this size the round-trip composer's own guards (depth, nodes, complex keys) bound the
# work to about a second, and the event pass (which imports PyYAML, ~10 ms) is skipped
SHAPE_PASS_CHARS = 64 * 1024
MAX_DEPTH = 200


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
    path: Path
    data: Any  # CommentedMap / CommentedSeq / scalar / None (empty document)
    name: str = ""  # how messages name the file
    line: int = 1  # where the document's content starts (for errors about the whole document)

    @property
    def empty(self) -> bool:
        return self.data is None


class _TooDeep(Exception):
    """Flow collections nest past MAX_DEPTH (refused while scanning: ruamel's scanner is
    quadratic in the flow depth, so a few kilobytes of '[' would take seconds)."""

    def __init__(self, mark):
        super().__init__("too deep")
        self.mark = mark


class _TooMany(Exception):
    """More than MAX_DOC_NODES nodes composed (the composer's own guard, when the event pass could
    not run to the end)."""

    def __init__(self, mark):
        super().__init__("too many nodes")
        self.mark = mark


class _ComplexKey(Exception):
    """A mapping or a list used as a mapping key (ruamel builds nested ones in exponential
    time: 14 nested '? ' take seconds, 30 forever; neither Helm nor Kestra accepts them)."""

    def __init__(self, mark):
        super().__init__("complex key")
        self.mark = mark


class _RecursiveAlias(Exception):
    """An alias refers to a node that contains it (ruamel would silently load it as null)."""

    def __init__(self, mark):
        super().__init__("recursive alias")
        self.mark = mark


@functools.lru_cache(maxsize=1)
def _guarded_classes():
    from ruamel.yaml.composer import Composer
    from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
    from ruamel.yaml.events import AliasEvent, CollectionStartEvent
    from ruamel.yaml.nodes import CollectionNode, MappingNode
    from ruamel.yaml.scanner import RoundTripScanner

    class GuardedScanner(RoundTripScanner):
        def fetch_flow_collection_start(self, TokenClass, to_push):
            if self.flow_level >= MAX_DEPTH:
                raise _TooDeep(self.reader.get_mark())
            super().fetch_flow_collection_start(TokenClass, to_push)

    class GuardedComposer(Composer):
        def compose_node(self, parent, index):
            event = self.parser.peek_event()
            counts = self.__dict__.setdefault("_counts", [0, 0])  # nodes, depth
            counts[0] += 1
            if counts[0] > MAX_DOC_NODES:
                raise _TooMany(event.start_mark)
            if counts[1] >= MAX_DEPTH:
                raise _TooDeep(event.start_mark)
            if index is None and isinstance(parent, MappingNode) and (
                    isinstance(event, CollectionStartEvent) or (
                        isinstance(event, AliasEvent)
                        and isinstance(self.anchors.get(event.anchor), CollectionNode))):
                raise _ComplexKey(event.start_mark)
            counts[1] += 1
            try:
                return self._guarded_compose(event, parent, index)
            finally:
                counts[1] -= 1

        def _guarded_compose(self, event, parent, index):
            # an alias is recursive when the latest definition of its anchor is still open
            open_anchors = self.__dict__.setdefault("_open_anchors", [])
            defined = self.__dict__.setdefault("_anchor_defs", {})
            if isinstance(event, AliasEvent):
                if (event.anchor, defined.get(event.anchor)) in open_anchors:
                    raise _RecursiveAlias(event.start_mark)
                return super().compose_node(parent, index)
            if event.anchor is None:
                return super().compose_node(parent, index)
            defined[event.anchor] = defined.get(event.anchor, 0) + 1
            open_anchors.append((event.anchor, defined[event.anchor]))
            try:
                return super().compose_node(parent, index)
            finally:
                open_anchors.pop()

    class GuardedConstructor(RoundTripConstructor):
        def construct_non_recursive_object(self, node, tag=None):
            # a value ruamel cannot build (9 x 5,000, 2024-02-30, !!int abc, !!bool maybe) is
            # a syntax error at that node, never echoing the value (it may be a secret)
            try:
                return super().construct_non_recursive_object(node, tag)
            except (ValueError, KeyError, TypeError, OverflowError, IndexError,
                    ArithmeticError) as err:
                reason = str(err).split(":")[0] if not isinstance(err, KeyError) else "unknown"
                if "Exceeds the limit" in reason or "digits" in str(err):
                    reason = "a number with thousands of digits (quote it if it is text)"
                tag = (tag or node.tag or "").rsplit(":", 1)[-1]
                raise ConstructorError(None, None, f"cannot read this {tag} value: {reason}",
                                       node.start_mark) from None

    return GuardedScanner, GuardedComposer, GuardedConstructor


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.Scanner, yaml.Composer, yaml.Constructor = _guarded_classes()
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


def _too_many(where: Location) -> YamlLoadError:
    return YamlLoadError("yaml/too-large", where, f"too many nodes: the document holds more "
                         f"than {MAX_DOC_NODES:,} YAML nodes", "values files and flows hold a few "
                         "thousand; is this the right file?")


def _complex_key(where: Location) -> YamlLoadError:
    return YamlLoadError("yaml/syntax", where, "invalid YAML: a mapping or a list is used as a "
                         "mapping key", "keys are plain names: Helm and Kestra accept no other")


def check_shape(text: str, name: str) -> None:
    """Refuse ``text`` when it nests deeper than MAX_DEPTH, holds more than MAX_DOC_NODES nodes
    (scalars, aliases, collections, keys included) or uses a collection as a mapping key, from
    libyaml's event stream: no node is composed and nothing recurses, so this runs before any
    composer, in about 1 us an event. A syntax error ends the pass quietly: the loader that
    follows reports it, under its own guards (ruamel's composer checks the same three)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    start, end, node = yaml.CollectionStartEvent, yaml.CollectionEndEvent, yaml.NodeEvent
    nodes = 0
    open_: list[list[bool]] = []  # per open collection: [is a mapping, next node is a key]
    collections: set[str] = set()  # anchors that name a collection
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, node):
                nodes += 1
                if nodes > MAX_DOC_NODES:
                    raise _too_many(_mark_loc(name, event.start_mark))
                is_key = bool(open_) and open_[-1][0] and open_[-1][1]
                if open_ and open_[-1][0]:
                    open_[-1][1] = not open_[-1][1]
                if is_key and (isinstance(event, start) or (
                        isinstance(event, yaml.AliasEvent) and event.anchor in collections)):
                    raise _complex_key(_mark_loc(name, event.start_mark))
                if isinstance(event, start):
                    if len(open_) >= MAX_DEPTH:
                        raise YamlLoadError("yaml/too-deep", _mark_loc(name, event.start_mark),
                                            f"nesting deeper than {MAX_DEPTH} levels")
                    open_.append([isinstance(event, yaml.MappingStartEvent), True])
                if getattr(event, "anchor", None) and not isinstance(event, yaml.AliasEvent):
                    (collections.add if isinstance(event, start) else collections.discard)(
                        event.anchor)
            elif isinstance(event, end) and open_:
                open_.pop()
    except (yaml.YAMLError, UnicodeError, ValueError):
        return


def load_yaml_text(text: str, name: str) -> Any:
    """Parse ``text`` (one document); errors name ``name`` and the line."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    if len(text) > SHAPE_PASS_CHARS:
        check_shape(text, name)
    yaml = _yaml()
    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(max(limit, 4000))
        docs = list(yaml.load_all(text))
    except _TooDeep as err:
        raise YamlLoadError("yaml/too-deep", _mark_loc(name, err.mark),
                            f"nesting deeper than {MAX_DEPTH} levels") from None
    except _TooMany as err:
        raise _too_many(_mark_loc(name, err.mark)) from None
    except _ComplexKey as err:
        raise _complex_key(_mark_loc(name, err.mark)) from None
    except _RecursiveAlias as err:
        raise YamlLoadError("yaml/alias-bomb", _mark_loc(name, err.mark),
                            "an alias refers to the node that contains it") from None
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
    if isinstance(node, (datetime.date, datetime.datetime)):
        return node.isoformat()
    if isinstance(node, str):
        return str(node)
    value = getattr(node, "value", None)  # TaggedScalar and friends
    return str(value if value is not None else node)
