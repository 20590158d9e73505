"""minio setup / check against a REAL S3 server without MinIO's admin API
(SeaweedFS, which checks signatures) and the fake Kubernetes API: the fallback prints the policy
and writes nothing; the root key never reaches the Secret; bad root credentials fail."""

from __future__ import annotations

import base64
import json
import re

import pytest
from click.testing import CliRunner

from kestra_ops.cli import cli
from tests.fakes.seaweed import seaweed  # noqa: F401 - fixture: the process's SeaweedFS
from tests.integration.test_minio_setup import error_lines, make_project, put_secret

NS = "hyperplane-kestra"
BUCKET = "kestra-dev"
BACKUP_BUCKET = "kestra-dev-backups"


@pytest.fixture
def sw(seaweed, fake_kube, monkeypatch):  # noqa: F811 - the imported fixture
    """SeaweedFS with no kestra-dev bucket; root credentials set, no bucket key."""
    monkeypatch.setenv("KESTRA_OPS_KUBECONFIG", str(fake_kube.kubeconfig))
    for var in ("KESTRA_OPS_NAMESPACE", "KESTRA_OPS_MINIO_ENDPOINT", "KESTRA_OPS_MINIO_BUCKET",
                "KESTRA_OPS_MINIO_ACCESS_KEY", "KESTRA_OPS_MINIO_SECRET_KEY",
                "KESTRA_OPS_BACKUP_BUCKET", "KESTRA_OPS_BACKUP_ACCESS_KEY",
                "KESTRA_OPS_BACKUP_SECRET_KEY", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    for name in (BUCKET, BACKUP_BUCKET):  # the backup bucket is empty: removable despite its lock
        seaweed.remove_bucket(name)
    yield seaweed
    for name in (BUCKET, BACKUP_BUCKET):
        seaweed.remove_bucket(name)


def run(root, *args):
    return CliRunner().invoke(cli, ["--config", str(root / "kestra-ops.yaml"), *args])


def test_setup_without_admin_api_creates_the_bucket_prints_the_policy_writes_nothing(
        tmp_path, sw, fake_kube):
    root = make_project(tmp_path, sw.endpoint, ", versioning: true")
    result = run(root, "minio", "setup", "--env", "dev", "--yes", "--output", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    steps = {s["name"]: s for s in out["steps"]}
    assert steps["health"]["status"] == "warn"
    assert "HTTP 403 AccessDenied from SeaweedFS" in steps["health"]["detail"]
    assert steps["access-key"]["status"] == "warn"
    assert f"no MinIO admin API at http://{sw.endpoint} (list policies: HTTP 404 " \
        "NoSuchBucket)" in steps["access-key"]["detail"]
    assert out["policy"]["Statement"][0]["Resource"] == [f"arn:aws:s3:::{BUCKET}"]
    assert "secret" not in steps  # no Secret yet: nothing to flag
    # the real server's state: the bucket, versioned; no `minio` bucket from an admin PUT; the
    # backup bucket with object lock (SeaweedFS has it), governance retention 30 days
    assert sw.buckets() == [BUCKET, BACKUP_BUCKET]
    assert steps["backup-bucket"]["detail"] == f"{BACKUP_BUCKET} created with object lock"
    assert steps["backup-lock"]["detail"] == "governance, 30 days (created)"
    lock = sw.client().get_object_lock_config(BACKUP_BUCKET)
    assert (lock.mode, lock.duration) == ("GOVERNANCE", 30)
    assert sw.client().get_bucket_versioning(BACKUP_BUCKET).status == "Enabled"
    assert sw.client().get_bucket_versioning(BUCKET).status == "Enabled"
    assert fake_kube.store.get("secrets", NS, "kestra-minio") is None
    assert sw.root_password not in result.output

    again = run(root, "minio", "setup", "--env", "dev", "--yes")
    assert again.exit_code == 0, again.output
    assert re.search(rf"^  PASS +bucket \(\d+\.\ds\): {BUCKET} exists \(unchanged\)$",
                     again.stdout, re.M)
    assert re.search(r"^  PASS +versioning \(\d+\.\ds\): enabled \(unchanged\)$", again.stdout,
                     re.M)
    assert re.search(r"^  PASS +backup-lock \(\d+\.\ds\): governance, 30 days \(unchanged\)$",
                     again.stdout, re.M)


def test_setup_fallback_fails_when_the_secret_holds_the_root_key_and_leaves_it(
        tmp_path, sw, fake_kube):
    before = put_secret(fake_kube, sw.root_user, "some-other-secret")
    result = run(make_project(tmp_path, sw.endpoint), "minio", "setup", "--env", "dev", "--yes")
    assert result.exit_code == 1, result.output
    assert re.search(rf"^  FAIL +secret \(\d+\.\ds\): Secret {NS}/kestra-minio holds the MinIO "
                     "root credentials", result.stdout, re.M)
    assert result.stdout.rstrip().endswith(f"bucket {BUCKET}): FAILED")
    live = fake_kube.store.get("secrets", NS, "kestra-minio")
    assert live["metadata"]["resourceVersion"] == before
    assert base64.b64decode(live["data"]["access-key"]).decode() == sw.root_user
    assert sw.root_user not in result.output and sw.root_password not in result.output


def test_setup_with_a_wrong_root_password_fails_naming_the_endpoint(tmp_path, sw, fake_kube,
                                                                   monkeypatch):
    monkeypatch.setenv("KESTRA_OPS_MINIO_ROOT_PASSWORD", "Not-The-Root-Passw0rd")
    result = run(make_project(tmp_path, sw.endpoint), "minio", "setup", "--env", "dev", "--yes")
    assert result.exit_code == 1, result.output
    (line,) = error_lines(result)
    assert line.startswith(f"error: bucket {BUCKET} at http://{sw.endpoint}: "
                           "SignatureDoesNotMatch")
    assert sw.buckets() == []
    assert fake_kube.store.get("secrets", NS, "kestra-minio") is None


def test_admin_probe_against_seaweedfs_is_read_only_and_means_absent(sw):
    from kestra_ops.adapters.storage import Storage
    from kestra_ops.adapters.storage_admin import Admin

    storage = Storage(sw.endpoint, sw.root_user, sw.root_password, secure=False)
    policies, why = Admin(storage, sw.root_user, sw.root_password).available()
    assert policies is None
    assert why == f"no MinIO admin API at http://{sw.endpoint} (list policies: HTTP 404 " \
        "NoSuchBucket)"
    assert "minio" not in sw.buckets()


def test_check_with_the_bucket_key_probes_the_real_bucket(tmp_path, sw, monkeypatch):
    sw.client().make_bucket(BUCKET)
    monkeypatch.setenv("KESTRA_OPS_MINIO_ACCESS_KEY", sw.root_user)  # SeaweedFS' one identity
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECRET_KEY", sw.root_password)
    result = run(make_project(tmp_path, sw.endpoint), "minio", "check", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert f"wrote, read back and deleted s3://{BUCKET}/kestra-ops-probe/" in result.stdout
    assert list(sw.client().list_objects(BUCKET, recursive=True)) == []



def test_the_checklists_minio_item_names_another_s3_server_as_a_warning(seaweed):
    """SeaweedFS serves no /minio/health/*: the item says what answered (a warning), never a
    failure that would fail every check of a store moved off MinIO."""
    from kestra_ops.adapters.minio_health import HealthProbe
    from kestra_ops.checks.storage import minio_verdict

    item = minio_verdict(HealthProbe(f"http://{seaweed.endpoint}"))
    assert item.status == "warn", item
    assert item.reason.startswith("SeaweedFS") and "is not MinIO" in item.reason
