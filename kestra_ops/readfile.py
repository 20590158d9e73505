"""Bounded reads of regular files: the one way kestra-ops reads a file it is given.

A path that is not a regular file (a FIFO would block forever, /dev/zero never ends, a directory,
a socket, a device) is refused before it is opened, and again after (fstat of the open
descriptor, so a swap in between is caught); a FIFO is opened non-blocking so that even that
race cannot hang. At most ``max_bytes + 1`` bytes are ever read: a file that grows past the
limit while it is read is refused too. With ``nofollow`` a symlink in the last component is
refused (O_NOFOLLOW), so a checked path cannot be swapped for a link before it is opened.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_CHUNK = 1024 * 1024
_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class NotReadable(Exception):
    """Why a file was not read: ``reason`` is a short phrase (``is a FIFO (named pipe), not a
    regular file``, ``file not found``); ``size`` is set when the file is too large."""

    def __init__(self, reason: str, size: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.size = size

    @property
    def too_large(self) -> bool:
        return self.size is not None


def _judge(mode: int, size: int, max_bytes: int) -> None:
    if stat.S_ISDIR(mode):
        raise NotReadable("is a directory, not a file")
    if not stat.S_ISREG(mode):
        kind = next((what for test, what in _KINDS if test(mode)), "a special file")
        raise NotReadable(f"is {kind}, not a regular file")
    if size > max_bytes:
        raise NotReadable(f"is {size:,} bytes", size)


def kind_of(path: Path | str) -> str | None:
    """None when ``path`` (followed) is a regular file; else why it is not readable."""
    try:
        st = os.stat(path)
        _judge(st.st_mode, 0, 1)
    except NotReadable as err:
        return err.reason
    except OSError as err:
        return _reason(err)
    return None


def _reason(err: OSError) -> str:
    if err.errno == errno.ENOENT:
        return "file not found"
    if err.errno == errno.ELOOP:
        return "is a symlink (not followed)"
    if err.errno == errno.EISDIR:
        return "is a directory, not a file"
    return f"cannot read: {err.strerror or err}"


def read_regular(path: Path | str, max_bytes: int, *, nofollow: bool = False) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes``; raises
    :class:`NotReadable` for anything else (see the module doc)."""
    flags = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
             | getattr(os, "O_CLOEXEC", 0) | (getattr(os, "O_NOFOLLOW", 0) if nofollow else 0))
    try:
        st = os.lstat(path) if nofollow else os.stat(path)
        if nofollow and stat.S_ISLNK(st.st_mode):
            raise NotReadable("is a symlink (not followed)")
        _judge(st.st_mode, st.st_size, max_bytes)
        fd = os.open(path, flags)
    except OSError as err:
        raise NotReadable(_reason(err)) from None
    try:
        st = os.fstat(fd)
        _judge(st.st_mode, st.st_size, max_bytes)
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, _CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as err:
        raise NotReadable(_reason(err)) from None
    finally:
        os.close(fd)
    raw = b"".join(chunks)
    if len(raw) > max_bytes:
        raise NotReadable(f"grew past {max_bytes:,} bytes while read", len(raw))
    return raw
