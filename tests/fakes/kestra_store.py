"""Where the fake Kestra keeps its state: in memory (the default) or, in "backed" mode, where a
real Kestra keeps it: PostgreSQL tables and an S3 bucket (the internal storage).

    backend = Backend(database_url=pg.url(db), s3_endpoint=seaweed.endpoint, s3_access_key=...,
                      s3_secret_key=..., bucket="kestra")
    with FakeKestra(backend=backend) as source: ...       # writes rows and objects
    # (back up, restore the database and the bucket somewhere else)
    with FakeKestra(backend=restored_backend) as restored: # sees everything the source wrote

Tables (a "bootstrap" standing for Kestra's Flyway migrations creates them when missing; every
table is ``key VARCHAR PRIMARY KEY, value JSONB`` plus columns generated from ``value``, as in
kestra-io/kestra jdbc-postgres/src/main/resources/migrations/postgres/):

- ``flows`` (V1_1__initial.sql, tenant_id from V1_5__multitenant.sql, updated from
  V1_56__flows_updated_date.sql): one row per revision, key ``<tenant>_<namespace>_<id>_<revision>``
  (Flow.uid / IdUtils.fromParts, separator ``_``), ``value`` the flow JSON, ``source_code`` the
  YAML; a delete is a new revision with ``deleted: true``.
- ``executions`` (V1_1__initial.sql, V1_5): key the execution id, ``value`` the execution JSON;
  a delete sets ``deleted`` in ``value``.
- ``kv_metadata`` (V1_46__kv_metadata.sql, ``created`` from V1_49): one row per version, key
  ``<tenant>_<namespace>_<name>_<version>`` (PersistedKvMetadata.uid), only the ``last`` row of a
  key is current; a delete marks it ``deleted`` (StorageKVBackend / InternalKVStore).
- ``namespace_file_metadata`` (V1_50__ns_files_metadata.sql): one row per version of a file
  (path ``/dir/file.txt``) and one per directory (path ending in ``/``), key
  ``<tenant>_<namespace>_<path>_<version>`` (NamespaceFileMetadata.uid).

Simplified, on purpose: the ``fulltext`` tsvector columns, the ``state_type`` enum and the date /
duration columns that upstream computes with its own IMMUTABLE SQL functions are left out (the
fake queries ``value`` with ``@>``); ``state_current`` is a VARCHAR; ``kv_metadata.created`` and
``updated`` are plain columns with a default.

Objects (the bucket, laid out as kestra-io/storage-minio MinioStorage writes it:
``StorageInterface.getPath`` = ``<tenant>/<uri path>``, and every parent "directory" as a
zero-byte object ending in ``/``, MinioStorage.mkdirs):

- a KV value: ``<tenant>/<ns with . -> />/_kv/<key>.ion``, ``.v<version>`` appended from version 2
  (KVStore.storageUri / kvFileName, StorageContext.kvPrefix ``/%s/_kv``); the content is the value
  as JSON text, which is valid Ion text (Kestra writes it with JacksonMapper.ofIon());
- a namespace file: ``<tenant>/<ns path>/_files/<path>``, ``.v<version>`` appended from version 2
  (NamespaceFile.of, StorageContext.PREFIX_FORMAT_NAMESPACE_FILE);
- an execution's task file: ``<tenant>/<ns path>/<slug(flow id)>/executions/<execution id>/tasks/
  <slug(task id)>/<task run id>/<name>`` (StorageContext.PREFIX_FORMAT_TASK, Slugify.of).
"""
from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .kestra_flows import now_iso

TABLES = {
    "flows": """CREATE TABLE IF NOT EXISTS flows (
        key VARCHAR(250) NOT NULL PRIMARY KEY,
        value JSONB NOT NULL,
        deleted BOOL NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'deleted' AS BOOL)) STORED,
        id VARCHAR(100) NOT NULL GENERATED ALWAYS AS (value ->> 'id') STORED,
        namespace VARCHAR(150) NOT NULL GENERATED ALWAYS AS (value ->> 'namespace') STORED,
        revision INT NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'revision' AS INT)) STORED,
        source_code TEXT NOT NULL,
        tenant_id VARCHAR(250) GENERATED ALWAYS AS (value ->> 'tenantId') STORED,
        updated VARCHAR(250) GENERATED ALWAYS AS (value ->> 'updated') STORED)""",
    "executions": """CREATE TABLE IF NOT EXISTS executions (
        key VARCHAR(250) NOT NULL PRIMARY KEY,
        value JSONB NOT NULL,
        deleted BOOL NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'deleted' AS BOOL)) STORED,
        namespace VARCHAR(150) NOT NULL GENERATED ALWAYS AS (value ->> 'namespace') STORED,
        flow_id VARCHAR(150) NOT NULL GENERATED ALWAYS AS (value ->> 'flowId') STORED,
        state_current VARCHAR(50) NOT NULL GENERATED ALWAYS AS (value #>> '{state, current}') STORED,
        tenant_id VARCHAR(250) GENERATED ALWAYS AS (value ->> 'tenantId') STORED)""",
    "kv_metadata": """CREATE TABLE IF NOT EXISTS kv_metadata (
        "key" VARCHAR(768) NOT NULL PRIMARY KEY,
        "value" JSONB NOT NULL,
        "tenant_id" VARCHAR(250) NOT NULL GENERATED ALWAYS AS (value ->> 'tenantId') STORED,
        "namespace" VARCHAR(150) NOT NULL GENERATED ALWAYS AS (value ->> 'namespace') STORED,
        "name" VARCHAR(350) NOT NULL GENERATED ALWAYS AS (value ->> 'name') STORED,
        "description" TEXT GENERATED ALWAYS AS (value ->> 'description') STORED,
        "version" INT NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'version' AS INTEGER)) STORED,
        "last" BOOL NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'last' AS BOOL)) STORED,
        "updated" TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
        "deleted" BOOL NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'deleted' AS BOOL)) STORED,
        "created" TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP)""",
    "namespace_file_metadata": """CREATE TABLE IF NOT EXISTS namespace_file_metadata (
        "key" VARCHAR(768) NOT NULL PRIMARY KEY,
        "value" JSONB NOT NULL,
        "tenant_id" VARCHAR(250) GENERATED ALWAYS AS (value ->> 'tenantId') STORED,
        "namespace" VARCHAR(150) NOT NULL GENERATED ALWAYS AS (value ->> 'namespace') STORED,
        "path" VARCHAR(350) NOT NULL GENERATED ALWAYS AS (value ->> 'path') STORED,
        "parent_path" VARCHAR(350) GENERATED ALWAYS AS (value ->> 'parentPath') STORED,
        "version" INT NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'version' AS INTEGER)) STORED,
        "last" BOOL NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'last' AS BOOL)) STORED,
        "size" BIGINT NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'size' AS BIGINT)) STORED,
        "deleted" BOOL NOT NULL GENERATED ALWAYS AS (CAST(value ->> 'deleted' AS BOOL)) STORED)""",
}


@dataclass(frozen=True)
class Backend:
    """Where a backed FakeKestra keeps its state (its datasource and its MinIO storage settings)."""
    database_url: str
    s3_endpoint: str  # host:port, as storage-minio's ``endpoint`` + ``port``
    s3_access_key: str
    s3_secret_key: str = field(repr=False)
    bucket: str = "kestra"
    secure: bool = False

    def __repr__(self) -> str:  # no password of the database URL, no secret key
        url = re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", self.database_url)
        return (f"Backend(database_url={url!r}, s3_endpoint={self.s3_endpoint!r}, "
                f"s3_access_key={self.s3_access_key!r}, bucket={self.bucket!r}, secure={self.secure})")


class ObjectMissing(Exception):
    """Metadata says the object exists, the storage does not have it (FileNotFoundException)."""


# ---- the two primitives, in memory or real ----
class MemoryTables:
    def __init__(self) -> None:
        self.tables: dict[str, dict[str, tuple[dict[str, Any], dict[str, Any]]]] = {t: {} for t in TABLES}

    def rows(self, table: str, match: dict[str, Any]) -> list[dict[str, Any]]:
        return [json.loads(json.dumps(v)) for v, _ in self.tables[table].values()
                if all(v.get(k) == x for k, x in match.items())]

    def upsert(self, table: str, key: str, value: dict[str, Any], **extra: Any) -> None:
        self.tables[table][key] = (json.loads(json.dumps(value)), extra)

    def extra(self, table: str, match: dict[str, Any], column: str) -> list[tuple[dict[str, Any], Any]]:
        return [(json.loads(json.dumps(v)), e.get(column)) for v, e in self.tables[table].values()
                if all(v.get(k) == x for k, x in match.items())]

    def close(self) -> None:
        pass


class PgTables:
    """The tables in PostgreSQL (one autocommit connection; callers hold the fake's lock)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        for ddl in TABLES.values():  # the "bootstrap": Flyway's job on a real Kestra
            self.conn.execute(ddl)

    def rows(self, table: str, match: dict[str, Any]) -> list[dict[str, Any]]:
        cur = self.conn.execute(f"SELECT value FROM {table} WHERE value @> %s::jsonb ORDER BY key",
                                (json.dumps(match),))
        return [r[0] for r in cur.fetchall()]

    def extra(self, table: str, match: dict[str, Any], column: str) -> list[tuple[dict[str, Any], Any]]:
        cur = self.conn.execute(f"SELECT value, {column} FROM {table} WHERE value @> %s::jsonb ORDER BY key",
                                (json.dumps(match),))
        return [(r[0], r[1]) for r in cur.fetchall()]

    def upsert(self, table: str, key: str, value: dict[str, Any], **extra: Any) -> None:
        cols = ["key", "value", *extra]
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols[1:])
        self.conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
                          f"ON CONFLICT (key) DO UPDATE SET {sets}", [key, json.dumps(value), *extra.values()])

    def close(self) -> None:
        self.conn.close()


class MemoryObjects:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        for d in _parents(key):
            self.objects.setdefault(d, b"")
        self.objects[key] = bytes(data)

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))


class S3Objects:
    """The bucket, through the MinIO SDK (as storage-minio does it)."""

    def __init__(self, backend: Backend) -> None:
        from minio import Minio

        self.bucket = backend.bucket
        self.client = Minio(backend.s3_endpoint, access_key=backend.s3_access_key,
                            secret_key=backend.s3_secret_key, secure=backend.secure)
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)
        self._dirs: set[str] = set()

    def put(self, key: str, data: bytes) -> None:
        for d in _parents(key):  # MinioStorage.mkdirs: one zero-byte object per parent
            if d not in self._dirs:
                self.client.put_object(self.bucket, d, io.BytesIO(b""), 0, content_type="application/x-directory")
                self._dirs.add(d)
        self.client.put_object(self.bucket, key, io.BytesIO(data), len(data))

    def get(self, key: str) -> bytes | None:
        from minio.error import S3Error

        try:
            resp = self.client.get_object(self.bucket, key)
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchObject"):
                return None
            raise
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, key)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(o.object_name for o in self.client.list_objects(self.bucket, prefix=prefix, recursive=True))


def _parents(key: str) -> list[str]:
    parts = key.split("/")[:-1]
    return ["/".join(parts[:i]) + "/" for i in range(1, len(parts) + 1)]


def ns_path(namespace: str) -> str:
    return namespace.replace(".", "/")


def slugify(text: str) -> str:
    """Slugify.of (core/src/main/java/io/kestra/core/utils/Slugify.java), for ASCII ids."""
    slug = re.sub(r"[^\w-]", "", re.sub(r"\s+", "-", text)).replace("_", "-")
    return re.sub(r"-{2,}", "-", slug).strip("-").lower()


# ---- Kestra's data on top of them ----
class KestraData:
    """KV store, namespace files, execution files, and (backed mode) flows and executions rows."""

    def __init__(self, tables: MemoryTables | PgTables, objects: MemoryObjects | S3Objects, tenant: str = "main"):
        self.tables, self.objects, self.tenant = tables, objects, tenant

    @classmethod
    def memory(cls, tenant: str = "main") -> "KestraData":
        return cls(MemoryTables(), MemoryObjects(), tenant)

    @classmethod
    def backed(cls, backend: Backend, tenant: str = "main") -> "KestraData":
        return cls(PgTables(backend.database_url), S3Objects(backend), tenant)

    def close(self) -> None:
        self.tables.close()

    def _uid(self, *parts: Any) -> str:
        return "_".join(str(p) for p in (self.tenant, *parts))

    def _last(self, table: str, **match: Any) -> dict[str, Any] | None:
        rows = self.tables.rows(table, {"tenantId": self.tenant, "last": True, **match})
        return max(rows, key=lambda r: r["version"]) if rows else None

    # ---- KV ----
    def kv_object(self, namespace: str, key: str, version: int) -> str:
        return f"{self.tenant}/{ns_path(namespace)}/_kv/{key}.ion" + (f".v{version}" if version > 1 else "")

    def kv_put(self, namespace: str, key: str, value: Any, description: str | None = None) -> dict[str, Any]:
        now = now_iso()
        previous = self._last("kv_metadata", namespace=namespace, name=key)
        version = previous["version"] + 1 if previous else 1
        if previous:
            self.tables.upsert("kv_metadata", self._uid(namespace, key, previous["version"]), {**previous, "last": False})
        row = {"tenantId": self.tenant, "namespace": namespace, "name": key, "description": description,
               "version": version, "last": True, "expirationDate": None,
               "created": (previous or {}).get("created") or now, "updated": now, "deleted": False}
        self.objects.put(self.kv_object(namespace, key, version), json.dumps(value).encode())
        self.tables.upsert("kv_metadata", self._uid(namespace, key, version), row)
        return row

    def kv_entry(self, namespace: str, key: str) -> dict[str, Any] | None:
        row = self._last("kv_metadata", namespace=namespace, name=key)
        return None if row is None or row["deleted"] else row

    def kv_get(self, namespace: str, key: str) -> tuple[dict[str, Any], Any] | None:
        """(metadata row, value); None when there is no current entry or its object is gone
        (InternalKVStore.getRawValue: FileNotFoundException -> Optional.empty())."""
        row = self.kv_entry(namespace, key)
        if row is None:
            return None
        raw = self.objects.get(self.kv_object(namespace, key, row["version"]))
        return None if raw is None else (row, json.loads(raw))

    def kv_list(self, namespace: str) -> list[dict[str, Any]]:
        rows = self.tables.rows("kv_metadata", {"tenantId": self.tenant, "namespace": namespace, "last": True,
                                                "deleted": False})
        return sorted(rows, key=lambda r: r["name"])

    def kv_delete(self, namespace: str, key: str) -> bool:
        row = self.kv_entry(namespace, key)
        if row is None:
            return False
        self.tables.upsert("kv_metadata", self._uid(namespace, key, row["version"]),
                           {**row, "deleted": True, "updated": now_iso()})
        return True

    # ---- namespace files ----
    def file_object(self, namespace: str, path: str, version: int) -> str:
        return f"{self.tenant}/{ns_path(namespace)}/_files{path}" + (f".v{version}" if version > 1 else "")

    def _file_row(self, namespace: str, path: str, version: int, size: int, created: str | None) -> dict[str, Any]:
        bare = path[:-1] if path.endswith("/") else path  # NamespaceFileMetadata.parentPath
        parent = bare[:bare.rindex("/") + 1] if "/" in bare else None
        now = now_iso()
        return {"tenantId": self.tenant, "namespace": namespace, "path": path, "parentPath": parent,
                "version": version, "last": True, "size": size, "created": created or now, "updated": now,
                "deleted": False}

    def file_put(self, namespace: str, path: str, data: bytes) -> dict[str, Any]:
        """``path`` absolute (``/dir/file.txt``); parent directories get their own metadata rows."""
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/" + "/".join(parts[:i]) + "/"
            if self._last("namespace_file_metadata", namespace=namespace, path=d) is None:
                self.tables.upsert("namespace_file_metadata", self._uid(namespace, d, 1),
                                   self._file_row(namespace, d, 1, 0, None))
        previous = self._last("namespace_file_metadata", namespace=namespace, path=path)
        version = previous["version"] + 1 if previous else 1
        if previous:
            self.tables.upsert("namespace_file_metadata", self._uid(namespace, path, previous["version"]),
                               {**previous, "last": False})
        self.objects.put(self.file_object(namespace, path, version), data)
        row = self._file_row(namespace, path, version, len(data), previous and previous["created"])
        self.tables.upsert("namespace_file_metadata", self._uid(namespace, path, version), row)
        return row

    def file_entry(self, namespace: str, path: str) -> dict[str, Any] | None:
        row = self._last("namespace_file_metadata", namespace=namespace, path=path)
        return None if row is None or row["deleted"] else row

    def file_get(self, namespace: str, path: str) -> bytes | None:
        """The content; None without metadata; ObjectMissing when the object is gone."""
        row = self.file_entry(namespace, path)
        if row is None or path.endswith("/"):
            return None
        data = self.objects.get(self.file_object(namespace, path, row["version"]))
        if data is None:
            raise ObjectMissing(f"kestra://{self.file_object(namespace, path, row['version'])[len(self.tenant):]}")
        return data

    def file_rows(self, namespace: str) -> list[dict[str, Any]]:
        rows = self.tables.rows("namespace_file_metadata", {"tenantId": self.tenant, "namespace": namespace,
                                                            "last": True, "deleted": False})
        return sorted(rows, key=lambda r: r["path"])

    def file_children(self, namespace: str, directory: str) -> list[dict[str, Any]] | None:
        """Rows directly under ``directory`` (``/`` or ``/dir``); None when it does not exist."""
        d = "/" + directory.strip("/") + "/" if directory.strip("/") else "/"
        rows = self.file_rows(namespace)
        if d != "/" and not any(r["path"] == d for r in rows):
            return None
        return [r for r in rows if (r["parentPath"] or "/") == d and r["path"] != d]

    # ---- execution files ----
    def task_object(self, namespace: str, flow_id: str, execution_id: str, task_id: str, task_run_id: str,
                    name: str) -> str:
        return (f"{self.tenant}/{ns_path(namespace)}/{slugify(flow_id)}/executions/{execution_id}/tasks/"
                f"{slugify(task_id)}/{task_run_id}/{name.lstrip('/')}")

    # ---- namespaces with data (KV or files) ----
    def data_namespaces(self) -> set[str]:
        rows = self.tables.rows("kv_metadata", {"tenantId": self.tenant, "last": True, "deleted": False}) + \
            self.tables.rows("namespace_file_metadata", {"tenantId": self.tenant, "last": True, "deleted": False})
        return {r["namespace"] for r in rows}

    # ---- flows and executions rows (backed mode) ----
    def save_flow(self, value: dict[str, Any], source: str) -> None:
        self.tables.upsert("flows", self._uid(value["namespace"], value["id"], value["revision"]), value,
                           source_code=source)

    def load_flows(self) -> list[tuple[dict[str, Any], str]]:
        rows = self.tables.extra("flows", {"tenantId": self.tenant}, "source_code")
        return sorted(rows, key=lambda r: (r[0]["namespace"], r[0]["id"], r[0]["revision"]))

    def save_execution(self, value: dict[str, Any]) -> None:
        self.tables.upsert("executions", value["id"], value)

    def load_executions(self) -> list[dict[str, Any]]:
        return self.tables.rows("executions", {"tenantId": self.tenant, "deleted": False})
