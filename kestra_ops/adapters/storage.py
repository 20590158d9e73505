"""Object storage (the shared cluster MinIO, or any S3 store) through the ``minio`` SDK.

Only the plain S3 API is used, so any S3-compatible server works. ``minio`` is imported when a
:class:`Storage` is built (it costs ~0.25 s). TLS certificates are verified unless
``cert_check=False`` (CA bundle: ``ca_file``, else ``SSL_CERT_FILE``, else certifi; a CA file
that is missing, unreadable or holds no certificate is InvalidInput naming its setting).
``path_style`` forces the addressing: True the bucket in the path, False in the host name
(the SDK's ``disable/enable_virtual_style_endpoint``: minio/api.py; left alone, its BaseURL in
minio/helpers.py picks virtual host only for AWS and Aliyun hosts). Errors become one-line typed
errors naming the endpoint and bucket: no connection -> Unreachable, bad credentials or access
denied -> PermissionDenied, anything else -> OperationFailed. Credentials never appear in them.
"""

from __future__ import annotations

import json
import os
import re
from typing import NamedTuple
from urllib.parse import urlsplit

from kestra_ops.adapters.storage_copy import (MAX_COPY_SIZE, Entry, SourceChanged,  # noqa: F401
                                              Streamed, _etag)
from kestra_ops.errors import InvalidInput, NotFound, OperationFailed, PermissionDenied, Unreachable

_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
           "InvalidToken", "ExpiredToken"}


def split_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """``host:port`` stays as given; ``http(s)://host:port`` sets ``secure`` from its scheme."""
    endpoint = endpoint.strip()
    if "://" in endpoint:
        url = urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.netloc or url.path.strip("/"):
            raise InvalidInput(f"MinIO endpoint {endpoint!r}: expected host:port or "
                               "http(s)://host:port (no path)")
        return url.netloc, url.scheme == "https"
    if not endpoint or "/" in endpoint:
        raise InvalidInput(f"MinIO endpoint {endpoint!r}: expected host:port")
    return endpoint, secure


def check_ca_file(path: str, setting: str = "ca_file") -> str:
    """``path`` when it is a readable PEM bundle with at least one CA certificate, else
    InvalidInput in one line naming ``setting`` and the path."""
    import ssl

    from kestra_ops.readfile import NotReadable, kind_of, read_regular

    try:
        data = read_regular(path, 16 * 1024 * 1024)
    except NotReadable as err:
        raise InvalidInput(f"{setting} {path}: {kind_of(path) or err.reason}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=data.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError):
        context = None
    if context is None or not context.get_ca_certs():
        raise InvalidInput(f"{setting} {path}: holds no PEM CA certificate "
                           "(-----BEGIN CERTIFICATE-----)")
    return path


class Storage:
    def __init__(self, endpoint: str, access_key: str, secret_key: str, secure: bool = True,
                 region: str | None = None, *, path_style: bool | None = None,
                 ca_file: str | None = None, ca_setting: str = "ca_file",
                 cert_check: bool = True, timeout: float = 10.0, retries: int = 1,
                 pool: int = 32):
        import certifi
        import urllib3
        from minio import Minio

        self.endpoint, self.secure = split_endpoint(endpoint, secure)
        if ca_file and self.secure:
            check_ca_file(ca_file, ca_setting)
        self.cert_check, self.ca_file = cert_check, ca_file if self.secure else None
        scheme = "https" if self.secure else "http"
        self.url = f"{scheme}://{self.endpoint}"
        # minio's default client waits 5 minutes and retries 5 times: too long for a check
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout), maxsize=pool,
            cert_reqs="CERT_REQUIRED" if cert_check else "CERT_NONE",
            ca_certs=self.ca_file or os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(total=retries, backoff_factor=0.2,
                                  status_forcelist=[500, 502, 503, 504]))
        self.http = http
        if not cert_check:  # the command says so once (storage_options.INSECURE_WARNING)
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        try:
            self.client = Minio(self.endpoint, access_key=access_key, secret_key=secret_key,
                                secure=self.secure, region=region, http_client=http)
        except ValueError as err:
            raise InvalidInput(f"MinIO endpoint {self.endpoint!r}: {err}") from None
        if path_style is True:
            self.client.disable_virtual_style_endpoint()
        elif path_style is False:
            self.client.enable_virtual_style_endpoint()

    def call(self, what: str, fn, *args, **kwargs):
        """Run one SDK call; ``what`` names the object in any error ("bucket kestra-dev")."""
        from minio.error import InvalidResponseError, S3Error, ServerError
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except S3Error as err:
            if err.code in _DENIED:
                raise PermissionDenied(f"{what} at {self.url}: {err.code}: {err.message} "
                                       "(check the access key and its bucket policy)") from None
            raise OperationFailed(f"{what} at {self.url}: {err.code}: {err.message}") from None
        except (ServerError, InvalidResponseError) as err:
            raise OperationFailed(f"{what} at {self.url}: {_first_line(err)}") from None
        except ValueError as err:  # the SDK's argument checks (bucket name rules)
            raise InvalidInput(f"{what}: {err}") from None
        except HTTPError as err:
            why = describe(err)
            raise Unreachable(f"cannot reach object storage at {self.url}: {why}",
                              hint=tls_hint(why)) from None

    def bucket_exists(self, name: str) -> bool:
        return bool(self.call(f"bucket {name}", self.client.bucket_exists, name))

    def upload_file(self, bucket: str, key: str, path) -> str:
        """Copy a local file to ``bucket/key``; returns ``s3://bucket/key``."""
        self.call(f"object {bucket}/{key}", self.client.fput_object, bucket, key, str(path))
        return f"s3://{bucket}/{key}"

    # ---- buckets (plain S3: works with any S3 store)

    def make_bucket(self, name: str) -> None:
        self.call(f"bucket {name}", self.client.make_bucket, name)

    def get_versioning(self, bucket: str) -> str:
        """"Enabled", "Suspended" or "Off" (never enabled)."""
        config = self.call(f"bucket {bucket}", self.client.get_bucket_versioning, bucket)
        return config.status or "Off"

    def set_versioning(self, bucket: str, enabled: bool) -> None:
        from minio.commonconfig import DISABLED, ENABLED
        from minio.versioningconfig import VersioningConfig

        self.call(f"bucket {bucket}", self.client.set_bucket_versioning, bucket,
                  VersioningConfig(ENABLED if enabled else DISABLED))

    def ensure_noncurrent_expiry(self, bucket: str, rule_id: str, days: int) -> str:
        """One lifecycle rule ``rule_id`` (other rules kept): noncurrent versions and unfinished
        multipart uploads expire after ``days``; current objects never expire. Returns
        "unchanged", "created" or "updated"."""
        from minio.commonconfig import ENABLED, Filter
        from minio.lifecycleconfig import (AbortIncompleteMultipartUpload, LifecycleConfig,
                                           NoncurrentVersionExpiration, Rule)

        config = self.call(f"bucket {bucket}", self.client.get_bucket_lifecycle, bucket)
        rules = list(config.rules) if config else []
        ours = [r for r in rules if r.rule_id == rule_id]
        if ours and ours[0].noncurrent_version_expiration is not None and \
                ours[0].noncurrent_version_expiration.noncurrent_days == days:
            return "unchanged"
        rule = Rule(ENABLED, rule_filter=Filter(prefix=""), rule_id=rule_id,
                    noncurrent_version_expiration=NoncurrentVersionExpiration(
                        noncurrent_days=days),
                    abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(
                        days_after_initiation=days))
        self.call(f"bucket {bucket}", self.client.set_bucket_lifecycle, bucket,
                  LifecycleConfig([r for r in rules if r.rule_id != rule_id] + [rule]))
        return "updated" if ours else "created"

    # ---- objects

    def put_bytes(self, bucket: str, key: str, data: bytes,
                  content_type: str = "application/octet-stream") -> None:
        import io

        self.call(f"object {bucket}/{key}", self.client.put_object, bucket, key,
                  io.BytesIO(data), len(data), content_type=content_type)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        """A whole (small) object's bytes; NotFound when it does not exist."""
        from minio.error import S3Error

        def get():
            try:
                resp = self.client.get_object(bucket, key)
            except S3Error as err:
                if err.code == "NoSuchKey":
                    raise NotFound(f"object s3://{bucket}/{key} not found") from None
                raise
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

        return self.call(f"object {bucket}/{key}", get)

    def stat_object(self, bucket: str, key: str):
        """The object's stat, or None when it does not exist."""
        from minio.error import S3Error

        def stat():
            try:
                return self.client.stat_object(bucket, key)
            except S3Error as err:
                if err.code in ("NoSuchKey", "NoSuchObject"):
                    return None
                raise

        return self.call(f"object {bucket}/{key}", stat)

    def remove_object(self, bucket: str, key: str) -> None:
        self.call(f"object {bucket}/{key}", self.client.remove_object, bucket, key)

    def list_objects(self, bucket: str, prefix: str = "", recursive: bool = True
                     ) -> list["Listed"]:
        """The objects under ``prefix``: (name, size) each."""
        return self.call(f"bucket {bucket}", lambda: [
            Listed(o.object_name, o.size or 0)
            for o in self.client.list_objects(bucket, prefix=prefix, recursive=recursive)])

    def iter_entries(self, bucket: str, prefix: str = "", recursive: bool = True):
        """The objects under ``prefix`` as :class:`Entry` (name, size, etag), lazily: a listing
        of millions of objects is never held in memory."""
        what = f"bucket {bucket}"
        it = self.call(what, lambda: iter(self.client.list_objects(
            bucket, prefix=prefix, recursive=recursive)))
        while True:
            obj = self.call(what, next, it, None)
            if obj is None:
                return
            yield Entry(obj.object_name, obj.size or 0, _etag(obj.etag))

    def stat(self, bucket: str, key: str) -> "Entry | None":
        """One object's (name, size, etag), or None when it does not exist."""
        found = self.stat_object(bucket, key)
        return None if found is None else Entry(key, found.size or 0, _etag(found.etag))

    def same_endpoint(self, other: "Storage") -> bool:
        """The same S3 service (URL) as ``other``: a server-side copy between them is
        possible (whether ``other``'s keys may read our buckets is another matter)."""
        return self.url.rstrip("/").lower() == getattr(other, "url", "").rstrip("/").lower()

    def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, *,
                    size: int | None = None, etag: str | None = None) -> str:
        """Server-side copy with THIS storage's credentials; returns the new etag
        (:func:`kestra_ops.adapters.storage_copy.copy_object`)."""
        from kestra_ops.adapters import storage_copy

        return storage_copy.copy_object(self, src_bucket, src_key, dst_bucket, dst_key,
                                        size=size, etag=etag)

    def put_stream(self, bucket: str, key: str, chunks, *, content_type: str | None = None,
                   metadata: dict | None = None, part_size: int = 8 * 1024 * 1024
                   ) -> "Streamed":
        """Store byte chunks as one object, never partially visible
        (:func:`kestra_ops.adapters.storage_copy.put_stream`)."""
        from kestra_ops.adapters import storage_copy

        return storage_copy.put_stream(self, bucket, key, chunks, content_type=content_type,
                                       metadata=metadata, part_size=part_size)

    def open_object(self, bucket: str, key: str):
        """(response headers, chunk iterator) of an object
        (:func:`kestra_ops.adapters.storage_copy.open_object`)."""
        from kestra_ops.adapters import storage_copy

        return storage_copy.open_object(self, bucket, key)

    def iter_object(self, bucket: str, key: str, chunk: int = 1024 * 1024):
        """An object's bytes as a stream of chunks (nothing held beyond one chunk)."""
        from kestra_ops.adapters import storage_copy

        _headers, chunks = storage_copy.open_object(self, bucket, key, chunk)
        try:
            yield from chunks
        finally:
            chunks.close()

    def multipart(self, bucket: str, key: str, content_type: str = "application/octet-stream"):
        """A new multipart upload of ``bucket/key``
        (:class:`kestra_ops.adapters.storage_multipart.MultipartUpload`)."""
        from kestra_ops.adapters.storage_multipart import MultipartUpload

        return MultipartUpload(self, bucket, key, content_type)

    # ---- MinIO health (unauthenticated GETs; another S3 store answers 404 or an S3 error)

    def health(self, path: str) -> "HttpAnswer":
        """GET ``path`` (e.g. /minio/health/live): status, Server header, error code if any;
        Unreachable when no answer."""
        from urllib3.exceptions import HTTPError

        try:
            resp = self.http.request("GET", self.url + path, retries=False,
                                     preload_content=True)
        except HTTPError as err:
            raise Unreachable(f"cannot reach object storage at {self.url}: "
                              f"{describe(err)}") from None
        return HttpAnswer(resp.status, resp.headers.get("Server", ""),
                          error_code(resp.data[:4096]))


class Listed(NamedTuple):
    name: str
    size: int


class HttpAnswer(NamedTuple):
    status: int
    server: str  # the Server header ("MinIO", "SeaweedFS 8000GB 4.48", "")
    code: str | None  # the S3 / MinIO error code in the body, if any

    @property
    def from_minio(self) -> bool:
        return self.server.lower().startswith("minio")


_CODE_RE = re.compile(rb"<Code>\s*([A-Za-z0-9.]{1,64})\s*</Code>")


def error_code(body: bytes | str | None) -> str | None:
    """The error code of an S3 XML error (``<Code>X</Code>``) or a MinIO admin JSON error
    (``{"Code": "X"}``); None when there is none. Nothing else of the body is kept."""
    if not body:
        return None
    data = body.encode("utf-8", "replace") if isinstance(body, str) else bytes(body)
    found = _CODE_RE.search(data[:4096])
    if found:
        return found.group(1).decode("ascii")
    if data.lstrip()[:1] == b"{":
        try:
            code = json.loads(data).get("Code")
        except (ValueError, AttributeError):
            return None
        if isinstance(code, str) and re.fullmatch(r"[A-Za-z0-9.]{1,64}", code):
            return code
    return None


def tls_hint(why: str) -> str | None:
    """What to do about a certificate the system's CAs do not trust."""
    if "certificate verify failed" not in why:
        return None
    return ("name the CA bundle that signs the store's certificate in minio.ca_file / "
            "backup.ca_file of kestra-ops.yaml (or --insecure, which skips verification)")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else "no details"


def describe(err: BaseException) -> str:
    from kestra_ops.adapters.neterr import describe as words

    return words(err)
