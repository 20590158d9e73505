"""Faults during backup run: each fails the set (no manifest, multipart aborted, exit 1) and
leaves earlier sets intact."""

from __future__ import annotations

import json

import pytest

from kestra_ops.workflows.backup import run as backup_run
from tests.integration.backup_support import (BUCKET, backup_env, backup_json, kestra,  # noqa: F401
                                              multipart_uploads, objects, pg_cluster, pg_db,
                                              project, run, s3, seaweed)

SMALL_PART = 64 * 1024


@pytest.fixture
def earlier(backup_env, s3, monkeypatch):
    """One complete db set taken before the fault; small parts so the dump spans several."""
    project, source = backup_env
    code, data, output = backup_json(project, "--what", "db")
    assert code == 0, output
    monkeypatch.setattr(backup_run, "PART_SIZE", SMALL_PART)
    import time

    time.sleep(1.01)  # the next set gets its own stamp
    return project, data["set"], objects(s3)


def assert_intact(project, s3, name, before):
    manifests = [k for k in objects(s3) if k.endswith("/manifest.json")]
    assert manifests == [f"backups/dev/{name}/manifest.json"]
    assert [k for k in objects(s3) if k.startswith(f"backups/dev/{name}/")] == before
    assert multipart_uploads(s3) == []
    sets = json.loads(run(project, "backup", "list", "--env", "dev", "-o", "json").stdout)["sets"]
    assert [s["name"] for s in sets if s["complete"]] == [name]
    verified = run(project, "backup", "verify", "--env", "dev", "latest")
    assert verified.exit_code == 0 and name in verified.output


def _fail_part(monkeypatch, n: int, exc: BaseException):
    from minio import Minio

    real = Minio._upload_part
    seen = []

    def upload_part(self, bucket, key, data, headers, upload_id, part_number):
        seen.append(part_number)
        if part_number == n:
            raise exc
        return real(self, bucket, key, data, headers, upload_id, part_number)

    monkeypatch.setattr(Minio, "_upload_part", upload_part)
    return seen


def test_s3_failing_mid_upload(earlier, s3, monkeypatch):
    import urllib3

    project, name, before = earlier
    seen = _fail_part(monkeypatch, 3, urllib3.exceptions.ProtocolError("Connection reset"))
    code, _, output = backup_json(project, "--what", "db")
    assert code == 1
    assert seen == [1, 2, 3]
    assert "failed at db" in output and "cannot reach object storage" in output
    assert "no manifest written" in output
    assert_intact(project, s3, name, before)


def test_ctrl_c_mid_upload_aborts(earlier, s3, monkeypatch):
    project, name, before = earlier
    _fail_part(monkeypatch, 2, KeyboardInterrupt())
    code, _, output = backup_json(project, "--what", "db")
    assert code == 130 and "interrupted" in output
    assert_intact(project, s3, name, before)


def test_pg_dump_killed_mid_stream_aborts_upload(earlier, s3, monkeypatch):
    """pg_dump dies (SIGKILL) after its first read: its pipe ends like a finished dump would,
    only the exit code tells, and the multipart upload is aborted, never completed."""
    from minio import Minio

    from kestra_ops.adapters import postgres as pg

    project, name, before = earlier
    real_dump, real_abort = pg.dump, Minio._abort_multipart_upload
    aborted = []

    class KillingPipe:
        def __init__(self, child):
            self.child, self.reads = child, 0

        def readinto1(self, buffer):  # how stream_dump reads the pipe
            self.reads += 1
            if self.reads == 2:
                self.child.proc.kill()
                self.child.proc.wait()
            return self.child.proc.stdout.readinto1(buffer)

    def dump_wrapped(*args, **kw):
        child = real_dump(*args, **kw)
        proc = child.proc
        pipe = KillingPipe(type("C", (), {"proc": proc})())

        class Proxy:
            stdout = pipe

            def __getattr__(self, attr):
                return getattr(proc, attr)

        child.proc = Proxy()
        return child

    def abort(self, *args):
        aborted.append(args)
        return real_abort(self, *args)

    monkeypatch.setattr(pg, "dump", dump_wrapped)
    monkeypatch.setattr(Minio, "_abort_multipart_upload", abort)
    code, _, output = backup_json(project, "--what", "db")
    assert code == 1
    assert "pg_dump failed (killed by signal 9)" in output
    assert len(aborted) == 1
    assert_intact(project, s3, name, before)


def test_wrong_password_is_clear_and_not_shown(earlier, s3, pg_cluster, monkeypatch):
    project, name, before = earlier
    bad = "Wr0ng-Secret-xyz"
    db = pg_cluster.create_db()
    url = pg_cluster.url(db, password=bad)
    code, _, output = backup_json(project, "--what", "db", "--database-url", url)
    assert code == 1
    assert "password authentication failed" in output and bad not in output
    assert_intact(project, s3, name, before)


def test_pg_dump_wrong_password_fails_the_stream(s3, pg_cluster):
    """pg_dump itself (the password only in its PGPASSWORD): the upload is aborted."""
    from kestra_ops.adapters import postgres as pg
    from kestra_ops.adapters.storage import Storage
    from kestra_ops.errors import OperationFailed

    s3.create_bucket(BUCKET)
    storage = Storage(s3.endpoint, s3.access_key, s3.secret_key, secure=False)
    bad = "Wr0ng-Secret-abc"
    child = pg.dump(pg.DatabaseURL.parse(pg_cluster.url("postgres", password=bad)))
    assert bad not in " ".join(child.argv)
    with pytest.raises(OperationFailed) as err:
        backup_run.stream_dump(storage, BUCKET, "x/db.dump.zst", child)
    assert "pg_dump failed (exit 1)" in str(err.value)
    assert "password authentication failed" in str(err.value) and bad not in str(err.value)
    assert objects(s3, "x/", BUCKET) == [] and multipart_uploads(s3, BUCKET) == []


def test_kestra_export_failing_fails_the_set(earlier, s3, kestra, monkeypatch):
    project, name, before = earlier
    monkeypatch.setattr(backup_run, "PART_SIZE", 16 * 1024 * 1024)  # S3's 5 MiB minimum part
    kestra.fail_next(5, status=500, path=r"/flows/export")
    code, _, output = backup_json(project, "--what", "db,flows")
    assert code == 1
    assert "failed at flows" in output and "500" in output
    assert_intact(project, s3, name, before)


def test_missing_components_fail_before_writing(earlier, s3, monkeypatch):
    project, name, before = earlier
    monkeypatch.delenv("KESTRA_OPS_DATABASE_URL")
    code, _, output = backup_json(project, "--what", "db")
    assert code == 2 and "no database: pass --database-url or set KESTRA_OPS_DATABASE_URL" \
        in output
    monkeypatch.setenv("KESTRA_OPS_CONTEXT", "no-such-context")
    code, _, output = backup_json(project, "--what", "config")
    assert code != 0 and "no-such-context" in output
    assert objects(s3) == before
