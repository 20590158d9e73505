"""backup run / verify with Kestra's internal storage, on SeaweedFS and real PostgreSQL.

The database holds Kestra's metadata tables as its migrations create them (the columns the
backup reads: kestra-io/kestra jdbc-postgres/src/main/resources/migrations/postgres/
V1_46__kv_metadata.sql and V1_50__ns_files_metadata.sql; their timestamp and full-text columns,
which need Kestra's own SQL functions, are left out). The bucket holds objects in Kestra's
layout (workflows/backup/kestra_storage.py gives the sources)."""

from __future__ import annotations

import io
import json

import psycopg
import pytest

from kestra_ops.adapters import postgres as pg
from kestra_ops.workflows.backup import storage_set
from tests.fakes.seaweed import seaweed  # noqa: F401 - fixture: the process's SeaweedFS
from tests.integration.backup_support import (  # noqa: F401 - fixtures
    BACKUP_BUCKET, BUCKET, kestra, pg_cluster, pg_db, project, run)

TABLES = """
CREATE TABLE kv_metadata (
    "key" VARCHAR(768) NOT NULL PRIMARY KEY,
    "value" JSONB NOT NULL,
    "tenant_id" VARCHAR(250) NOT NULL GENERATED ALWAYS AS (value ->> 'tenantId') STORED,
    "namespace" VARCHAR(150) NOT NULL GENERATED ALWAYS AS (value ->> 'namespace') STORED,
    "name" VARCHAR(350) NOT NULL GENERATED ALWAYS AS (value ->> 'name') STORED,
    "version" INT NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'version' AS INTEGER)) STORED,
    "last" BOOL NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'last' AS BOOL)) STORED,
    "deleted" BOOL NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'deleted' AS BOOL)) STORED);
CREATE TABLE namespace_file_metadata (
    "key" VARCHAR(768) NOT NULL PRIMARY KEY,
    "value" JSONB NOT NULL,
    "tenant_id" VARCHAR(250) GENERATED ALWAYS AS (value ->> 'tenantId') STORED,
    "namespace" VARCHAR(150) NOT NULL GENERATED ALWAYS AS (value ->> 'namespace') STORED,
    "path" VARCHAR(350) NOT NULL GENERATED ALWAYS AS (value ->> 'path') STORED,
    "version" INT NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'version' AS INTEGER)) STORED,
    "last" BOOL NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'last' AS BOOL)) STORED,
    "size" BIGINT NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'size' AS BIGINT)) STORED,
    "deleted" BOOL NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'deleted' AS BOOL)) STORED);
"""
NS = "company.team"
OBJECTS = {  # key in the bucket -> bytes
    "main/company/team/_kv/a.ion": b'"alpha"',
    "main/company/team/_kv/b.ion.v2": b"2",
    "main/company/team/_kv/b.ion.v3": b"3",
    "main/company/team/_kv/orphan.ion": b"nobody names me",
    "main/company/team/_files/scripts/run.py": b"print(1)\n",
    "main/company/team/_files/scripts/run.py.v2": b"print(2)\n",
    "main/company/team/hello/executions/6Xy/tasks/log/1a/out.txt": b"an output",
    "main/company/team/hello/states/s1/state.ion": b"not backed up",
    "elsewhere/file.txt": b"not Kestra's",
}


def kv(name, version, last=True, deleted=False):
    return {"tenantId": "main", "namespace": NS, "name": name, "version": version,
            "last": last, "deleted": deleted}


def nsfile(path, version, last=True, size=9):
    return {"tenantId": "main", "namespace": NS, "path": path, "version": version,
            "last": last, "deleted": False, "size": size}


def insert(url, table, rows) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for i, value in enumerate(rows):
            conn.execute(f"INSERT INTO {table} (key, value) VALUES (%s, %s)",
                         (f"{table}-{value.get('name') or value['path']}-{value['version']}-{i}",
                          json.dumps(value)))


@pytest.fixture
def sw_env(project, seaweed, kestra, pg_cluster, pg_db, monkeypatch):  # noqa: F811
    for bucket in (BUCKET, BACKUP_BUCKET):  # Kestra's, and the backup bucket the sets go to
        seaweed.remove_bucket(bucket)
    client = seaweed.client()
    client.make_bucket(BUCKET)
    client.make_bucket(BACKUP_BUCKET)
    for key, data in OBJECTS.items():
        client.put_object(BUCKET, key, io.BytesIO(data), len(data))
    monkeypatch.setenv("KESTRA_OPS_MINIO_ENDPOINT", seaweed.endpoint)
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECURE", "false")
    monkeypatch.setenv("KESTRA_OPS_MINIO_ACCESS_KEY", seaweed.root_user)
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECRET_KEY", seaweed.root_password)
    # the backup key: the same identity here, so that one key may read Kestra's bucket and
    # write the backup bucket (what a server-side copy needs)
    monkeypatch.setenv("KESTRA_OPS_BACKUP_ACCESS_KEY", seaweed.root_user)
    monkeypatch.setenv("KESTRA_OPS_BACKUP_SECRET_KEY", seaweed.root_password)
    monkeypatch.setenv("KESTRA_OPS_KESTRA_URL", kestra.url)
    monkeypatch.setenv("KESTRA_OPS_BASIC_AUTH_USERNAME", kestra.username)
    monkeypatch.setenv("KESTRA_OPS_BASIC_AUTH_PASSWORD", kestra.password)
    name = pg_db()
    pg_cluster.execute(name, TABLES)
    url = pg_cluster.url(name)
    insert(url, "kv_metadata", [kv("a", 1), kv("b", 2, last=False), kv("b", 3),
                                kv("gone", 1, last=False, deleted=True)])
    insert(url, "namespace_file_metadata", [nsfile("/scripts/", 1, size=0),
                                            nsfile("/scripts/run.py", 1, last=False),
                                            nsfile("/scripts/run.py", 2)])
    monkeypatch.setenv("KESTRA_OPS_DATABASE_URL", url)
    yield project, seaweed, url
    for bucket in (BUCKET, BACKUP_BUCKET):
        seaweed.remove_bucket(bucket)


def backup(project, *args):
    result = run(project, "backup", "run", "--env", "dev", "--output", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def verify(project, name):
    result = run(project, "backup", "verify", "--env", "dev", name, "--output", "json")
    return result.exit_code, json.loads(result.stdout)


def set_key(name, rel):
    return f"backups/dev/{name}/storage/main/{rel}"


def test_storage_in_the_set_indexed_referenced_and_verified(sw_env):
    project, sw, _ = sw_env
    data = backup(project, "--what", "db,storage", "--include-executions")
    name, manifest = data["set"], data["manifest"]
    assert manifest["version"] == 2 and manifest["included"] == ["db", "storage"]
    part = manifest["storage"]
    assert (part["objects"], part["copy"], part["include_executions"]) == (7, "server-side", True)
    assert part["streamed_bytes"] == 0 and part["refs"] == "storage-refs.json"
    assert part["tables"] == {"kv_metadata": 2, "namespace_file_metadata": 2}
    assert part["bytes"] == sum(len(v) for k, v in OBJECTS.items()
                                if "/states/" not in k and k.startswith("main/"))
    assert set(manifest["versions"]) == {"kestra", "postgres", "chart", "image", "image_digest"}
    assert manifest["versions"]["postgres"].startswith("15")
    client = sw.client()
    index = json.loads(client.get_object(
        BACKUP_BUCKET, f"backups/dev/{name}/storage-index.json").read())
    assert [o["key"] for o in index["objects"]] == sorted(
        k[len("main/"):] for k in OBJECTS if k.startswith("main/") and "/states/" not in k)
    for key, value in OBJECTS.items():
        if key.startswith("main/") and "/states/" not in key:
            assert client.get_object(BACKUP_BUCKET, set_key(name, key[5:])).read() == value
    refs = json.loads(client.get_object(BACKUP_BUCKET, f"backups/dev/{name}/storage-refs.json").read())
    assert [r["key"] for r in refs["refs"]] == [
        "company/team/_files/scripts/", "company/team/_files/scripts/run.py.v2",
        "company/team/_kv/a.ion", "company/team/_kv/b.ion.v3"]

    code, report = verify(project, name)
    assert code == 0, report
    checks = {c["id"]: c["status"] for c in report["checks"]}
    assert checks["storage"] == checks["storage-refs"] == "pass"
    assert report["storage"]["unreferenced"] == ["company/team/_kv/orphan.ion"]
    assert any("orphan.ion" in w for w in report["warnings"])

    # a missing object, then an object with other bytes: both fail verify
    client.remove_object(BACKUP_BUCKET, set_key(name, "company/team/_kv/a.ion"))
    code, report = verify(project, name)
    assert code == 1 and report["storage"]["missing"] == ["company/team/_kv/a.ion"]
    assert report["storage"]["refs_missing"] == ["company/team/_kv/a.ion"]
    client.put_object(BACKUP_BUCKET, set_key(name, "company/team/_kv/a.ion"), io.BytesIO(b'"alpha"'), 7)
    assert verify(project, name)[0] == 0
    client.put_object(BACKUP_BUCKET, set_key(name, "company/team/_kv/b.ion.v3"), io.BytesIO(b"4"), 1)
    code, report = verify(project, name)
    assert code == 1 and report["storage"]["changed"] == ["company/team/_kv/b.ion.v3"]
    assert {c["id"]: c["status"] for c in report["checks"]}["storage"] == "fail"


def test_a_metadata_row_without_its_object_fails_verify(sw_env):
    project, _, url = sw_env
    insert(url, "kv_metadata", [kv("ghost", 4)])
    data = backup(project, "--what", "storage")
    assert data["manifest"]["storage"]["objects"] == 6  # executions not asked for
    code, report = verify(project, data["set"])
    assert code == 1
    assert report["storage"]["refs_missing"] == ["company/team/_kv/ghost.ion.v4"]
    assert {c["id"]: c["status"] for c in report["checks"]}["storage-refs"] == "fail"


def test_without_metadata_tables_refs_are_null_and_verify_warns(sw_env, pg_cluster):
    project, _, url = sw_env
    pg_cluster.execute(pg.DatabaseURL.parse(url).dbname,
                       "DROP TABLE kv_metadata; DROP TABLE namespace_file_metadata;")
    data = backup(project, "--what", "storage")
    assert data["manifest"]["storage"]["refs"] is None
    code, report = verify(project, data["set"])
    assert code == 0
    assert {c["id"]: c["status"] for c in report["checks"]}["storage-refs"] == "warn"
    assert any("not cross-checked" in w for w in report["warnings"])


def test_the_dump_and_the_refs_share_one_snapshot(pg_cluster, pg_db):
    name = pg_db()
    pg_cluster.execute(name, TABLES)
    url = pg.DatabaseURL.parse(pg_cluster.url(name))
    insert(pg_cluster.url(name), "kv_metadata", [kv("before", 1)])
    from kestra_ops.adapters.postgres_snapshot import Snapshot

    with Snapshot(url) as snap:
        insert(pg_cluster.url(name), "kv_metadata", [kv("after", 1)])  # committed after it
        refs = storage_set.read_refs(snap)
        child = pg.dump(url, snapshot=snap.id)
        dump = child.proc.stdout.read()
        assert child.wait() == 0
    assert [r["name"] for r in refs["refs"]] == ["before"]
    assert b"before" in dump and b"after" not in dump


def test_restore_objects_brings_the_tenant_back_and_resumes(sw_env):
    from kestra_ops.adapters.storage import Storage
    from kestra_ops.workflows.backup import objects
    from kestra_ops.workflows.backup import sets as bs

    project, sw, _ = sw_env
    data = backup(project, "--what", "storage")
    target = "kestra-restored"
    sw.remove_bucket(target)
    sw.client().make_bucket(target)
    try:
        st = Storage(sw.endpoint, sw.root_user, sw.root_password, secure=False)
        s = bs.get_set(st, BACKUP_BUCKET, "dev", data["set"])
        done = objects.restore_objects(st, BACKUP_BUCKET, "dev", s, st, target)
        assert (done.copied, done.skipped, done.streamed_bytes) == (6, 0, 0)
        restored = {e.name for e in st.iter_entries(target, "")}
        assert restored == {k for k in OBJECTS if k.startswith("main/")
                            and "/states/" not in k and "/executions/" not in k}
        for key in restored:
            assert sw.client().get_object(target, key).read() == OBJECTS[key]
        again = objects.restore_objects(st, BACKUP_BUCKET, "dev", s, st, target)
        assert (again.copied, again.skipped) == (0, 6) and "6 already in place" in again.describe()
    finally:
        sw.remove_bucket(target)
