"""The files of a flows target, read within bounds: a directory, one flow file, or an export ZIP.

A directory is walked without recursion (hidden entries skipped) and never through a symlink:

* a symlink whose target lies inside the directory is read through its target (a linked file)
  or skipped (a linked folder: its files are read where they really are);
* a symlink leaving the directory (a file named ``*.yml``/``*.yaml`` or a folder) is refused with
  a one-line ``flows/symlink`` finding naming the link: its content is neither read, shown nor
  sent to Kestra (there is no option to follow it: copy the file into the directory instead).

Every file is read with :func:`kestra_ops.readfile.read_regular` (a FIFO or a device is refused
at once, at most :data:`kestra_ops.yamlio.MAX_BYTES` a file), and with ``O_NOFOLLOW``, so a file
swapped for a link after the walk is refused too. A whole target has a budget: at most
:data:`MAX_WALK_ENTRIES` directory entries looked at, :data:`MAX_FLOW_FILES` flow files and
:data:`MAX_TOTAL_BYTES` bytes; past any of them the target is refused as a whole (exit 2, nothing
read further, nothing sent).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from kestra_ops.errors import InvalidInput
from kestra_ops.readfile import NotReadable, kind_of, read_regular
from kestra_ops.yamlio import MAX_BYTES, display_name

FLOW_SUFFIXES = (".yml", ".yaml")
MAX_WALK_ENTRIES = 100_000  # directory entries looked at below a target
MAX_FLOW_FILES = 10_000  # flow files of one target
MAX_TOTAL_BYTES = 64 * 1024 * 1024  # bytes of flows read from one target


@dataclass
class Entry:
    """One flow file: its bytes, or the rule and the one-line problem that kept it unread."""

    name: str  # how messages name it: flows/a.yaml, export.zip!a.yml
    raw: bytes | None = None
    rule: str | None = None
    problem: str | None = None


def _is_flow(name: str) -> bool:
    return name.lower().endswith(FLOW_SUFFIXES)


def _over(shown: str, what: str) -> InvalidInput:
    return InvalidInput(f"{shown}: {what}: refused as a whole, nothing read further",
                        hint="is this the right directory? split it, or name a sub-directory")


def _inside(path: Path, root: Path) -> Path | None:
    """Where the symlink ``path`` leads when that lies inside ``root``; None otherwise."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a loop
        return None
    return resolved if resolved == root or root in resolved.parents else None


def _walk(target: Path, shown: str) -> tuple[list[tuple[Path, Path]], list[Entry]]:
    """(display path, path to open) of every flow file below ``target``, and the refused
    symlinks; iterative, with the entry budget."""
    root = target.resolve()
    files: list[tuple[Path, Path]] = []
    refused: list[Entry] = []
    stack, seen = [target], 0
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                items = sorted(listing, key=lambda e: e.name)
        except OSError as err:
            refused.append(Entry(display_name(folder), rule="io/unreadable",
                                 problem=f"cannot list: {err.strerror or err}"))
            continue
        for item in items:
            seen += 1
            if seen > MAX_WALK_ENTRIES:
                raise _over(shown, f"more than {MAX_WALK_ENTRIES:,} entries below it")
            if item.name.startswith("."):
                continue
            path = Path(item.path)
            if item.is_symlink():
                lead = _inside(path, root)
                linked_dir = os.path.isdir(path)
                if lead is None and (linked_dir or _is_flow(item.name)):
                    refused.append(Entry(display_name(path), rule="flows/symlink", problem=(
                        f"a symlink to {'a folder' if linked_dir else 'a file'} outside "
                        f"{shown}: not followed (not read, not sent)")))
                elif lead is not None and not linked_dir and _is_flow(item.name):
                    files.append((path, lead))
                continue
            if item.is_dir(follow_symlinks=False):
                stack.append(path)
            elif _is_flow(item.name):
                files.append((path, path))
    return sorted(files), refused


def _read(name: str, path: Path, *, nofollow: bool) -> Entry:
    try:
        return Entry(name, read_regular(path, MAX_BYTES, nofollow=nofollow))
    except NotReadable as err:
        if err.too_large:
            return Entry(name, rule="io/unreadable",
                         problem=f"{err.size:,} bytes; flows are limited to {MAX_BYTES:,}")
        return Entry(name, rule="io/unreadable", problem=err.reason)


def _zip_entries(target: Path, shown: str) -> Iterator[Entry]:
    if target.stat().st_size > MAX_TOTAL_BYTES:
        raise _over(shown, f"a ZIP of more than {MAX_TOTAL_BYTES:,} bytes")
    try:
        with zipfile.ZipFile(target) as zf:
            infos = sorted((i for i in zf.infolist() if not i.is_dir() and _is_flow(i.filename)),
                           key=lambda i: i.filename)
            if len(infos) > MAX_FLOW_FILES:
                raise _over(shown, f"more than {MAX_FLOW_FILES:,} flow files")
            if sum(i.file_size for i in infos) > MAX_TOTAL_BYTES:
                raise _over(shown, f"flow files of more than {MAX_TOTAL_BYTES:,} bytes in all")
            for info in infos:
                name = f"{shown}!{info.filename}"
                if info.file_size > MAX_BYTES:
                    yield Entry(name, rule="io/unreadable", problem=(
                        f"{info.file_size:,} bytes; flows are limited to {MAX_BYTES:,}"))
                    continue
                with zf.open(info) as fh:
                    raw = fh.read(MAX_BYTES + 1)
                if len(raw) > MAX_BYTES:
                    yield Entry(name, rule="io/unreadable",
                                problem=f"more than {MAX_BYTES:,} bytes; flows are limited to "
                                        f"{MAX_BYTES:,}")
                    continue
                yield Entry(name, raw)
    except (zipfile.BadZipFile, OSError) as err:
        raise InvalidInput(f"{shown}: not a readable ZIP archive ({err})") from None


def flow_entries(target: Path) -> list[Entry]:
    """Every flow file of ``target`` (see the module doc), in path order."""
    shown = display_name(target)
    if target.is_file() and target.suffix.lower() == ".zip":
        return list(_zip_entries(target, shown))
    if target.is_file():  # named on the command line: a link there is the user's choice
        return [_read(shown, target, nofollow=False)]
    if not target.is_dir():
        why = kind_of(target)
        if why and why != "file not found":
            return [Entry(shown, rule="io/unreadable", problem=why)]
        raise InvalidInput(f"{shown}: no such directory or file")
    files, refused = _walk(target, shown)
    if len(files) > MAX_FLOW_FILES:
        raise _over(shown, f"more than {MAX_FLOW_FILES:,} flow files")
    out, total = list(refused), 0
    for path, real in files:
        entry = _read(display_name(path), real, nofollow=True)
        total += len(entry.raw or b"")
        if total > MAX_TOTAL_BYTES:
            raise _over(shown, f"flow files of more than {MAX_TOTAL_BYTES:,} bytes in all")
        out.append(entry)
    return sorted(out, key=lambda e: e.name)
