"""`flows promote`: the namespace rule, in-place rewriting, then validate/plan/apply to ENV."""

from __future__ import annotations

import pytest

from kestra_ops.errors import InvalidInput
from kestra_ops.workflows.flows.local import validate_local
from kestra_ops.workflows.flows.promote import map_namespace, promote
from tests.helpers_flows import Project, flow, kestra, project, table  # noqa: F401

SALES = """# owned by the sales team
id: report
namespace: company.staging.sales   # the stage is a segment
tasks:
  - id: child
    type: io.kestra.plugin.core.flow.Subflow
    namespace: "company.staging.shared"
    flowId: helper
  - id: other-team
    type: io.kestra.plugin.core.flow.Subflow
    namespace: company.finance
    flowId: ledger
"""


@pytest.mark.parametrize("namespace,expected", [
    ("company.staging.sales", "company.production.sales"),
    ("staging", "production"),
    ("staging.jobs", "production.jobs"),
    ("company.staging", "company.production"),
    ("company.staging.staging", "company.production.staging"),  # first occurrence only
    ("company.staging-x", None),
    ("company.backstaging", None),
    ("company.sales", None),
])
def test_the_namespace_rule_replaces_whole_segments(namespace, expected):
    assert map_namespace(namespace, "staging", "production") == expected


def test_multi_segment_tokens():
    assert map_namespace("company.staging.eu.sales", "staging.eu", "prod.eu") == \
        "company.prod.eu.sales"
    assert map_namespace("company.staging.us", "staging.eu", "prod.eu") is None


def test_rewrite_keeps_the_text_and_rewrites_references(project: Project):
    project.write("sales.yaml", SALES)
    project.write("shared.yaml", flow("helper", "company.staging.shared"))
    project.write("global.yaml", flow("global", "company.platform"))

    promotion = promote(validate_local(project.flows), "staging", "production")

    by_id = {f.id: f for f in promotion.local.flows}
    assert sorted(by_id) == ["helper", "report"]
    text = by_id["report"].source
    assert text == SALES.replace("company.staging.", "company.production.")
    assert "namespace: company.production.sales   # the stage is a segment" in text
    assert 'namespace: "company.production.shared"' in text
    assert "namespace: company.finance" in text
    assert ("company.staging.sales.report", "company.production.sales.report", 2) in \
        promotion.mapping
    assert promotion.skipped == ["flows/global.yaml: namespace 'company.platform' has no "
                                 "'staging' segment"]


def test_bad_tokens_and_nothing_to_promote_are_refused(project: Project):
    project.write("a.yaml", flow("a", "company.team"))
    local = validate_local(project.flows)
    with pytest.raises(InvalidInput, match="--to 'Production'"):
        promote(local, "staging", "Production")
    with pytest.raises(InvalidInput, match="no flow namespace has a 'staging' segment"):
        promote(local, "staging", "production")


def test_promote_dry_run_plans_only_then_applies(project: Project):
    project.write("sales.yaml", SALES)
    project.write("shared.yaml", flow("helper", "company.staging.shared"))
    project.kestra.add_flow(flow("helper", "company.production.shared", message="old"))
    project.kestra.add_flow(flow("untouched", "company.production.shared"))
    project.kestra.clear_log()

    dry = project.run("flows", "promote", "flows", "--env", "production", "--from", "staging",
                      "--to", "production", "--dry-run")

    assert dry.exit_code == 0, dry.output
    assert [(r["action"], r["flow"], r["revision"], r["note"]) for r in table(dry.stdout)] == [
        ("create", "company.production.sales.report", "", ""),
        ("update", "company.production.shared.helper", "1", ""),
        ("delete", "company.production.shared.untouched", "1", "kept (--prune not given)")]
    assert table(dry.stdout, "promoted") == [
        {"from": "company.staging.sales.report", "to": "company.production.sales.report",
         "namespace values": "2"},
        {"from": "company.staging.shared.helper", "to": "company.production.shared.helper",
         "namespace values": "1"}]
    assert "  update company.production.shared.helper:" in dry.stdout  # its diff
    assert "flows promote staging -> production production: dry run: 1 created, 1 updated, " \
           "0 deleted" in dry.stdout
    assert [r for r in project.kestra.calls() if r.method != "GET"
            and not r.path.endswith("/validate")] == []

    real = project.run("flows", "promote", "--env", "production", "--from", "staging",
                       "--to", "production", "--yes")  # DIR defaults to flows/

    assert real.exit_code == 0, real.output
    server = project.server_flows()
    assert server[("company.production.sales", "report")].startswith("# owned by the sales team")
    assert "company.staging" not in server[("company.production.sales", "report")]
    assert 'message: "hello"' in server[("company.production.shared", "helper")]
    assert ("company.production.shared", "untouched") in server  # promote never deletes
    assert not any(ns.startswith("company.staging") for ns, _ in server)
    syncs = project.kestra.calls("POST", r"/flows/company\.production\.[a-z.]+$")
    assert syncs and all(r.query["delete"] == ["false"] for r in syncs)
    assert {e["target"] for e in project.changes()} == {
        "flow company.production.sales.report", "flow company.production.shared.helper"}


def test_promote_validates_with_the_target_envs_blacklist(project: Project):
    project.write("sh.yaml", flow("sh", "company.staging.ops",
                                  task_type="io.kestra.plugin.scripts.shell.Commands"))

    result = project.run("flows", "promote", "flows", "--env", "production", "--from",
                         "staging", "--to", "production", "--yes")

    assert result.exit_code == 1
    assert "flows/sh.yaml:6:11: error flows/blacklisted-type" in result.output
    assert project.kestra.calls() == []
