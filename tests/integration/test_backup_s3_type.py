"""backup run + verify of Kestra's internal storage when its values say ``kestra.storage.type:
s3`` (Kestra's storage-s3 plugin: endpoint URL, region, forcePathStyle, bucket), on SeaweedFS
and real PostgreSQL: kestra-ops.yaml names no minio.endpoint, so the copy reaches the store
where Kestra's values say; a bucket kestra-ops.yaml names differently, a store type it cannot
copy and an s3 ``path`` prefix are refused before anything is written."""

from __future__ import annotations

import json

import pytest

from tests.fakes.seaweed import seaweed  # noqa: F401 - fixture: the process's SeaweedFS
from tests.integration.backup_support import (  # noqa: F401 - fixtures
    BACKUP_BUCKET, BUCKET, kestra, pg_cluster, pg_db, project, run)
from tests.integration.test_backup_storage import OBJECTS, sw_env, verify  # noqa: F401

TRACEBACK = "Traceback (most recent call last)"


def s3_values(project, endpoint: str, bucket: str = BUCKET, extra: str = "") -> None:
    """Kestra's dev overlay switched to its S3 storage plugin (kestra.storage.s3)."""
    storage(project, f"""\
  storage:
    type: s3
    s3:
      endpoint: {endpoint}
      region: us-east-1
      forcePathStyle: true
      accessKey: "${{KESTRA_MINIO_ACCESS_KEY}}"
      secretKey: "${{KESTRA_MINIO_SECRET_KEY}}"
      bucket: {bucket}{extra}
""")


def storage(project, block: str) -> None:
    """``block`` in place of the dev overlay's kestra.storage section."""
    path = project / "values" / "dev.yaml"
    text = path.read_text()
    old = "  storage:\n    minio:\n      bucket: kestra-dev\n"
    assert old in text
    path.write_text(text.replace(old, block))


@pytest.fixture
def s3_env(sw_env, monkeypatch):  # noqa: F811 - the imported fixture
    """sw_env with Kestra's storage as type: s3 in its values, and no minio.endpoint: only
    the values say where Kestra's bucket is (the backups go to backup.endpoint)."""
    project, sw, url = sw_env
    monkeypatch.delenv("KESTRA_OPS_MINIO_ENDPOINT")
    monkeypatch.setenv("KESTRA_OPS_BACKUP_ENDPOINT", sw.endpoint)
    return project, sw, url


def test_backup_and_verify_round_trip_with_type_s3(s3_env):
    project, sw, _url = s3_env
    s3_values(project, sw.url)
    checked = run(project, "values", "validate", "--env", "dev", "--output", "json")
    assert "kestra/s3-" not in checked.stdout  # a clean type: s3 section
    result = run(project, "backup", "run", "--env", "dev", "--what", "db,storage",
                 "--include-executions", "--output", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    name, part = data["set"], data["manifest"]["storage"]
    assert part["objects"] == 7  # the tenant's objects (not states/, not elsewhere/), folders
    index = json.loads(sw.client().get_object(
        BACKUP_BUCKET, f"backups/dev/{name}/storage-index.json").read())
    assert index["source"] == {"endpoint": sw.url, "bucket": BUCKET}
    copied = {o["key"] for o in index["objects"]}
    assert "company/team/_kv/a.ion" in copied and "company/team/_files/scripts/run.py.v2" in copied
    for o in index["objects"]:  # the bytes in the set are Kestra's
        got = sw.client().get_object(BACKUP_BUCKET, f"backups/dev/{name}/storage/main/{o['key']}")
        assert got.read() == OBJECTS[f"main/{o['key']}"]
    code, report = verify(project, name)
    assert code == 0, report
    assert {c["id"]: c["status"] for c in report["checks"]}["storage"] == "pass"


def test_a_different_bucket_in_kestra_ops_yaml_is_refused(s3_env):
    project, sw, _url = s3_env
    s3_values(project, sw.url, bucket="kestra-dev-elsewhere")
    result = run(project, "backup", "run", "--env", "dev", "--what", "storage")
    assert result.exit_code == 2 and TRACEBACK not in result.output
    assert result.stderr.splitlines()[0] == (
        "error: Kestra of dev stores into bucket kestra-dev-elsewhere (kestra.storage.s3.bucket "
        "in its values) but kestra-ops' minio.bucket is kestra-dev: the storage copy would "
        "read a bucket Kestra does not use")
    assert "hint: set minio.bucket: kestra-dev-elsewhere for dev" in result.stderr
    assert list(sw.client().list_objects(BACKUP_BUCKET, recursive=True)) == []


@pytest.mark.parametrize("change, words", [
    ("path", "kestra.storage.s3.path is 'tenants': Kestra's objects live under that prefix"),
    ("gcs", "Kestra's internal storage of dev is type 'gcs' (kestra.storage.type)"),
])
def test_stores_the_copy_cannot_read_are_refused(s3_env, change, words):
    project, sw, _url = s3_env
    if change == "path":
        s3_values(project, sw.url, extra="\n      path: tenants")
    else:
        storage(project, "  storage:\n    type: gcs\n")
    result = run(project, "backup", "run", "--env", "dev", "--what", "storage")
    assert result.exit_code == 2 and TRACEBACK not in result.output
    assert words in result.stderr.splitlines()[0]
    assert list(sw.client().list_objects(BACKUP_BUCKET, recursive=True)) == []
