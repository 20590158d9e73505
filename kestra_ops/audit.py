"""The change log: one JSON line per change kestra-ops makes (what, where, before/after).

Written to ``backups/changes.jsonl`` under the project root (mode 0600), never with a secret
value in it: callers pass names and revisions, not data.
"""

from __future__ import annotations

import datetime
import getpass
import json
from pathlib import Path
from typing import Any


def log_change(root: Path, *, action: str, env: str, target: str, before: Any = None,
               after: Any = None, **extra: Any) -> dict:
    entry = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             "user": _user(), "action": action, "env": env, "target": target,
             "before": before, "after": after, **extra}
    from kestra_ops.fileio import append_private  # O_NOFOLLOW: never through a symlink

    append_private(root / "backups" / "changes.jsonl", json.dumps(entry, default=str) + "\n")
    return entry


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
