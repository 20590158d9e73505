"""Flow syntax that a Kestra upgrade removes, renames or changes, found in local flows.

Pure: the facts are the ``flows`` entries of the version catalogue (``catalogue.yaml``, each
with its source; :mod:`kestra_ops.upgrades.catalogue`), the flows are
:class:`~kestra_ops.workflows.flows.yamldoc.LocalFlow` values already read. Each entry's
``detect`` is one detector with its modifiers:

* ``{type: GLOB}``: every mapping, at any depth (tasks, triggers, task runners,
  pluginDefaults...), whose ``type`` is a string matching GLOB (:func:`fnmatch.fnmatchcase`: a
  glob without ``*`` is the exact type, ``...flow.ForEach`` is not ``...flow.ForEachItem``).
  ``property: NAME``: only when that mapping has the key NAME (the finding points at the key);
  ``without: NAME``: only when it lacks NAME (the finding points at its ``type``).
* ``{path: PATTERN}``: dot-separated keys from the flow's root; ``*`` is any one key or list
  index, ``**`` any number of levels (zero included). ``value: X``: the node equals X (one of
  X when X is a list; the finding points at the value, else at the key); ``with: {KEY: V}``:
  the mapping holding the matched key also has KEY equal to V.
* ``{pebble: REGEX}``: every string value (a Pebble expression, a script, a ``states:`` item)
  where REGEX is found (:func:`re.search`); the finding points at the value, or at the line
  of a literal block scalar (``|``) where the match stands.

Equality is typed as the flow was read (``required: false`` is the boolean, never 0 or "").
A node flagged by a removed or renamed change is not flagged again by a ``changed`` one (e.g.
ForEachItem: 1.1 "iterations start at 0" is moot once 2.0 removes the task).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Iterator

from kestra_ops.upgrades.catalogue import Catalogue, FlowChange, Release
from kestra_ops.upgrades.version import Version
from kestra_ops.values.findings import Finding, json_path
from kestra_ops.workflows.flows.yamldoc import LocalFlow, Path_
from kestra_ops.yamlio import Location

SEVERITY = {"removed": "error", "renamed": "error", "changed": "warning"}
Change = tuple[Release, FlowChange]


def changes_for(cat: Catalogue, target: Version,
                start: Version | None = None) -> list[Change]:
    """The flow changes of the catalogue's releases in (start, target] (every release up to
    ``target`` without ``start``), oldest release first."""
    releases = ([r for r in cat.releases if r.first <= target] if start is None
                else cat.between(start, target))
    return [(r, change) for r in releases for change in r.flows]


# ---- walking the flow's data -------------------------------------------------------------------

def _children(node: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(node, dict):
        yield from node.items()
    elif isinstance(node, list):
        yield from enumerate(node)


def _walk(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """(path, node) of the node and everything below it, depth first in document order."""
    stack = [(path, node)]
    while stack:
        here, value = stack.pop()
        yield here, value
        stack.extend(reversed([(here + (k,), v) for k, v in _children(value)]))


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same kind: ``False`` is not ``0``, ``1`` is not ``True``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def _equals(node: Any, wanted: Any) -> bool:
    return any(_same(node, w) for w in wanted) if isinstance(wanted, list) \
        else _same(node, wanted)


def _paths(node: Any, segments: tuple[str, ...], path: Path_ = ()) -> Iterator[Path_]:
    """Every path below ``node`` matching ``segments`` (``*``: one level, ``**``: any)."""
    if not segments:
        yield path
        return
    head, rest = segments[0], segments[1:]
    if head == "**":
        yield from _paths(node, rest, path)
        for key, child in _children(node):
            yield from _paths(child, segments, path + (key,))
    elif head == "*":
        for key, child in _children(node):
            yield from _paths(child, rest, path + (key,))
    elif isinstance(node, dict) and head in node:
        yield from _paths(node[head], rest, path + (head,))
    elif isinstance(node, list) and head.isdigit() and int(head) < len(node):
        yield from _paths(node[int(head)], rest, path + (int(head),))


def _at(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


# ---- detectors: (path pointed at, what the message names, whether the value is meant) ---------

Hit = tuple[Path_, str, bool]


def _by_type(data: Any, detect: dict) -> Iterator[Hit]:
    glob, prop, without = str(detect["type"]), detect.get("property"), detect.get("without")
    prop, without = (str(x) if x is not None else None for x in (prop, without))
    for path, node in _walk(data):
        kind = node.get("type") if isinstance(node, dict) else None
        if not isinstance(kind, str) or not fnmatch.fnmatchcase(kind, glob):
            continue
        if prop is not None:
            if prop in node:
                yield path + (prop,), f"{prop} on {kind}", False
        elif without is not None:
            if without not in node:
                yield path + ("type",), f"{kind} without {without}", True
        else:
            yield path + ("type",), kind, True


def _by_path(data: Any, detect: dict) -> Iterator[Hit]:
    segments = tuple(str(detect["path"]).split("."))
    seen: set[Path_] = set()  # '**' may reach one node twice
    for path in _paths(data, segments):
        if not path or path in seen:
            continue
        seen.add(path)
        node = _at(data, path)
        if "value" in detect and not _equals(node, detect["value"]):
            continue
        if "with" in detect:
            holder = _at(data, path[:-1])
            wanted = detect["with"] if isinstance(detect["with"], dict) else {}
            if not isinstance(holder, dict) or not all(
                    k in holder and _same(holder[k], v) for k, v in wanted.items()):
                continue
        named = json_path(path)
        named = named[2:] if named.startswith("$.") else named[1:]
        if "value" in detect:
            yield path, f"{named} = {node}", True
        else:
            yield path, named, False


def _by_pebble(data: Any, detect: dict) -> Iterator[tuple[Path_, str, re.Match]]:
    pattern = re.compile(detect["pebble"])
    for path, node in _walk(data):
        if isinstance(node, str) and path:
            found = pattern.search(node)
            if found:
                yield path, repr(found.group(0).strip() or found.group(0)), found


# ---- findings ----------------------------------------------------------------------------------

def _hint(change: FlowChange) -> str:
    how = {True: "kestra-migrate rewrites it", False: "rewrite by hand",
           None: "kestra-migrate may not rewrite it: check by hand"}[change.automatic]
    hint = f"fix: {change.replacement}; {how}; see {change.source}"
    return hint + (f" (unsure: {change.unsure})" if change.unsure else "")


def _block_line(lines: list[str], value: str, start: Location, offset: int):
    """(line, col) of ``value[offset]`` when the value is a literal block scalar (``|``)
    starting at ``start``; None when it is not one or the source does not read back as the
    value (then the finding points at the scalar's start)."""
    if not 0 < start.line <= len(lines) or \
            not lines[start.line - 1][start.col - 1:].startswith("|"):
        return None
    body = lines[start.line:]
    first = next((t for t in body if t.strip()), "")
    indent = len(first) - len(first.lstrip(" "))
    index = value.count("\n", 0, offset)
    if not indent or index >= len(body):
        return None
    text = body[index]
    if text[:indent].strip() or text[indent:] != value.split("\n")[index]:
        return None
    return start.line + 1 + index, indent + 1 + offset - (value.rfind("\n", 0, offset) + 1)


def _where(flow: LocalFlow, path: Path_, value: bool, found: re.Match | None,
           lines: list[list[str]]) -> Location:
    """The value's position (a list item's own), else the key's. ``lines``: the source's
    lines, split once per flow on first use."""
    here = (flow.value_location(path) if value else None) or flow.locate(path)
    if found is not None and "\n" in found.string:
        if not lines:
            lines.append(flow.source.splitlines())
        inner = _block_line(lines[0], found.string, here, found.start())
        if inner:
            here = Location(here.file, *inner)
    return here


def _hits(data: Any, change: FlowChange) -> Iterator[tuple[Path_, str, bool, re.Match | None]]:
    detect = change.detect
    if "type" in detect:
        yield from ((p, s, v, None) for p, s, v in _by_type(data, detect))
    elif "path" in detect:
        yield from ((p, s, v, None) for p, s, v in _by_path(data, detect))
    elif "pebble" in detect:
        yield from ((p, s, True, m) for p, s, m in _by_pebble(data, detect))


def check_flow(flow: LocalFlow, changes: list[Change]) -> list[Finding]:
    """The findings of ``changes`` in one flow: rule ``upgrade/<id>``, error for removed or
    renamed syntax, warning for changed behaviour; one per (change, node), in file order."""
    found: dict[tuple[str, Path_], tuple[Path_, Finding]] = {}
    lines: list[list[str]] = []
    for release, change in changes:
        severity = SEVERITY.get(change.change, "warning")
        for path, subject, value, match in _hits(flow.data, change):
            if (change.id, path) in found:
                continue
            where = _where(flow, path, value, match, lines)
            message = f"{subject}: {change.what} (Kestra {release.name})"
            found[(change.id, path)] = (path, Finding(f"upgrade/{change.id}", severity, message,
                                                      json_path(path), where, _hint(change)))
    flagged = {path for path, f in found.values() if f.severity == "error"}
    kept = [f for path, f in found.values() if f.severity == "error" or path not in flagged]
    return sorted(kept, key=lambda f: (f.location.line, f.location.col, f.rule))


def check_flows(flows: list[LocalFlow], cat: Catalogue, target: Version,
                start: Version | None = None) -> list[Finding]:
    """Every flow checked against the flow changes of the releases in (start, target]."""
    changes = changes_for(cat, target, start)
    return [f for flow in flows for f in check_flow(flow, changes)] if changes else []
