"""How the backup stream reads pg_dump's pipe: widened to 1 MiB where Linux allows it, read in
short reads into one reused buffer; the dump's magic is checked across reads."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kestra_ops.adapters import childenv
from kestra_ops.adapters import postgres as pg
from kestra_ops.adapters.storage import Storage
from kestra_ops.errors import OperationFailed
from kestra_ops.workflows.backup import run as backup_run
from tests.integration.backup_support import (BUCKET, multipart_uploads, objects,  # noqa: F401
                                              pg_cluster, pg_db)

LINUX = sys.platform.startswith("linux")


@pytest.mark.skipif(not LINUX, reason="F_SETPIPE_SZ is Linux's")
def test_widen_pipe_grows_a_pipe_and_leaves_other_files(tmp_path):
    import fcntl
    import os

    read, write = os.pipe()
    try:
        size = pg.widen_pipe(read)
        assert size in (pg.PIPE_SIZE, 64 * 1024)  # 64 KiB: refused (the user's pipe quota)
        assert fcntl.fcntl(write, fcntl.F_GETPIPE_SZ) == size  # one pipe, either end
        assert pg.widen_pipe(read, 4096) == size  # never shrunk
    finally:
        os.close(read)
        os.close(write)
    with open(tmp_path / "f", "wb") as fh:
        assert pg.widen_pipe(fh.fileno()) == 0  # not a pipe: nothing changed, no error


@pytest.mark.skipif(not LINUX, reason="F_SETPIPE_SZ is Linux's")
def test_dump_child_gets_the_widened_pipe(pg_cluster, pg_db):
    child = pg.dump(pg.DatabaseURL.parse(pg_cluster.url(pg_db())))
    try:
        assert child.pipe_size in (pg.PIPE_SIZE, 64 * 1024)
        assert child.proc.stdout.read(5) == b"PGDMP"
    finally:
        child.kill()


def _writer(parts: list[bytes]) -> pg.Child:
    """A child writing ``parts`` as separate writes, 50 ms apart (separate reads here)."""
    code = ("import os, sys, time\n"
            f"for p in {parts!r}:\n"
            "    os.write(1, p)\n"
            "    time.sleep(0.05)\n")
    child = pg.Child([sys.executable, "-c", code], pg.DatabaseURL("postgresql://", None),
                     stdout=subprocess.PIPE, env=childenv.build())
    child.pipe_size = pg.widen_pipe(child.proc.stdout.fileno())
    return child


def _storage(s3) -> Storage:
    s3.create_bucket(BUCKET)
    return Storage(s3.endpoint, s3.access_key, s3.secret_key, secure=False)


def test_magic_split_over_reads_is_stored(s3):
    """'PG' then 'DMP...': the magic is put together across short reads (the reader naps
    between them) and the object holds every byte, in order."""
    import zstandard

    body = b"PG" + b"DMP" + bytes(range(256)) * 8
    storage = _storage(s3)
    got = backup_run.stream_dump(storage, BUCKET, "x/db.dump.zst",
                                 _writer([body[:2], body[2:700], body[700:]]))
    assert got.raw_size == len(body) and got.parts == 1
    data = storage.client.get_object(BUCKET, "x/db.dump.zst").read()
    assert zstandard.ZstdDecompressor().decompressobj().decompress(data) == body


def test_not_a_dump_split_over_reads_is_refused(s3):
    storage = _storage(s3)
    with pytest.raises(OperationFailed) as err:
        backup_run.stream_dump(storage, BUCKET, "x/db.dump.zst",
                               _writer([b"PG", b"DXP" + b"\0" * 1000]))
    assert "not a custom-format dump" in str(err.value)
    assert objects(s3, "x/", BUCKET) == [] and multipart_uploads(s3, BUCKET) == []
