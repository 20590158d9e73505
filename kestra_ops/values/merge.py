"""Merge values layers with Helm's rules, remembering which layer set each value.

Maps merge key by key, lists and scalars replace, and ``null`` in a later layer deletes the key.
The result keeps the first layer's comments and key order (ruamel round-trip), so ``values
render`` writes a file a person can still read.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from kestra_ops.errors import InvalidInput
from kestra_ops.yamlio import Location, YamlDoc, YamlLoadError, load_yaml_file, to_plain

@dataclass
class Merged:
    """Merged values, with the location that set every node."""

    data: Any
    layers: list[str]
    origins: dict[tuple, Location] = field(default_factory=dict)
    _plain: Any = None

    @property
    def plain(self) -> Any:
        if self._plain is None:
            self._plain = to_plain(self.data) if self.data is not None else {}
        return self._plain

    def locate(self, path: Iterable) -> Location:
        """The location of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.origins:
                return self.origins[path]
            path = path[:-1]
        return self.origins.get((), Location(self.layers[0] if self.layers else "<values>"))

    def origin_file(self, path: Iterable) -> str:
        return self.locate(path).file


def _record(origins: dict, node: Any, path: tuple, file: str) -> None:
    """Record the location of every node under ``node`` (keys point at their key)."""
    lc = getattr(node, "lc", None)
    if isinstance(node, dict):
        for key, value in node.items():
            pos = lc.key(key) if lc is not None else None
            origins[path + (str(key),)] = _loc(file, pos)
            _record(origins, value, path + (str(key),), file)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            pos = lc.item(i) if lc is not None else None
            origins[path + (i,)] = _loc(file, pos)
            _record(origins, value, path + (i,), file)


def _loc(file: str, pos: Any) -> Location:
    if pos and pos[0] is not None:
        return Location(file, pos[0] + 1, pos[1] + 1)
    return Location(file)


def _forget(origins: dict, path: tuple) -> None:
    n = len(path)
    for key in [k for k in origins if k[:n] == path and len(k) > n]:
        del origins[key]


def _merge_into(dst: dict, src: dict, path: tuple, file: str, origins: dict) -> None:
    lc = getattr(src, "lc", None)
    for key, value in src.items():
        key_path = path + (str(key),)
        if value is None:  # Helm: null in a later layer deletes the key
            if key in dst:
                del dst[key]
                origins.pop(key_path, None)
                _forget(origins, key_path)
            continue
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge_into(dst[key], value, key_path, file, origins)
            if not dst[key]:
                _drop_leading_comments(dst, key)
            continue
        dst[key] = copy.deepcopy(value)
        _forget(origins, key_path)
        origins[key_path] = _loc(file, lc.key(key) if lc is not None else None)
        _record(origins, value, key_path, file)


def _drop_leading_comments(parent: dict, key: Any) -> None:
    """``parent[key]`` lost all its keys to ``null``s: drop the comments that stood after
    ``key:`` and above its first key. Left on an empty map, ruamel dumps them before a
    column-0 ``{}``, which makes the rendered file invalid YAML."""
    child = parent[key]
    if getattr(child, "ca", None) is not None:
        child.ca.comment = None
    items = getattr(getattr(parent, "ca", None), "items", {}).get(key)
    if items and len(items) > 3:
        items[2] = items[3] = None  # after 'key:' and above the first child


def merge_docs(docs: list[YamlDoc], sets: Iterable[str] = ()) -> Merged:
    """Merge loaded documents in order, then ``--set`` expressions."""
    layers = [d.name or str(d.path) for d in docs]
    origins: dict[tuple, Location] = {}
    result: Any = None
    for doc in docs:
        if doc.data is None:  # an empty overlay (comments only) changes nothing
            continue
        if not isinstance(doc.data, dict):
            raise YamlLoadError("yaml/not-a-mapping", Location(doc.name or str(doc.path), doc.line),
                                f"the document is a {_kind(doc.data)}, not a mapping of values")
        if result is None:
            result = copy.deepcopy(doc.data)
            origins[()] = Location((doc.name or str(doc.path)))
            _record(origins, result, (), (doc.name or str(doc.path)))
        else:
            _merge_into(result, doc.data, (), (doc.name or str(doc.path)), origins)
    for i, expr in enumerate(sets, start=1):
        overlay = parse_set(expr)
        if result is None:
            from ruamel.yaml.comments import CommentedMap

            result = CommentedMap()
        layers.append("--set")
        _merge_into(result, overlay, (), f"--set[{i}]", origins)
    return Merged(result, layers, origins)


def load_layers(paths: Iterable[Path], sets: Iterable[str] = ()) -> Merged:
    return merge_docs([load_yaml_file(p) for p in paths], sets)


def _kind(data: Any) -> str:
    if isinstance(data, list):
        return "list"
    return "string" if isinstance(data, str) else type(data).__name__


def parse_set(expr: str) -> dict:
    """``a.b.c=value`` -> ``{a: {b: {c: value}}}``, typed as Helm's ``--set`` types it."""
    from ruamel.yaml.comments import CommentedMap

    if "=" not in expr:
        raise InvalidInput(f"--set {expr!r}: expected KEY=VALUE")
    key, raw = expr.split("=", 1)
    parts, buf, escaped = [], "", False
    for ch in key:
        if escaped:
            buf, escaped = buf + ch, False
        elif ch == "\\":
            escaped = True
        elif ch == ".":
            parts.append(buf)
            buf = ""
        else:
            buf += ch
    parts.append(buf)
    if any(not p for p in parts) or any(c in key for c in "[]"):
        raise InvalidInput(f"--set {expr!r}: KEY must be dotted names (a.b.c; escape dots as \\.);"
                           " list indexes are not supported, use a values file")
    root = node = CommentedMap()
    for part in parts[:-1]:
        node[part] = CommentedMap()
        node = node[part]
    node[parts[-1]] = _typed(raw)
    return root


def _typed(raw: str) -> Any:
    if raw.startswith("{") and raw.endswith("}"):
        return [_typed(item.strip()) for item in raw[1:-1].split(",") if item.strip()]
    low = raw.lower()
    if low in ("null", "~"):
        return None
    if low in ("true", "false"):
        return low == "true"
    if raw.lstrip("-").isdigit() and not (len(raw) > 1 and raw.startswith("0")):
        return int(raw)  # Helm types integers only; "1.5" and "0123" stay strings
    return raw
