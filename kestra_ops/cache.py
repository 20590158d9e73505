"""A content-addressed cache of derived JSON documents, like ``eslint --cache`` or mypy's cache.

A key covers every input of what is cached: the bytes of the files it was derived from (and
their paths), the strings that shaped it (environment, target, ``--set`` expressions), the
working directory (file names in cached reports are relative to it) and a fingerprint of the
code that derives it (:data:`CODE`: the values rules, the YAML loader, the settings). A hit skips
YAML parsing and validation entirely; anything unreadable or corrupt is a miss. Users: values
validation reports (:mod:`kestra_ops.values.validate`) and the parsed kestra-ops.yaml
(:mod:`kestra_ops.settings`). Disable with ``--no-cache`` or ``KESTRA_OPS_NO_CACHE=1``; the folder
is ``KESTRA_OPS_CACHE_DIR`` or ``$XDG_CACHE_HOME/kestra-ops`` (``~/.cache/kestra-ops``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

try:  # hashlib's own BLAKE2, without hashlib loading OpenSSL: ~4 ms of a ~60 ms cache hit
    from _blake2 import blake2b as _digest
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import blake2b as _digest

from kestra_ops import __version__

_PACKAGE = Path(__file__).resolve().parent
MAX_INPUT = 4 * 1024 * 1024  # the loader refuses larger files: never cache what they give


def _code() -> list[Path]:
    """The code whose output is cached (a change to any of it is a miss)."""
    return sorted((_PACKAGE / "values").glob("*.py")) + [
        _PACKAGE / name for name in ("yamlio.py", "cache.py", "redact.py", "settings.py")]


def cache_dir() -> Path | None:
    if os.environ.get("KESTRA_OPS_NO_CACHE", "").strip() not in ("", "0", "false", "no"):
        return None
    base = os.environ.get("KESTRA_OPS_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kestra-ops"


def _code_fingerprint() -> str:
    parts = [__version__]
    for path in _code():
        st = path.stat()
        parts.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def content_key(parts: Iterable[str], files: Iterable[Path]) -> str | None:
    """The key of something derived from ``files`` (paths and bytes) and the strings ``parts``,
    in the working directory, by this code; None (do not cache) when a file cannot be read or is
    larger than :data:`MAX_INPUT` (the loader reports those, uncached)."""
    digest = _digest()
    try:
        for item in (_code_fingerprint(), os.getcwd(), *parts):
            digest.update(item.encode() + b"\0")
        for path in files:
            digest.update(str(path).encode() + b"\0")
            with open(path, "rb") as fh:
                if os.fstat(fh.fileno()).st_size > MAX_INPUT:
                    return None
                digest.update(_digest(fh.read()).digest())
    except OSError:
        return None
    return digest.hexdigest()


def file_key(kind: str, path: Path, data: bytes) -> str:
    """Key for something derived from one file's bytes (e.g. the parsed kestra-ops.yaml)."""
    digest = _digest()
    for item in (kind, _code_fingerprint(), str(path)):
        digest.update(item.encode() + b"\0")
    digest.update(data)
    return digest.hexdigest()


def get_json(kind: str, key: str | None):
    folder = cache_dir()
    if key is None or folder is None:
        return None
    try:
        return json.loads((folder / kind / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def put_json(kind: str, key: str | None, data) -> None:
    folder = cache_dir()
    if key is None or folder is None:
        return
    try:
        from kestra_ops.fileio import write_atomic

        write_atomic(folder / kind / f"{key}.json", json.dumps(data))
    except OSError:
        pass  # a read-only home or a full disk only costs speed
