"""Golden files (tests/golden): compare a rendering with its file; KESTRA_OPS_UPDATE_GOLDEN=1
rewrites the files instead."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("KESTRA_OPS_UPDATE_GOLDEN") == "1"


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"{path} missing: run with KESTRA_OPS_UPDATE_GOLDEN=1 to create it"
    if text != path.read_text():
        import difflib

        diff = "".join(difflib.unified_diff(path.read_text().splitlines(keepends=True),
                                            text.splitlines(keepends=True), name, "now", n=1))
        raise AssertionError(f"{name} differs (KESTRA_OPS_UPDATE_GOLDEN=1 rewrites it):\n"
                             f"{diff[:3000]}")
