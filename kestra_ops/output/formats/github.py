"""GitHub Actions workflow commands: ``::error file=...,line=...::`` for every validation finding,
``::error title=...::`` / ``::warning`` for every failing or warning item and failed step."""

from __future__ import annotations


def render(report, *, color: bool = False, quiet: bool = False) -> str:
    from kestra_ops.output.findings import escape_data, escape_prop, github_lines

    lines = github_lines(report.findings)
    units = [(i.id, i.status, i.reason) for i in report.items] + \
        [(s.name, s.status, s.detail) for s in report.steps]
    for name, status, text in units:
        level = {"fail": "error", "interrupted": "error", "warn": "warning"}.get(status)
        if level:
            title = f"{report.command} {name}"
            lines.append(f"::{level} title={escape_prop(title)}::{escape_data(text or status)}")
    return "\n".join(lines)
