"""How kestra-ops.yaml's settings become an Environment's values (:mod:`kestra_ops.settings`):
file paths (``~`` expanded, a file's relative path from its folder), true/false from the file or
a variable, and whole numbers of days."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from kestra_ops.errors import ConfigError

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Any


def file_setting(root: Path, merged: Mapping[str, Any], sources: Mapping[str, str],
                  key: str) -> str | None:
    """A file path setting (kubeconfig, a CA file): ``~`` expanded; a relative path in the file
    is from the file's folder (a flag's or variable's: as given, from the working directory)."""
    value = merged.get(key)
    if value is None or not str(value).strip():
        return None
    path = os.path.expanduser(str(value).strip())
    if not os.path.isabs(path):
        path = str(root / path) if sources.get(key) == "config" else path
    return path


def flag(value: Any) -> bool | None:
    """true/false from the file, or text from a variable ("0", "false", "no", "off": false)."""
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off")
    return None if value is None else bool(value)


def whole_days(merged: Mapping[str, Any], key: str, env: str) -> int | None:
    days = merged.get(key)
    if days is None:
        return None
    try:
        whole = int(days)
    except (TypeError, ValueError):
        whole = 0
    if isinstance(days, bool) or whole < 1:
        section, _, sub = key.partition("_")
        raise ConfigError(f"environment {env}: {section}.{sub} must be a whole number of days "
                          "(1 or more)")
    return whole
