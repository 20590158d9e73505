"""YAML: the same document as JSON, for reading by people and by tools that prefer YAML."""

from __future__ import annotations


def render(report, *, color: bool = False, quiet: bool = False) -> str:
    import json

    import yaml

    plain = json.loads(json.dumps(report.to_dict(), default=str))  # dates and paths as text
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True).rstrip("\n")
