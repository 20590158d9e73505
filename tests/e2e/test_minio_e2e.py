"""minio setup and secrets apply on the real control plane with a real S3 server (SeaweedFS, no
MinIO admin API): the root key never reaches Secret ``kestra-minio``. Asserted through the
Kubernetes API (the Secret's data and resourceVersion) and the S3 server's own state."""

from __future__ import annotations

import base64
import json

import pytest

from tests.e2e.conftest import SECRETS

SECRET = "kestra-minio"


@pytest.fixture
def minio_env(install, seaweed, monkeypatch):
    """``dev`` pointed at SeaweedFS (its own bucket), with the root credentials set beside the
    bucket key the install's Secret was applied from."""
    bucket = f"kestra-{install.namespace}"
    monkeypatch.setenv("KESTRA_OPS_MINIO_ENDPOINT", seaweed.endpoint)
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECURE", "false")
    monkeypatch.setenv("KESTRA_OPS_MINIO_BUCKET", bucket)
    for name in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    yield bucket
    seaweed.remove_bucket(bucket)


def read_secret(install) -> tuple[str, dict[str, str]]:
    body = install.get(f"/api/v1/namespaces/{install.namespace}/secrets/{SECRET}")
    data = {k: base64.b64decode(v).decode() for k, v in (body.get("data") or {}).items()}
    return body["metadata"]["resourceVersion"], data


def assert_no_root(data: dict[str, str], seaweed) -> None:
    assert data["access-key"] != seaweed.root_user
    assert data["secret-key"] != seaweed.root_password


def test_setup_falls_back_and_leaves_the_secret_without_the_root_key(install, seaweed,
                                                                     minio_env):
    version, data = read_secret(install)
    assert data == {"access-key": SECRETS["KESTRA_OPS_MINIO_ACCESS_KEY"],
                    "secret-key": SECRETS["KESTRA_OPS_MINIO_SECRET_KEY"]}
    result = install.run("minio", "setup", "--env", "dev", "--yes", "--output", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    steps = {s["name"]: s for s in out["steps"]}
    assert steps["access-key"]["status"] == "warn"
    assert "no MinIO admin API" in steps["access-key"]["detail"]
    assert out["policy"]["Statement"][1]["Resource"] == [f"arn:aws:s3:::{minio_env}/*"]
    assert minio_env in seaweed.buckets() and "minio" not in seaweed.buckets()
    assert read_secret(install) == (version, data)  # not written
    assert_no_root(data, seaweed)
    assert seaweed.root_password not in result.output


def test_setup_reports_a_secret_holding_the_root_key_and_does_not_touch_it(install, seaweed,
                                                                           minio_env):
    body = {"data": {"access-key": base64.b64encode(seaweed.root_user.encode()).decode(),
                     "secret-key": base64.b64encode(seaweed.root_password.encode()).decode()}}
    install.core.patch_namespaced_secret(SECRET, install.namespace, body,
                                         field_manager="e2e-test")  # as the old README did
    before = read_secret(install)
    result = install.run("minio", "setup", "--env", "dev", "--yes")
    assert result.exit_code == 1, result.output
    assert f"Secret {install.namespace}/{SECRET} holds the MinIO root credentials" \
        in result.stdout
    assert read_secret(install) == before
    assert seaweed.root_user not in result.output
    assert seaweed.root_password not in result.output


def test_secrets_apply_refuses_the_root_key_and_the_secret_is_unchanged(install, seaweed,
                                                                        minio_env, monkeypatch):
    before = read_secret(install)
    monkeypatch.setenv("KESTRA_OPS_MINIO_ACCESS_KEY", seaweed.root_user)
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECRET_KEY", seaweed.root_password)
    result = install.run("secrets", "apply", "--env", "dev", "--yes")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: refusing to write the Secrets: "
                                    "KESTRA_OPS_MINIO_ACCESS_KEY is the MinIO root user "
                                    "(KESTRA_OPS_MINIO_ROOT_USER); KESTRA_OPS_MINIO_SECRET_KEY "
                                    "is the MinIO root password")
    assert seaweed.root_user not in result.output
    assert seaweed.root_password not in result.output
    after = read_secret(install)
    assert after == before
    assert_no_root(after[1], seaweed)
