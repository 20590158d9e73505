"""Validation findings (:class:`kestra_ops.values.findings.Report` per target) in the forms the
generic renderers of :mod:`kestra_ops.output.formats` embed: text lines (file:line:col), a SARIF
2.1.0 document, JUnit suites (one per target, a testcase per rule family) and GitHub Actions
annotations."""

from __future__ import annotations

import os
from pathlib import Path

from kestra_ops import __version__
from kestra_ops.values.catalog import RULES, help_text, title
from kestra_ops.values.findings import Report

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/hyperplane/kestra-ops#values-rules"


def render_text(reports: list[Report], *, color: bool = False) -> str:
    if color:
        import click

    lines = []
    colors = {"error": "red", "warning": "yellow", "info": "blue"}
    for report in reports:
        for f in report.findings:
            sev = click.style(f.severity, fg=colors.get(f.severity), bold=True) if color else f.severity
            lines.append(f"{f.location}: {sev} {f.rule}: {f.message} [{f.path}]")
            if f.hint:
                lines.append(f"    hint: {f.hint}")
        env = f" (env {report.env})" if report.env else ""
        layers = f" [{' + '.join(report.layers)}]" if len(report.layers) > 1 else ""
        if report.unreadable:
            status = "unreadable"
        elif not report.findings:
            status = "ok"
        else:
            status = f"{report.errors} error(s), {report.warnings} warning(s)"
        lines.append(f"{report.target}{env}{layers}: {status}")
    return "\n".join(lines)


def _uri(file: str) -> str:
    """Repository-relative URI for code scanning (absolute paths under cwd become relative)."""
    path = Path(file)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return path.as_uri()
    return path.as_posix()


def _sarif_uri(file: str) -> str:
    """:func:`_uri` as a valid URI reference: SARIF's artifactLocation.uri is one, so spaces,
    '%', '#' or a ':' in a file name are percent-encoded (absolute file URIs already are)."""
    uri = _uri(file)
    if Path(file).is_absolute() and uri.startswith("file:"):
        return uri
    from urllib.parse import quote

    return quote(uri, safe="/")


def sarif_document(reports: list[Report]) -> dict:
    """The SARIF 2.1.0 document of the findings (one run; results may be added to it)."""
    used = sorted({f.rule for r in reports for f in r.findings})
    rules = [{"id": rule, "name": "".join(w.capitalize() for w in rule.replace("/", "-").split("-")),
              "shortDescription": {"text": title(rule)},
              "fullDescription": {"text": help_text(rule) or title(rule)},
              "helpUri": INFO_URI,
              "defaultConfiguration": {"level": "error"}} for rule in used]
    index = {rule: i for i, rule in enumerate(used)}
    results = []
    for report in reports:
        for f in report.findings:
            message = f.message + (f" (hint: {f.hint})" if f.hint else "")
            results.append({
                "ruleId": f.rule, "ruleIndex": index[f.rule],
                "level": {"error": "error", "warning": "warning"}.get(f.severity, "note"),
                "message": {"text": message},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": _sarif_uri(f.location.file)},
                    "region": {"startLine": max(f.location.line, 1),
                               "startColumn": max(f.location.col, 1)}},
                    "logicalLocations": [{"fullyQualifiedName": f.path, "kind": "member"}]}],
                "partialFingerprints": {"kestraOps/v1": f"{f.rule}:{f.path}"},
            })
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "kestra-ops", "version": __version__,
                            "semanticVersion": __version__, "informationUri": INFO_URI,
                            "rules": rules}},
        "results": results,
        "columnKind": "unicodeCodePoints",
    }]}
    return doc


def junit_suites(reports: list[Report]) -> list:
    """One testsuite per target, one testcase per rule family; failures carry each finding."""
    from kestra_ops.output.junit import Case, Suite

    suites = []
    for report in reports:
        families = sorted({r.split("/")[0] for r in RULES} |
                          {f.rule.split("/")[0] for f in report.findings})
        suite = Suite(report.target)
        for family in families:
            bad = [f for f in report.findings if f.rule.split("/")[0] == family]
            errors = [f for f in bad if f.severity == "error"]
            lines = "\n".join(f"{f.location}: {f.severity} {f.rule}: {f.message}" for f in bad)
            suite.cases.append(Case(
                name=f"{report.target} {family}", classname=f"values.{family}", file=report.target,
                failure=f"{errors[0].location}: {errors[0].message}" if errors else None,
                failure_type=errors[0].rule if errors else "failure",
                failure_text=lines, output="" if errors else lines))
        suites.append(suite)
    return suites


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_prop(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_lines(reports: list[Report]) -> list[str]:
    """GitHub Actions workflow commands (::error file=...,line=...::message), one a finding."""
    lines = []
    for report in reports:
        for f in report.findings:
            level = {"error": "error", "warning": "warning"}.get(f.severity, "notice")
            message = f.message + (f" — {f.hint}" if f.hint else "")
            file = _uri(f.location.file) if not os.path.isabs(f.location.file) else f.location.file
            lines.append(f"::{level} file={escape_prop(file)},line={f.location.line},"
                         f"col={f.location.col},title={escape_prop(f.rule)}::"
                         f"{escape_data(message)}")
    return lines
