"""Copy many objects between buckets, concurrently and resumably (a backup set's storage part).

:func:`copy_objects` copies every listed object ``src_prefix + rel`` to ``dst_prefix + rel``:

- server-side (CopyObject with the destination's credentials, no byte through kestra-ops) when
  both storages are the same S3 endpoint; the first AccessDenied (the destination's keys may
  not read the source) switches the rest to streaming;
- streamed otherwise: GET -> PUT, one part (5 MiB) in memory per worker, a multipart upload
  above that (aborted on failure), Content-Type and x-amz-meta-* kept (Kestra stores a KV
  value's metadata there);
- ``workers`` threads (default 16), at most ``2 * workers`` objects in flight, so a listing of
  any length streams through in bounded memory;
- an object deleted at the source between the listing and its copy (Kestra purges) is left
  out and counted (``vanished``); one rewritten meanwhile is copied as it now is;
- resumable: the destination prefix is listed once and an object already there with the same
  size and etag is skipped, so a rerun continues where an interrupted one stopped;
- an object is recorded only once its copy completed (a PUT or CopyObject is atomic, a
  multipart upload is aborted on failure): nothing half-written is ever in the result;
- ``stop`` (a threading.Event) or Ctrl-C stops submitting; the copies in flight finish (or
  fail) and are recorded, then Ctrl-C is raised again. Any failed copy raises
  OperationFailed after the in-flight ones are done, naming the first and the count.

:func:`restore_objects` is the other direction: a set's objects back under their original keys
(:func:`copy_back` for any list of index items).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from kestra_ops.errors import KestraOpsError, OperationFailed, PermissionDenied

WORKERS = 16
STREAM_PART = 5 * 1024 * 1024  # S3's smallest multipart part: at most 16 x 5 MiB held
SERVER_SIDE, STREAMED, MIXED = "server-side", "streamed", "mixed"


@dataclass
class CopyResult:
    objects: list[dict] = field(default_factory=list)  # {key, size, etag[, sha256]} by key
    copied: int = 0           # copied now
    skipped: int = 0          # already at the destination (same size and etag)
    bytes: int = 0            # of every recorded object
    streamed_bytes: int = 0   # bytes that went through kestra-ops (0 for server-side)
    vanished: int = 0         # listed, then deleted at the source before their copy
    server_side: int = 0
    streamed: int = 0
    stopped: bool = False
    seconds: float = 0.0

    @property
    def mode(self) -> str:
        if self.streamed and self.server_side:
            return MIXED
        return STREAMED if self.streamed else SERVER_SIDE

    def describe(self) -> str:
        return (f"{len(self.objects)} objects ({self.bytes / 1e6:.1f} MB): {self.copied} "
                f"copied {self.mode}, {self.skipped} already in place")

    def to_dict(self) -> dict:
        return {"objects": len(self.objects), "copied": self.copied, "skipped": self.skipped,
                "bytes": self.bytes, "streamed_bytes": self.streamed_bytes, "copy": self.mode,
                "stopped": self.stopped, "seconds": round(self.seconds, 3)}


class _Mode:
    def __init__(self, server_side: bool):
        self.server_side = server_side
        self.lock = threading.Lock()


def copy_objects(src, src_bucket: str, listing, dst, dst_bucket: str, dst_prefix: str, *,
                 src_prefix: str = "", workers: int = WORKERS, server_side: bool | None = None,
                 progress=None, stop: threading.Event | None = None,
                 follow_changes: bool = True) -> CopyResult:
    """Copy each entry of ``listing`` (objects with ``name``, ``size``, ``etag``; names start
    with ``src_prefix``) to ``dst_bucket/dst_prefix + rel``; see the module doc.
    ``progress(done, total_bytes)`` is called as objects complete; ``server_side`` forces the
    choice (default: the same endpoint). A source rewritten since it was listed is copied as it
    now is with ``follow_changes``, else that object fails."""
    started = time.monotonic()
    mode = _Mode(src.same_endpoint(dst) if server_side is None else server_side)
    existing = {e.name[len(dst_prefix):]: e for e in dst.iter_entries(dst_bucket, dst_prefix)}
    result = CopyResult()
    failures: list[str] = []
    lock = threading.Lock()

    def one(entry) -> None:
        rel = entry.name[len(src_prefix):]
        dst_key = dst_prefix + rel
        have = existing.get(rel)
        if have is not None and have.size == entry.size and entry.etag and \
                have.etag == entry.etag:
            record({"key": rel, "size": entry.size, "etag": have.etag}, skipped=True)
            return
        done = _copy_one(src, src_bucket, entry, dst, dst_bucket, dst_key, rel, mode,
                         follow_changes)
        if done is None:
            with lock:
                result.vanished += 1
            return
        record(*done)

    def record(item: dict, how: str | None = None, through: int = 0, *,
               skipped: bool = False) -> None:
        with lock:
            result.objects.append(item)
            result.bytes += item["size"]
            if skipped:
                result.skipped += 1
            else:
                result.copied += 1
                result.streamed_bytes += through
                if how == SERVER_SIDE:
                    result.server_side += 1
                else:
                    result.streamed += 1
            if progress is not None:
                progress(len(result.objects), result.bytes)

    pending: set = set()
    # folder markers are made last, one at a time, once every object below them is written: a
    # marker PUT racing a child's PUT under the same folder could lose the marker on SeaweedFS
    # (the child's implicit folder entry replacing it; seen once in CI as a set "missing"
    # company/team/_files/), and markers are few (one per folder)
    markers: list = []
    interrupted = False
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="backup-copy")
    try:
        for entry in listing:
            if entry.name.startswith(src_prefix) is False:
                continue
            if failures or (stop is not None and stop.is_set()):
                result.stopped = not failures
                break
            if entry.name.endswith("/") and not entry.size:
                markers.append(entry)
                continue
            while len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                _collect(done, failures)
            pending.add(pool.submit(one, entry))
    except KeyboardInterrupt:
        interrupted = True
        result.stopped = True
    finally:
        while pending:  # in-flight copies finish (and are recorded) before anything else
            try:
                done, pending = wait(pending)
                _collect(done, failures)
            except KeyboardInterrupt:
                interrupted = True
        pool.shutdown(wait=True)
    try:
        for entry in markers:
            if interrupted or failures or (stop is not None and stop.is_set()):
                result.stopped = result.stopped or not failures
                break
            try:
                one(entry)
            except Exception as err:  # noqa: BLE001 - as a pooled copy's failure (_collect)
                failures.append(str(err) if isinstance(err, KestraOpsError)
                                else f"{type(err).__name__}: {err}")
    except KeyboardInterrupt:
        interrupted = True
        result.stopped = True
    result.objects.sort(key=lambda o: o["key"])
    result.seconds = time.monotonic() - started
    if interrupted:
        raise KeyboardInterrupt
    if failures:
        raise OperationFailed(f"{len(failures)} object(s) not copied; first: {failures[0]}",
                              hint="run it again: the objects already copied are skipped")
    return result


def _collect(done, failures: list[str]) -> None:
    for fut in done:
        err = fut.exception()
        if isinstance(err, KestraOpsError):
            failures.append(str(err))
        elif err is not None:
            failures.append(f"{type(err).__name__}: {err}")


def _copy_one(src, src_bucket, entry, dst, dst_bucket, dst_key, rel, mode: _Mode,
              follow_changes: bool):
    """(index item, how, bytes through us) for one object; None when it was deleted at the
    source since it was listed (only with ``follow_changes``)."""
    from kestra_ops.adapters.storage import SourceChanged

    size, etag = entry.size, entry.etag or None
    if entry.name.endswith("/") and not size:
        # a folder marker (storage-minio's mkdirs writes one per parent folder): nothing to
        # copy, it is made anew (SeaweedFS answers NoSuchKey to a CopyObject of one)
        got = dst.put_stream(dst_bucket, dst_key, iter([b""]),
                             content_type="application/x-directory", part_size=STREAM_PART)
        return {"key": rel, "size": 0, "etag": got.etag}, mode_name(mode), 0
    for attempt in (1, 2):
        try:
            if mode.server_side:
                try:
                    new = dst.copy_object(src_bucket, entry.name, dst_bucket, dst_key,
                                          size=size, etag=etag)
                    return {"key": rel, "size": size, "etag": new}, SERVER_SIDE, 0
                except PermissionDenied:
                    with mode.lock:  # the destination's keys may not read the source
                        mode.server_side = False
            return _stream_one(src, src_bucket, entry.name, size, dst, dst_bucket, dst_key,
                               rel)
        except SourceChanged:
            if attempt == 2 or not follow_changes:
                raise
            now = src.stat(src_bucket, entry.name)  # rewritten since listed: copy what is there
            if now is None:
                return None  # deleted since listed (Kestra purged it): not in the set
            size, etag = now.size, now.etag
    raise AssertionError("unreachable")


def mode_name(mode: _Mode) -> str:
    return SERVER_SIDE if mode.server_side else STREAMED


def _stream_one(src, src_bucket, src_key, size, dst, dst_bucket, dst_key, rel):
    from kestra_ops.adapters.storage import SourceChanged

    headers, chunks = src.open_object(src_bucket, src_key)
    lower = {k.lower(): v for k, v in headers.items()}
    meta = {k: v for k, v in lower.items() if k.startswith("x-amz-meta-")}
    try:
        got = dst.put_stream(dst_bucket, dst_key, chunks, content_type=lower.get("content-type"),
                             metadata=meta, part_size=STREAM_PART)
    finally:
        chunks.close()
    if got.size != size:
        raise SourceChanged(f"object {src_bucket}/{src_key}: {got.size} bytes read, "
                            f"{size} listed")
    return ({"key": rel, "size": got.size, "etag": got.etag, "sha256": got.sha256}, STREAMED,
            got.size)


def copy_back(set_storage, set_bucket: str, set_prefix: str, objects, target,
              target_bucket: str, target_prefix: str, *, workers: int = WORKERS,
              progress=None, stop: threading.Event | None = None) -> CopyResult:
    """Copy index items ``{key, size, etag}`` from ``set_bucket/set_prefix + key`` to
    ``target_bucket/target_prefix + key``. Server-side when both are the same endpoint;
    resumable (objects already in place with the same size and etag are skipped); an object
    of the set that no longer has its indexed etag (tampered) fails instead of being
    restored; see :func:`copy_objects`."""
    from kestra_ops.adapters.storage import Entry

    listing = (Entry(set_prefix + o["key"], int(o["size"]), o.get("etag") or "")
               for o in objects)
    return copy_objects(set_storage, set_bucket, listing, target, target_bucket,
                        target_prefix, src_prefix=set_prefix, workers=workers,
                        progress=_progress(progress), stop=stop, follow_changes=False)


def restore_objects(set_storage, set_bucket: str, env: str, s, target, target_bucket: str, *,
                    workers: int = WORKERS, progress=None,
                    stop: threading.Event | None = None) -> CopyResult:
    """Put backup set ``s`` (a :class:`kestra_ops.workflows.backup.sets.BackupSet` of
    ``env`` in ``set_bucket``) 's internal-storage objects back under their original keys
    (``<tenant>/...``) in ``target_bucket``: the disaster-recovery step. Rerunning it skips
    what is already in place. ``progress``: a callable(done, bytes) or a Recorder (its
    transient status line). NotFound when the set has no storage part."""
    import hashlib
    import json

    from kestra_ops.errors import InvalidInput, NotFound
    from kestra_ops.workflows.backup import sets as bs

    part = (s.manifest or {}).get("storage")
    if not part:
        raise NotFound(f"backup set {s.name} of {env} holds no storage objects (it included "
                       f"{', '.join(s.included) or 'nothing'})")
    raw = bs.read_small(set_storage, set_bucket, bs.key(env, s.name,
                                                        part.get("index") or bs.STORAGE_INDEX))
    expected = (s.manifest.get("artefacts") or {}).get(part.get("index") or bs.STORAGE_INDEX)
    if not expected or hashlib.sha256(raw).hexdigest() != expected.get("sha256"):
        raise InvalidInput(f"backup set {s.name}: {bs.STORAGE_INDEX} does not match its "
                           "manifest: nothing restored")
    try:
        index = json.loads(raw)
        items, tenant = index["objects"], index.get("tenant") or "main"
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"backup set {s.name}: {bs.STORAGE_INDEX} is not a storage "
                           "index") from None
    root = f"{tenant}/"
    return copy_back(set_storage, set_bucket,
                     bs.key(env, s.name, (part.get("prefix") or "storage/") + root), items,
                     target, target_bucket, root, workers=workers, progress=progress,
                     stop=stop)


def _progress(progress):
    """A callable(done, bytes): ``progress`` itself, or a Recorder's status line."""
    update = getattr(progress, "update", None)
    if progress is None or update is None:
        return progress

    def show(done: int, size: int) -> None:
        if done % 250 == 0:
            update(f"storage: {done} objects, {size / 1e6:.1f} MB")
    return show
