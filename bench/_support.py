"""Shared by the benches: environment patching for the test-doubles' installers, and a healthy
fake install to run kestra-ops against."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path


class EnvPatch(dict):
    """The part of pytest's monkeypatch the stand-in installers use, applied to os.environ."""

    def setenv(self, key, value):
        os.environ[key] = value

    def delenv(self, key, raising=False):
        os.environ.pop(key, None)


@contextmanager
def fake_install(prefix: str, *, step_seconds: float, extra_env: dict | None = None):
    """A healthy dev install against the fakes (Kubernetes API, Kestra with executions taking
    2 x ``step_seconds``, MinIO's health endpoints, the stand-in helm with a deployed release),
    in a temporary project folder; ``os.environ`` points kestra-ops at them. Yields
    ``(work folder, the dev Environment)``; everything is stopped and removed afterwards."""
    root = Path(__file__).resolve().parents[1]
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    from tests.fakes.helm_standin import install_helm_standin
    from tests.fakes.kestra_server import FakeKestra
    from tests.fakes.kube_api import FakeKube
    from tests.fakes.minio_health import MinioHealth
    from tests.helpers_checks import JOB, NS, healthy, objects

    from kestra_ops.settings import load_config

    work = Path(tempfile.mkdtemp(prefix=prefix))
    kube = FakeKube(ready_delay=0.0).start()
    kestra = FakeKestra(step_seconds=step_seconds).start()
    minio = MinioHealth().start()
    try:
        os.environ.update({
            "KUBECONFIG": str(kube.write_kubeconfig(work / "kubeconfig")),
            "KESTRA_OPS_CONTEXT": "fake", "KESTRA_OPS_KESTRA_URL": kestra.url,
            "KESTRA_OPS_BASIC_AUTH_USERNAME": kestra.username,
            "KESTRA_OPS_BASIC_AUTH_PASSWORD": kestra.password, **(extra_env or {})})
        install_helm_standin(work, EnvPatch()).state.seed(["superseded", "deployed"])
        shutil.copytree(root / "values", work / "values")
        (work / "kestra-ops.yaml").write_text(
            f"defaults: {{chart: {root / 'charts' / 'kestra'}}}\n"
            f"environments:\n  dev:\n    minio: {{endpoint: 'http://{minio.endpoint}'}}\n"
            "    values: [values/base.yaml, values/dev.yaml]\n")
        kube.seed(*objects())
        kube.controller.seed_completed_job_pod(NS, JOB)
        if not kube.wait_until(lambda: healthy(kube), timeout=10):
            sys.exit("bench: the fake install did not become healthy")
        yield work, load_config(work / "kestra-ops.yaml").environment("dev")
    finally:
        kestra.stop()
        minio.stop()
        kube.stop()
        shutil.rmtree(work, ignore_errors=True)
