"""A fast reader of plain YAML documents (values files, kestra-ops.yaml) where comments are not
needed.

The round-trip loader (:mod:`kestra_ops.yamlio`) scans in pure Python: ~0.6 s for a 1 MB overlay
(a long plugin blacklist), most of a cold ``values validate``. Here libyaml's C parser gives the
events and a loop without recursion builds plain data, so the result equals ``to_plain`` of the
round-trip load, with the line and column of every key and item (for findings and provenance).

Plain scalars are typed as the round-trip loader types them (YAML 1.2, ruamel's resolver): the
common cases here without ruamel (importing it is ~7 ms of a ~60 ms cold run): text that cannot
be anything else (its first character starts none of the 1.2 resolvers' patterns), the six
booleans, the four nulls and short decimal integers. Every other plain scalar (floats, octal or
hex, underscores, timestamps, ``=``, ``<<``) is typed by ruamel's own resolver and constructor.

Only plain documents are read this way: one document of maps, lists and untagged scalars, with
no anchor, alias, merge key (``<<``), explicit tag, directive, complex key or duplicate key, and
within the loader's depth and node limits. For anything else, or any error, :func:`load_plain`
returns None and the caller reads the file with the round-trip loader, which applies every guard
and reports every problem (one loader decides what is wrong; this one only goes faster when
nothing is).
"""

from __future__ import annotations

import functools
from pathlib import Path

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Any

from kestra_ops import yamlio
from kestra_ops.yamlio import (MAX_BYTES, MAX_DEPTH, YamlDoc, decode_utf8, display_name,
                               read_bytes, to_plain)

# the loader's limit on nodes as written (never read here what it would refuse)
MAX_NODES = getattr(yamlio, "MAX_DOC_NODES", yamlio.MAX_NODES)

_STR = "tag:yaml.org,2002:str"


class _Lines:
    """``lc`` as ruamel's containers have it: 0-based (line, col) of each key or item."""

    __slots__ = ("line", "col", "data")

    def __init__(self, line: int, col: int):
        self.line, self.col, self.data = line, col, {}

    def key(self, key: Any) -> tuple[int, int]:
        return self.data[key]

    def item(self, index: int) -> tuple[int, int]:
        return self.data[index]


class PlainMap(dict):
    """A dict with ``lc`` (see :class:`_Lines`)."""

    __slots__ = ("lc",)

    def copy_attributes(self, other: Any) -> None:
        other.lc = self.lc


class PlainSeq(list):
    """A list with ``lc`` (see :class:`_Lines`)."""

    __slots__ = ("lc",)

    def copy_attributes(self, other: Any) -> None:
        other.lc = self.lc


class _NotPlain(Exception):
    """The document needs the round-trip loader (or holds something it will report)."""


@functools.lru_cache(maxsize=1)
def _typing():
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import ScalarNode

    yaml = YAML(typ="rt")
    return yaml.resolver, yaml.constructor, ScalarNode


# ruamel's YAML 1.2 implicit resolvers are chosen by a scalar's first character: bool by
# "tTfF", float by "-+0123456789.", int by "-+0123456789", merge by "<", null by "~nN" and "",
# timestamp by digits, value by "=", yaml by "!&*" (ruamel/yaml/resolver.py). A scalar starting
# with none of these is text; one starting with "tTfFnN~" is text unless it is one of the words.
_MAYBE_TYPED = frozenset("tTfFnN~-+0123456789.<=!&*")
_WORDS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
          "FALSE": False, "~": None, "null": None, "Null": None, "NULL": None}
_DIGITS = frozenset("0123456789")
# every character any of the patterns below can match: a scalar with another one is none of them
_NUMBER_CHARS = frozenset("0123456789_.+-:eEboxabcdefABCDEFinfINFaANtTZ \t")


@functools.lru_cache(maxsize=1)
def _number_like():
    """The union of ruamel's YAML 1.2 float, int and timestamp patterns (ruamel/yaml/resolver.py,
    ``implicit_resolvers``): the only resolvers for a scalar starting with "-+0123456789."."""
    import re

    return re.compile(r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN)
        |[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+
        |[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
         (?:[Tt]|[ \t]+)[0-9][0-9]?
         :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
         (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", re.X)


def _plain_scalar(value: str) -> Any:
    """A plain (unquoted) scalar typed as ruamel's round-trip loader types it, YAML 1.2."""
    if not value:
        return None
    first = value[0]
    if first not in _MAYBE_TYPED:
        return value
    if value in _WORDS:
        return _WORDS[value]
    if first in "tTfFnN":
        return value  # not one of the words: text (the 1.2 bool and null patterns are exact)
    sign = first in "-+"
    digits = value[1:] if sign else value
    if (0 < len(digits) <= 18 and (digits == "0" or digits[0] != "0")
            and _DIGITS.issuperset(digits)):
        return int(value)  # [-+]?(0|[1-9][0-9]*): a short decimal int, as ruamel reads it
    if first in "-+0123456789." and (not _NUMBER_CHARS.issuperset(value)
                                     or not _number_like().match(value)):
        return value  # starts like a number, is none (2Gi, 500m, 1.33.0): text
    resolver, constructor, node_class = _typing()
    tag = resolver.resolve(node_class, value, (True, False))
    if tag == _STR:
        return value
    node = node_class(tag, value, style=None)
    return to_plain(constructor.construct_object(node, deep=True))


def _scalar(event) -> Any:
    if event.tag is not None and not (event.implicit[0] or event.implicit[1]):
        raise _NotPlain("explicit tag")
    if event.style:  # quoted or block: text, as the round-trip loader reads it
        return event.value
    return _plain_scalar(event.value)


def _compose(events) -> Any:
    """The one document of ``events`` as plain data with lines (raises :class:`_NotPlain`)."""
    import yaml

    stack: list[list] = []  # [container, pending key (or _NO_KEY), the key's mark]
    root: Any = None
    documents = nodes = 0

    def add(value: Any, mark) -> None:
        top = stack[-1]
        container = top[0]
        if isinstance(container, list):
            container.lc.data[len(container)] = (mark.line, mark.column)
            container.append(value)
        elif top[1] is _NO_KEY:  # a key: text only, once, never the merge key
            if type(value) is not str or value == "<<" or value in container:
                raise _NotPlain("a key that is not text, a merge key or a duplicate key")
            top[1], top[2] = value, mark
        else:
            container.lc.data[top[1]] = (top[2].line, top[2].column)
            container[top[1]] = value
            top[1] = _NO_KEY

    for event in events:
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > MAX_NODES or event.anchor is not None \
                    or isinstance(event, yaml.AliasEvent):
                raise _NotPlain("an anchor, an alias or too many nodes")
            if not stack and root is not None:
                raise _NotPlain("a second root")
            mark = event.start_mark
            if isinstance(event, yaml.ScalarEvent):
                value = _scalar(event)
                if stack:
                    add(value, mark)
                else:
                    root = value
                continue
            if event.tag is not None and not event.implicit:
                raise _NotPlain("an explicit tag")
            if len(stack) >= MAX_DEPTH:
                raise _NotPlain("too deep")
            container = (PlainMap if isinstance(event, yaml.MappingStartEvent) else PlainSeq)()
            container.lc = _Lines(mark.line, mark.column)
            if stack:
                add(container, mark)
            else:
                root = container
            stack.append([container, _NO_KEY, None])
        elif isinstance(event, yaml.CollectionEndEvent):
            stack.pop()
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1 or event.version or event.tags:
                raise _NotPlain("several documents or a directive")
    return root


_NO_KEY = object()


def load_plain(path: Path | str, max_bytes: int = MAX_BYTES) -> YamlDoc | None:
    """``path`` as a :class:`YamlDoc` of plain data with lines, or None when it is not a plain
    mapping document (then read it with :func:`kestra_ops.yamlio.load_yaml_file`). A file that
    cannot be read, or is not UTF-8, raises the loader's own :class:`YamlLoadError`."""
    path = Path(path)
    name = display_name(path)
    data = parse_plain(decode_utf8(read_bytes(path, name, max_bytes), name))
    return None if data is None else YamlDoc(path, data, name, 1)


def parse_plain(text: str) -> PlainMap | None:
    """``text`` as a non-empty :class:`PlainMap` with lines, or None when it is not a plain
    mapping document (then parse it with the round-trip loader, which reports)."""
    if any(c in text for c in "\t\x85\u2028\u2029"):
        return None  # tabs have their own rule; for libyaml (YAML 1.1) the others end a line
    import yaml

    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None:  # no libyaml: nothing to gain
        return None
    try:
        data = _compose(yaml.parse(text, Loader=loader))
    except Exception:  # noqa: BLE001 - anything at all: the round-trip loader reads and reports
        return None
    if not isinstance(data, PlainMap) or not data:
        return None
    return data
