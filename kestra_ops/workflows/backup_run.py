"""``backup run``: one backup set (layout: :mod:`kestra_ops.workflows.backup_set`).

The database goes ``pg_dump -Fc -Z0`` -> multi-threaded zstd (a producer thread) -> a bounded
queue of parts -> an S3 multipart upload (this thread): no temp file, memory bounded by
``QUEUE_PARTS + 2`` parts whatever the database size. The producer checks pg_dump's exit code
and the dump's size and magic BEFORE it hands over the last part, and the upload is completed
only after that, so a failed or killed dump, an S3 error or Ctrl-C always aborts the multipart
upload. manifest.json is written last, only when every requested artefact is stored: a failed
run leaves an incomplete set (no manifest) and every earlier set as it was.
"""

from __future__ import annotations

import hashlib
import queue
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kestra_ops import __version__
from kestra_ops.adapters import postgres as pg
from kestra_ops.errors import Conflict, KestraOpsError, OperationFailed
from kestra_ops.workflows import backup_set as bs

PART_SIZE = 8 * 1024 * 1024  # S3 allows 10,000 parts: objects up to 80 GB
QUEUE_PARTS = 2
READ_SIZE = 1024 * 1024
MIN_DUMP_BYTES = 512  # a custom-format dump of an empty database is ~1 KiB
ZSTD_LEVEL = 1  # measured: faster than 3 and, multi-threaded on dumps, no larger


@dataclass
class Streamed:
    size: int = 0          # bytes stored (compressed)
    raw_size: int = 0      # bytes pg_dump wrote
    sha256: str = ""
    parts: int = 0


@dataclass
class RunResult:
    env: str
    name: str
    bucket: str
    included: tuple[str, ...]
    status: str = "failed"
    manifest: dict | None = None
    failed: str | None = None   # which component failed, and why
    timings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"env": self.env, "set": self.name, "bucket": self.bucket,
                "prefix": bs.set_prefix(self.env, self.name), "status": self.status,
                "included": list(self.included), "failed": self.failed,
                "manifest": self.manifest}


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
            src = child.proc.stdout
            head = b""
            while not stop.is_set():
                data = src.read(READ_SIZE)
                if not data:
                    break
                if len(head) < 5:
                    head += data[:5]
                out.raw_size += len(data)
                for chunk in chunker.compress(data):
                    sha.update(chunk)
                    put(bytes(chunk))
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
    client = storage.client
    upload_id = storage.call(f"object {bucket}/{key}", client._create_multipart_upload,
                             bucket, key, {"Content-Type": "application/zstd"})
    done = []
    start = time.monotonic()
    producer.start()
    try:
        while True:
            item = parts.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            out.parts += 1
            etag = storage.call(f"object {bucket}/{key} part {out.parts}", client._upload_part,
                                bucket, key, item, None, upload_id, out.parts)
            done.append((out.parts, etag))
            out.size += len(item)
            if on_progress:
                on_progress(out.raw_size, out.size, time.monotonic() - start)
        if not done:  # an empty object still needs one (empty) part
            out.parts = 1
            done.append((1, storage.call(f"object {bucket}/{key}", client._upload_part, bucket,
                                         key, b"", None, upload_id, 1)))
        from minio.datatypes import Part

        storage.call(f"object {bucket}/{key}", client._complete_multipart_upload, bucket, key,
                     upload_id, [Part(n, etag) for n, etag in done])
        return out
    except BaseException:
        stop.set()
        child.kill()
        producer.join(10)
        try:
            storage.call(f"object {bucket}/{key}", client._abort_multipart_upload, bucket, key,
                         upload_id)
        except Exception:  # noqa: BLE001 - the first failure is the one reported
            pass
        raise


def run_backup(env, *, what=bs.WHAT, database_url: str | None = None, progress=None,
               storage=None, kube=None, kestra=None, now=None, part_size: int | None = None
               ) -> RunResult:
    """Take one backup set of ``env``; see the module doc. Raises on failure (no manifest)."""
    what = tuple(w for w in bs.WHAT if w in what)
    url = pg.resolve_url(database_url) if "db" in what else None
    child = _start_dump(url) if url is not None else None
    try:
        return _run(env, what, url, child, progress=progress, storage=storage, kube=kube,
                    kestra=kestra, now=now, part_size=part_size or PART_SIZE)
    finally:
        if child is not None:
            child.kill()  # only still running when the set failed before or during the dump


def _start_dump(url) -> pg.Child:
    """pg_dump starts first: its connection and catalog reads overlap the rest of the set's
    preparation (the pipe holds it back until the upload reads). With one pg_dump installed
    (the image's) there is nothing to choose; with several, the server's major picks one."""
    major = pg.server_major(url) if len(pg.installed("pg_dump")) > 1 else None
    return pg.dump(url, server_major_version=major)


def _run(env, what, url, child, *, progress, storage, kube, kestra, now, part_size):
    if storage is None:
        storage, bucket = bs.storage_for(env)
    else:
        bucket = env.minio_bucket
    if not storage.bucket_exists(bucket):
        raise OperationFailed(f"bucket {bucket} does not exist at {storage.url}",
                              hint=f"create it with: kestra-ops minio setup --env {env.name}")
    # every component is resolved before anything is written: missing ones fail clearly
    if "flows" in what and kestra is None:
        from kestra_ops.adapters.kestra_api import client_for_env

        kestra = client_for_env(env, kube=kube)
    if "config" in what and kube is None:
        from kestra_ops.adapters.kube import connect

        kube = connect(env)
    name = bs.stamp(now)
    if any(s.name == name for s in bs.list_sets(storage, bucket, env.name, manifests=False)):
        raise Conflict(f"backup set {name} of {env.name} already exists: retry in a second")
    result = RunResult(env.name, name, bucket, what)
    started = time.time()
    manifest = {"version": bs.MANIFEST_VERSION, "env": env.name, "set": name,
                "created": _iso(started), "tool_version": __version__, "included": list(what),
                "postgres": None, "kestra": None, "artefacts": {}, "timings": {}}
    steps = [("db", _db), ("flows", _flows), ("config", _config)]
    for component, fn in steps:
        if component not in what:
            continue
        t0 = time.monotonic()
        try:
            with _step(progress, f"{component} -> s3://{bucket}/{bs.set_prefix(env.name, name)}"):
                fn(env, storage, bucket, name, manifest, url=url, child=child, kube=kube,
                   kestra=kestra, progress=progress, part_size=part_size)
        except KestraOpsError as err:
            result.failed = f"{component}: {err}"
            raise type(err)(f"backup {name} of {env.name} failed at {component}: {err}; no "
                            "manifest written, earlier sets untouched", hint=err.hint) from None
        result.timings[component] = round(time.monotonic() - t0, 3)
    manifest["timings"] = {**result.timings, "total": round(time.time() - started, 3)}
    manifest["finished"] = _iso(time.time())
    manifest["status"] = "complete"
    bs.write_manifest(storage, bucket, env.name, name, manifest)
    result.status, result.manifest = "complete", manifest
    return result


def _db(env, storage, bucket, name, manifest, *, url, child, progress, part_size, **_):
    manifest["postgres"] = {"server_version": pg.server_version(url), "database": url.dbname}
    meter = _Meter(progress)
    got = stream_dump(storage, bucket, bs.key(env.name, name, bs.DB), child,
                      on_progress=meter, part_size=part_size)
    meter.clear()
    manifest["postgres"]["pg_dump"] = ".".join(map(str, pg.binary_version(child.argv[0])))
    manifest["artefacts"][bs.DB] = {"size": got.size, "sha256": got.sha256,
                                    "raw_size": got.raw_size, "compression": "zstd",
                                    "format": "pg_dump custom, -Z0", "parts": got.parts}


def _flows(env, storage, bucket, name, manifest, *, kestra, **_):
    try:
        manifest["kestra"] = {"version": (kestra.configs() or {}).get("version")}
    except KestraOpsError:
        manifest["kestra"] = {"version": None}
    data = kestra.export_flows()
    if not data.startswith(b"PK"):
        raise OperationFailed("Kestra's flow export is not a ZIP")
    _put(storage, bucket, bs.key(env.name, name, bs.FLOWS), data, manifest, "application/zip")


def _config(env, storage, bucket, name, manifest, *, kube, **_):
    from kestra_ops.workflows import configmap_backups
    from kestra_ops.workflows.configmap import _read
    from kestra_ops.workflows.values import render

    live = _read(kube, env)
    with tempfile.TemporaryDirectory(prefix="kestra-ops-backup-") as tmp:
        path = configmap_backups.write_backup(Path(tmp), live, env=env.name)
        data = path.read_bytes()
    _put(storage, bucket, bs.key(env.name, name, bs.CONFIGMAP), data, manifest,
         "application/yaml")
    values = render(env, redact=True).text.encode()
    _put(storage, bucket, bs.key(env.name, name, bs.VALUES), values, manifest,
         "application/yaml")


def _put(storage, bucket, key, data: bytes, manifest, content_type) -> None:
    bs.put_bytes(storage, bucket, key, data, content_type)
    manifest["artefacts"][key.rsplit("/", 1)[1]] = {"size": len(data),
                                                    "sha256": hashlib.sha256(data).hexdigest()}


class _Meter:
    """Bytes and rate on a TTY (Progress.update), nothing otherwise."""

    def __init__(self, progress):
        self.progress = progress

    def __call__(self, raw: int, stored: int, elapsed: float) -> None:
        if self.progress is not None:
            rate = raw / elapsed / 1e6 if elapsed > 0 else 0.0
            self.progress.update(f"dumped {raw / 1e6:.1f} MB, stored {stored / 1e6:.1f} MB, "
                                 f"{rate:.1f} MB/s")

    def clear(self) -> None:
        if self.progress is not None and self.progress.tty and not self.progress.quiet:
            print("\r\x1b[2K", end="", file=self.progress.stream, flush=True)


def _step(progress, name: str):
    if progress is None:
        import contextlib

        return contextlib.nullcontext()
    return progress.step(name)


def _iso(t: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")

