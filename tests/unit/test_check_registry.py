"""The registry: each family module declares its checklist items and doctor rules once; the ids,
--only, the runner's specs and both commands' help come from there."""

from __future__ import annotations

import types

import pytest
from click.testing import CliRunner

from kestra_ops.checks import registry
from kestra_ops.checks.declare import Check, Rule
from kestra_ops.errors import InvalidInput
from kestra_ops.results import PASS, Item

RUNBOOK = ["pods", "readiness", "components", "events", "minio", "kestra-api", "login",
           "e2e-flow", "configmap"]


@pytest.fixture
def families(monkeypatch):
    """Replace the discovered family modules (the registry's caches cleared around the test)."""
    def use(*modules):
        monkeypatch.setattr(registry, "families", lambda: tuple(modules))
        for cached in (registry.checklist, registry.rules):
            cached.cache_clear()
    yield use
    monkeypatch.undo()
    for cached in (registry.checklist, registry.rules):
        cached.cache_clear()


def test_the_checklist_is_the_families_lists_in_order():
    assert list(registry.check_ids()) == RUNBOOK
    declared = [c for m in registry.families() for c in getattr(m, "CHECKS", ())]
    assert list(registry.checklist()) == declared
    orders = [m.ORDER for m in registry.families()]
    assert orders == sorted(orders)
    assert {m.__name__.rsplit(".", 1)[1] for m in registry.families()} == {
        "pods", "components", "events", "storage", "kestra", "configmap", "doctor_rules",
        "workloads"}


def test_only_is_validated_against_the_registry():
    assert [c.id for c in registry.select("configmap, pods")] == ["pods", "configmap"]
    assert [c.id for c in registry.select(None)] == RUNBOOK
    with pytest.raises(InvalidInput, match=r"unknown check\(s\) nope \(known: pods, readiness"):
        registry.select("pods,nope")
    with pytest.raises(InvalidInput, match=r"\(none given\)"):
        registry.select(" , ")


def test_declarations_are_checked():
    with pytest.raises(ValueError, match="unknown needs"):
        Check("x", "x", lambda ctx: None, needs=("database",))
    with pytest.raises(ValueError, match="unknown sources"):
        Rule((("x", "x"),), lambda snap: [], needs=("weather",))


def test_an_id_declared_twice_is_refused(families):
    one = Check("same", "one", lambda ctx: None)
    families(types.SimpleNamespace(CHECKS=[one]), types.SimpleNamespace(CHECKS=[one]))
    with pytest.raises(ValueError, match="check id\\(s\\) declared twice: same"):
        registry.checklist()


def test_a_new_family_is_run_by_check_with_nothing_else_changed(families, tmp_path):
    """A family module with one item: --only accepts it, the runner runs it with its context,
    the report carries it (no change to the workflow or the CLI)."""
    from kestra_ops.settings import Environment
    from kestra_ops.workflows.check import run_check

    seen = {}

    def run(ctx) -> Item:
        seen.update(namespace=ctx.namespace, timeout=ctx.timeout, cancel=ctx.cancel.is_set())
        return Item("disk", PASS, "enough room")

    families(types.SimpleNamespace(ORDER=1, CHECKS=[Check("disk", "enough room", run)]))
    report = run_check(Environment(name="dev", root=tmp_path, namespace="ns"), only="disk",
                       timeout=7)
    assert [(r.id, r.status, r.reason) for r in report.results] == [("disk", PASS,
                                                                      "enough room")]
    assert seen == {"namespace": "ns", "timeout": 7, "cancel": False}
    assert report.to_report().message.startswith("check dev: ok: 1 passed")


def test_check_help_lists_every_item_with_its_help():
    from kestra_ops.cli import cli

    result = CliRunner().invoke(cli, ["check", "--help"], terminal_width=120)
    assert result.exit_code == 0
    for check in registry.checklist():
        first = check.help.split()[0]
        assert f"\n  {check.id:{len('kestra-api') + 2}}{first}" in result.output, check.id
    assert f"comma-separated): {', '.join(RUNBOOK)}" in " ".join(result.output.split())


def test_doctor_help_lists_every_finding():
    from kestra_ops.cli import cli

    result = CliRunner().invoke(cli, ["doctor", "--help"], terminal_width=120)
    assert result.exit_code == 0
    ids = registry.finding_ids()
    assert {"datasource-missing", "configmap-sections", "crashloop", "pod-failing",
            "postgres-pod", "postgres-auth", "basic-auth", "rbac", "minio-dns", "minio-health",
            "blacklisted-plugin", "unknown-plugin", "stuck-executions", "release-pending",
            "kestra-unreachable", "component-down", "hpa-at-max", "pdb-blocks-drain"} == set(ids)
    for finding in ids:
        assert f"\n  {finding} " in result.output, finding
