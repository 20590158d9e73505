"""What preflight requires for our chart: Helm's verbs on every kind the templates declare,
including the ``watch`` Helm 4's ``--wait`` (kstatus) needs and the ReplicaSets it reads for a
Deployment (found missing on a real API server with helm v4.1.4; see tests/e2e/
test_preflight_e2e.py, which deploys with exactly these permissions)."""

from __future__ import annotations

from pathlib import Path

from kestra_ops.workflows.deploy.preflight import CHART_KINDS, KIND_RESOURCES, required_permissions

CHART = Path(__file__).resolve().parents[2] / "charts" / "kestra"


def names(chart: Path) -> set[str]:
    perms, _ = required_permissions(chart)
    return {f"{p.verb} {p.qualified}" for p in perms}


def test_every_chart_kind_can_be_listed_and_watched():
    ours = names(CHART)
    for kind in CHART_KINDS:
        group, plural = KIND_RESOURCES[kind]
        resource = f"{plural}.{group}" if group else plural
        assert {f"list {resource}", f"watch {resource}"} <= ours, kind
    # the generated objects kstatus reads: a Deployment's ReplicaSets, the pods of the rest
    assert {"list replicasets.apps", "list pods"} <= ours
    assert "watch replicasets.apps" not in ours  # read with a list, never watched
    assert "watch leases.coordination.k8s.io" not in ours  # ours, not helm's


def test_replicasets_only_for_a_chart_with_a_deployment(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n")
    only_cm = names(tmp_path)
    assert "watch configmaps" in only_cm and "list replicasets.apps" not in only_cm
    assert "watch deployments.apps" not in only_cm


def test_the_checklist_reads_health_through_the_pod_proxy():
    """The release's checklist asks each Kestra pod's /health through the API server's pod
    proxy (the ``components`` item): ``get pods/proxy`` is required with the pods' log."""
    ours = names(CHART)
    assert {"get pods/proxy", "get pods/log", "list pods"} <= ours
    assert "create pods/proxy" not in ours  # a GET only


def test_the_bucket_region_comes_from_the_merged_values():
    from kestra_ops.workflows.deploy.preflight import _values_region

    assert _values_region({"kestra": {"storage": {"minio": {"region": "eu-west-3"}}}}) == \
        "eu-west-3"
    for values in ({}, {"kestra": {"storage": {"minio": {"region": "${REGION}"}}}},
                   {"kestra": {"storage": "minio"}}, {"kestra": {"storage": {"minio": {}}}}):
        assert _values_region(values) is None
