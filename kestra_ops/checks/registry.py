"""The registry: every family module of :mod:`kestra_ops.checks` that declares ``CHECKS`` (items of
the post-deploy checklist) or ``FINDINGS`` (doctor rules), gathered in the families' ``ORDER``
(the runbook's order). The checklist's ids, ``--only``'s validation and the help of ``check``
and ``doctor`` all come from here: a new item is a line in its family's list (a new family, a
new module), nothing else.
"""

from __future__ import annotations

import functools
import textwrap

from kestra_ops.checks.declare import Check, Rule


@functools.lru_cache(maxsize=1)
def families() -> tuple:
    """The family modules (those declaring CHECKS or FINDINGS), in their ORDER."""
    import importlib
    import pkgutil

    import kestra_ops.checks as package

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in ("registry", "declare", "runner") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"kestra_ops.checks.{info.name}")
        if hasattr(module, "CHECKS") or hasattr(module, "FINDINGS"):
            found.append(module)
    return tuple(sorted(found, key=lambda m: (getattr(m, "ORDER", 1000), m.__name__)))


@functools.lru_cache(maxsize=1)
def checklist() -> tuple[Check, ...]:
    """Every checklist item, in order; ids are unique."""
    checks = tuple(c for m in families() for c in getattr(m, "CHECKS", ()))
    _unique([c.id for c in checks], "check")
    return checks


@functools.lru_cache(maxsize=1)
def rules() -> tuple[Rule, ...]:
    """Every doctor rule, in order; finding ids are unique."""
    found = tuple(r for m in families() for r in getattr(m, "FINDINGS", ()))
    _unique([i for r in found for i in r.ids], "doctor finding")
    return found


def _unique(ids: list[str], what: str) -> None:
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"{what} id(s) declared twice: {', '.join(twice)}")


def check_ids() -> tuple[str, ...]:
    return tuple(c.id for c in checklist())


def finding_ids() -> tuple[str, ...]:
    return tuple(i for r in rules() for i in r.ids)


def select(only: str | list[str] | None) -> list[Check]:
    """The items ``--only`` names (comma-separated, in checklist order); all without it.
    InvalidInput (exit 2) naming an unknown id."""
    from kestra_ops.errors import InvalidInput

    known = check_ids()
    if not only:
        return list(checklist())
    words = only.split(",") if isinstance(only, str) else list(only)
    wanted = [w.strip() for w in words if w.strip()]
    unknown = [w for w in wanted if w not in known]
    if unknown or not wanted:
        raise InvalidInput(f"--only: unknown check(s) {', '.join(unknown) or '(none given)'} "
                           f"(known: {', '.join(known)})")
    return [c for c in checklist() if c.id in wanted]


def help_block(pairs, width: int = 92) -> str:
    """``id  help`` rows, the help wrapped and indented under itself (for a command's help,
    after a ``\\b`` line so click keeps the layout)."""
    pairs = list(pairs)
    column = max(len(i) for i, _ in pairs) + 2
    lines = []
    for ident, text in pairs:
        wrapped = textwrap.wrap(" ".join(text.split()), width - column) or [""]
        lines.append(f"{ident:{column}}{wrapped[0]}")
        lines += [" " * column + more for more in wrapped[1:]]
    return "\n".join(lines)


def checklist_help(width: int = 92) -> str:
    return help_block(((c.id, c.help) for c in checklist()), width)


def doctor_help(width: int = 92) -> str:
    return help_block((pair for r in rules() for pair in r.findings), width)
