"""Where Kestra keeps a tenant's objects in its internal storage, and which metadata rows name
them: pure functions, no I/O.

Facts relied on (read from Kestra's own source, kestra-io/kestra unless said otherwise):

- Object key = ``<tenant>/<uri path without its leading slash>``: ``StorageInterface.getPath(
  tenantId, uri)`` (core/src/main/java/io/kestra/core/storages/StorageInterface.java); the
  MinIO/S3 storage puts every object under that path in its one bucket
  (kestra-io/storage-minio src/main/java/io/kestra/storage/minio/MinioStorage.java). The
  open-source edition's tenant is always ``main`` (``TenantService.MAIN_TENANT``,
  core/src/main/java/io/kestra/core/tenant/TenantService.java).
- MinioStorage.put first writes zero-byte "directory" objects, one per parent, named with a
  trailing ``/`` (``mkdirs``); ``createDirectory`` writes one for a namespace-file folder.
- URI paths (core/src/main/java/io/kestra/core/storages/StorageContext.java): namespace ``a.b``
  is the path ``a/b``; KV values under ``/{ns}/_kv`` (``PREFIX_FORMAT_KV``), namespace files
  under ``/{ns}/_files`` (``PREFIX_FORMAT_NAMESPACE_FILE``), execution files under
  ``/{ns}/{flow}/executions/{execution-id}/...`` (``PREFIX_FORMAT_EXECUTIONS``, ``_TASK``,
  ``_TRIGGER``, ``_INPUTS``).
- A KV value's file (core/src/main/java/io/kestra/core/storages/kv/KVStore.java,
  ``kvFileName``): ``<key>.ion``, plus ``.v<revision>`` when the revision is > 1; the
  revision is the metadata row's ``version`` (core/.../storages/kv/StorageKVBackend.java puts
  the value under the revision the KV metadata store saved; core/src/main/java/io/kestra/core/
  models/kv/PersistedKvMetadata.java serialises it as the JSON ``version`` that
  kv_metadata's ``version`` column reads).
- A namespace file's object (core/src/main/java/io/kestra/core/storages/NamespaceFile.java,
  ``of(namespace, path, version)``): the path without leading ``/`` or ``./``, plus
  ``.v<version>`` when the version is > 1 and the path is not a directory (a path ending in
  ``/``, always version 1, stored as the trailing-``/`` directory object).
- Metadata tables (jdbc-postgres/src/main/resources/migrations/postgres/):
  ``V1_46__kv_metadata.sql`` creates ``kv_metadata`` (``value`` JSONB, generated columns
  ``tenant_id``, ``namespace``, ``name``, ``version``, ``last``, ``deleted``);
  ``V1_50__ns_files_metadata.sql`` creates ``namespace_file_metadata`` (``tenant_id``,
  ``namespace``, ``path``, ``version``, ``last``, ``deleted``, ``size``). The current row of
  an entry has ``last`` true; a deleted entry has ``deleted`` true. Kestra versions before
  these migrations have neither table (their objects have no metadata to cross-check).
"""

from __future__ import annotations

import re

TENANT = "main"
KV, FILES, EXECUTIONS = "kv", "files", "executions"
KV_TABLE, FILES_TABLE = "kv_metadata", "namespace_file_metadata"
_KINDS = (("/_kv/", KV), ("/_files/", FILES), ("/executions/", EXECUTIONS))
_LEADING = re.compile(r"^[.]*[\\/]+")


def tenant_root(tenant: str = TENANT) -> str:
    return f"{tenant}/"


def namespace_path(namespace: str) -> str:
    return namespace.replace(".", "/")


def kind(rel_key: str) -> str | None:
    """``kv``, ``files`` or ``executions`` for a key relative to the tenant root (the first
    of those segments decides), None for anything else (state stores, caches...)."""
    path = "/" + rel_key
    hits = [(path.find(marker), name) for marker, name in _KINDS if marker in path]
    return min(hits)[1] if hits else None


def wanted(rel_key: str, *, include_executions: bool) -> bool:
    """Part of the backup: KV values and namespace files always, execution files on request,
    and the zero-byte directory objects Kestra's MinIO storage relies on (cheap, and a
    restored tree lists like the original)."""
    found = kind(rel_key)
    if found in (KV, FILES):
        return True
    if found == EXECUTIONS:
        return include_executions
    return rel_key.endswith("/")


def kv_key(namespace: str, name: str, version: int | None) -> str:
    """A KV value's object key relative to the tenant root."""
    suffix = f".v{version}" if version and version > 1 else ""
    return f"{namespace_path(namespace)}/_kv/{name}.ion{suffix}"


def file_key(namespace: str, path: str, version: int | None) -> str:
    """A namespace file's (or folder's, trailing ``/``) object key relative to the tenant
    root."""
    rel = _LEADING.sub("", path.replace("\\", "/"))
    if not rel.endswith("/") and version and version > 1:
        rel += f".v{version}"
    return f"{namespace_path(namespace)}/_files/{rel}"


def is_directory(rel_key: str) -> bool:
    return rel_key.endswith("/")
