"""flows promote: the flows of one stage, with their namespaces rewritten for the next stage.

The rule: ``--from`` and ``--to`` are one or more namespace segments. A namespace that contains
the ``--from`` segments as whole dot-separated segments (first occurrence) gets them replaced by
``--to``: with ``--from staging --to production``, ``company.staging.sales`` becomes
``company.production.sales`` and ``staging`` becomes ``production``, while ``company.staging-x``
and ``company.backstaging`` are left alone. Every ``namespace:`` value in the flow is rewritten
by the same rule (the flow's own and references: Subflow tasks, flow triggers, conditions), in
place in the text, so comments and layout survive. Flows whose own namespace has no ``--from``
segment are not promoted (they are listed as skipped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from kestra_ops.errors import InvalidInput
from kestra_ops.values.findings import Finding
from kestra_ops.workflows.flows.local import NAMESPACE_RE, LocalResult, check_flows
from kestra_ops.workflows.flows.yamldoc import LocalFlow, parse_flow


def map_namespace(namespace: str, src: str, dst: str) -> str | None:
    """``namespace`` with the segments ``src`` replaced by ``dst``; None when absent."""
    have, old = namespace.split("."), src.split(".")
    for i in range(len(have) - len(old) + 1):
        if have[i:i + len(old)] == old:
            return ".".join(have[:i] + dst.split(".") + have[i + len(old):])
    return None


def _namespace_values(data: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "namespace" and isinstance(value, str):
                yield path + (key,), value
            else:
                yield from _namespace_values(value, path + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _namespace_values(value, path + (i,))


def rewrite(flow: LocalFlow, src: str, dst: str) -> tuple[str, int]:
    """The flow's text with every matching ``namespace:`` value rewritten; and how many."""
    lines = flow.source.splitlines(keepends=True)
    edits = []
    for path, value in _namespace_values(flow.data):
        new = map_namespace(value, src, dst)
        where = flow.value_location(path)
        if new is None or where is None:
            continue
        line, col = where.line - 1, where.col - 1
        text = lines[line]
        start = col + (1 if text[col:col + 1] in ("'", '"') else 0)
        if text[start:start + len(value)] != value:
            raise InvalidInput(f"{where}: cannot rewrite namespace {value!r} in place "
                               "(multi-line or escaped value)")
        edits.append((line, start, len(value), new))
    for line, start, size, new in sorted(edits, reverse=True):  # right to left keeps columns
        text = lines[line]
        lines[line] = text[:start] + new + text[start + size:]
    return "".join(lines), len(edits)


@dataclass
class Promotion:
    local: LocalResult  # the rewritten flows and their findings
    mapping: list[tuple[str, str, int]] = field(default_factory=list)  # (from ns.id, to ns.id, n)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"promoted": [{"from": a, "to": b, "namespace_values": n}
                             for a, b, n in self.mapping], "skipped": self.skipped}


def promote(source: LocalResult, src: str, dst: str) -> Promotion:
    """Rewrite the flows of ``source`` (already read and checked) from ``src`` to ``dst``."""
    for name, value in (("--from", src), ("--to", dst)):
        if not NAMESPACE_RE.match(value or ""):
            raise InvalidInput(f"{name} {value!r}: expected namespace segment(s) such as "
                               "'staging' or 'company.staging'")
    if src == dst:
        raise InvalidInput("--from and --to are the same")
    flows, mapping, skipped = [], [], []
    for flow in source.flows:
        ns = flow.namespace
        new_ns = map_namespace(ns, src, dst) if ns else None
        if new_ns is None:
            skipped.append(f"{flow.file}: namespace {ns!r} has no {src!r} segment")
            continue
        text, count = rewrite(flow, src, dst)
        moved = parse_flow(text, flow.file)
        flows.append(moved)
        mapping.append((flow.name, moved.name, count))
    if not flows:
        raise InvalidInput(f"no flow namespace has a {src!r} segment: nothing to promote",
                           hint="--from names namespace segments, e.g. --from staging for "
                                "company.staging.sales")
    report = source.report
    promoted_files = {f.file for f in flows}
    kept: list[Finding] = [f for f in report.findings if f.location.file not in promoted_files]
    report.findings = kept + check_flows(flows, source.blacklist)
    report.target = f"{report.target} ({src} -> {dst})"
    return Promotion(LocalResult(flows, report, source.blacklist), mapping, skipped)
