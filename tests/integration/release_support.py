"""Shared by the release tests (test_release*.py): running `kestra-ops release` on the install of
helpers_checks and playing what a real helm would do to the fake cluster.

The stand-in helm does not touch the fake cluster, so what an upgrade or a rollback does to the
pods and to the ConfigMap is played by wrapping Helm.upgrade_install / Helm.rollback."""

from __future__ import annotations

import json
import logging

import pytest
import yaml
from click.testing import CliRunner

from kestra_ops.adapters.helm import Helm
from kestra_ops.cli import cli
from kestra_ops.workflows.deploy.lock import LEASE_NAME
from tests.fakes.minio_admin_shim import MinioAdminShim
from tests.helpers_checks import CM, NS

CHECK = ("--check-timeout", "2s", "--timeout", "1m")
BUCKET = "kestra-dev"
BACKUP_BUCKET = "kestra-dev-backups"  # where backup sets go (backup.bucket's default)


def release(install, *args):
    result = install.run("--yes", "--output", "json", *CHECK, *args, command="release")
    assert result.exit_code in (0, 1, 130), result.output
    return result, json.loads(result.stdout)


def lock_free(install) -> bool:
    return install.kube.store.get("leases", NS, LEASE_NAME) is None


def step(data, prefix) -> dict:
    return next(s for s in data["steps"] if s["name"].startswith(prefix))


def after(monkeypatch, method: str, then) -> None:
    """``Helm.<method>`` runs, then ``then()`` plays its effect on the fake cluster."""
    original = getattr(Helm, method)

    def wrapped(self, *args, **kwargs):
        revision = original(self, *args, **kwargs)
        then()
        return revision

    monkeypatch.setattr(Helm, method, wrapped)


def after_upgrade(monkeypatch, then) -> None:
    after(monkeypatch, "upgrade_install", then)


def after_rollback(monkeypatch, then) -> None:
    after(monkeypatch, "rollback", then)


def interrupt(*args, **kwargs):
    """Ctrl-C in whatever calls this."""
    raise KeyboardInterrupt


def configmap_data(install) -> dict:
    return dict(install.kube.store.get("configmaps", NS, CM)["data"])


def set_configmap_data(install, data: dict) -> None:
    def write(cm):
        cm["data"] = dict(data)
    install.kube.store.mutate("configmaps", NS, CM, write)


def patch_outside_helm(install) -> tuple[dict, dict]:
    """`kestra-ops config patch` (the real command): the live ConfigMap changes, Helm's release
    does not. Returns (the chart's data, what Helm applies on upgrade and rollback; the patched
    data, live when the release starts)."""
    chart = configmap_data(install)
    result = CliRunner().invoke(cli, ["--config", str(install.config), "config", "patch",
                                      "--env", "dev", "--set",
                                      "kestra.jdbc.cleaner.retention=14d", "--yes",
                                      "--no-restart"])
    assert result.exit_code == 0, result.output
    patched = configmap_data(install)
    assert patched != chart
    assert yaml.safe_load(patched["application.yml"])["kestra"]["jdbc"]["cleaner"][
        "retention"] == "14d"
    return chart, patched


def failing_check(install, monkeypatch, *, rollbacks: list | None = None,
                  chart_cm: dict | None = None) -> None:
    """The new revision fails the e2e flow (the check fails, the release rolls back); the old one
    passes it again. With ``chart_cm`` the upgrade and the rollback apply the chart's ConfigMap
    data, as a real helm does. ``rollbacks``: what each Helm.rollback call does in turn, "run"
    (the default) or "interrupt" (Ctrl-C before helm is run)."""
    rules = install.kestra.flow_store.rules
    upgrade, rollback = Helm.upgrade_install, Helm.rollback
    plan = list(rollbacks or [])

    def upgraded(self, *args, **kwargs):
        revision = upgrade(self, *args, **kwargs)
        rules.fail_markers = ("io.kestra.plugin.core.log.Log",)
        if chart_cm is not None:
            set_configmap_data(install, chart_cm)
        return revision

    def rolled_back(self, *args, **kwargs):
        if (plan.pop(0) if plan else "run") == "interrupt":
            raise KeyboardInterrupt
        revision = rollback(self, *args, **kwargs)
        rules.fail_markers = ("Fail",)
        if chart_cm is not None:
            set_configmap_data(install, chart_cm)
        return revision

    monkeypatch.setattr(Helm, "upgrade_install", upgraded)
    monkeypatch.setattr(Helm, "rollback", rolled_back)


@pytest.fixture
def storage(install, s3, monkeypatch):
    """The env's MinIO made whole: the MinIO front of the fakes (its health endpoints, the S3
    server behind them as the ``s3`` fixture sees it), bucket kestra-dev and its credentials,
    the backup bucket kestra-dev-backups (no backup key: Kestra's stands in, with a warning);
    no database (a test sets KESTRA_OPS_DATABASE_URL for a backup set). Yields ``s3``.
    moto stays here: the release's preflight needs MinIO's health endpoints, which only the
    MinIO front of the fakes has (SeaweedFS has none)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with MinioAdminShim(s3.access_key, s3.secret_key) as minio:
        monkeypatch.setenv("KESTRA_OPS_MINIO_ENDPOINT", f"http://{minio.endpoint}")
        s3.create_bucket(BUCKET)
        s3.create_bucket(BACKUP_BUCKET)
        for var in ("KESTRA_OPS_BACKUP_ACCESS_KEY", "KESTRA_OPS_BACKUP_SECRET_KEY"):
            monkeypatch.delenv(var, raising=False)
        for key, value in s3.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("KESTRA_OPS_DATABASE_URL", raising=False)
        yield s3


def objects(s3, prefix: str, bucket: str = BUCKET) -> list[str]:
    return sorted(o.object_name for o in s3.client().list_objects(bucket, prefix=prefix,
                                                                   recursive=True))


def read_object(s3, key: str, bucket: str = BUCKET) -> bytes:
    response = s3.client().get_object(bucket, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()
