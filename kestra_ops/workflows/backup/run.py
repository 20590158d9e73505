"""``backup run``: one backup set (layout: :mod:`kestra_ops.workflows.backup.sets`).

The database is streamed by :mod:`kestra_ops.workflows.backup.dump_stream` (pg_dump -> zstd ->
a multipart upload, aborted on any failure). manifest.json is written last, only when
every requested artefact is stored: a failed run leaves an incomplete set (no manifest) and every
earlier set as it was. A complete set is reported as a :class:`kestra_ops.results.Report`
(JSON: env, set, bucket, prefix, included, failed, manifest; ``outcome`` "complete"); a failed
one raises, naming the component.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kestra_ops import __version__
from kestra_ops.adapters import postgres as pg
from kestra_ops.errors import Conflict, InvalidInput, KestraOpsError, OperationFailed
from kestra_ops.results import Recorder, Report
from kestra_ops.workflows.backup import dump_stream
from kestra_ops.workflows.backup import sets as bs
from kestra_ops.workflows.backup.dump_stream import stream_dump  # noqa: F401 - also its home

PART_SIZE = dump_stream.PART_SIZE  # (a test sets a smaller one for run_backup)


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
    steps: list = field(default_factory=list)  # results.Step, as recorded
    warnings: list = field(default_factory=list)  # no backup key of its own, secrets not in

    def to_dict(self) -> dict:
        return {"env": self.env, "set": self.name, "bucket": self.bucket,
                "prefix": bs.set_prefix(self.env, self.name),
                "included": list(self.included), "failed": self.failed,
                "manifest": self.manifest}

    def to_report(self) -> Report:
        total = sum(a["size"] for a in (self.manifest or {}).get("artefacts", {}).values())
        return Report("backup run", self.env, title=f"backup run {self.env}: set {self.name}",
                      outcome=self.status, steps=list(self.steps), data=self.to_dict(),
                      warnings=list(self.warnings),
                      message=f"backup {self.env}: set {self.name} {self.status} "
                              f"({', '.join(self.included)}; {total / 1e6:.1f} MB in "
                              f"s3://{self.bucket}/{bs.set_prefix(self.env, self.name)})")


def run_backup(env, *, what=bs.WHAT, database_url: str | None = None, progress=None,
               storage=None, kube=None, kestra=None, now=None, part_size: int | None = None,
               include_executions: bool | None = None, kestra_storage=None,
               cnpg_backup: bool = False, cnpg_timeout: float = 3600.0,
               values: dict | None = None) -> RunResult:
    """Take one backup set of ``env``; see the module doc. Raises on failure (no manifest);
    ``to_report()`` is what ``backup run`` shows. ``kestra_storage`` = (Storage, bucket) of
    Kestra's internal storage (default: the set's storage and the env's bucket). The database
    follows the values' database.mode (:mod:`kestra_ops.workflows.backup.database_target`;
    ``values``: the env's merged values, read from its layers when None); ``cnpg_backup``
    (database.mode cloudnativepg) also takes the operator's own backup
    (:mod:`kestra_ops.workflows.backup.cnpg_backup`), waiting up to ``cnpg_timeout`` s."""
    from kestra_ops.workflows.backup import database_target as dbt

    what = tuple(w for w in bs.WHAT if w in what)
    if include_executions is None:  # not said: the env's backup.include_executions
        include_executions = bool(env.backup_include_executions) and "storage" in what
    if include_executions and "storage" not in what:
        raise InvalidInput("--include-executions needs storage in --what")
    if ("db" in what or "storage" in what or cnpg_backup) and values is None:
        values = dbt.load_values(env)
    cnpg = _cnpg_target(env, values, cnpg_backup, cnpg_timeout)
    url = (dbt.resolve_database(env, database_url, values=values, kube=kube or _lazy_kube(env))
           if ("db" in what or "storage" in what) else None)
    # the consistent point: the snapshot first (metadata rows read in it, pg_dump dumps it),
    # held until pg_dump has finished; only then the storage copy (storage_set)
    from kestra_ops.adapters.postgres_snapshot import Snapshot

    snap = Snapshot(url) if "storage" in what else None
    child = None
    try:
        refs = _read_refs(snap)
        if "db" in what:
            child = _start_dump(url, snapshot=snap.id if snap else None)
        return _run(env, what, url, child, progress=progress, storage=storage, kube=kube,
                    kestra=kestra, now=now, part_size=part_size or PART_SIZE,
                    snap=snap, refs=refs, include_executions=include_executions,
                    kestra_storage=kestra_storage, cnpg=cnpg, values=values)
    finally:
        if child is not None:
            child.kill()  # only still running when the set failed before or during the dump
        if snap is not None:
            snap.close()


def _lazy_kube(env):
    def connect():
        from kestra_ops import wiring

        return wiring.kube(env)
    return connect


def _cnpg_target(env, values, wanted: bool, timeout: float) -> tuple | None:
    """(cluster name, timeout) when the operator's backup is asked for; only in
    database.mode cloudnativepg."""
    if not wanted:
        return None
    from kestra_ops.workflows.backup import database_target as dbt

    mode = dbt.database_mode(values or {})
    if mode != "cloudnativepg":
        raise InvalidInput(f"--cnpg-backup needs database.mode cloudnativepg (the values say "
                           f"{mode})")
    if timeout <= 0:
        raise InvalidInput("--cnpg-timeout must be above 0 seconds")
    return str(dbt.setting(values, "cloudnativepg", "clusterName")), float(timeout)


def _start_dump(url, snapshot: str | None = None) -> pg.Child:
    """pg_dump starts first: its connection and catalog reads overlap the rest of the set's
    preparation (the pipe holds it back until the upload reads). With one pg_dump installed
    (the image's) there is nothing to choose; with several, the server's major picks one."""
    major = pg.server_major(url) if len(pg.installed("pg_dump")) > 1 else None
    return pg.dump(url, server_major_version=major, snapshot=snapshot)


def _run(env, what, url, child, *, progress, storage, kube, kestra, now, part_size,
         snap=None, refs=None, include_executions=False, kestra_storage=None, cnpg=None,
         values=None):
    from kestra_ops import wiring
    from kestra_ops.workflows.backup.locations import (destination, kestra_storage_for,
                                                       key_warnings)

    if storage is None:
        place = destination(env)  # the backup destination, never Kestra's bucket
        storage, bucket = place.storage, place.bucket
    else:
        bucket = env.backup_target[2]
    if not storage.bucket_exists(bucket):
        raise OperationFailed(f"bucket {bucket} does not exist at {storage.url}",
                              hint=f"create it with: kestra-ops minio setup --env {env.name}")
    # every component is resolved before anything is written: missing ones fail clearly
    if "flows" in what and kestra is None:
        kestra = wiring.client_for_env(env, kube=kube)
    if "config" in what and kube is None:
        kube = wiring.kube(env)
    if "secrets" in what:
        kube = _secrets_ready(env, kube)
    if cnpg is not None and kube is None:
        kube = wiring.kube(env)
    # the storage copy reads Kestra's bucket (as its values say) with Kestra's key, never with
    # the backup key
    source = kestra_storage or (kestra_storage_for(env, values) if "storage" in what else None)
    name = bs.stamp(now)
    if any(s.name == name for s in bs.list_sets(storage, bucket, env.name, manifests=False)):
        raise Conflict(f"backup set {name} of {env.name} already exists: retry in a second")
    result = RunResult(env.name, name, bucket, what)
    rec = Recorder(Report("backup run", env.name), progress)
    rec.report.warnings += key_warnings(env)
    started = time.time()
    manifest = {"version": bs.MANIFEST_VERSION, "env": env.name, "set": name,
                "created": _iso(started), "tool_version": __version__, "included": list(what),
                "postgres": None, "kestra": None, "artefacts": {}, "timings": {}}
    steps = [("db", _db), ("storage", _storage), ("flows", _flows), ("config", _config),
             ("secrets", _secrets)]
    for component, fn in steps:
        if component not in what:
            continue
        t0 = time.monotonic()
        try:
            with rec.step(f"{component} -> s3://{bucket}/{bs.set_prefix(env.name, name)}"):
                fn(env, storage, bucket, name, manifest, url=url, child=child, kube=kube,
                   kestra=kestra, rec=rec, part_size=part_size, snap=snap, refs=refs,
                   include_executions=include_executions,
                   source=source)
        except KestraOpsError as err:
            result.failed = f"{component}: {err}"
            raise type(err)(f"backup {name} of {env.name} failed at {component}: {err}; no "
                            "manifest written, earlier sets untouched", hint=err.hint) from None
        result.timings[component] = round(time.monotonic() - t0, 3)
    if cnpg is not None:  # the operator's physical backup, beside the logical dump
        from kestra_ops.workflows.backup import cnpg_backup

        t0 = time.monotonic()
        try:
            with rec.step(f"CloudNativePG backup of cluster {cnpg[0]}"):
                manifest["cloudnativepg"] = cnpg_backup.take(
                    kube, env.namespace, cnpg[0], name, timeout=cnpg[1], update=rec.update)
        except KestraOpsError as err:
            result.failed = f"cloudnativepg: {err}"
            raise type(err)(f"backup {name} of {env.name} failed at cloudnativepg: {err}; no "
                            "manifest written, earlier sets untouched", hint=err.hint) from None
        result.timings["cloudnativepg"] = round(time.monotonic() - t0, 3)
    manifest["versions"] = _versions(env, manifest, kube)
    manifest["timings"] = {**result.timings, "total": round(time.time() - started, 3)}
    manifest["finished"] = _iso(time.time())
    manifest["status"] = "complete"
    with rec.step(f"{bs.MANIFEST} -> s3://{bucket}/{bs.set_prefix(env.name, name)}"):
        bs.write_manifest(storage, bucket, env.name, name, manifest)
    result.status, result.manifest = "complete", manifest
    result.steps, result.warnings = rec.report.steps, list(rec.report.warnings)
    return result


def _db(env, storage, bucket, name, manifest, *, url, child, rec, part_size, **_):
    manifest["postgres"] = {"server_version": pg.server_version(url), "database": url.dbname}
    meter = _Meter(rec)
    got = stream_dump(storage, bucket, bs.key(env.name, name, bs.DB), child,
                      on_progress=meter, part_size=part_size)
    meter.clear()
    manifest["postgres"]["pg_dump"] = ".".join(map(str, pg.binary_version(child.argv[0])))
    manifest["artefacts"][bs.DB] = {"size": got.size, "sha256": got.sha256,
                                    "raw_size": got.raw_size, "compression": "zstd",
                                    "format": "pg_dump custom, -Z0", "parts": got.parts}


# ---- storage (workflows/backup/storage_set.py): after the dump, from the same snapshot

def _read_refs(snap) -> dict | None:
    from kestra_ops.workflows.backup import storage_set

    return storage_set.read_refs(snap) if snap is not None else None


def _storage(env, storage, bucket, name, manifest, *, snap, refs, include_executions, source,
             rec, **_):
    from kestra_ops.workflows.backup import storage_set

    if snap is not None:
        snap.close()  # pg_dump (if any) has finished: the snapshot has served
    src, src_bucket = source
    shown = [0]

    def progress(done, size):
        if done - shown[0] >= 250:
            shown[0] = done
            rec.update(f"storage: {done} objects, {size / 1e6:.1f} MB")

    part, files = storage_set.backup(src, src_bucket, storage, bucket, env.name, name,
                                     refs=refs, include_executions=include_executions,
                                     progress=progress)
    for artefact, data in files.items():
        _put(storage, bucket, bs.key(env.name, name, artefact), data, manifest,
             "application/json")
    manifest["storage"] = part
    if refs and refs.get("counts"):
        manifest["counts"] = refs["counts"]  # at the dump's snapshot: what a restore must serve


def _versions(env, manifest, kube) -> dict:
    from kestra_ops.workflows.backup import versions

    return versions.collect(env, kube=kube,
                            kestra_version=(manifest.get("kestra") or {}).get("version"),
                            postgres_version=(manifest.get("postgres") or {}).get(
                                "server_version"))


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
    from kestra_ops.workflows.configmap import backups as configmap_backups
    from kestra_ops.workflows.configmap.patch import read_configmap
    from kestra_ops.workflows.values import render

    live = read_configmap(kube, env)
    with tempfile.TemporaryDirectory(prefix="kestra-ops-backup-") as tmp:
        path = configmap_backups.write_backup(Path(tmp), live, env=env.name)
        data = path.read_bytes()
    _put(storage, bucket, bs.key(env.name, name, bs.CONFIGMAP), data, manifest,
         "application/yaml")
    values = render(env, redact=True).text.encode()
    _put(storage, bucket, bs.key(env.name, name, bs.VALUES), values, manifest,
         "application/yaml")


# --- component "secrets": the env's Secrets sealed with age (workflows/backup/sealed.py) ---

def _secrets_ready(env, kube):
    """Recipients parsed (a bad key fails before anything is written); the cluster connected
    only when there is something to seal."""
    from kestra_ops import wiring
    from kestra_ops.workflows.backup import sealed

    if not env.backup_recipients:
        return kube
    sealed.recipients(env.backup_recipients)
    return kube if kube is not None else wiring.kube(env)


def _secrets(env, storage, bucket, name, manifest, *, kube, rec, **_):
    from kestra_ops.workflows.backup import sealed

    entry, _size = sealed.seal_env(env, kube, storage, bucket, name)
    manifest["secrets"] = entry
    if entry["sealed"]:
        manifest["artefacts"][bs.SECRETS] = {"size": entry["size"], "sha256": entry["sha256"],
                                             "format": "age"}
    else:
        rec.report.warnings.append(f"secrets not included: {entry['reason']} (the env's "
                                   "Secrets, Kestra's encryption key among them, are not in "
                                   "this set; add age public keys to backup.recipients)")

# --- end of component "secrets" ---


def _put(storage, bucket, key, data: bytes, manifest, content_type) -> None:
    bs.put_bytes(storage, bucket, key, data, content_type)
    manifest["artefacts"][key.rsplit("/", 1)[1]] = {"size": len(data),
                                                    "sha256": hashlib.sha256(data).hexdigest()}


class _Meter:
    """Bytes and rate on a TTY (the progress line's transient status), nothing otherwise."""

    def __init__(self, rec: Recorder):
        self.rec = rec

    def __call__(self, raw: int, stored: int, elapsed: float) -> None:
        rate = raw / elapsed / 1e6 if elapsed > 0 else 0.0
        self.rec.update(f"dumped {raw / 1e6:.1f} MB, stored {stored / 1e6:.1f} MB, "
                        f"{rate:.1f} MB/s")

    def clear(self) -> None:
        clear = getattr(self.rec.progress, "clear", None)
        if clear is not None:
            clear()


def _iso(t: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")

