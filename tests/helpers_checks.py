"""Shared by the check and doctor tests: a healthy Kestra install in the fake cluster (the
chart's ConfigMap, Deployment, PostgreSQL StatefulSet and a Completed post-install Job pod with
its live Istio sidecar), a FakeKestra, Kestra's management endpoints behind the fake API
server's pod proxy (port 8081 of every pod), MinIO's health endpoints and a stand-in helm with
a deployed release. Tests break what they test."""

from __future__ import annotations

import functools
import shutil
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kestra_ops.cli import cli
from tests.fakes.kestra_health import KestraHealth
from tests.fakes.kestra_server import FakeKestra
from tests.fakes.minio_health import MinioHealth

ROOT = Path(__file__).resolve().parents[1]
NS = "hyperplane-kestra"
DEP, PG, JOB, CM = "kestra-standalone", "kestra-postgres", "kestra-post-install", "kestra-config"


@functools.lru_cache(maxsize=1)
def chart_objects() -> tuple[str, ...]:
    """The chart's objects for dev (real `helm template`), as YAML texts (cached)."""
    from kestra_ops.adapters.helm_cli import template

    values = [ROOT / "values" / "base.yaml", ROOT / "values" / "dev.yaml"]
    result = template(ROOT / "charts" / "kestra", values, release="kestra", namespace=NS)
    assert result.ok, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    keep = [d for d in docs if d["kind"] in ("ConfigMap", "Deployment", "StatefulSet",
                                             "Service")]
    return tuple(yaml.safe_dump(d) for d in keep)


def objects() -> list[dict]:
    """The chart's objects as helm leaves them live (its ownership metadata added)."""
    out = []
    for text in chart_objects():
        obj = yaml.safe_load(text)
        meta = obj["metadata"]
        meta.setdefault("annotations", {}).update({"meta.helm.sh/release-name": "kestra",
                                                   "meta.helm.sh/release-namespace": NS})
        meta.setdefault("labels", {})["app.kubernetes.io/managed-by"] = "Helm"
        out.append(obj)
    return out


@dataclass
class Install:
    root: Path
    kube: object  # FakeKube
    kestra: FakeKestra
    minio: MinioHealth
    helm: object  # HelmStandin
    health: KestraHealth | None = None  # /health on port 8081 of every pod (the pod proxy)

    @property
    def config(self) -> Path:
        return self.root / "kestra-ops.yaml"

    def run(self, *args: str, command: str = "check"):
        return CliRunner().invoke(cli, ["--config", str(self.config), command, "--env", "dev",
                                        *args])

    def pods(self, prefix: str = "") -> list[dict]:
        return [p for p in self.kube.store.list("pods", NS)
                if p["metadata"]["name"].startswith(prefix)
                and not p["metadata"].get("deletionTimestamp")]

    def pod(self, prefix: str) -> dict:
        found = self.pods(prefix)
        assert found, f"no pod {prefix}*"
        return found[0]

    def wait_pods(self, predicate, timeout: float = 5.0) -> None:
        assert self.kube.wait_until(predicate, timeout=timeout), "the fake cluster did not settle"

    def warning_event(self, name: str, reason: str, message: str, *, kind: str = "Pod",
                      when: str | None = None, count: int = 1) -> dict:
        stamp = when or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return self.kube.seed({"apiVersion": "v1", "kind": "Event", "metadata": {
            "name": f"{name}.{time.time_ns():x}", "namespace": NS},
            "involvedObject": {"kind": kind, "name": name, "namespace": NS},
            "reason": reason, "message": message, "type": "Warning", "count": count,
            "firstTimestamp": stamp, "lastTimestamp": stamp}, namespace=NS)[0]

    def set_configmap(self, app: dict) -> None:
        def write(cm):
            cm["data"]["application.yml"] = yaml.safe_dump(app)
        self.kube.store.mutate("configmaps", NS, CM, write)

    def application(self) -> dict:
        return yaml.safe_load(self.kube.store.get("configmaps", NS, CM)["data"]["application.yml"])


def healthy(kube) -> bool:
    pods = [p for p in kube.store.list("pods", NS) if not p["metadata"].get("deletionTimestamp")]
    names = [p["metadata"]["name"] for p in pods]
    ok = [all(c.get("ready") for c in (p.get("status") or {}).get("containerStatuses") or [{}])
          for p in pods if not p["metadata"]["name"].startswith(JOB)]
    return any(n.startswith(DEP) for n in names) and f"{PG}-0" in names and ok and all(ok)


@pytest.fixture
def install(tmp_path, fake_kube, helm_standin, monkeypatch):
    """A healthy dev install (see the module doc); every KESTRA_OPS_* the commands read set."""
    (tmp_path / "values").mkdir()
    for name in ("base.yaml", "dev.yaml"):
        shutil.copy(ROOT / "values" / name, tmp_path / "values" / name)
    # the live release is the repo's dev values; the project's differ by one setting, so a
    # release has something to change (the Deployment's --worker-thread)
    overlay = tmp_path / "values" / "dev.yaml"
    overlay.write_text(overlay.read_text().replace("workerThreads: 8", "workerThreads: 10", 1))
    minio = MinioHealth().start()
    kestra = FakeKestra(step_seconds=0.02).start()
    health = KestraHealth().start()
    fake_kube.serve_pods(health.url, port=8081)
    (tmp_path / "kestra-ops.yaml").write_text(textwrap.dedent(f"""\
        defaults:
          chart: {ROOT / 'charts' / 'kestra'}
        environments:
          dev:
            minio: {{endpoint: 'http://{minio.endpoint}', bucket: kestra-dev}}
            values: [values/base.yaml, values/dev.yaml]
        """))
    for var in ("KESTRA_OPS_MINIO_ENDPOINT", "KESTRA_OPS_NAMESPACE", "KESTRA_OPS_ENV"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KESTRA_OPS_KUBECONFIG", str(fake_kube.kubeconfig))
    monkeypatch.setenv("KESTRA_OPS_KESTRA_URL", kestra.url)
    monkeypatch.setenv("KESTRA_OPS_BASIC_AUTH_USERNAME", kestra.username)
    monkeypatch.setenv("KESTRA_OPS_BASIC_AUTH_PASSWORD", kestra.password)
    helm = helm_standin("v4.1.4")
    # the revisions store the chart's manifest, as the live objects below: a rollback to one
    # of them applies what is live now
    helm.state.seed(["superseded", "deployed"], manifest="---\n".join(chart_objects()))
    fake_kube.seed(*objects())
    fake_kube.controller.seed_completed_job_pod(NS, JOB)
    assert fake_kube.wait_until(lambda: healthy(fake_kube), timeout=5)
    try:
        yield Install(tmp_path, fake_kube, kestra, minio, helm, health)
    finally:
        kestra.stop()
        minio.stop()
        health.stop()
