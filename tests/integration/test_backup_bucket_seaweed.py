"""The backup bucket on a real S3 server (SeaweedFS): `minio setup` creates it with object lock,
versioning and governance retention, and reports a bucket made without object lock; `minio
check` reports it; `minio policy` prints the writer's policy; and a set written with the
CronJob's kind of key (SeaweedFS identity with Read/Write/List only) cannot be destroyed with it.

What SeaweedFS 4.48 enforces (measured): its "Write" action includes DeleteObject, so the writer
CAN delete an object's current version; in a versioned bucket that only adds a delete marker,
and deleting a version itself under GOVERNANCE retention is refused (AccessDenied) for every
identity unless it sends x-amz-bypass-governance-retention, which only the Admin identity may.
The write-only policy of `minio policy --role backup-writer` (no s3:DeleteObject at all) is for
MinIO / AWS IAM; SeaweedFS's identities cannot express it."""

from __future__ import annotations

import json
import uuid

import pytest
from minio.error import S3Error

from kestra_ops.adapters.storage import Storage
from kestra_ops.adapters.storage_lock import lock_state, make_locked_bucket, set_default_retention
from kestra_ops.errors import PermissionDenied
from tests.fakes.seaweed import WRITER_PASSWORD, WRITER_USER
from tests.integration.backup_support import (  # noqa: F401 - fixtures
    backup_env, backup_json, kestra, pg_cluster, pg_db, project, run, s3, seaweed)
from tests.integration.test_minio_seaweed import make_project
from tests.integration.test_minio_seaweed import run as invoke


@pytest.fixture(autouse=True)
def _own_buckets(seaweed):  # noqa: F811
    """Every bucket a test names with :func:`own_bucket` is removed afterwards (locked versions
    too: the root may bypass governance), so the shared server is left as it was found."""
    made.clear()
    yield
    for name in made:
        seaweed.remove_bucket(name)


made: list[str] = []


def own_bucket() -> str:
    """A bucket name of this test's own."""
    made.append(f"kestra-lock-{uuid.uuid4().hex[:12]}")
    return made[-1]


@pytest.fixture
def root_env(seaweed, fake_kube, monkeypatch):  # noqa: F811
    monkeypatch.setenv("KESTRA_OPS_KUBECONFIG", str(fake_kube.kubeconfig))
    for var in ("KESTRA_OPS_MINIO_ENDPOINT", "KESTRA_OPS_MINIO_BUCKET", "KESTRA_OPS_BACKUP_BUCKET",
                "KESTRA_OPS_MINIO_ACCESS_KEY", "KESTRA_OPS_MINIO_SECRET_KEY",
                "KESTRA_OPS_BACKUP_ACCESS_KEY", "KESTRA_OPS_BACKUP_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    return seaweed


def test_setup_locks_the_backup_bucket_with_the_configured_days(tmp_path, root_env,
                                                                 monkeypatch):
    bucket, kestra_bucket = own_bucket(), own_bucket()
    monkeypatch.setenv("KESTRA_OPS_BACKUP_BUCKET", bucket)
    monkeypatch.setenv("KESTRA_OPS_MINIO_BUCKET", kestra_bucket)
    root = make_project(tmp_path, root_env.endpoint)
    (root / "kestra-ops.yaml").write_text((root / "kestra-ops.yaml").read_text().replace(
        "secure: false}", "secure: false}\n    backup: {lock_days: 7}"))
    result = invoke(root, "minio", "setup", "--env", "dev", "--yes", "--output", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    steps = {s["name"]: s for s in out["steps"]}
    assert (out["backup_bucket"], out["backup_lock"]) == (bucket, "governance")
    assert steps["backup-lock"]["detail"] == "governance, 7 days (created)"
    config = root_env.client().get_object_lock_config(bucket)
    assert (config.mode, config.duration, config.duration_unit) == ("GOVERNANCE", 7, "Days")

    # check, with the writer's key: the bucket, read-only (no probe object to get locked)
    monkeypatch.setenv("KESTRA_OPS_MINIO_ACCESS_KEY", root_env.root_user)
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECRET_KEY", root_env.root_password)
    for name, value in root_env.writer_env().items():
        monkeypatch.setenv(name, value)
    checked = invoke(root, "minio", "check", "--env", "dev", "--output", "json")
    assert checked.exit_code == 0, checked.output
    (step,) = [s for s in json.loads(checked.stdout)["steps"] if s["name"] == "backup-bucket"]
    assert step["status"] == "pass", step
    assert step["detail"].startswith(f"{bucket} exists at http://{root_env.endpoint}; "
                                     "versioning: enabled; object lock: ")
    assert list(root_env.client().list_objects(bucket, recursive=True)) == []
    assert WRITER_PASSWORD not in checked.output


def test_an_existing_bucket_without_lock_is_reported_with_the_remedy(tmp_path, root_env,
                                                                    monkeypatch):
    bucket = own_bucket()
    root_env.client().make_bucket(bucket)  # made before: no object lock
    monkeypatch.setenv("KESTRA_OPS_BACKUP_BUCKET", bucket)
    monkeypatch.setenv("KESTRA_OPS_MINIO_BUCKET", own_bucket())
    result = invoke(make_project(tmp_path, root_env.endpoint), "minio", "setup", "--env", "dev",
                    "--yes", "--output", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    steps = {s["name"]: s for s in out["steps"]}
    assert steps["backup-bucket"]["detail"] == f"{bucket} exists (unchanged)"
    assert steps["backup-versioning"]["detail"] == "off -> enabled"
    assert steps["backup-lock"]["status"] == "warn" and out["backup_lock"] == "absent"
    assert "created without object lock, which cannot be added to an existing bucket" in \
        steps["backup-lock"]["detail"]
    assert "set backup.bucket to a new name" in steps["backup-lock"]["detail"]
    assert root_env.client().get_bucket_versioning(bucket).status == "Enabled"


def test_writer_policy_has_no_delete(tmp_path, root_env):
    result = invoke(make_project(tmp_path, root_env.endpoint), "minio", "policy", "--env", "dev",
                    "--role", "backup-writer")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["name"] == "kestra-dev-backup-writer"
    actions = [a for st in out["policy"]["Statement"] for a in st["Action"]]
    assert {"s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:ListMultipartUploadParts",
            "s3:AbortMultipartUpload"} <= set(actions)
    assert not [a for a in actions if "Delete" in a or "Bypass" in a or "PutBucket" in a
                or a.endswith("*")]
    resources = {r for st in out["policy"]["Statement"] for r in st["Resource"]}
    assert resources == {"arn:aws:s3:::kestra-dev-backups", "arn:aws:s3:::kestra-dev-backups/*"}
    operator = json.loads(invoke(make_project(tmp_path, root_env.endpoint), "minio", "policy",
                                 "--env", "dev", "--role", "backup-operator").stdout)
    assert "s3:DeleteObject" in json.dumps(operator)
    assert "Bypass" not in json.dumps(operator)


def test_the_writer_key_cannot_destroy_a_set(backup_env, s3, monkeypatch):
    """A set taken with the writer's key into a locked bucket: deleting its objects with that
    key leaves every version there (a delete marker on top), deleting a version is refused, a
    bypass is refused; the operator (root) removes the markers and the set verifies again."""
    project, _ = backup_env
    bucket = own_bucket()
    root = Storage(s3.endpoint, s3.access_key, s3.secret_key, secure=False)
    assert make_locked_bucket(root, bucket)
    set_default_retention(root, bucket, 1)
    assert lock_state(root, bucket) == (True, "GOVERNANCE", 1)
    monkeypatch.setenv("KESTRA_OPS_BACKUP_BUCKET", bucket)  # writer key set by backup_env
    code, data, output = backup_json(project, "--what", "db")
    assert code == 0, output
    assert data["bucket"] == bucket and data["warnings"] == []
    prefix = f"backups/dev/{data['set']}/"

    writer = Storage(s3.endpoint, WRITER_USER, WRITER_PASSWORD, secure=False)
    keys = [o.name for o in writer.list_objects(bucket, prefix)]
    assert [k.rsplit("/", 1)[1] for k in keys] == ["db.dump.zst", "manifest.json"]
    for key in keys:  # SeaweedFS's Write allows this: it only adds a delete marker
        writer.remove_object(bucket, key)
    assert writer.list_objects(bucket, prefix) == []
    listed = json.loads(run(project, "backup", "list", "--env", "dev", "-o", "json").stdout)
    assert listed["sets"] == []  # hidden for now...

    client = s3.client()
    versions = [v for v in client.list_objects(bucket, prefix=prefix, recursive=True,
                                               include_version=True) if not v.is_delete_marker]
    assert sorted(v.object_name for v in versions) == keys  # ...but every version is there
    for v in versions:
        with pytest.raises(PermissionDenied):  # the writer: refused by the retention
            writer.call("delete version", writer.client.remove_object, bucket, v.object_name,
                        version_id=v.version_id)
        with pytest.raises(S3Error) as refused:  # the writer cannot bypass governance either
            writer.client._execute("DELETE", bucket, v.object_name,
                                   query_params={"versionId": v.version_id},
                                   headers={"x-amz-bypass-governance-retention": "true"})
        assert refused.value.code == "AccessDenied"
    with pytest.raises(PermissionDenied):  # the root too, without the bypass header
        root.call("delete version", root.client.remove_object, bucket, versions[0].object_name,
                  version_id=versions[0].version_id)

    for marker in [v for v in client.list_objects(bucket, prefix=prefix, recursive=True,
                                                  include_version=True) if v.is_delete_marker]:
        client.remove_object(bucket, marker.object_name, version_id=marker.version_id)
    verified = run(project, "backup", "verify", "--env", "dev", data["set"])
    assert verified.exit_code == 0, verified.output
