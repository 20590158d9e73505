"""The chart's network rules and metrics on the real control plane (issue 16, the "net" part): a
distributed install with networkPolicy.enabled has its NetworkPolicies accepted by the API server
as rendered (read back: pod selectors, ports, peers); the ServiceMonitor is absent while the
cluster does not serve the Prometheus Operator's CRD, and present and accepted after the CRD
(tests/fixtures/crds/, trimmed from the operator's published one) is installed and the env is
deployed again: the deploy's diff renders with the cluster's API versions, so the second deploy
is not "no changes". The fake kubelet enforces no policy: what is tested is the API server's
acceptance and the objects' content, not packet filtering."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e.support import wait_until

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "crds" / \
    "servicemonitors.monitoring.coreos.com.yaml"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CRD_NAME = "servicemonitors.monitoring.coreos.com"
COMPONENTS = ("webserver", "executor", "scheduler", "worker")
OVERLAY = """
mode: distributed
distributed:
  webserver:
    replicas: 2
  worker:
    replicas: 1
    threads: 4
datasources:
  default:
    maximum-pool-size: 4
  postgres:
    maximum-pool-size: 4
networkPolicy:
  enabled: true
  ingress:
    from:
      - namespaceSelector:
          matchLabels:
            kubernetes.io/metadata.name: ingress-nginx
  management:
    from:
      - namespaceSelector:
          matchLabels:
            kubernetes.io/metadata.name: monitoring
serviceMonitor:
  enabled: true
  interval: 20s
"""


def component(selector: dict) -> str:
    return selector["matchLabels"]["app.kubernetes.io/component"]


def ports(rule: dict) -> set[tuple[int, str]]:
    return {(p["port"], p.get("protocol", "TCP")) for p in rule.get("ports") or []}


def missing(install, path: str) -> bool:
    try:
        install.get(path)
    except AssertionError as err:
        assert ": 404 " in str(err), err
        return True
    return False


@pytest.fixture
def crd(install):
    """The ServiceMonitor CRD, installed on demand (cluster-wide) and removed afterwards."""
    def create() -> None:
        install._raw("POST", CRD_PATH, yaml.safe_load(FIXTURE.read_text()))
        wait_until("the ServiceMonitor CRD established", lambda: any(
            c["type"] == "Established" and c["status"] == "True"
            for c in install.get(f"{CRD_PATH}/{CRD_NAME}").get("status", {}).get("conditions")
            or []), timeout=30)
        wait_until("monitoring.coreos.com/v1 served",
                   lambda: not missing(install, "/apis/monitoring.coreos.com/v1"), timeout=30)
    try:
        yield create
    finally:
        try:
            install._raw("DELETE", f"{CRD_PATH}/{CRD_NAME}")
        except AssertionError:
            pass  # never created


def test_network_policies_and_the_servicemonitor_on_a_distributed_install(install, crd):
    ns = install.namespace
    install.overlay().write_text(install.overlay().read_text() + OVERLAY)
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")

    # ---- every NetworkPolicy accepted, read back as rendered
    policies = {p["metadata"]["name"]: p["spec"] for p in install.get(
        f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies")["items"]}
    assert set(policies) == {f"kestra-{c}" for c in COMPONENTS} | {"kestra-postgres"}
    for name in COMPONENTS:
        spec = policies[f"kestra-{name}"]
        assert component(spec["podSelector"]) == name
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        served = {(r["ports"][0]["port"], tuple(sorted(
            (p.get("namespaceSelector") or {}).get("matchLabels", {}).get(
                "kubernetes.io/metadata.name", "pods") for p in r.get("from") or [])))
            for r in spec["ingress"]}
        expected = {(8081, ("monitoring", "pods"))}
        if name == "webserver":
            # the API from the ingress controller's namespace and the post-install hook pod
            expected.add((8080, ("ingress-nginx", "pods")))
        assert served == expected, (name, served)
        egress = set().union(*(ports(r) for r in spec["egress"]))
        assert {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (15012, "TCP")} <= egress, name
        assert any("ports" not in r for r in spec["egress"]) == (name == "worker"), name
    pg = policies["kestra-postgres"]
    assert component(pg["podSelector"]) == "postgres"
    [rule] = pg["ingress"]
    assert ports(rule) == {(5432, "TCP")}
    assert {"backup", "migration", *COMPONENTS} <= set(
        rule["from"][0]["podSelector"]["matchExpressions"][0]["values"])
    # the selectors select the pods the chart runs
    for name in COMPONENTS:
        selector = ",".join(f"{k}={v}" for k, v in
                            policies[f"kestra-{name}"]["podSelector"]["matchLabels"].items())
        assert install.pods(selector), name

    # ---- no CRD: no ServiceMonitor, no metrics Services
    assert missing(install, "/apis/monitoring.coreos.com/v1")
    manifest = install.helm("get", "manifest", "kestra").stdout
    assert "kind: ServiceMonitor" not in manifest
    services = {s["metadata"]["name"] for s in install.get(f"/api/v1/namespaces/{ns}/services")
                ["items"]}
    assert not {s for s in services if s.endswith("-metrics")}

    # ---- the CRD installed, the env deployed again: the ServiceMonitor is created
    crd()
    revisions = len(install.history())
    result = install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    assert len(install.history()) == revisions + 1, result.stdout
    sm = install.get(f"/apis/monitoring.coreos.com/v1/namespaces/{ns}/servicemonitors/kestra")
    assert sm["spec"]["endpoints"] == [{"port": "management", "path": "/prometheus",
                                        "scheme": "http", "interval": "20s"}]
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [ns]}
    [expr] = sm["spec"]["selector"]["matchExpressions"]
    assert expr["values"] == list(COMPONENTS)
    # every component's pods are behind a Service the ServiceMonitor selects
    for name in ("executor", "scheduler", "worker"):
        service = install.get(f"/api/v1/namespaces/{ns}/services/kestra-{name}-metrics")
        assert service["spec"]["clusterIP"] == "None"
        assert service["metadata"]["labels"]["app.kubernetes.io/component"] == name
        assert [p["name"] for p in service["spec"]["ports"]] == ["management"]
    kestra = install.get(f"/api/v1/namespaces/{ns}/services/kestra")
    assert kestra["metadata"]["labels"]["app.kubernetes.io/component"] == "webserver"
    assert "kind: ServiceMonitor" in install.helm("get", "manifest", "kestra").stdout
