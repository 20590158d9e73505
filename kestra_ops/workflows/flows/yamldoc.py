"""Flows as code: one flow file's text -> data with the line and column of every node.

Parsed once with libyaml (node marks give every value's line and column), after the event pass
of :func:`kestra_ops.yamlio.check_shape` has bounded depth and node count (libyaml's composer
recurses in C: 30,000 nested '[' were a SIGSEGV, not an error). Anything libyaml
refuses, and anything suspicious (duplicate keys, merge keys, custom tags, aliases that expand
too far, deep nesting), is re-read with :mod:`kestra_ops.yamlio`, whose safe loading names
the rule, file, line and column of the problem. Scalars are typed as Kestra (Jackson) reads them:
only true/false are booleans, dates stay strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kestra_ops.yamlio import (MAX_DEPTH, MAX_NODES, Location, YamlLoadError, check_shape,
                               load_yaml_text, to_plain)

Path_ = tuple  # a node's path in the document: ("tasks", 0, "then", 1, "type")


@dataclass
class LocalFlow:
    """One flow file: its text exactly as read, its data, and where each node stands."""

    file: str  # how messages name it: flows/company.team/hello.yaml, export.zip!a.yml
    source: str
    data: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict, repr=False)  # 1-based

    @property
    def namespace(self) -> str | None:
        value = self.data.get("namespace") if isinstance(self.data, dict) else None
        return value if isinstance(value, str) else None

    @property
    def id(self) -> str | None:
        value = self.data.get("id") if isinstance(self.data, dict) else None
        return value if isinstance(value, str) else None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace or "", self.id or "")

    @property
    def name(self) -> str:
        return f"{self.namespace}.{self.id}"

    def locate(self, path: Path_) -> Location:
        """Where ``path`` (or its nearest ancestor with a position) stands; ``path + ("",)``
        is the value of a key, ``path`` the key itself."""
        path = tuple(path)
        while path and path not in self.positions:
            path = path[:-1]
        return Location(self.file, *self.positions.get(path, (1, 1)))

    def value_location(self, path: Path_) -> Location | None:
        pos = self.positions.get(tuple(path) + ("",))
        return Location(self.file, *pos) if pos else None


class _Fallback(Exception):
    """The fast reader met something the safe loader should judge."""


_CORE = "tag:yaml.org,2002:"


def _scalar(node) -> Any:
    tag, value = node.tag, node.value
    if tag == "tag:yaml.org,2002:str":
        return value
    if not tag.startswith(_CORE):
        raise _Fallback("tag")
    kind = tag[len(_CORE):]
    if node.style:  # quoted: a string whatever it looks like
        return value
    if kind == "null":
        return None
    if kind == "bool":  # Jackson: only true/false are booleans (on/yes/off stay strings)
        return value.lower() == "true" if value.lower() in ("true", "false") else value
    try:
        if kind == "int":
            return int(value.replace("_", ""), 0) if value[:2].lower() in ("0x", "0o") \
                else int(value)
        if kind == "float":
            return float(value)
    except ValueError:
        return value
    return value  # timestamps and other core tags stay text


def _fast_parse(text: str, name: str) -> tuple[Any, dict]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    check_shape(text, name)  # libyaml's composer recurses in C: depth first (SIGSEGV otherwise)
    try:
        root = yaml.compose(text, Loader=loader)
    except (yaml.YAMLError, UnicodeError, ValueError):  # e.g. a lone surrogate from JSON
        raise _Fallback("syntax") from None
    positions: dict[Path_, tuple[int, int]] = {}
    budget = [MAX_NODES]

    def mark(node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def build(node, path: Path_, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_DEPTH:
            raise _Fallback("size")
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node)
        if isinstance(node, yaml.SequenceNode):
            out = []
            for i, item in enumerate(node.value):
                positions[path + (i,)] = mark(item)
                out.append(build(item, path + (i,), depth + 1))
            return out
        out = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                raise _Fallback("key")
            key = str(_scalar(key_node))
            if key in out:
                raise _Fallback("duplicate")
            positions[path + (key,)] = mark(key_node)
            positions[path + (key, "")] = mark(value_node)  # the value itself
            out[key] = build(value_node, path + (key,), depth + 1)
        return out

    if root is None:
        return None, positions
    positions[()] = mark(root)
    return build(root, (), 0), positions


def _safe_parse(text: str, name: str) -> tuple[Any, dict]:
    """The slow path: ruamel with every guard of the values loader (raises YamlLoadError)."""
    try:
        data = load_yaml_text(text, name)
    except YamlLoadError as err:
        if err.rule == "yaml/multi-document":
            raise YamlLoadError("flows/one-flow-per-file", err.location,
                                "several YAML documents in one flow file",
                                "one flow per file: split it, or remove the '---' separators")
        raise
    positions: dict[Path_, tuple[int, int]] = {}

    def record(node: Any, path: Path_) -> None:
        lc = getattr(node, "lc", None)
        if isinstance(node, dict):
            for key, value in node.items():
                pos = lc.key(key) if lc is not None else None
                vpos = lc.value(key) if lc is not None else None
                if pos:
                    positions[path + (str(key),)] = (pos[0] + 1, pos[1] + 1)
                if vpos:
                    positions[path + (str(key), "")] = (vpos[0] + 1, vpos[1] + 1)
                record(value, path + (str(key),))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                pos = lc.item(i) if lc is not None else None
                if pos:
                    positions[path + (i,)] = (pos[0] + 1, pos[1] + 1)
                record(value, path + (i,))

    record(data, ())
    return (to_plain(data) if data is not None else None), positions


def parse_flow(text: str, name: str) -> LocalFlow:
    """One flow's text -> :class:`LocalFlow`; raises YamlLoadError with file:line:col."""
    try:
        data, positions = _fast_parse(text, name)
    except _Fallback:
        data, positions = _safe_parse(text, name)
    return LocalFlow(name, text, data, positions)


def flow_text(source: str) -> str:
    """A source as compared with the server's copy (line endings and outer blank space aside)."""
    return source.replace("\r\n", "\n").strip()
