"""SARIF 2.1.0 for code scanning: every validation finding (file:line:col), and every failing or
warning item of the report as a result without a file (rule ``<command>/<item id>``)."""

from __future__ import annotations


def render(report, *, color: bool = False, quiet: bool = False) -> str:
    import json

    from kestra_ops.output.findings import sarif_document

    doc = sarif_document(report.findings)
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for item in report.items:
        if item.status not in ("fail", "warn", "interrupted"):
            continue
        rule = f"{report.command.replace(' ', '-')}/{item.id}"
        if all(r["id"] != rule for r in rules):
            rules.append({"id": rule, "shortDescription": {"text": rule},
                          "defaultConfiguration": {"level": "error"}})
        run["results"].append({
            "ruleId": rule, "ruleIndex": next(i for i, r in enumerate(rules) if r["id"] == rule),
            "level": "warning" if item.status == "warn" else "error",
            "message": {"text": "; ".join([item.reason, *item.details])},
            "locations": [{"logicalLocations": [{"fullyQualifiedName": f"{report.env}/{item.id}",
                                                  "kind": "resource"}]}]})
    return json.dumps(doc, indent=2)
