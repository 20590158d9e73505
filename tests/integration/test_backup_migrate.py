"""backup migrate-location on SeaweedFS: legacy sets (backups/dev/ in Kestra's bucket) copied to
the backup bucket with the manifest last and checksums compared; resumable; an interrupted copy
leaves no complete-looking set; the legacy copy deleted only with --delete-source and only once
verified."""

from __future__ import annotations

import json
import time

import pytest

from kestra_ops.workflows.backup import migrate
from tests.integration.backup_support import (  # noqa: F401 - fixtures
    BACKUP_BUCKET, BUCKET, backup_env, backup_json, kestra, objects, pg_cluster, pg_db, project,
    run, s3, seaweed)
from tests.integration.test_backup_locations import move_to_legacy


def legacy_sets(backup_env, s3, count: int = 2) -> list[str]:
    project, _ = backup_env
    names = []
    for i in range(count):
        if i:
            time.sleep(1.01)
        code, data, output = backup_json(project, "--what", "db")
        assert code == 0, output
        names.append(data["set"])
        move_to_legacy(s3, data["set"])
    return names


def migrated(project, *args: str):
    result = run(project, "backup", "migrate-location", "--env", "dev", "--output", "json", *args)
    try:
        return result, json.loads(result.stdout)
    except ValueError:
        return result, None


def test_dry_run_then_copy_then_rerun_skips(backup_env, s3):
    project, _ = backup_env
    names = legacy_sets(backup_env, s3)
    s3.client().put_object(BUCKET, "backups/dev/20200101T000000Z/db.dump.zst",
                           __import__("io").BytesIO(b"half"), 4)  # incomplete: no manifest
    before = objects(s3, bucket=BUCKET)

    result, out = migrated(project, "--dry-run")
    assert result.exit_code == 0, result.output
    assert [(s["name"], s["action"]) for s in out["sets"]] == [
        ("20200101T000000Z", "skip: incomplete"), (names[0], "copy"), (names[1], "copy")]
    assert objects(s3) == [] and out["outcome"] == "planned"

    result, out = migrated(project, "--yes")
    assert result.exit_code == 0, result.output
    assert out["copied"] == names and out["deleted"] == [] and out["skipped"] == [
        "20200101T000000Z"]
    assert objects(s3) == [k for k in before if "20200101T000000Z" not in k]
    assert objects(s3, bucket=BUCKET) == before  # the legacy copies stay without --delete-source
    listed = json.loads(run(project, "backup", "list", "--env", "dev", "-o", "json").stdout)
    assert [(s["name"], s["location"]) for s in listed["sets"] if s["complete"]] == [
        (names[1], "backup"), (names[1], "legacy"), (names[0], "backup"), (names[0], "legacy")]
    verified = run(project, "backup", "verify", "--env", "dev", names[0])
    assert verified.exit_code == 0, verified.output  # the destination's copy (found first)

    again, out = migrated(project, "--yes")
    assert again.exit_code == 0, again.output
    assert [s["action"] for s in out["sets"]][1:] == ["already at the destination"] * 2
    assert out["copied"] == [] and out["outcome"] == "nothing to do"


def test_interrupted_copy_leaves_no_complete_set_and_a_rerun_finishes(backup_env, s3,
                                                                     monkeypatch):
    project, _ = backup_env
    [name] = legacy_sets(backup_env, s3, 1)
    from kestra_ops.workflows.backup.migrate import migrate_location

    calls = []

    def interrupting(src, dst, key):
        calls.append(key)
        if key.endswith("manifest.json"):
            raise KeyboardInterrupt  # Ctrl-C just before the manifest
        migrate.stream_copy(src, dst, key)

    from kestra_ops.settings import load_config

    env = load_config(project / "kestra-ops.yaml").environment("dev")
    with pytest.raises(KeyboardInterrupt):
        migrate_location(env, copy=interrupting)
    assert calls[-1].endswith("manifest.json")
    assert objects(s3) == [f"backups/dev/{name}/db.dump.zst"]  # no manifest: incomplete
    listed = json.loads(run(project, "backup", "list", "--env", "dev", "-o", "json").stdout)
    assert [(s["location"], s["complete"]) for s in listed["sets"]] == [
        ("backup", False), ("legacy", True)]

    result, out = migrated(project, "--yes")
    assert result.exit_code == 0, result.output
    assert out["copied"] == [name]
    assert objects(s3) == [f"backups/dev/{name}/db.dump.zst", f"backups/dev/{name}/manifest.json"]


def test_delete_source_only_after_a_verified_copy(backup_env, s3):
    project, _ = backup_env
    good, bad = legacy_sets(backup_env, s3)
    # a corrupt copy of `bad` is already complete at the destination (the artefact differs)
    client = s3.client()
    from minio.commonconfig import CopySource

    prefix = f"backups/dev/{bad}/"
    client.copy_object(BACKUP_BUCKET, prefix + "manifest.json",
                       CopySource(BUCKET, prefix + "manifest.json"))
    client.put_object(BACKUP_BUCKET, prefix + "db.dump.zst", __import__("io").BytesIO(b"x" * 9),
                      9)

    result, out = migrated(project, "--yes", "--delete-source")
    assert result.exit_code == 1, result.output
    assert out["copied"] == [good] and out["deleted"] == [good]
    failed = [s for s in out["steps"] if s["status"] == "fail"]
    assert [s["name"] for s in failed] == [f"delete legacy {bad}"]
    assert "does not match the manifest" in failed[0]["detail"]
    assert objects(s3, f"backups/dev/{good}/", BUCKET) == []  # moved
    assert objects(s3, prefix, BUCKET) == [prefix + "db.dump.zst", prefix + "manifest.json"]
    changes = [json.loads(line) for line in
               (project / "backups" / "changes.jsonl").read_text().splitlines()]
    assert [c["target"] for c in changes if c["action"] == "backup migrate-location"] == [
        f"s3://{BUCKET}/backups/dev/{good}/"]


def test_without_yes_or_terminal_nothing_changes(backup_env, s3):
    project, _ = backup_env
    legacy_sets(backup_env, s3, 1)
    result = run(project, "backup", "migrate-location", "--env", "dev")
    assert result.exit_code == 2, result.output
    assert "without --yes" in result.stderr and objects(s3) == []



def test_large_objects_are_copied_in_parts(s3):
    """The streaming copy's multipart path: 11 MiB in 5 MiB parts (S3's minimum part size,
    which SeaweedFS enforces), byte-identical at the destination; small objects in one PUT."""
    import hashlib
    import io
    import os

    from kestra_ops.adapters.storage import Storage
    from kestra_ops.workflows.backup.locations import Place

    for bucket in (BUCKET, BACKUP_BUCKET):
        s3.create_bucket(bucket)
    data = os.urandom(11 * 1024 * 1024)
    s3.client().put_object(BUCKET, "big", io.BytesIO(data), len(data))
    s3.client().put_object(BUCKET, "small", io.BytesIO(b"tiny"), 4)
    storage = Storage(s3.endpoint, s3.access_key, s3.secret_key, secure=False)
    src, dst = Place("legacy", storage, BUCKET), Place("backup", storage, BACKUP_BUCKET)
    assert migrate.stream_copy(src, dst, "big", part_size=5 * 1024 * 1024) == len(data)
    assert migrate.stream_copy(src, dst, "small", part_size=5 * 1024 * 1024) == 4
    copied = s3.client().get_object(BACKUP_BUCKET, "big").read()
    assert hashlib.sha256(copied).digest() == hashlib.sha256(data).digest()
    assert s3.client().get_object(BACKUP_BUCKET, "small").read() == b"tiny"
    uploads = s3.client()._list_multipart_uploads(BACKUP_BUCKET).uploads
    assert list(uploads) == []  # completed, none left behind


def test_server_side_first_falls_back_to_streaming_when_refused(backup_env, s3, seaweed):
    """One endpoint: a server-side copy with the destination's key; a key that may not read the
    source (a backup key scoped to its own bucket) is refused, then every object is streamed."""
    import io

    from kestra_ops.adapters.storage import Storage
    from kestra_ops.workflows.backup.locations import Place

    s3.client().put_object(BUCKET, "a", io.BytesIO(b"alpha"), 5)
    s3.client().put_object(BUCKET, "b", io.BytesIO(b"beta"), 4)
    root = Storage(s3.endpoint, s3.access_key, s3.secret_key, secure=False)
    copy = migrate.ServerSideFirst()
    copy(Place("legacy", root, BUCKET), Place("backup", root, BACKUP_BUCKET), "a")
    assert copy.server_side and s3.client().get_object(BACKUP_BUCKET, "a").read() == b"alpha"

    # the refusal is injected: the suite's SeaweedFS identities are not scoped to one bucket
    refusing = migrate.ServerSideFirst()
    dst = Storage(s3.endpoint, s3.access_key, s3.secret_key, secure=False)

    def copy_object(*args, **kwargs):  # a backup key that may not read Kestra's bucket
        from kestra_ops.errors import PermissionDenied
        raise PermissionDenied("object kestra-dev/b: AccessDenied")

    dst.copy_object = copy_object
    refusing(Place("legacy", root, BUCKET), Place("backup", dst, BACKUP_BUCKET), "b")
    assert refusing.server_side is False  # later objects: streamed straight away
    assert s3.client().get_object(BACKUP_BUCKET, "b").read() == b"beta"
