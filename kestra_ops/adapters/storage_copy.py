"""Object copies for :class:`kestra_ops.adapters.storage.Storage` (backup sets' storage part).

``copy_object`` is a server-side CopyObject (no byte goes through kestra-ops; the SDK's own
``copy_object`` HEADs the source first, which the caller's listing makes useless, so the PUT
with the copy headers is sent through the SDK's ``_execute``, the one private call here besides
:mod:`kestra_ops.adapters.storage_multipart`'s); above S3's 5 GiB CopyObject limit it is a
multipart copy (``compose_object``). ``put_stream`` stores a stream of chunks, one PUT or a
multipart upload that is aborted on any failure: an object is visible whole or not at all.
Errors are the Storage's typed one-line errors.
"""

from __future__ import annotations

from typing import NamedTuple

from kestra_ops.errors import NotFound, OperationFailed

MAX_COPY_SIZE = 5 * 1024 ** 3  # S3's CopyObject limit


class Entry(NamedTuple):
    """A listed object (the storage adapter's ``iter_entries``/``stat``)."""

    name: str
    size: int
    etag: str  # without quotes


class Streamed(NamedTuple):
    name: str
    size: int
    etag: str
    sha256: str


class SourceChanged(OperationFailed):
    """A conditional copy's source is no longer the object that was listed."""


def _etag(value) -> str:
    return (value or "").strip('"')


def copy_object(storage, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, *,
                size: int | None = None, etag: str | None = None) -> str:
    """Server-side CopyObject of ``src_bucket/src_key`` to ``dst_bucket/dst_key`` with
    ``storage``'s credentials (they must read the source): no byte goes through us. Metadata
    (Content-Type, x-amz-meta-*) is copied. ``etag`` (the listed one) makes the copy
    conditional: :class:`SourceChanged` when the source is no longer that object. ``size``
    (the listed one) spares a HEAD; above 5 GiB a multipart copy (compose) is done. Returns
    the new object's etag."""
    from minio.commonconfig import ComposeSource, CopySource
    from minio.datatypes import parse_copy_object
    from minio.error import S3Error

    what = f"copy s3://{src_bucket}/{src_key} -> s3://{dst_bucket}/{dst_key}"
    source = CopySource(src_bucket, src_key, match_etag=etag)
    if size is None:
        found = storage.stat_object(src_bucket, src_key)
        if found is None:
            raise NotFound(f"{what}: the source does not exist")
        size = found.size or 0

    def copy() -> str:
        client = storage.client
        try:
            if size > MAX_COPY_SIZE:  # CopyObject stops at 5 GiB: UploadPartCopy parts
                stat = client.stat_object(src_bucket, src_key)
                meta = {k: v for k, v in stat.metadata.items()
                        if k.lower().startswith("x-amz-meta-") or k.lower() == "content-type"}
                done = client.compose_object(dst_bucket, dst_key, [ComposeSource.of(source)],
                                             metadata=meta or None)
                return _etag(done.etag)
            resp = client._execute("PUT", dst_bucket, object_name=dst_key,
                                   headers=source.gen_copy_headers())
            return _etag(parse_copy_object(resp)[0])
        except S3Error as err:
            if err.code in ("PreconditionFailed", "NoSuchKey"):
                raise SourceChanged(f"{what}: the source changed or disappeared since it "
                                    "was listed") from None
            raise

    return storage.call(what, copy)


def put_stream(storage, bucket: str, key: str, chunks, *, content_type: str | None = None,
               metadata: dict | None = None, part_size: int = 8 * 1024 * 1024) -> Streamed:
    """Store an iterable of byte chunks as ``bucket/key``: one PUT when it fits in one part,
    else a multipart upload (aborted on any failure, Ctrl-C included, so no partial object is
    ever visible). Memory: about one part. Returns (key, size, etag, sha256)."""
    import hashlib
    import io

    content_type = content_type or "application/octet-stream"
    sha, buf, size, upload = hashlib.sha256(), bytearray(), 0, None
    what = f"object {bucket}/{key}"
    try:
        for data in chunks:
            sha.update(data)
            size += len(data)
            buf += data
            while len(buf) >= part_size:
                if upload is None:
                    upload = storage.multipart(bucket, key, content_type)
                upload.put(bytes(buf[:part_size]))
                del buf[:part_size]
        if upload is None:
            done = storage.call(what, storage.client.put_object, bucket, key, io.BytesIO(buf),
                                len(buf), content_type=content_type, metadata=metadata or None)
            etag = _etag(done.etag)
        else:
            if buf:
                upload.put(bytes(buf))
            upload.complete()
            found = storage.stat(bucket, key)
            etag = found.etag if found else ""
    except BaseException:
        if upload is not None and not upload.completed:
            upload.abort()
        raise
    return Streamed(key, size, etag, sha.hexdigest())


def open_object(storage, bucket: str, key: str, chunk: int = 1024 * 1024):
    """(response headers, chunk iterator) of an object; the iterator releases the connection
    when exhausted or closed."""
    what = f"object {bucket}/{key}"
    resp = storage.call(what, storage.client.get_object, bucket, key)

    def chunks(size: int = chunk):
        try:
            while True:
                data = storage.call(what, resp.read, size)
                if not data:
                    return
                yield data
        finally:
            resp.close()
            resp.release_conn()

    return dict(resp.headers), chunks()
