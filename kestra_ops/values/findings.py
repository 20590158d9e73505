"""Findings: what a validator says about one node of a values file."""

from __future__ import annotations

from dataclasses import dataclass, field

TYPE_CHECKING = False  # (not typing.TYPE_CHECKING: importing typing costs ~2 ms a run)
if TYPE_CHECKING:
    from typing import Iterable

from kestra_ops.yamlio import Location

SEVERITIES = ("error", "warning", "info")


def json_path(path: Iterable) -> str:
    """``("a", "b", 0)`` -> ``$.a.b[0]`` (keys with odd characters are quoted)."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.replace("-", "").replace("_", "").isalnum():
            out += f".{part}"
        else:
            out += f"[{part!r}]"
    return out


@dataclass(frozen=True)
class Finding:
    """One problem found: its rule, severity, message, JSON path, location and fix hint."""

    rule: str
    severity: str
    message: str
    path: str
    location: Location
    hint: str | None = None

    def to_dict(self) -> dict:
        return {"rule": self.rule, "severity": self.severity, "message": self.message,
                "path": self.path, "file": self.location.file, "line": self.location.line,
                "col": self.location.col, "hint": self.hint}


@dataclass
class Report:
    """The findings for one validation target (a file, or an environment's merged layers)."""

    target: str
    env: str | None
    layers: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    unreadable: bool = False  # the file could not be read as YAML (exit 2)

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)

    def to_dict(self) -> dict:
        return {"target": self.target, "env": self.env, "layers": self.layers,
                "unreadable": self.unreadable, "errors": self.errors, "warnings": self.warnings,
                "findings": [f.to_dict() for f in self.findings]}

    @classmethod
    def from_dict(cls, data: dict) -> "Report":
        """:meth:`to_dict` read back (KeyError/TypeError when ``data`` is not one)."""
        return cls(target=data["target"], env=data["env"], layers=data["layers"],
                   unreadable=data["unreadable"],
                   findings=[Finding(f["rule"], f["severity"], f["message"], f["path"],
                                     Location(f["file"], f["line"], f["col"]), f["hint"])
                             for f in data["findings"]])


def exit_code(reports: list[Report]) -> int:
    """0 clean, 1 any error finding, 2 any unreadable file."""
    if any(r.unreadable for r in reports):
        return 2
    return 1 if any(r.errors for r in reports) else 0
