"""The database stream of ``backup run``: ``pg_dump -Fc -Z0`` -> multi-threaded zstd (a
producer thread) -> a bounded queue of parts -> an S3 multipart upload (the calling thread). No
temp file; memory bounded by ``QUEUE_PARTS + 2`` parts whatever the database size. The producer
checks pg_dump's exit code and the dump's size and magic BEFORE it hands over the last part,
and the upload is completed only after that, so a failed or killed dump, an S3 error or Ctrl-C
always aborts the multipart upload (:mod:`kestra_ops.adapters.storage_multipart`).
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from dataclasses import dataclass

from kestra_ops.adapters import postgres as pg
from kestra_ops.errors import OperationFailed

PART_SIZE = 8 * 1024 * 1024  # S3 allows 10,000 parts: objects up to 80 GB
QUEUE_PARTS = 2
READ_SIZE = 1024 * 1024  # one read of the pipe at most (a buffer reused for every read)
# A read that found less than NAP_BELOW in the pipe means this reader is ahead of pg_dump: it
# waits NAP before the next one so that the pipe fills, instead of waking for each of pg_dump's
# 4 KiB writes (measured on 1 GB: this process's CPU -12%, see bench/backup.py). Only with a
# widened pipe (pg.dump: 1 MiB; under a quarter full, it takes > 750 MB/s to fill it in 1 ms):
# with the 64 KiB default pg_dump would stall.
NAP, NAP_BELOW, NAP_PIPE = 0.001, 256 * 1024, 1024 * 1024
MIN_DUMP_BYTES = 512  # a custom-format dump of an empty database is ~1 KiB
ZSTD_LEVEL = 1  # measured: faster than 3 and, multi-threaded on dumps, no larger


@dataclass
class Streamed:
    size: int = 0          # bytes stored (compressed)
    raw_size: int = 0      # bytes pg_dump wrote
    sha256: str = ""
    parts: int = 0


class _DumpFailed(OperationFailed):
    pass


def stream_dump(storage, bucket: str, key: str, child: pg.Child, *, on_progress=None,
                part_size: int | None = None, threads: int = -1) -> Streamed:
    """Stream ``child``'s stdout through zstd into ``bucket/key`` (see the module doc)."""
    import zstandard

    part_size = part_size or PART_SIZE
    out = Streamed()
    parts: queue.Queue = queue.Queue(maxsize=QUEUE_PARTS)
    stop = threading.Event()
    failure: list[BaseException] = []

    def put(item) -> None:
        while not stop.is_set():
            try:
                parts.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def produce() -> None:
        sha = hashlib.sha256()
        try:
            cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=threads,
                                            write_checksum=True)
            chunker = cctx.chunker(chunk_size=part_size)
            read = child.proc.stdout.readinto1  # one read(2), straight into the buffer
            view = memoryview(bytearray(READ_SIZE))
            nap = NAP if child.pipe_size >= NAP_PIPE else 0.0
            head = b""
            while not stop.is_set():
                n = read(view)
                if not n:
                    break
                if len(head) < 5:
                    head += bytes(view[:min(n, 5 - len(head))])
                out.raw_size += n
                for chunk in chunker.compress(view[:n]):  # zstd copies its input
                    sha.update(chunk)
                    put(bytes(chunk))
                if n < NAP_BELOW and nap:
                    time.sleep(nap)
            if stop.is_set():
                return
            code = child.wait()  # the exit code decides, before the last part is handed over
            if code != 0:
                raise _DumpFailed(child.failure(code))
            if out.raw_size < MIN_DUMP_BYTES or not head.startswith(b"PGDMP"):
                raise _DumpFailed(f"pg_dump wrote {out.raw_size} bytes, not a custom-format "
                                  "dump: refusing to store it")
            for chunk in chunker.finish():
                sha.update(chunk)
                put(bytes(chunk))
            out.sha256 = sha.hexdigest()
            put(None)  # the only way the upload gets completed
        except BaseException as err:  # noqa: BLE001 - handed to the uploading thread
            failure.append(err)
            put(err)

    producer = threading.Thread(target=produce, name="backup-compress", daemon=True)
    upload = storage.multipart(bucket, key, "application/zstd")
    start = time.monotonic()
    producer.start()
    try:
        while True:
            item = parts.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            out.parts = upload.put(item)
            out.size += len(item)
            if on_progress:
                on_progress(out.raw_size, out.size, time.monotonic() - start)
        upload.complete()  # an empty dump still gets its one (empty) part
        out.parts = len(upload.parts)
        return out
    except BaseException:
        stop.set()
        child.kill()
        producer.join(10)
        upload.abort()  # never raises: the first failure is the one reported
        raise


