"""The values change of an upgrade: ``image.tag`` in the environment's overlay (its last values
layer), written as a one-line edit so the file's comments, quoting and layout stay as they are;
the diff is what ``upgrade plan`` shows and ``upgrade run`` writes (and puts back on failure)."""

from __future__ import annotations

import re

from kestra_ops.errors import InvalidInput
from kestra_ops.workflows.overlay_edit import (SCALAR, OverlayChange, overlay_path, restore,
                                             shown_path)
from kestra_ops.workflows.overlay_edit import write as _write_edit

__all__ = ["OverlayChange", "overlay_path", "plan_change", "set_image_tag", "write", "restore"]

def plan_change(env, tag: str, *, shared_with=()) -> OverlayChange:
    """The overlay as it is and with ``image.tag: tag``; refused when other environments
    (``shared_with``) have it among their layers: the tag would move them too."""
    from kestra_ops.yamlio import decode_utf8, read_bytes

    path = overlay_path(env)
    shown = shown_path(path, env.root)
    if path.is_symlink():
        raise InvalidInput(f"{shown} is a symbolic link: kestra-ops does not write through or "
                           "over it", hint="set image.tag in the file it points to by hand, "
                                           "or make the overlay a regular file")
    if shared_with:
        raise InvalidInput(f"{shown} is also a values layer of {', '.join(shared_with)}: "
                           f"writing {env.name}'s image.tag there would move them too",
                           hint=f"give {env.name} an overlay of its own")
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
        m = SCALAR.match(lines[line], col)
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


def write(change: OverlayChange) -> None:
    """:func:`kestra_ops.workflows.overlay_edit.write`, the hint naming the upgrade."""
    _write_edit(change, redo="run the upgrade again")
