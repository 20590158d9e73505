"""kestra-ops minio setup / check against moto (S3) behind the MinIO admin shim, and the fake
Kubernetes API: bucket + policy + service account + Secret; idempotent; no admin API (404, 501,
an S3 NotImplemented) falls back, a 5xx or refused root credentials fail; the root key never
reaches the Secret; probe. The same against a real S3 server (SeaweedFS): test_minio_seaweed.py."""

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


BUCKET_KEY = {"KESTRA_OPS_MINIO_ACCESS_KEY": "kestra-bucket-key-1",
              "KESTRA_OPS_MINIO_SECRET_KEY": "Bucket-Secret-Key-0123"}


@pytest.fixture
def env_vars(s3, fake_kube, monkeypatch):
    """Root credentials = the shim's root; the bucket-key variables hold another (wrong for
    the admin API) pair, so a setup that signed with them would be refused."""
    monkeypatch.setenv("KESTRA_OPS_KUBECONFIG", str(fake_kube.kubeconfig))
    for var in ("KESTRA_OPS_NAMESPACE", "KESTRA_OPS_MINIO_ENDPOINT", "KESTRA_OPS_MINIO_BUCKET",
                "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    for name, value in {**s3.root_env(), **BUCKET_KEY}.items():
        monkeypatch.setenv(name, value)


def invoke(root: Path, *args: str):
    return CliRunner().invoke(cli, ["--config", str(root / "kestra-ops.yaml"), "minio", *args])


def error_lines(result) -> list[str]:
    """The error lines on stderr (progress lines go there too: the header, then the steps)."""
    return [line for line in result.stderr.splitlines()
            if not line.startswith(("- ", "  ", "minio setup dev: ", "minio check dev: "))]


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
    # the backup bucket: object lock (set at creation), versioning, governance 30 days
    assert "kestra-dev-backups" in s3.buckets() and out["backup_lock"] == "governance"
    assert s3.client().get_bucket_versioning("kestra-dev-backups").status == "Enabled"
    lock = s3.client().get_object_lock_config("kestra-dev-backups")
    assert (lock.mode, lock.duration, lock.duration_unit) == ("GOVERNANCE", 30, "Days")
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
    unchanged = [line.split()[1] for line in second.stdout.splitlines()
                 if line.startswith("  PASS") and line.endswith("(unchanged)")]
    assert unchanged == ["bucket", "versioning", "lifecycle", "backup-bucket",
                         "backup-versioning", "backup-lock", "policy", "access-key"], \
        second.stdout
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
    assert "skipped, nothing written: no MinIO admin API" in result.output
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
    (probe,) = [s for s in out["steps"] if s["name"] == "probe"]
    assert probe["status"] == "fail" and "does not exist" in probe["detail"]
    (backups,) = [s for s in out["steps"] if s["name"] == "backup-bucket"]  # after the probe
    assert backups["status"] == "warn" and "kestra-dev-backups does not exist" in \
        backups["detail"]


# ------------------------------------------------------------------ root credentials

def put_secret(fake_kube, access: str, secret: str) -> str:
    """Secret kestra-minio as the old README left it; returns its resourceVersion."""
    created = fake_kube.store.create({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kestra-minio",
                                                           "namespace": NS},
        "data": {"access-key": base64.b64encode(access.encode()).decode(),
                 "secret-key": base64.b64encode(secret.encode()).decode()}}, NS)
    return created["metadata"]["resourceVersion"]


def test_only_the_old_variables_is_a_usage_error_naming_the_rename(tmp_path, s3, shim,
                                                                  fake_kube, env_vars,
                                                                  monkeypatch):
    for name in s3.root_env():
        monkeypatch.delenv(name)
    monkeypatch.setenv("KESTRA_OPS_MINIO_ACCESS_KEY", s3.access_key)  # the old README's root
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECRET_KEY", s3.secret_key)
    root = make_project(tmp_path, shim.endpoint)
    result = invoke(root, "setup", "--env", "dev", "--yes")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "KESTRA_OPS_MINIO_ROOT_USER and KESTRA_OPS_MINIO_ROOT_PASSWORD not set" in result.stderr
    assert "never used as root" in result.stderr and "nothing was changed" in result.stderr
    assert s3.buckets() == [] and shim.requests == []
    assert fake_kube.store.get("secrets", NS, "kestra-minio") is None
    assert s3.secret_key not in result.output


def test_half_of_the_root_credentials_is_a_usage_error(tmp_path, s3, shim, env_vars,
                                                       monkeypatch):
    monkeypatch.delenv("KESTRA_OPS_MINIO_ROOT_PASSWORD")
    result = invoke(make_project(tmp_path, shim.endpoint), "setup", "--env", "dev", "--yes")
    assert result.exit_code == 2
    assert "KESTRA_OPS_MINIO_ROOT_PASSWORD not set (MinIO's root credentials)" in result.stderr
    assert s3.buckets() == []


@pytest.mark.parametrize("error", [(501, "NotImplemented"), (405, "MethodNotAllowed"),
                                   (400, "NotImplemented", "xml"), (404, "NoSuchBucket", "xml")],
                         ids=["501", "405", "400-NotImplemented-xml", "404-xml"])
def test_admin_api_answering_not_there_falls_back_and_writes_nothing(tmp_path, s3, shim,
                                                                     fake_kube, env_vars, error):
    shim.admin_error = error
    root = make_project(tmp_path, shim.endpoint)
    result = invoke(root, "setup", "--env", "dev", "--yes", "--output", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["ok"] and out["policy"]["Statement"][1]["Resource"] == ["arn:aws:s3:::kestra-dev/*"]
    (step,) = [s for s in out["steps"] if s["name"] == "access-key"]
    assert step["status"] == "warn"
    assert f"no MinIO admin API at http://{shim.endpoint} (list policies: HTTP {error[0]} " \
        f"{error[1]})" in step["detail"]
    assert "kestra-dev" in s3.buckets()
    assert shim.requests[-1] == "GET /minio/admin/v3/list-canned-policies"  # no write tried
    assert not shim.policies and not shim.service_accounts
    assert fake_kube.store.get("secrets", NS, "kestra-minio") is None


@pytest.mark.parametrize("error", [(500, "InternalError"), (503, "XMinioServerNotInitialized"),
                                   (400, "XMinioAdminInvalidArgument")])
def test_admin_api_failures_stay_failures_naming_the_endpoint(tmp_path, s3, shim, fake_kube,
                                                              env_vars, error):
    shim.admin_error = error
    result = invoke(make_project(tmp_path, shim.endpoint), "setup", "--env", "dev", "--yes")
    assert result.exit_code == 1, result.output
    assert error_lines(result) == [error_lines(result)[0]], result.stderr
    assert error_lines(result)[0].startswith(
        f"error: MinIO admin list policies at http://{shim.endpoint}: ")
    assert "policy" not in result.stdout.lower()
    assert fake_kube.store.get("secrets", NS, "kestra-minio") is None
    assert s3.secret_key not in result.output


def test_wrong_root_credentials_are_a_failure_not_a_fallback(tmp_path, s3, shim, fake_kube,
                                                             env_vars, monkeypatch):
    monkeypatch.setenv("KESTRA_OPS_MINIO_ROOT_USER", "not-the-root")
    result = invoke(make_project(tmp_path, shim.endpoint), "setup", "--env", "dev", "--yes")
    assert result.exit_code == 1, result.output
    assert f"MinIO admin list policies at http://{shim.endpoint}: HTTP 403 AccessDenied " \
        "(are KESTRA_OPS_MINIO_ROOT_USER / KESTRA_OPS_MINIO_ROOT_PASSWORD" in result.stderr
    assert len(error_lines(result)) == 1 and "Traceback" not in result.output
    assert fake_kube.store.get("secrets", NS, "kestra-minio") is None


def test_a_secret_holding_the_root_key_is_replaced_by_a_service_account(tmp_path, s3, shim,
                                                                        fake_kube, env_vars):
    before = put_secret(fake_kube, s3.access_key, s3.secret_key)
    result = invoke(make_project(tmp_path, shim.endpoint), "setup", "--env", "dev", "--yes")
    assert result.exit_code == 0, result.output
    assert "the root key it held is gone" in result.output
    data = secret_data(fake_kube)
    assert list(shim.service_accounts) == [data["access-key"]]
    assert data["access-key"] != s3.access_key and data["secret-key"] != s3.secret_key
    after = fake_kube.store.get("secrets", NS, "kestra-minio")["metadata"]["resourceVersion"]
    assert after != before
    assert s3.secret_key not in result.output and data["secret-key"] not in result.output


def test_the_root_key_is_never_written_even_if_the_new_key_were_it(tmp_path, s3, shim,
                                                                   fake_kube, env_vars,
                                                                   monkeypatch):
    from kestra_ops.workflows.storage import minio_key

    def root_as_new_key(admin, env, policy):
        admin.add_service_account(s3.access_key + "x", s3.secret_key, policy=policy)
        return s3.access_key + "x", s3.secret_key  # the root password as the new secret

    monkeypatch.setattr(minio_key, "_create_account", root_as_new_key)
    result = invoke(make_project(tmp_path, shim.endpoint), "setup", "--env", "dev", "--yes")
    assert result.exit_code == 1
    assert "refusing to write the MinIO root key to Secret hyperplane-kestra/kestra-minio" \
        in result.stderr
    assert fake_kube.store.get("secrets", NS, "kestra-minio") is None
    assert shim.service_accounts == {}  # the account created for it was deleted
