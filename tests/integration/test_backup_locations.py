"""The backup destination (backup.bucket with its own key) and the old location (backups/<env>/
in Kestra's bucket), on SeaweedFS: run writes only to the destination; list shows both (LOCATION
column, JSON "location"); a legacy set is verified and restored by name; `latest` is the newest
usable set of both; no backup key means Kestra's key with a warning; half a key is refused."""

from __future__ import annotations

import json
import time

from tests.integration.backup_support import (  # noqa: F401 - fixtures
    BACKUP_BUCKET, BUCKET, backup_env, backup_json, contents, kestra, objects, pg_cluster, pg_db,
    project, run, s3, seaweed)


def move_to_legacy(s3, name: str) -> None:
    """Move set ``name`` from the backup bucket to Kestra's bucket (where older versions of
    kestra-ops wrote sets), byte for byte."""
    from minio.commonconfig import CopySource

    client = s3.client()
    for key in objects(s3, f"backups/dev/{name}/"):
        client.copy_object(BUCKET, key, CopySource(BACKUP_BUCKET, key))
        client.remove_object(BACKUP_BUCKET, key)


def test_run_writes_to_the_backup_bucket_only(backup_env, s3):
    project, _ = backup_env
    code, data, output = backup_json(project, "--what", "db")
    assert code == 0, output
    assert data["bucket"] == BACKUP_BUCKET and data["warnings"] == []
    assert [k.rsplit("/", 1)[1] for k in objects(s3)] == ["db.dump.zst", "manifest.json"]
    assert objects(s3, bucket=BUCKET) == []  # nothing in Kestra's own bucket


def test_legacy_sets_are_listed_verified_restored_and_can_be_latest(backup_env, s3, pg_cluster,
                                                                    pg_db):
    project, source = backup_env
    code, first, output = backup_json(project, "--what", "db")
    assert code == 0, output
    time.sleep(1.01)
    code, second, output = backup_json(project, "--what", "db")
    assert code == 0, output
    move_to_legacy(s3, second["set"])  # the newer one is in the old location

    listed = run(project, "backup", "list", "--env", "dev", "--output", "json")
    assert listed.exit_code == 0, listed.output
    out = json.loads(listed.stdout)
    assert [(s["name"], s["location"]) for s in out["sets"]] == [
        (second["set"], "legacy"), (first["set"], "backup")]
    assert out["locations"] == {"backup": f"s3://{BACKUP_BUCKET}/backups/dev/",
                                "legacy": f"s3://{BUCKET}/backups/dev/"}
    assert any("migrate-location" in w for w in out["warnings"])
    table = run(project, "backup", "list", "--env", "dev")
    [line] = [ln for ln in table.stdout.splitlines() if ln.split()[:1] == [second["set"]]]
    assert line.split()[1:3] == ["complete", "legacy"]

    verified = run(project, "backup", "verify", "--env", "dev", "latest", "--output", "json")
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.stdout)
    assert (report["set"], report["location"]) == (second["set"], "legacy")

    target = pg_db()
    restored = run(project, "backup", "restore", "--env", "dev", second["set"], "--yes",
                   "--to-database", pg_cluster.url(target))
    assert restored.exit_code == 0, restored.output
    assert contents(pg_cluster, target) == contents(pg_cluster, source)


def test_without_a_backup_key_kestras_key_is_used_with_a_warning(backup_env, s3, monkeypatch):
    project, _ = backup_env
    monkeypatch.delenv("KESTRA_OPS_BACKUP_ACCESS_KEY")
    monkeypatch.delenv("KESTRA_OPS_BACKUP_SECRET_KEY")
    code, data, output = backup_json(project, "--what", "db")
    assert code == 0, output
    assert data["bucket"] == BACKUP_BUCKET
    assert any("Kestra's own MinIO key" in w for w in data["warnings"])
    assert s3.secret_key not in output and s3.access_key not in output


def test_half_a_backup_key_is_refused_before_anything_is_written(backup_env, s3, monkeypatch):
    project, _ = backup_env
    monkeypatch.delenv("KESTRA_OPS_BACKUP_SECRET_KEY")
    result = run(project, "backup", "run", "--env", "dev", "--what", "db")
    assert result.exit_code == 2, result.output
    assert "KESTRA_OPS_BACKUP_SECRET_KEY is not set (KESTRA_OPS_BACKUP_ACCESS_KEY is)" in \
        result.output
    assert objects(s3) == [] and "Traceback" not in result.output
