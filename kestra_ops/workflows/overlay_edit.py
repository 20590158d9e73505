"""Comment-preserving edits of scalar values in an environment's overlay (its last values layer):
the change (:class:`OverlayChange`, its masked diff), conflict-safe :func:`write` and
:func:`restore` shared with :mod:`kestra_ops.workflows.upgrade.overlay` (which edits
``image.tag`` only); ``scale`` edits ``mode`` and the workers: each value is set by a line
edit, so the file's comments, quoting and layout stay as they are, and the result is read back:
only the asked values may differ, else the edit is refused (set it by hand).

* an existing scalar is replaced in place (``mode: standalone  # note`` keeps its comment);
* a missing key is added under its block mapping (right after the parent's key line, at the
  indentation of its first child), the missing levels with it;
* a key missing at the top level is appended at the end of the file.

A symlinked overlay is refused (kestra-ops never writes through or over one). :func:`write` and
:func:`restore` are conflict-safe: nothing is written over an edit someone made meanwhile.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from kestra_ops.errors import Conflict, InvalidInput

__all__ = ["OverlayChange", "overlay_path", "plan_edit", "set_values", "write", "restore",
           "render_scalar", "shown_path", "SCALAR"]

# a YAML scalar as written on a line: double-quoted, single-quoted or plain
SCALAR = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s,}#]+)""")
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,62}")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}

Path_ = tuple  # a values path: ("distributed", "worker", "replicas")


@dataclass(frozen=True)
class OverlayChange:
    path: Path
    shown: str  # the path as messages name it (relative to the project)
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        """The unified diff, every line masked (a context line may hold a credential)."""
        from kestra_ops.redact import mask_line

        secrets = _secrets(self.before)
        return "".join(mask_line(line, secrets) for line in difflib.unified_diff(
            self.before.splitlines(True), self.after.splitlines(True), f"a/{self.shown}",
            f"b/{self.shown}", n=2))


def _secrets(text: str) -> list[str]:
    from kestra_ops.redact import secret_values
    from kestra_ops.yamlio import YamlLoadError, load_yaml_text, to_plain

    try:
        return [v for v in secret_values(to_plain(load_yaml_text(text, "<overlay>")))
                if len(v) >= 4]
    except YamlLoadError:
        return []


def overlay_path(env) -> Path:
    if not env.values_paths:
        raise InvalidInput(f"environment {env.name!r} has no values layers to write "
                           "into")
    return env.values_paths[-1]


def render_scalar(value: Any) -> str:
    """``value`` as YAML text: ints and booleans bare, a simple word bare, anything else
    double-quoted (JSON escapes are valid in YAML double quotes)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and value.lower() not in _YAML_WORDS:
            return value
        return json.dumps(value)
    raise InvalidInput(f"cannot write {type(value).__name__} values into an overlay")


def plan_edit(env, changes: Mapping[Path_, Any], *, redo: str = "set them by hand") -> \
        OverlayChange:
    """The overlay of ``env`` as it is and with ``changes`` applied (nothing written)."""
    from kestra_ops.yamlio import decode_utf8, read_bytes

    path = overlay_path(env)
    shown = shown_path(path, env.root)
    if path.is_symlink():
        raise InvalidInput(f"{shown} is a symbolic link: kestra-ops does not write through or "
                           "over it", hint=f"make the overlay a regular file, or {redo} in the "
                                           "file it points to")
    text = decode_utf8(read_bytes(path, shown), shown) if path.exists() else ""
    return OverlayChange(path, shown, text, set_values(text, changes, shown))


def set_values(text: str, changes: Mapping[Path_, Any], name: str = "<overlay>") -> str:
    """``text`` with every ``path: value`` of ``changes`` set (see the module doc); refused
    (:class:`InvalidInput`) where a line edit cannot do it or would change anything else."""
    from kestra_ops.yamlio import load_yaml_text, to_plain

    before = to_plain(load_yaml_text(text, name)) if text.strip() else None
    if before is not None and not isinstance(before, dict):
        raise InvalidInput(f"{name}: not a mapping of values")
    after, appended = text, [False]  # one comment over the keys appended by this edit
    for path, value in changes.items():
        after = _set_one(after, tuple(path), value, name, appended)
    expected = _expected(before or {}, changes)
    got = to_plain(load_yaml_text(after, name)) if after.strip() else {}
    if got != expected:
        raise InvalidInput(f"{name}: writing {_names(changes)} would change more than "
                           f"{'that value' if len(changes) == 1 else 'those values'}; set "
                           f"{_names(changes, values=True)} by hand")
    return after


def _names(changes: Mapping[Path_, Any], values: bool = False) -> str:
    return ", ".join(".".join(p) + (f": {render_scalar(v)}" if values else "")
                     for p, v in changes.items())


def _expected(plain: dict, changes: Mapping[Path_, Any]) -> dict:
    import copy

    out = copy.deepcopy(plain)
    for path, value in changes.items():
        node = out
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[path[-1]] = value
    return out


def _set_one(text: str, path: tuple, value: Any, name: str, appended: list) -> str:
    from kestra_ops.yamlio import load_yaml_text

    data = load_yaml_text(text, name) if text.strip() else None
    lines = text.splitlines(True)
    rendered = render_scalar(value)
    dotted = ".".join(path)
    hand = f"set {dotted}: {rendered} by hand"
    node, parents = data, []  # parents: (mapping, key) down to node
    depth = 0
    while depth < len(path) - 1 and isinstance(node, dict) and isinstance(
            node.get(path[depth]), dict):
        parents.append((node, path[depth]))
        node = node[path[depth]]
        depth += 1
    if isinstance(node, dict) and node.fa.flow_style() and node:
        raise InvalidInput(f"{name}: {'.'.join(path[:depth]) or 'the file'} is a flow mapping "
                           f"({{...}}); {hand}")
    last = path[depth]
    if depth == len(path) - 1 and isinstance(node, dict) and last in node:
        if isinstance(node[last], (dict, list)):
            raise InvalidInput(f"{name}: {dotted} is not a single value; {hand}")
        line, col = node.lc.value(last)
        m = SCALAR.match(lines[line], col) if line < len(lines) else None
        if not m or node[last] is None:
            raise InvalidInput(f"{name}:{line + 1}: cannot edit {dotted} in place; {hand}")
        lines[line] = lines[line][:col] + rendered + lines[line][m.end():]
        return "".join(lines)
    if isinstance(node, dict) and last in node:  # a level that is not a block mapping
        raise InvalidInput(f"{name}: {'.'.join(path[:depth + 1])} is not a block mapping; "
                           f"{hand}")
    block = _block(path[depth:], rendered)
    if depth == 0 or not node:
        if depth != 0:  # an empty parent ({} or null) cannot take children by a line edit
            raise InvalidInput(f"{name}: {'.'.join(path[:depth])} is empty ({{}}); {hand}")
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines += ([] if appended[0] else ["\n", "# written by kestra-ops\n"]) + block
        appended[0] = True
        return "".join(lines)
    first = next(iter(node))
    _line, indent = node.lc.key(first)
    parent, key = parents[-1]
    at = parent.lc.key(key)[0] + 1
    lines[at:at] = [" " * indent + b for b in block]
    return "".join(lines)


def _block(keys: tuple, rendered: str) -> list[str]:
    """``a: {b: value}`` as block lines, indented two spaces a level."""
    out = [f"{'  ' * i}{k}:\n" for i, k in enumerate(keys[:-1])]
    return out + [f"{'  ' * (len(keys) - 1)}{keys[-1]}: {rendered}\n"]


def shown_path(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def _now(path: Path) -> str | None:
    from kestra_ops.yamlio import decode_utf8, read_bytes

    return decode_utf8(read_bytes(path, str(path)), str(path)) if path.exists() else None


def write(change: OverlayChange, *, redo: str = "run the command again") -> None:
    """Write the new overlay (atomic; its mode kept: 0600 stays 0600), only when the file is
    still what the plan read and still a regular file (an edit or a symlink put there
    meanwhile is never overwritten: :class:`Conflict`)."""
    from kestra_ops.fileio import write_atomic

    if change.path.is_symlink():
        raise Conflict(f"{change.shown} became a symbolic link since the plan read it: nothing "
                       "written", hint=redo)
    if (_now(change.path) or "") != change.before:
        raise Conflict(f"{change.shown} changed since the plan read it: nothing written",
                       hint=redo)
    _write(change.path, change.after, write_atomic)


def restore(change: OverlayChange) -> bool:
    """Put the overlay back as it was before :func:`write`; False (left alone) when the file
    is no longer what :func:`write` wrote (edited meanwhile, or replaced by a symlink)."""
    from kestra_ops.fileio import write_atomic

    if change.path.is_symlink() or (_now(change.path) or "") != change.after:
        return False
    _write(change.path, change.before, write_atomic)
    return True


def _write(path: Path, text: str, write_atomic) -> None:
    private = path.exists() and (path.stat().st_mode & 0o077) == 0
    write_atomic(path, text, secret=private)
