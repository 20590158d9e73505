"""Small file helpers: atomic writes that honour the umask, 0600 for anything that may hold a
secret, and private files opened with ``O_NOFOLLOW`` (a symlink planted where kestra-ops writes
its backups or reports is refused, never written through)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # elsewhere: set and restore (the strictest value meanwhile)
    os.umask(mask)
    return mask


def write_atomic(path: Path | str, text: str, *, secret: bool = False) -> Path:
    """Write ``text`` to ``path`` via a temp file + rename (a symlink at ``path`` is replaced,
    not followed). Mode: 0600 when ``secret`` (and a new folder 0700), else what the umask
    gives a new file (0666 & ~umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if secret else 0o777)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600 if secret else 0o666 & ~umask())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def open_private(path: Path | str, flags: int):
    """``os.open`` of a 0600 file with ``O_NOFOLLOW``: a symlink there is refused
    (:class:`~kestra_ops.errors.InvalidInput`, exit 2), never written through; the folder is
    created 0700 when missing."""
    import errno

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, flags | os.O_CREAT | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as err:
        if err.errno == errno.ELOOP or path.is_symlink():
            from kestra_ops.errors import InvalidInput

            raise InvalidInput(f"{path}: is a symbolic link; refusing to write through it "
                               "(remove it)") from None
        raise
    try:
        os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: Path | str, text: str) -> Path:
    """Write ``text`` to ``path`` (mode 0600, never through a symlink)."""
    fd = open_private(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def append_private(path: Path | str, text: str) -> Path:
    """Append ``text`` to ``path`` (mode 0600, never through a symlink)."""
    fd = open_private(path, os.O_WRONLY | os.O_APPEND)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)
