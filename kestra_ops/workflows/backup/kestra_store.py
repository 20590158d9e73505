"""Where Kestra keeps its internal storage, as its values say (``kestra.storage``): pure.

Kestra picks the storage plugin by ``kestra.storage.type`` and reads that plugin's section
``kestra.storage.<type>``; Micronaut binds camelCase and kebab-case keys alike (Kestra's
configuration docs, https://kestra.io/docs/configuration, "Camel Case and Hyphenated Keys").

* ``minio`` (kestra-io/storage-minio src/main/java/io/kestra/storage/minio/MinioStorage.java):
  ``endpoint`` (a host), ``port``, ``secure``, ``region``, ``bucket``, ``accessKey`` /
  ``secretKey``, ``vhost`` (false: path-style);
* ``s3`` (kestra-io/storage-s3 src/main/java/io/kestra/storage/s3/S3Storage.java, v1.4.0):
  ``bucket``, ``region``, ``endpoint`` (a URL: S3ClientFactory.java passes it to
  ``endpointOverride(URI.create(endpoint))``, so its scheme says TLS), ``path`` (a key prefix
  inside the bucket), ``accessKey`` / ``secretKey``, ``sts*`` (AssumeRole), ``forcePathStyle``
  (a primitive boolean, so false unless set: virtual-host addressing), ``s3FilesCompatible``.

:func:`from_values` gives a :class:`KestraStore`; :func:`kestra_ops.workflows.backup.locations.
kestra_storage_for` reconciles it with kestra-ops.yaml before the storage copy of a backup.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

COPIED_TYPES = ("minio", "s3")


@dataclass(frozen=True)
class KestraStore:
    type: str
    where: str  # kestra.storage.<type>
    bucket: str | None = None
    endpoint: str | None = None  # host:port, or http(s)://host:port
    secure: bool = True
    region: str | None = None
    path_style: bool | None = None
    prefix: str | None = None  # s3 ``path``: Kestra's keys live under it


def _get(section: dict, camel: str):
    kebab = "".join(f"-{c.lower()}" if c.isupper() else c for c in camel)
    return section.get(camel, section.get(kebab))


def _bool(value) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def from_values(values: dict | None) -> KestraStore | None:
    """Kestra's store from its merged values; None when they say nothing (no kestra.storage)."""
    storage = ((values or {}).get("kestra") or {}).get("storage")
    if not isinstance(storage, dict) or not storage.get("type"):
        return None
    kind = str(storage["type"]).strip()
    section = storage.get(kind) if isinstance(storage.get(kind), dict) else {}
    where = f"kestra.storage.{kind}"
    bucket = _get(section, "bucket")
    bucket = bucket if isinstance(bucket, str) and bucket.strip() else None
    region = _get(section, "region")
    region = region if isinstance(region, str) and region.strip() else None
    if kind == "minio":
        host, port = _get(section, "endpoint"), _get(section, "port")
        endpoint = None
        if isinstance(host, str) and host.strip():
            endpoint = host.strip() if not port else f"{host.strip()}:{port}"
        return KestraStore(kind, where, bucket, endpoint, bool(_bool(_get(section, "secure"))),
                           region, not _bool(_get(section, "vhost")))
    if kind == "s3":
        url = _get(section, "endpoint")
        endpoint, secure = None, True
        if isinstance(url, str) and url.strip():
            endpoint = url.strip()
            secure = urlsplit(endpoint).scheme != "http"
        prefix = _get(section, "path")
        return KestraStore(kind, where, bucket, endpoint, secure, region,
                           bool(_bool(_get(section, "forcePathStyle"))),
                           prefix if isinstance(prefix, str) and prefix.strip("/") else None)
    return KestraStore(kind, where, bucket)
