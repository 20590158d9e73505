"""Merge values layers with Helm's rules, remembering which layer set each value.

Maps merge key by key, lists and scalars replace, and ``null`` in a later layer deletes the key.
The result keeps the first layer's comments and key order (ruamel round-trip), so ``values
render`` writes a file a person can still read.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Any, Iterable

from kestra_ops.errors import InvalidInput
from kestra_ops.yamlio import Location, YamlDoc, YamlLoadError, load_yaml_file, to_plain

MAX_SET_PARTS = 100  # a --set key nests at most this deep (no chart key comes near it)
INT64 = (-2 ** 63, 2 ** 63 - 1)  # Helm types a --set integer as Go's int64
_ASCII_INT = re.compile(r"[+-]?[0-9]+")
_SHOWN = 60  # characters of a --set key or value an error message shows

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


def _forget(origins: dict, path: tuple, old: Any) -> None:
    """Forget the locations under ``path``, whose value was ``old`` (walks ``old`` only: a
    scan of every location per replaced key is quadratic on large files)."""
    if isinstance(old, dict):
        items: Iterable = ((str(k), v) for k, v in old.items())
    elif isinstance(old, list):
        items = enumerate(old)
    else:
        return
    for part, value in items:
        origins.pop(path + (part,), None)
        _forget(origins, path + (part,), value)


def copy_tree(node: Any, memo: dict | None = None) -> Any:
    """An independent copy of a round-trip tree, in time linear in its size.

    ``copy.deepcopy`` of a ruamel ``CommentedSeq`` copies the list's comments once per element
    (quadratic: minutes for a list of 10,000 entries). Here each map and list is rebuilt once,
    with its own comment table (deleting or editing a key of the copy leaves the original's
    comments alone); scalars are immutable and shared; a node reached twice (an alias) is copied
    once."""
    if not isinstance(node, (dict, list)):
        return node
    memo = {} if memo is None else memo
    done = memo.get(id(node))
    if done is not None:
        return done
    res = node.__class__()
    memo[id(node)] = res
    if isinstance(node, dict):
        for key, value in node.items():
            res[key] = copy_tree(value, memo)
    else:
        list.extend(res, [copy_tree(value, memo) for value in node])
    if hasattr(node, "copy_attributes"):
        _copy_attributes(node, res)
    return res


def _copy_attributes(src: Any, dst: Any) -> None:
    src.copy_attributes(dst)  # format, line/col, anchor, tag: shared, never changed
    if not type(src).__module__.startswith("ruamel."):
        return  # yamlfast's containers: lines only, no comments (and no ruamel import)
    from ruamel.yaml.comments import Comment

    ca = getattr(src, Comment.attrib, None)
    if ca is not None:
        new = copy.copy(ca)
        new._items = {k: list(v) if isinstance(v, list) else v for k, v in ca.items.items()}
        new.comment = list(ca.comment) if isinstance(ca.comment, list) else ca.comment
        setattr(dst, Comment.attrib, new)


def _merge_into(dst: dict, src: dict, path: tuple, file: str, origins: dict) -> None:
    lc = getattr(src, "lc", None)
    for key, value in src.items():
        key_path = path + (str(key),)
        if value is None:  # Helm: null in a later layer deletes the key
            if key in dst:
                _forget(origins, key_path, dst[key])
                del dst[key]
                origins.pop(key_path, None)
            continue
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge_into(dst[key], value, key_path, file, origins)
            if not dst[key]:
                _drop_leading_comments(dst, key)
            continue
        if key in dst:
            _forget(origins, key_path, dst[key])
        dst[key] = copy_tree(value)
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
            result = copy_tree(doc.data)
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


def load_layers(paths: Iterable[Path], sets: Iterable[str] = (), *, fast: bool = False
                ) -> Merged:
    """Load and merge ``paths`` (base first), then ``sets``. With ``fast`` (validation: no
    comments needed), plain documents are read by :mod:`kestra_ops.yamlfast` (libyaml,
    ~30x faster on a large file); anything else by the round-trip loader, which reports."""
    if not fast:
        return merge_docs([load_yaml_file(p) for p in paths], sets)
    from kestra_ops.yamlfast import load_plain

    return merge_docs([load_plain(p) or load_yaml_file(p) for p in paths], sets)


def _kind(data: Any) -> str:
    if isinstance(data, list):
        return "list"
    return "string" if isinstance(data, str) else type(data).__name__


def parse_set(expr: str) -> dict:
    """``a.b.c=value`` -> ``{a: {b: {c: value}}}``, typed as Helm's ``--set`` types it.

    Anything else is :class:`InvalidInput` (exit 2) in one short line: no ``=``, an empty or
    bracketed key part, a key of more than :data:`MAX_SET_PARTS` parts, text that is not UTF-8,
    an integer outside Helm's int64, or a number Helm would not read (``--5``, ``²``). The value
    of a key that says secret is never shown."""
    from ruamel.yaml.comments import CommentedMap

    try:
        expr.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("--set: the expression is not UTF-8 text (bytes the terminal could "
                           "not decode)") from None
    if "=" not in expr:
        raise InvalidInput(f"--set {_short(expr)}: expected KEY=VALUE")
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
    if len(parts) > MAX_SET_PARTS:
        raise InvalidInput(f"--set {_short(key)}=...: the key has {len(parts)} parts; at most "
                           f"{MAX_SET_PARTS}")
    if any(not p for p in parts) or any(c in key for c in "[]"):
        raise InvalidInput(f"--set {_short(key + '=' + raw, key)}: KEY must be dotted names "
                           "(a.b.c; escape dots as \\.); list indexes are not supported, use a "
                           "values file")
    value = _typed(raw, key)
    root = node = CommentedMap()
    for part in parts[:-1]:
        node[part] = CommentedMap()
        node = node[part]
    node[parts[-1]] = value
    return root


def _short(text: str, key: str | None = None) -> str:
    """``text`` quoted for a message: shortened, and with its value hidden when ``key`` says
    secret."""
    from kestra_ops.redact import is_secret_key

    if key is not None and any(is_secret_key(p) for p in key.split(".")):
        text = key + "=..."
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def _typed(raw: str, key: str = "") -> Any:
    if raw.startswith("{") and raw.endswith("}"):
        return [_typed(item.strip(), key) for item in raw[1:-1].split(",") if item.strip()]
    low = raw.lower()
    if low in ("null", "~"):
        return None
    if low in ("true", "false"):
        return low == "true"
    # Helm (strvals.typedVal): "0" is 0; otherwise a value not starting with '0' that Go's
    # strconv.ParseInt(v, 10, 64) reads (ASCII digits, one optional sign) is an integer
    if raw == "0" or (_ASCII_INT.fullmatch(raw) and not raw.startswith("0")):
        number = int(raw) if len(raw) <= 25 else None
        if number is None or not INT64[0] <= number <= INT64[1]:
            raise InvalidInput(f"--set {_short(key + '=' + raw, key)}: the integer is outside "
                               "the 64-bit range Helm reads; put the value in a values file, "
                               "quoted, if it is text")
        return number
    body = raw.lstrip("+-")
    if body and all(c.isdigit() for c in body):
        if body.isascii() and len(raw) - len(body) > 1:
            raise InvalidInput(f"--set {_short(key + '=' + raw, key)}: more than one sign "
                               "before a number; Helm would keep it as text")
        if not body.isdecimal():  # ², ①: digits to Python, not to Helm or anyone reading them
            raise InvalidInput(f"--set {_short(key + '=' + raw, key)}: the value looks like a "
                               "number but is not digits Helm reads (superscript or circled "
                               "digits); write ASCII digits, or quote it in a values file")
    return raw  # "1.5", "0123", "v1.3", non-ASCII decimal digits (١٢٣): text, as Helm keeps them
