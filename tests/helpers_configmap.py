"""Shared by the config patch / restore tests: a project in tmp_path and a running Kestra in
the fake cluster (the ConfigMap and Deployment the chart renders), plus small readers."""

from __future__ import annotations

import functools
import json
import shutil
import textwrap
import threading
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kestra_ops.cli import cli
from kestra_ops.values.merge import load_layers

ROOT = Path(__file__).resolve().parents[1]
NS = "hyperplane-kestra"
CM, DEP = "kestra-config", "kestra-standalone"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@functools.lru_cache(maxsize=1)
def rendered() -> tuple[str, str]:
    """(ConfigMap, Deployment) of the chart for dev, as YAML text: real `helm template` when
    helm is installed, else the ConfigMap built from the values the way the chart does."""
    from kestra_ops.adapters.helm_cli import template
    from kestra_ops.errors import ToolMissing

    values = [ROOT / "values" / "base.yaml", ROOT / "values" / "dev.yaml"]
    try:
        result = template(ROOT / "charts" / "kestra", values, release="kestra", namespace=NS)
        assert result.ok, result.stderr
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    except ToolMissing:
        plain = load_layers(values).plain
        app = yaml.safe_dump({"datasources": plain["datasources"], "kestra": plain["kestra"]},
                             default_flow_style=False)
        labels = {"app.kubernetes.io/name": "kestra", "app.kubernetes.io/component": "standalone"}
        docs = [{"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": CM, "namespace": NS}, "data": {"application.yml": app}},
                {"apiVersion": "apps/v1", "kind": "Deployment",
                 "metadata": {"name": DEP, "namespace": NS, "labels": labels},
                 "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                     "metadata": {"labels": labels}, "spec": {
                         "terminationGracePeriodSeconds": 360,
                         "containers": [{"name": "kestra", "image": "kestra/kestra:v1.3.2"}]}}}}]
    pick = {d["kind"]: d for d in docs if d["kind"] in ("ConfigMap", "Deployment")
            and d["metadata"]["name"] in (CM, DEP)}
    return yaml.safe_dump(pick["ConfigMap"]), yaml.safe_dump(pick["Deployment"])


@pytest.fixture
def project(tmp_path, fake_kube):
    """A project in tmp_path (values copied, chart by absolute path) and a running Kestra in
    the fake cluster: ConfigMap kestra-config and a ready Deployment kestra-standalone."""
    (tmp_path / "values").mkdir()
    for name in ("base.yaml", "dev.yaml", "production.yaml"):
        shutil.copy(ROOT / "values" / name, tmp_path / "values" / name)
    (tmp_path / "kestra-ops.yaml").write_text(textwrap.dedent(f"""\
        defaults:
          chart: {ROOT / 'charts' / 'kestra'}
        environments:
          dev:
            minio: {{bucket: kestra-dev}}
            values: [values/base.yaml, values/dev.yaml]
          production:
            minio: {{bucket: kestra-production}}
            values: [values/base.yaml, values/production.yaml]
        """))
    cm_text, dep_text = rendered()
    fake_kube.seed(yaml.safe_load(cm_text), yaml.safe_load(dep_text))
    assert fake_kube.wait_until(lambda: ready(fake_kube), timeout=5)
    return tmp_path


def ready(kube) -> bool:
    d = kube.store.get("deployments", NS, DEP)
    st = d.get("status") or {}
    return (st.get("observedGeneration") == d["metadata"]["generation"]
            and st.get("updatedReplicas") == st.get("readyReplicas") == st.get("replicas") == 1)


def app_yml(kube) -> str:
    return kube.store.get("configmaps", NS, CM)["data"]["application.yml"]


def cm_rv(kube) -> str:
    return kube.store.get("configmaps", NS, CM)["metadata"]["resourceVersion"]


def restarted_at(kube) -> str | None:
    tmd = kube.store.get("deployments", NS, DEP)["spec"]["template"]["metadata"]
    return (tmd.get("annotations") or {}).get(RESTARTED_AT)


def run(project: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(project / "kestra-ops.yaml"), *args])


def changes(project: Path) -> list[dict]:
    path = project / "backups" / "changes.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def backup_files(project: Path) -> list[Path]:
    folder = project / "backups" / "configmap"
    return sorted(folder.glob("*.yaml")) if folder.exists() else []


def freeze_running_pods(kube) -> None:
    """Keep the pods running now healthy when a failure mode is set: only new pods fail."""
    for pod in kube.store.list("pods", NS):
        kube.controller.frozen.add(pod["metadata"]["uid"])


def clear_failure_when_restored(kube, original: str) -> threading.Thread:
    """The fault was the patch: once the ConfigMap holds the original again, pods recover."""
    def watch():
        kube.store.wait(lambda: (kube.store.get("configmaps", NS, CM) or {}).get(
            "data", {}).get("application.yml") == original and changes_seen(), timeout=15)
        kube.controller.set_failure(DEP, None)

    def changes_seen():
        return int(cm_rv(kube)) > int(rv0)

    rv0 = cm_rv(kube)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread
