"""A content-addressed cache of validation reports, like ``eslint --cache`` or mypy's cache.

The key covers every input of a validation: each layer's path and bytes, the schema's bytes,
the environment, the --set expressions, the working directory (file names in reports are
relative to it) and a fingerprint of the rules' own code. A hit skips YAML parsing and schema
validation entirely; anything unreadable or corrupt is a miss. Disable with ``--no-cache`` or
``KESTRA_OPS_NO_CACHE=1``; the folder is ``KESTRA_OPS_CACHE_DIR`` or
``$XDG_CACHE_HOME/kestra-ops`` (``~/.cache/kestra-ops``).
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
from kestra_ops.values.findings import Finding, Report
from kestra_ops.values.loader import Location

_CODE = Path(__file__).resolve().parent


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
    for path in sorted(_CODE.glob("*.py")) + [_CODE.parent / "redact.py",
                                              _CODE.parent / "settings.py"]:
        st = path.stat()
        parts.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def cache_key(paths: Iterable[Path], schema: Path, env: str | None, target: str,
              sets: Iterable[str]) -> str | None:
    digest = _digest()
    try:
        for item in (_code_fingerprint(), os.getcwd(), env or "", target, *sets):
            digest.update(item.encode() + b"\0")
        for path in [*paths, schema]:
            digest.update(str(path).encode() + b"\0")
            with open(path, "rb") as fh:
                if os.fstat(fh.fileno()).st_size > 4 * 1024 * 1024:
                    return None  # oversized inputs are refused by the loader: never cache them
                digest.update(_digest(fh.read()).digest())
    except OSError:
        return None  # unreadable inputs are reported by the loader, uncached
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


def load(key: str | None) -> Report | None:
    data = get_json("validate", key)
    if data is None:
        return None
    try:
        return Report(target=data["target"], env=data["env"], layers=data["layers"],
                      unreadable=data["unreadable"],
                      findings=[Finding(f["rule"], f["severity"], f["message"], f["path"],
                                        Location(f["file"], f["line"], f["col"]), f["hint"])
                                for f in data["findings"]])
    except (KeyError, TypeError):
        return None


def store(key: str | None, report: Report) -> None:
    put_json("validate", key, report.to_dict())
