"""kestra-ops minio setup / check against moto (S3) behind the MinIO admin shim, and the fake
Kubernetes API: bucket + policy + service account + Secret; idempotent; no admin API; probe."""

from __future__ import annotations

import base64
import json
import logging
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from kestra_ops.cli import cli
from tests.fakes.minio_admin_shim import MinioAdminShim

ROOT = Path(__file__).resolve().parents[2]
NS = "hyperplane-kestra"


@pytest.fixture
def shim(s3):
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with MinioAdminShim(s3.access_key, s3.secret_key) as server:
        yield server


def make_project(tmp_path, endpoint: str, extra: str = "") -> Path:
    (tmp_path / "values").mkdir(exist_ok=True)
    for name in ("base.yaml", "dev.yaml"):
        shutil.copy(ROOT / "values" / name, tmp_path / "values" / name)
    (tmp_path / "kestra-ops.yaml").write_text(textwrap.dedent(f"""\
        defaults: {{chart: {ROOT / 'charts' / 'kestra'}}}
        environments:
          dev:
            values: [values/base.yaml, values/dev.yaml]
            minio: {{endpoint: "{endpoint}", secure: false{extra}}}
        """))
    return tmp_path


@pytest.fixture
def env_vars(s3, fake_kube, monkeypatch):
    monkeypatch.setenv("KESTRA_OPS_KUBECONFIG", str(fake_kube.kubeconfig))
    for var in ("KESTRA_OPS_NAMESPACE", "KESTRA_OPS_MINIO_ENDPOINT", "KESTRA_OPS_MINIO_BUCKET"):
        monkeypatch.delenv(var, raising=False)
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)


def invoke(root: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(root / "kestra-ops.yaml"), "minio", *args])


def secret_data(fake_kube) -> dict:
    body = fake_kube.store.get("secrets", NS, "kestra-minio")
    return {k: base64.b64decode(v).decode() for k, v in (body.get("data") or {}).items()}


def test_setup_creates_bucket_policy_account_and_secret_then_changes_nothing(
        tmp_path, s3, shim, fake_kube, env_vars):
    root = make_project(tmp_path, shim.endpoint, ", versioning: true, lifecycle_days: 30")
    first = invoke(root, "setup", "--env", "dev", "--yes", "--output", "json")
    assert first.exit_code == 0, first.output
    out = json.loads(first.output)
    assert out["ok"] and out["policy"] is None and "credentials" not in out
    assert "kestra-dev" in s3.buckets()
    assert s3.client().get_bucket_versioning("kestra-dev").status == "Enabled"
    rules = s3.client().get_bucket_lifecycle("kestra-dev").rules
    assert [r.noncurrent_version_expiration.noncurrent_days for r in rules] == [30]
    policy = shim.policies["kestra-dev-bucket"]
    resources = {r for st in policy["Statement"] for r in st["Resource"]}
    assert resources == {"arn:aws:s3:::kestra-dev", "arn:aws:s3:::kestra-dev/*"}
    assert "s3:PutObject" in json.dumps(policy) and "s3:*" not in json.dumps(policy)
    data = secret_data(fake_kube)
    assert list(shim.service_accounts) == [data["access-key"]]
    account = shim.service_accounts[data["access-key"]]
    assert account["secretKey"] == data["secret-key"] and account["policy"] == policy
    assert data["secret-key"] not in first.output and s3.secret_key not in first.output
    assert "/minio/health/live" in " ".join(shim.requests)

    before = fake_kube.store.get("secrets", NS, "kestra-minio")["metadata"]["resourceVersion"]
    second = invoke(root, "setup", "--env", "dev", "--yes")
    assert second.exit_code == 0, second.output
    assert second.output.count("(unchanged)") == 5, second.output  # bucket, vers., lc, pol., key
    assert len(shim.service_accounts) == 1
    assert fake_kube.store.get("secrets", NS, "kestra-minio")["metadata"]["resourceVersion"] \
        == before


def test_show_secret_prints_the_key_and_writes_no_secret(tmp_path, s3, shim, fake_kube,
                                                         env_vars):
    root = make_project(tmp_path, shim.endpoint)
    result = invoke(root, "setup", "--env", "dev", "--show-secret")
    assert result.exit_code == 0, result.output
    (access, account), = shim.service_accounts.items()
    assert f"access key: {access}" in result.output
    assert f"secret key: {account['secretKey']}" in result.output
    assert s3.secret_key not in result.output
    assert fake_kube.store.get("secrets", NS, "kestra-minio") is None


def test_without_admin_api_prints_the_policy_and_skips(tmp_path, s3, fake_kube, env_vars):
    root = make_project(tmp_path, s3.endpoint)  # plain moto: no health, no admin endpoints
    result = invoke(root, "setup", "--env", "dev", "--yes")
    assert result.exit_code == 0, result.output
    assert "not MinIO, health endpoints unavailable" in result.output
    assert "skipped: no MinIO admin API" in result.output
    assert '"arn:aws:s3:::kestra-dev/*"' in result.output
    assert "kestra-dev" in s3.buckets()
    assert fake_kube.store.get("secrets", NS, "kestra-minio") is None
    assert s3.secret_key not in result.output


def test_setup_fails_when_minio_is_not_live(tmp_path, s3, shim, fake_kube, env_vars):
    shim.live = 503
    root = make_project(tmp_path, shim.endpoint)
    result = invoke(root, "setup", "--env", "dev", "--yes")
    assert result.exit_code == 1
    assert "/minio/health/live answered HTTP 503" in result.output
    assert s3.buckets() == []


def test_check_probe_passes_and_leaves_nothing(tmp_path, s3, shim, env_vars):
    s3.create_bucket("kestra-dev")
    root = make_project(tmp_path, shim.endpoint)
    result = invoke(root, "check", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert "wrote, read back and deleted s3://kestra-dev/kestra-ops-probe/" in result.output
    assert list(s3.client().list_objects("kestra-dev", recursive=True)) == []


def test_check_fails_when_the_bucket_is_missing(tmp_path, s3, shim, env_vars):
    root = make_project(tmp_path, shim.endpoint)
    result = invoke(root, "check", "--env", "dev", "--output", "json")
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert out["ok"] is False
    assert out["steps"][-1]["status"] == "fail" and "does not exist" in out["steps"][-1]["detail"]
