"""The chart's mode: standalone | distributed with the real helm binary: standalone renders
byte for byte what main rendered before distributed mode existed (tests/golden/chart-standalone-*,
rendered on main), distributed renders one Deployment per Kestra component with PDBs, the worker
HPA and the Service on the webserver, lints clean (strict Kubernetes schemas) and the values
schema refuses bad values."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from kestra_ops.settings import load_config
from kestra_ops.workflows.deploy.chart_lint import lint_chart
from tests.helpers_golden import assert_golden

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kestra"
HELM = shutil.which("helm") or str(Path(sys.executable).parent / "helm")
pytestmark = pytest.mark.skipif(not Path(HELM).exists(), reason="helm is not installed "
                                "(scripts/setup installs it)")
COMPONENTS = ("webserver", "executor", "scheduler", "worker")
# a production-like distributed override (applied after values/base.yaml + production.yaml)
DISTRIBUTED = """\
mode: distributed
distributed:
  webserver:
    replicas: 2
    resources: {requests: {cpu: "1", memory: 2Gi}, limits: {memory: 2Gi}}
  executor:
    replicas: 1
    resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 1Gi}}
  scheduler:
    replicas: 1
    resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 1Gi}}
  worker:
    threads: 32
    resources: {requests: {cpu: "2", memory: 4Gi}, limits: {memory: 4Gi}}
    nodeSelector: {pool: workers}
    autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 6,
                  targetCPUUtilizationPercentage: 75}
# up to 10 pods (14 during a rollout) x 2 pools within the bundled PostgreSQL's connections
# (values rule kestra/db-connection-budget)
datasources:
  default: {maximum-pool-size: 3}
  postgres: {maximum-pool-size: 3}
"""


def helm_template(*values: Path, sets: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    argv = [HELM, "template", "kestra", str(CHART), "--namespace", "kestra"]
    for path in values:
        argv += ["-f", str(path)]
    for item in sets:
        argv += ["--set", item]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def render(*values: Path, sets: tuple[str, ...] = ()) -> dict[tuple[str, str], dict]:
    done = helm_template(*values, sets=sets)
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def env_values(name: str) -> tuple[Path, Path]:
    return ROOT / "values" / "base.yaml", ROOT / "values" / f"{name}.yaml"


def override(tmp_path: Path, text: str = DISTRIBUTED) -> Path:
    path = tmp_path / "distributed.yaml"
    path.write_text(text)
    return path


# ------------------------------------------------------------------ standalone: unchanged

@pytest.mark.parametrize("name", ["dev", "production"])
def test_standalone_render_is_byte_for_byte_the_one_before_distributed_mode(name):
    done = helm_template(*env_values(name))
    assert done.returncode == 0, done.stderr
    assert_golden(f"chart-standalone-{name}.yaml", done.stdout)


def test_explicit_standalone_mode_renders_the_same_as_the_default():
    default = helm_template(*env_values("production"))
    explicit = helm_template(*env_values("production"), sets=("mode=standalone",))
    assert explicit.returncode == 0 and explicit.stdout == default.stdout
    objects = render(*env_values("production"))
    assert ("Deployment", "kestra-standalone") in objects
    assert not any(kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler") or
                   name in {f"kestra-{c}" for c in COMPONENTS} for kind, name in objects)


# ------------------------------------------------------------------ distributed

def pod(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


def kestra_container(deployment: dict) -> dict:
    [container] = [c for c in pod(deployment)["containers"] if c["name"] == "kestra"]
    return container


def test_distributed_renders_one_deployment_per_component(tmp_path):
    objects = render(*env_values("production"), override(tmp_path))
    standalone = render(*env_values("production"))["Deployment", "kestra-standalone"]
    deployments = {name for kind, name in objects if kind == "Deployment"}
    assert deployments == {f"kestra-{c}" for c in COMPONENTS}  # and no kestra-standalone
    args = {}
    for component in COMPONENTS:
        dep = objects["Deployment", f"kestra-{component}"]
        labels = dep["spec"]["selector"]["matchLabels"]
        assert labels["app.kubernetes.io/component"] == component
        assert dep["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] \
            == component
        kestra = kestra_container(dep)
        args[component] = kestra["args"]
        # the same env (Secrets, JAVA_TOOL_OPTIONS), config volume, image and probes
        assert kestra["env"] == kestra_container(standalone)["env"]
        assert {"name": "JAVA_TOOL_OPTIONS", "value": "-XX:MaxRAMPercentage=75.0"} in kestra["env"]
        assert kestra["volumeMounts"] == kestra_container(standalone)["volumeMounts"]
        assert pod(dep)["volumes"] == pod(standalone)["volumes"]
        assert kestra["image"] == kestra_container(standalone)["image"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert kestra[probe] == kestra_container(standalone)[probe]
            assert kestra[probe]["httpGet"]["port"] == "management"
        assert {"name": "management", "containerPort": 8081, "protocol": "TCP"} in kestra["ports"]
        assert pod(dep)["terminationGracePeriodSeconds"] == 360
        assert pod(dep)["securityContext"] == pod(standalone)["securityContext"]
        [spread] = pod(dep)["topologySpreadConstraints"]
        assert spread["topologyKey"] == "kubernetes.io/hostname"
        assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
        assert spread["labelSelector"]["matchLabels"] == labels
    assert args == {"webserver": ["server", "webserver"], "executor": ["server", "executor"],
                    "scheduler": ["server", "scheduler"],
                    "worker": ["server", "worker", "--thread", "32"]}
    worker = objects["Deployment", "kestra-worker"]
    assert "replicas" not in worker["spec"]  # the HPA owns the count
    assert pod(worker)["nodeSelector"] == {"pool": "workers"}
    assert kestra_container(worker)["resources"]["limits"] == {"memory": "4Gi"}
    assert objects["Deployment", "kestra-webserver"]["spec"]["replicas"] == 2


def test_pdbs_for_components_with_more_than_one_replica_and_the_worker_hpa(tmp_path):
    objects = render(*env_values("production"), override(tmp_path))
    pdbs = {name: doc for (kind, name), doc in objects.items() if kind == "PodDisruptionBudget"}
    assert set(pdbs) == {"kestra-webserver", "kestra-worker"}  # executor, scheduler: 1 replica
    for name, pdb in pdbs.items():
        assert pdb["apiVersion"] == "policy/v1"
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"] == \
            objects["Deployment", name]["spec"]["selector"]["matchLabels"]
    hpa = objects["HorizontalPodAutoscaler", "kestra-worker"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "kestra-worker"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 75}


def test_no_hpa_when_autoscaling_is_off_and_no_pdb_for_single_replicas(tmp_path):
    text = "mode: distributed\ndistributed:\n  webserver: {replicas: 1}\n  worker: {replicas: 1}\n"
    objects = render(*env_values("dev"), override(tmp_path, text))
    assert not [k for k, _ in objects if k in ("PodDisruptionBudget", "HorizontalPodAutoscaler")]
    assert objects["Deployment", "kestra-worker"]["spec"]["replicas"] == 1
    assert kestra_container(objects["Deployment", "kestra-worker"])["args"][-1] == "16"


def test_the_service_selects_the_webserver_in_distributed_mode(tmp_path):
    service = render(*env_values("production"), override(tmp_path))["Service", "kestra"]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "webserver"
    standalone = render(*env_values("production"))["Service", "kestra"]
    assert standalone["spec"]["selector"]["app.kubernetes.io/component"] == "standalone"


def test_distributed_mode_refuses_a_2x_image(tmp_path):
    done = helm_template(*env_values("production"), override(tmp_path),
                         sets=("image.tag=v2.0.8",))
    assert done.returncode != 0
    assert "worker controller" in done.stderr


def test_production_like_distributed_values_lint_clean(tmp_path):
    environment = load_config(ROOT / "kestra-ops.yaml").environment("production", environ={})
    environment = replace(environment, values=environment.values + (override(tmp_path),))
    result = lint_chart(environment)  # helm lint --strict, strict Kubernetes schemas, our rules
    assert result.report.findings == []
    names = {m.name for m in result.manifests}
    assert {f"Deployment/kestra-{c}" for c in COMPONENTS} <= names
    assert {"PodDisruptionBudget/kestra-webserver", "HorizontalPodAutoscaler/kestra-worker"} \
        <= names
    assert "Deployment/kestra-standalone" not in names


# ------------------------------------------------------------------ the values schema

@pytest.mark.parametrize("sets, words", [
    (("mode=cluster",), "mode"),
    (("mode=distributed", "distributed.webserver.replicas=-1"), "replicas"),
    (("mode=distributed", "distributed.worker.threads=0"), "threads"),
    (("mode=distributed", "distributed.worker.autoscaling.targetCPUUtilizationPercentage=150"),
     "targetCPUUtilizationPercentage"),
    (("mode=distributed", "distributed.indexer.replicas=1"), "indexer"),
    (("mode=distributed", "distributed.worker.autoscale=true"), "autoscale"),
])
def test_the_schema_rejects_bad_distributed_values(sets, words):
    done = helm_template(*env_values("production"), sets=sets)
    assert done.returncode != 0
    assert words in done.stderr
