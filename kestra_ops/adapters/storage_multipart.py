"""An S3 multipart upload, part by part (the backup stream's transport).

The minio SDK's public ``put_object`` wants a stream it reads itself; a backup stream is pushed
part by part from a compressing thread, so the upload is driven here through the SDK's
multipart calls (its only private API kestra-ops uses, kept in this one module). Errors are the
:class:`~kestra_ops.adapters.storage.Storage`'s typed one-line errors. ``abort`` never raises:
the first failure is the one reported; used as a context manager, any exception (Ctrl-C
included) aborts the upload unless it was completed.
"""

from __future__ import annotations


class MultipartUpload:
    def __init__(self, storage, bucket: str, key: str,
                 content_type: str = "application/octet-stream"):
        self.storage, self.bucket, self.key = storage, bucket, key
        self.what = f"object {bucket}/{key}"
        self.parts: list[tuple[int, str]] = []
        self.completed = False
        client = storage.client
        self.upload_id = storage.call(self.what, client._create_multipart_upload, bucket, key,
                                      {"Content-Type": content_type})

    def put(self, data: bytes) -> int:
        """Upload the next part; returns its number (1, 2, ...)."""
        number = len(self.parts) + 1
        etag = self.storage.call(f"{self.what} part {number}", self.storage.client._upload_part,
                                 self.bucket, self.key, data, None, self.upload_id, number)
        self.parts.append((number, etag))
        return number

    def complete(self) -> None:
        """Assemble the parts into the object (an empty object still needs one empty part)."""
        from minio.datatypes import Part

        if not self.parts:
            self.put(b"")
        self.storage.call(self.what, self.storage.client._complete_multipart_upload, self.bucket,
                          self.key, self.upload_id, [Part(n, etag) for n, etag in self.parts])
        self.completed = True

    def abort(self) -> None:
        """Drop the upload and its parts; never raises."""
        try:
            self.storage.call(self.what, self.storage.client._abort_multipart_upload,
                              self.bucket, self.key, self.upload_id)
        except Exception:  # noqa: BLE001 - the first failure is the one reported
            pass

    def __enter__(self) -> "MultipartUpload":
        return self

    def __exit__(self, kind, err, tb) -> None:
        if kind is not None and not self.completed:
            self.abort()
