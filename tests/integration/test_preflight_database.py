"""preflight's database check against the fake Kubernetes API (which serves no CloudNativePG
CRD) and a loopback listener: cloudnativepg without the CRD fails naming it; external is dialled
only with --database-reachable; the operator's states (forbidden list, none, unavailable) with
the CNPG reads stubbed (the real CRD and API: tests/e2e/test_database_modes_e2e.py)."""

from __future__ import annotations

import json
import socket

from kestra_ops.adapters import cnpg
from kestra_ops.errors import PermissionDenied
from kestra_ops.workflows.deploy.preflight import required_permissions
from kestra_ops.workflows.deploy.preflight_database import check_database
from tests.integration.test_preflight import ROOT, invoke, project  # noqa: F401 - fixture


def with_database(config, text: str) -> None:
    with open(config.parent / "values" / "dev.yaml", "a") as fh:
        fh.write("\n" + text)


def database_item(result) -> dict | None:
    items = json.loads(result.stdout)["checks"]
    return next((c for c in items if c["name"] == "database"), None)


def test_bundled_mode_adds_no_database_item(project):  # noqa: F811
    result = invoke(project, "--output", "json")
    assert result.exit_code == 0, result.output
    assert database_item(result) is None


def test_cloudnativepg_without_the_crd_fails_naming_it(project):  # noqa: F811
    with_database(project, "database: {mode: cloudnativepg}\n")
    result = invoke(project, "--output", "json")
    assert result.exit_code == 1
    item = database_item(result)
    assert item["status"] == "fail"
    assert "CRD clusters.postgresql.cnpg.io is not installed" in item["reason"]


def test_external_is_dialled_only_on_request(project):  # noqa: F811
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with_database(project, f"database:\n  mode: external\n  external:\n"
                      f"    host: 127.0.0.1\n    port: {port}\n")
        quiet = invoke(project, "--output", "json")
        assert quiet.exit_code == 0, quiet.output
        assert "not dialled" in database_item(quiet)["reason"]
        asked = invoke(project, "--output", "json", "--database-reachable")
        assert asked.exit_code == 0, asked.output
        assert database_item(asked)["reason"].endswith("127.0.0.1:%d (sslmode verify-full) "
                                                        "answers" % port)
    closed = invoke(project, "--output", "json", "--database-reachable")
    assert closed.exit_code == 1
    assert "does not answer" in database_item(closed)["reason"]


def test_cluster_permissions_only_in_cloudnativepg_mode():
    chart = ROOT / "charts" / "kestra"
    bundled = {p.qualified for p in required_permissions(chart)[0]}
    cnpg_mode = {p.qualified for p in required_permissions(chart, "cloudnativepg")[0]}
    assert "clusters.postgresql.cnpg.io" not in bundled
    assert cnpg_mode - bundled == {"clusters.postgresql.cnpg.io"}
    assert required_permissions(chart, "cloudnativepg")[1] == []  # Cluster is a known kind


def test_servicemonitor_permissions_only_when_the_values_enable_it():
    """A CRD's kind the chart renders only on request: its verbs are not asked of everyone (a
    namespace admin without the Prometheus Operator's roles passed no preflight)."""
    chart = ROOT / "charts" / "kestra"
    off = {p.qualified for p in required_permissions(chart, values={"mode": "distributed"})[0]}
    on = {p.qualified for p in required_permissions(
        chart, values={"serviceMonitor": {"enabled": True}})[0]}
    assert "servicemonitors.monitoring.coreos.com" not in off
    assert on - off == {"servicemonitors.monitoring.coreos.com"}
    # the built-in kinds a scale back to standalone deletes are always asked
    assert {"poddisruptionbudgets.policy", "horizontalpodautoscalers.autoscaling",
            "networkpolicies.networking.k8s.io"} <= off


VALUES = {"database": {"mode": "cloudnativepg"}}


class Checked:
    def __init__(self, status: str, reason: str):
        self.status, self.reason = status, reason
CRD = {"metadata": {"name": cnpg.CLUSTERS_CRD}}


def operator(available: int) -> dict:
    return {"metadata": {"namespace": "cnpg-system", "name": "cnpg-controller-manager"},
            "status": {"availableReplicas": available}}


def stub(monkeypatch, *, crd=CRD, deployments=()):
    def list_them(kube):
        if isinstance(deployments, Exception):
            raise deployments
        return list(deployments)

    def read_crd(kube, name):
        if isinstance(crd, Exception):
            raise crd
        return crd

    monkeypatch.setattr(cnpg, "crd", read_crd)
    monkeypatch.setattr(cnpg, "operator_deployments", list_them)


def test_operator_states(monkeypatch):
    stub(monkeypatch, deployments=[operator(1)])
    check = Checked(*check_database(None, None, VALUES))
    assert (check.status, check.reason) == (
        "pass", "CRD clusters.postgresql.cnpg.io installed; operator "
        "cnpg-system/cnpg-controller-manager running")
    stub(monkeypatch, deployments=[operator(0)])
    check = Checked(*check_database(None, None, VALUES))
    assert check.status == "fail" and "has no available replica" in check.reason
    stub(monkeypatch, deployments=[])
    check = Checked(*check_database(None, None, VALUES))
    assert check.status == "fail" and "app.kubernetes.io/name=cloudnative-pg" in check.reason


def test_forbidden_answers_are_notes_not_failures(monkeypatch):
    stub(monkeypatch, deployments=PermissionDenied("deployments (all namespaces): forbidden"))
    check = Checked(*check_database(None, None, VALUES))
    assert check.status == "warn"
    assert "cannot list deployments in all namespaces (forbidden)" in check.reason
    stub(monkeypatch, crd=PermissionDenied("forbidden"), deployments=[operator(1)])
    check = Checked(*check_database(None, None, VALUES))
    assert check.status == "warn" and "cannot read customresourcedefinitions" in check.reason
