"""A backup set's internal-storage part: which objects, their copy, the index, and verify.

Layout inside the set (``backups/<env>/<set>/``)::

    storage/<original key>   each object of Kestra's tenant (``main/...``), same key below
    storage-index.json       {"version": 1, "tenant": "main", "include_executions": bool,
                              "source": {"endpoint", "bucket"}, "copy": "server-side"|...,
                              "objects": [{"key", "size", "etag"[, "sha256"]}]}  key relative
                              to the tenant root; sha256 when the bytes went through us
    storage-refs.json        {"version": 1, "tenant": "main", "tables": {"kv_metadata": N|null,
                              "namespace_file_metadata": N|null},
                              "refs": [{"key", "table", "namespace", "name", "version"}]}
                              the objects that Kestra's current metadata rows name, read in the
                              same snapshot as the dump (null: the table does not exist)

What is copied and how keys are derived: :mod:`kestra_ops.workflows.backup.kestra_storage`.
The copy itself: :mod:`kestra_ops.workflows.backup.objects`.
"""

from __future__ import annotations

import json

from kestra_ops.errors import KestraOpsError
from kestra_ops.workflows.backup import kestra_storage as ks
from kestra_ops.workflows.backup import objects
from kestra_ops.workflows.backup import sets as bs

INDEX, REFS = "storage-index.json", "storage-refs.json"
PREFIX = "storage/"
SHOWN = 20  # unreferenced objects listed by name in verify's warning


def read_refs(snap, tenant: str = ks.TENANT) -> dict:
    """The objects Kestra's current (``last``, not ``deleted``) metadata rows of ``tenant``
    name (``refs``), and those its other rows (older revisions, deleted entries) name
    (``history``: known, so never "without metadata"), read in ``snap`` (a
    :class:`kestra_ops.adapters.postgres.Snapshot`)."""
    out: dict = {"version": 1, "tenant": tenant, "tables": {}, "refs": [], "history": []}
    for table, column, key_of in ((ks.KV_TABLE, "name", ks.kv_key),
                                  (ks.FILES_TABLE, "path", ks.file_key)):
        if not snap.has_table(table):
            out["tables"][table] = None
            continue
        rows = snap.rows(f"SELECT namespace, {column}, version, last AND NOT deleted "
                         f"FROM {table} WHERE tenant_id = %s", (tenant,))
        current = [(ns, name, version) for ns, name, version, cur in rows if cur]
        out["tables"][table] = len(current)
        out["refs"] += [{"key": key_of(ns, name, version), "table": table, "namespace": ns,
                         "name": name, "version": version} for ns, name, version in current]
        out["history"] += [key_of(ns, name, version)
                           for ns, name, version, cur in rows if not cur]
    out["refs"].sort(key=lambda r: r["key"])
    out["history"].sort()
    out["counts"] = counts(snap, out["refs"], tenant)
    return out


def counts(snap, refs: list[dict], tenant: str = ks.TENANT) -> dict:
    """What a restored Kestra must serve, at the snapshot: flows (the newest revision of each
    not deleted: the ``flows`` table keeps revisions, kestra-io/kestra jdbc-postgres
    V1_1__initial.sql and V1_5__multitenant.sql), executions not deleted, current KV entries
    and current namespace files (not folders). A table that is missing counts as None."""
    out: dict = {"flows": None, "executions": None}

    def shaped(table: str, *columns: str) -> bool:  # never a failing query in the snapshot
        if not snap.has_table(table):
            return False
        have = {r[0] for r in snap.rows("SELECT column_name FROM information_schema.columns "
                                        "WHERE table_name = %s", (table,))}
        return set(columns) <= have

    if shaped("flows", "tenant_id", "namespace", "id", "revision", "deleted"):
        out["flows"] = snap.rows(
            "SELECT count(*) FROM (SELECT DISTINCT ON (namespace, id) deleted FROM flows "
            "WHERE tenant_id = %s ORDER BY namespace, id, revision DESC) f WHERE NOT deleted",
            (tenant,))[0][0]
    if shaped("executions", "tenant_id", "deleted"):
        out["executions"] = snap.rows("SELECT count(*) FROM executions WHERE tenant_id = %s "
                                      "AND NOT deleted", (tenant,))[0][0]
    out["kv"] = sum(1 for r in refs if r["table"] == ks.KV_TABLE)
    out["namespace_files"] = sum(1 for r in refs if r["table"] == ks.FILES_TABLE
                                 and not str(r["name"]).endswith("/"))
    return {k: v for k, v in out.items() if v is not None}


def backup(src, src_bucket: str, dst, dst_bucket: str, env: str, name: str, *,
           refs: dict | None, include_executions: bool = False, tenant: str = ks.TENANT,
           progress=None, stop=None) -> tuple[dict, dict[str, bytes]]:
    """Copy the tenant's wanted objects into the set; returns (the manifest's ``storage``,
    {artefact name: bytes} of the index and refs files to store)."""
    root = ks.tenant_root(tenant)
    listing = (e for e in src.iter_entries(src_bucket, root)
               if ks.wanted(e.name[len(root):], include_executions=include_executions))
    dst_prefix = bs.key(env, name, PREFIX + root)
    got = objects.copy_objects(src, src_bucket, listing, dst, dst_bucket, dst_prefix,
                               src_prefix=root, progress=progress, stop=stop)
    if got.stopped:
        raise KeyboardInterrupt
    index = {"version": 1, "tenant": tenant, "include_executions": include_executions,
             "source": {"endpoint": src.url, "bucket": src_bucket}, "copy": got.mode,
             "objects": got.objects}
    files = {INDEX: _json(index)}
    tables = (refs or {}).get("tables") or {}
    if refs is not None and any(n is not None for n in tables.values()):
        files[REFS] = _json(refs)
    part = {"objects": len(got.objects), "bytes": got.bytes,
            "include_executions": include_executions, "copy": got.mode, "index": INDEX,
            "refs": REFS if REFS in files else None, "tenant": tenant,
            "prefix": PREFIX, "tables": tables or None,
            "streamed_bytes": got.streamed_bytes, "vanished": got.vanished,
            "seconds": round(got.seconds, 3)}
    return part, files


def _json(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def load_index(storage, bucket: str, env: str, name: str) -> dict:
    return bs.read_json(storage, bucket, env, name, INDEX, "objects", list)


def check(storage, bucket: str, env: str, name: str, manifest_part: dict) -> dict:
    """verify's storage cross-check. Every indexed object is in the set with its size and
    etag (missing / different: failure); every metadata ref is in the index and the set (else:
    failure); indexed KV values and namespace files no row names (warning), objects in the
    set's storage/ the index does not list (warning). One listing of the set's storage/
    gives every object's size and etag (what a HEAD of each would, in 1/1000 of the
    requests). Returns {"ok", "objects", "missing", "changed", "refs", "refs_missing",
    "unreferenced", "unindexed", "refs_checked"}."""
    index = load_index(storage, bucket, env, name)
    root = ks.tenant_root(index.get("tenant") or ks.TENANT)
    prefix = bs.key(env, name, PREFIX + root)
    present = {e.name[len(prefix):]: e for e in storage.iter_entries(bucket, prefix)}
    indexed = {o["key"]: o for o in index["objects"]}
    missing = sorted(k for k in indexed if k not in present)
    changed = sorted(k for k, o in indexed.items() if k in present and (
        present[k].size != o.get("size") or (o.get("etag") and present[k].etag != o["etag"])))
    available = {k for k in indexed if k in present}  # indexed and in the set
    out = {"objects": len(indexed), "missing": missing, "changed": changed,
           "unindexed": sorted(k for k in present if k not in indexed),
           "refs_checked": False, "refs": 0, "refs_missing": [], "unreferenced": []}
    if manifest_part.get("refs"):
        refs = json.loads(bs.read_small(storage, bucket, bs.key(env, name, REFS)))
        wanted = {r["key"] for r in refs.get("refs") or []}
        tables = refs.get("tables") or {}
        out.update(refs_checked=True, refs=len(wanted), tables=tables,
                   refs_missing=sorted(k for k in wanted if not _found(k, available)))
        kinds = {ks.KV} if tables.get(ks.KV_TABLE) is not None else set()
        kinds |= {ks.FILES} if tables.get(ks.FILES_TABLE) is not None else set()
        known = wanted | set(refs.get("history") or [])
        out["unreferenced"] = sorted(k for k in indexed if ks.kind(k) in kinds
                                     and not ks.is_directory(k) and k not in known)
    out["ok"] = not (missing or changed or out["refs_missing"])
    return out


def _found(key: str, indexed: dict) -> bool:
    """A ref is in the set: its object, or for a folder any object below it."""
    if key in indexed:
        return True
    return ks.is_directory(key) and any(k.startswith(key) for k in indexed)


def verify_into(report, storage, bucket: str, env: str, s) -> None:
    """Add the storage cross-check to ``backup verify``'s report (item ``storage`` and
    ``storage-refs``; ``data["storage"]``)."""
    from kestra_ops.results import FAIL, PASS, WARN, Item

    part = s.manifest.get("storage") or {}
    try:
        got = check(storage, bucket, env, s.name, part)
    except KestraOpsError as err:
        report.items.append(Item("storage", FAIL, str(err)))
        report.data["storage"] = {"ok": False, "error": str(err)}
        report.data["ok"] = False
        return
    report.data["storage"] = got
    problems = []
    if got["missing"]:
        problems.append(f"{len(got['missing'])} missing ({_few(got['missing'])})")
    if got["changed"]:
        problems.append(f"{len(got['changed'])} with another size or etag "
                        f"({_few(got['changed'])})")
    report.items.append(Item("storage", FAIL if problems else PASS,
                             "; ".join(problems) or f"{got['objects']} objects, size and etag "
                             "as indexed"))
    if not got["refs_checked"]:
        why = ("the source database has no kv_metadata nor namespace_file_metadata table "
               "(a Kestra older than its metadata tables)" if part.get("tables") else
               "this set holds no metadata refs")
        report.items.append(Item("storage-refs", WARN, f"not cross-checked: {why}"))
        report.warnings.append(f"storage objects not cross-checked with metadata: {why}")
    elif got["refs_missing"]:
        report.items.append(Item("storage-refs", FAIL, f"{len(got['refs_missing'])} metadata "
                                 f"row(s) name an object not in the set "
                                 f"({_few(got['refs_missing'])})"))
    else:
        report.items.append(Item("storage-refs", PASS, f"{got['refs']} metadata refs, each "
                                 "object in the set"))
    if got["unreferenced"]:
        report.warnings.append(f"{len(got['unreferenced'])} KV/namespace-file object(s) "
                               f"without a metadata row: {_few(got['unreferenced'], SHOWN)}")
    if got["unindexed"]:
        report.warnings.append(f"{len(got['unindexed'])} object(s) under the set's storage/ "
                               f"not in {INDEX}: {_few(got['unindexed'])}")
    report.data["ok"] &= got["ok"]


def _few(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")
