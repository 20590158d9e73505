"""The values change of an upgrade: ``image.tag`` in the environment's overlay (its last values
layer), written as a one-line edit so the file's comments, quoting and layout stay as they are;
the diff is what ``upgrade plan`` shows and ``upgrade run`` writes (and puts back on failure)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from kestra_ops.errors import InvalidInput

_SCALAR = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s,}#]+)""")


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
        raise InvalidInput(f"environment {env.name!r} has no values layers to write the "
                           "version into")
    return env.values_paths[-1]


def plan_change(env, tag: str) -> OverlayChange:
    """The overlay as it is and with ``image.tag: tag``."""
    from kestra_ops.yamlio import decode_utf8, read_bytes

    path = overlay_path(env)
    shown = _shown(path, env.root)
    if path.is_symlink():
        raise InvalidInput(f"{shown} is a symbolic link: kestra-ops does not write through or "
                           "over it", hint="set image.tag in the file it points to by hand, "
                                           "or make the overlay a regular file")
    text = decode_utf8(read_bytes(path, shown), shown) if path.exists() else ""
    return OverlayChange(path, shown, text, set_image_tag(text, tag, shown))


def set_image_tag(text: str, tag: str, name: str = "<overlay>") -> str:
    """``text`` with ``image.tag`` set to ``tag``: the value edited in place where the key
    exists, a ``tag:`` line added under an ``image:`` block, else an ``image:`` block appended.
    Checked by reading the result back: only image.tag differs."""
    from kestra_ops.yamlio import load_yaml_text, to_plain

    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
        raise InvalidInput(f"{tag!r} is not an image tag")
    data = load_yaml_text(text, name) if text.strip() else None
    if data is not None and not isinstance(data, dict):
        raise InvalidInput(f"{name}: not a mapping of values; cannot set image.tag")
    lines = text.splitlines(True)
    image = data.get("image") if data else None
    quoted = f'"{tag}"'
    if isinstance(image, dict) and "tag" in image:
        line, col = image.lc.value("tag")
        m = _SCALAR.match(lines[line], col)
        if not m:
            raise InvalidInput(f"{name}:{line + 1}: cannot edit image.tag in place")
        lines[line] = lines[line][:col] + quoted + lines[line][m.end():]
    elif isinstance(image, dict) and image and not image.fa.flow_style():
        first = next(iter(image))
        line, col = image.lc.key(first)
        lines.insert(line, " " * col + f"tag: {quoted}\n")
    elif image is None and (data is None or "image" not in data):
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines += ["\n", "# the Kestra version (written by kestra-ops upgrade run)\n",
                  "image:\n", f"  tag: {quoted}\n"]
    else:
        raise InvalidInput(f"{name}: image is not a block mapping; set image.tag: {quoted} "
                           "by hand")
    after = "".join(lines)
    _check(text, after, tag, name, to_plain, load_yaml_text)
    return after


def _check(before: str, after: str, tag: str, name: str, to_plain, load) -> None:
    old = to_plain(load(before, name)) if before.strip() else {}
    new = to_plain(load(after, name))
    old = dict(old or {})
    image = dict(old.get("image") or {})
    image["tag"] = tag
    old["image"] = image
    if new != old:
        raise InvalidInput(f"{name}: writing image.tag would change more than the tag; set "
                           f"image.tag: \"{tag}\" by hand")


def _shown(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def _now(path: Path) -> str | None:
    from kestra_ops.yamlio import decode_utf8, read_bytes

    return decode_utf8(read_bytes(path, str(path)), str(path)) if path.exists() else None


def write(change: OverlayChange) -> None:
    """Write the new overlay (atomic; its mode kept: 0600 stays 0600), only when the file is
    still what the plan read (someone's edit meanwhile is never overwritten)."""
    from kestra_ops.errors import Conflict
    from kestra_ops.fileio import write_atomic

    if (_now(change.path) or "") != change.before:
        raise Conflict(f"{change.shown} changed since the plan read it: nothing written",
                       hint="run the upgrade again")
    _write(change.path, change.after, write_atomic)


def restore(change: OverlayChange) -> bool:
    """Put the overlay back as it was before :func:`write`; False (left alone) when the file
    is no longer what :func:`write` wrote (edited meanwhile)."""
    from kestra_ops.fileio import write_atomic

    if (_now(change.path) or "") != change.after:
        return False
    _write(change.path, change.before, write_atomic)
    return True


def _write(path: Path, text: str, write_atomic) -> None:
    private = path.exists() and (path.stat().st_mode & 0o077) == 0
    write_atomic(path, text, secret=private)
