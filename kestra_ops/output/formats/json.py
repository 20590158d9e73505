"""JSON: the report's dictionary (standard keys, then the command's own fields)."""

from __future__ import annotations


def render(report, *, color: bool = False, quiet: bool = False) -> str:
    import json

    return json.dumps(report.to_dict(), indent=2, default=str)
