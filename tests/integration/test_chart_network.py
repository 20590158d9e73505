"""The chart's network rules and metrics with the real helm binary: NetworkPolicies per Kestra
pod and for the bundled PostgreSQL (networkPolicy.*), the ServiceMonitor only where the
Prometheus Operator's CRD is served (serviceMonitor.*), the workers' autoscaler on custom or
external metrics only where the metrics API is served, the schema refusing bad keys, and the
standalone render unchanged while everything is off (the goldens of test_chart_distributed)."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from kestra_ops.settings import load_config
from kestra_ops.workflows.deploy.chart_lint import lint_chart
from tests.integration.test_chart_distributed import (CHART, DISTRIBUTED, HELM, ROOT,
                                                      env_values)

pytestmark = pytest.mark.skipif(not Path(HELM).exists(), reason="helm is not installed "
                                "(scripts/setup installs it)")
SM_API = "monitoring.coreos.com/v1/ServiceMonitor"
KESTRA_PODS = ("webserver", "executor", "scheduler", "worker")


def template(*values: Path, sets: tuple[str, ...] = (), apis: tuple[str, ...] = ()
             ) -> subprocess.CompletedProcess:
    argv = [HELM, "template", "kestra", str(CHART), "--namespace", "kestra"]
    for path in values:
        argv += ["-f", str(path)]
    for item in sets:
        argv += ["--set", item]
    for api in apis:
        argv += ["--api-versions", api]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def objects(*values: Path, sets=(), apis=()) -> dict[tuple[str, str], dict]:
    done = template(*values, sets=sets, apis=apis)
    assert done.returncode == 0, done.stderr
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(done.stdout) if d}


def write(tmp_path: Path, text: str, name: str = "override.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def policies(found: dict) -> dict[str, dict]:
    return {name: doc["spec"] for (kind, name), doc in found.items() if kind == "NetworkPolicy"}


def ports(rule: dict) -> set[tuple[int, str]]:
    return {(p["port"], p["protocol"]) for p in rule.get("ports", [])}


def egress_ports(spec: dict) -> set[tuple[int, str]]:
    return set().union(*(ports(rule) for rule in spec["egress"]))


def component_of(selector: dict) -> str:
    return selector["matchLabels"]["app.kubernetes.io/component"]


PRODUCTION = env_values("production")


# ------------------------------------------------------------------ off by default

def test_nothing_new_renders_while_the_keys_are_off():
    found = objects(*PRODUCTION, apis=(SM_API,))
    assert not [k for k in found if k[0] in ("NetworkPolicy", "ServiceMonitor")]
    assert [name for kind, name in found if kind == "Service"] == ["kestra-postgres", "kestra"]


# ------------------------------------------------------------------ NetworkPolicies

def test_standalone_gets_one_policy_for_kestra_and_one_for_postgres():
    specs = policies(objects(*PRODUCTION, sets=("networkPolicy.enabled=true",)))
    assert set(specs) == {"kestra-standalone", "kestra-postgres"}
    kestra = specs["kestra-standalone"]
    assert component_of(kestra["podSelector"]) == "standalone"
    assert kestra["policyTypes"] == ["Ingress", "Egress"]
    api, management = kestra["ingress"]
    assert ports(api) == {(8080, "TCP")} and "from" not in api  # default: anyone
    assert ports(management) == {(8081, "TCP")}
    assert management["from"] == [{"podSelector": {}}]  # this namespace only
    # DNS, the bundled PostgreSQL, MinIO's port from kestra.storage.minio.port, istiod
    assert {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (9000, "TCP"), (15012, "TCP")} \
        <= egress_ports(kestra)
    [db] = [r for r in kestra["egress"] if ports(r) == {(5432, "TCP")}]
    assert [component_of(p["podSelector"]) for p in db["to"]] == ["postgres"]
    [storage] = [r for r in kestra["egress"] if ports(r) == {(9000, "TCP")}]
    # minio.hyperplane-minio.svc.cluster.local: that namespace
    assert storage["to"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "hyperplane-minio"}}}]
    # the standalone server runs tasks: the worker egress, without the metadata range
    [tasks] = [r for r in kestra["egress"] if "ports" not in r]
    assert tasks["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}}]


def test_postgres_admits_the_kestra_pods_of_both_modes_the_backup_and_migrations():
    spec = policies(objects(*PRODUCTION, sets=("networkPolicy.enabled=true",)))["kestra-postgres"]
    assert component_of(spec["podSelector"]) == "postgres"
    [rule] = spec["ingress"]
    assert ports(rule) == {(5432, "TCP")}
    [peer] = rule["from"]
    [expr] = peer["podSelector"]["matchExpressions"]
    assert expr["key"] == "app.kubernetes.io/component" and expr["operator"] == "In"
    assert set(expr["values"]) == {"standalone", *KESTRA_PODS, "backup", "migration"}
    assert egress_ports(spec) == {(53, "UDP"), (53, "TCP"), (15012, "TCP")}


def test_distributed_gets_one_policy_per_component(tmp_path):
    text = DISTRIBUTED + "networkPolicy:\n  enabled: true\n"
    specs = policies(objects(*PRODUCTION, write(tmp_path, text)))
    assert set(specs) == {f"kestra-{c}" for c in KESTRA_PODS} | {"kestra-postgres"}
    for component in KESTRA_PODS:
        spec = specs[f"kestra-{component}"]
        assert component_of(spec["podSelector"]) == component
        served = set().union(*(ports(r) for r in spec["ingress"]))
        # only the webserver serves the API; every component its management port
        assert served == ({(8080, "TCP"), (8081, "TCP")} if component == "webserver"
                          else {(8081, "TCP")})
        assert {(5432, "TCP"), (9000, "TCP"), (53, "UDP")} <= egress_ports(spec)
        runs_tasks = any("ports" not in r for r in spec["egress"])
        assert runs_tasks == (component == "worker"), component


def test_restricted_ingress_keeps_the_post_install_pod_and_extra_peers(tmp_path):
    text = """
networkPolicy:
  enabled: true
  ingress:
    from:
      - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}
  management:
    from:
      - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
  worker:
    egress: []
  extraEgress:
    - to: [{ipBlock: {cidr: 203.0.113.0/24}}]
      ports: [{port: 443, protocol: TCP}]
"""
    spec = policies(objects(*PRODUCTION, write(tmp_path, text)))["kestra-standalone"]
    api, management = spec["ingress"]
    assert api["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"}
    assert component_of(api["from"][1]["podSelector"]) == "post-install"
    assert management["from"][1]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"}
    # no open task egress left; the extra rule is there
    assert all("ports" in r for r in spec["egress"])
    assert {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}],
            "ports": [{"port": 443, "protocol": "TCP"}]} in spec["egress"]


def test_an_external_database_and_storage_are_expressed_by_their_peers(tmp_path):
    text = """
postgres: {enabled: false}
istio: {enabled: false}
networkPolicy:
  enabled: true
  database:
    to: [{ipBlock: {cidr: 10.20.0.0/16}}]
    ports: [5432, 6432]
  storage:
    to: [{ipBlock: {cidr: 10.30.0.0/16}}]
    port: 443
"""
    found = objects(*PRODUCTION, write(tmp_path, text))
    specs = policies(found)
    assert set(specs) == {"kestra-standalone"}  # no bundled PostgreSQL, no policy for it
    spec = specs["kestra-standalone"]
    [db] = [r for r in spec["egress"] if (6432, "TCP") in ports(r)]
    assert ports(db) == {(5432, "TCP"), (6432, "TCP")}
    assert db["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]  # no kestra-postgres pods
    [storage] = [r for r in spec["egress"] if ports(r) == {(443, "TCP")}]
    assert storage["to"] == [{"ipBlock": {"cidr": "10.30.0.0/16"}}]
    assert (15012, "TCP") not in egress_ports(spec)  # no sidecar, no istiod


def test_a_database_mode_other_than_bundled_drops_the_bundled_peer(tmp_path):
    """database.mode (external / cloudnativepg, another part of issue 16) is read when present;
    the schema of this branch does not know the key yet, so the chart is rendered without it."""
    text = "networkPolicy:\n  enabled: true\n  database:\n    to: [{podSelector: {matchLabels: {cnpg.io/cluster: kestra-db}}}]\n"
    spec = policies(objects(*PRODUCTION, write(tmp_path, text)))["kestra-standalone"]
    [db] = [r for r in spec["egress"] if (5432, "TCP") in ports(r)]
    # bundled (postgres.enabled, no database.mode): the kestra-postgres pods and the extra peer
    assert [component_of(p["podSelector"]) if "app.kubernetes.io/component" in
            p["podSelector"]["matchLabels"] else p["podSelector"]["matchLabels"]
            for p in db["to"]] == ["postgres", {"cnpg.io/cluster": "kestra-db"}]


def test_policies_lint_clean_against_the_strict_kubernetes_schemas(tmp_path):
    text = DISTRIBUTED + """
networkPolicy:
  enabled: true
  ingress:
    from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}}]
  extraEgress:
    - to: [{ipBlock: {cidr: 203.0.113.0/24}}]
      ports: [{port: 443, protocol: TCP}]
"""
    environment = load_config(ROOT / "kestra-ops.yaml").environment("production", environ={})
    environment = replace(environment, values=environment.values + (write(tmp_path, text),))
    result = lint_chart(environment)
    assert result.report.findings == []
    names = {m.name for m in result.manifests}
    assert {f"NetworkPolicy/kestra-{c}" for c in KESTRA_PODS} | {"NetworkPolicy/kestra-postgres"} \
        <= names


# ------------------------------------------------------------------ ServiceMonitor

def test_no_servicemonitor_without_the_crd():
    found = objects(*PRODUCTION, sets=("serviceMonitor.enabled=true",))
    assert not [k for k in found if k[0] == "ServiceMonitor" or k[1].endswith("-metrics")]


def test_standalone_servicemonitor_scrapes_the_management_port():
    found = objects(*PRODUCTION, sets=("serviceMonitor.enabled=true",
                                       "serviceMonitor.labels.release=prometheus",
                                       "serviceMonitor.interval=15s"), apis=(SM_API,))
    sm = found["ServiceMonitor", "kestra"]
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    [endpoint] = sm["spec"]["endpoints"]
    assert endpoint == {"port": "management", "path": "/prometheus", "scheme": "http",
                        "interval": "15s"}
    [expr] = sm["spec"]["selector"]["matchExpressions"]
    assert expr["values"] == ["standalone"]
    service = found["Service", "kestra"]
    # the selector matches Service kestra, whose port `management` is the container's 8081
    assert all(service["metadata"]["labels"][k] == v
               for k, v in sm["spec"]["selector"]["matchLabels"].items())
    assert service["metadata"]["labels"]["app.kubernetes.io/component"] in expr["values"]
    assert {"name": "management", "port": 8081, "targetPort": "management", "protocol": "TCP",
            "appProtocol": "http"} in service["spec"]["ports"]
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["kestra"]}


def test_distributed_servicemonitor_reaches_every_component(tmp_path):
    text = DISTRIBUTED + "serviceMonitor:\n  enabled: true\n  scrapeTimeout: 10s\n"
    found = objects(*PRODUCTION, write(tmp_path, text), apis=(SM_API,))
    sm = found["ServiceMonitor", "kestra"]
    [expr] = sm["spec"]["selector"]["matchExpressions"]
    assert expr["values"] == list(KESTRA_PODS)
    assert sm["spec"]["endpoints"][0]["scrapeTimeout"] == "10s"
    for component in ("executor", "scheduler", "worker"):
        service = found["Service", f"kestra-{component}-metrics"]
        assert service["spec"]["clusterIP"] == "None"
        assert component_of({"matchLabels": service["spec"]["selector"]}) == component
        assert [p["name"] for p in service["spec"]["ports"]] == ["management"]
        assert service["metadata"]["labels"]["app.kubernetes.io/component"] in expr["values"]
    # the webserver is scraped through Service kestra, which is unchanged
    assert found["Service", "kestra"]["metadata"]["labels"]["app.kubernetes.io/component"] \
        == "webserver"


# ------------------------------------------------------------------ worker HPA metrics

CUSTOM = """
distributed:
  worker:
    autoscaling:
      metrics:
        - type: Pods
          pods:
            metric: {name: kestra_worker_running_tasks}
            target: {type: AverageValue, averageValue: "8"}
"""
EXTERNAL = """
distributed:
  worker:
    autoscaling:
      metrics:
        - type: External
          external:
            metric: {name: kestra_queue_depth}
            target: {type: AverageValue, averageValue: "10"}
"""


def worker_hpa_metrics(tmp_path: Path, metrics: str, apis=()) -> list[dict]:
    """The worker autoscaler's metrics: the distributed override, then ``metrics`` over it."""
    found = objects(*PRODUCTION, write(tmp_path, DISTRIBUTED, "distributed.yaml"),
                    write(tmp_path, metrics, "metrics.yaml"), apis=apis)
    return found["HorizontalPodAutoscaler", "kestra-worker"]["spec"]["metrics"]


def test_the_autoscaler_keeps_cpu_without_a_metrics_api(tmp_path):
    [metric] = worker_hpa_metrics(tmp_path, CUSTOM)
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"


def test_pods_metrics_need_the_custom_metrics_api(tmp_path):
    [metric] = worker_hpa_metrics(tmp_path, CUSTOM, apis=("custom.metrics.k8s.io/v1beta1",))
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "kestra_worker_running_tasks"
    # the external API does not serve Pods metrics
    [cpu] = worker_hpa_metrics(tmp_path, CUSTOM, apis=("external.metrics.k8s.io/v1beta1",))
    assert cpu["type"] == "Resource"


def test_external_metrics_need_the_external_metrics_api(tmp_path):
    [cpu] = worker_hpa_metrics(tmp_path, EXTERNAL, apis=("custom.metrics.k8s.io/v1beta1",))
    assert cpu["type"] == "Resource"
    [metric] = worker_hpa_metrics(tmp_path, EXTERNAL, apis=("external.metrics.k8s.io/v1beta1",))
    assert metric["type"] == "External" and metric["external"]["target"]["averageValue"] == "10"


# ------------------------------------------------------------------ the schema

@pytest.mark.parametrize("sets, words", [
    (("networkPolicy.enable=true",), "enable"),
    (("networkPolicy.enabled=yes",), "enabled"),
    (("networkPolicy.ingress.from[0].podSelektor.matchLabels.a=b",), "podSelektor"),
    (("networkPolicy.storage.port=70000",), "port"),
    (("networkPolicy.database.ports[0]=0",), "ports"),
    (("networkPolicy.worker.egress[0].ports[0].protocol=ICMP",), "protocol"),
    (("networkPolicy.extraEgress[0].to[0].ipBlock.cidr=anywhere",), "cidr"),
    (("serviceMonitor.interval=30 seconds",), "interval"),
    (("serviceMonitor.path=/metrics",), "path"),
    (("mode=distributed", "distributed.worker.autoscaling.metrics[0].type=Pod"), "type"),
    (("mode=distributed", "distributed.worker.autoscaling.metrics[0].type=Pods",
      "distributed.worker.autoscaling.metrics[0].pod.metric.name=x"), "pod"),
    (("mode=distributed", "distributed.worker.autoscaling.metrics[0].type=External",
      "distributed.worker.autoscaling.metrics[0].external.metric.name=q",
      "distributed.worker.autoscaling.metrics[0].external.target.type=Average"), "type"),
])
def test_the_schema_rejects_bad_keys(sets, words):
    done = template(*PRODUCTION, sets=sets)
    assert done.returncode != 0, f"{sets} rendered"
    assert words in done.stderr


def test_the_schema_refuses_an_empty_database_port_list(tmp_path):
    """An empty `ports` in a NetworkPolicy rule means every port: refused, not rendered."""
    done = template(*PRODUCTION, write(tmp_path, "networkPolicy:\n  database:\n    ports: []\n"))
    assert done.returncode != 0 and "minItems" in done.stderr
