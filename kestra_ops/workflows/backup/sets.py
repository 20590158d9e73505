"""The layout of backup sets in object storage, shared by backup run/list/verify/restore/prune.

A set lives under ``backups/<env>/<UTC stamp YYYYmmddTHHMMSSZ>/`` in the backup bucket
(backup.bucket, default ``kestra-<env>-backups``; older sets: the same layout in Kestra's own
bucket, see :mod:`kestra_ops.workflows.backup.locations`)::

    db.dump.zst      pg_dump -Fc -Z0, compressed with zstd (multi-threaded) by kestra-ops
    flows.zip        Kestra's flow export
    configmap.yaml   the live ConfigMap kestra-config (re-appliable manifest)
    values.yaml      the environment's values, rendered with secrets redacted
    storage/...      Kestra's internal-storage objects under their original keys, with
    storage-index.json / storage-refs.json  (see workflows/backup/storage_set.py)
    secrets.age      the env's Secrets sealed with age to backup.recipients (only with
                     recipients; see :mod:`kestra_ops.workflows.backup.sealed`)
    manifest.json    written LAST

A set without ``manifest.json`` is incomplete and never counts (not listed as restorable, never
the "newest" set). A set dated more than :data:`FUTURE_SKEW` after now (a wrong clock where it
was taken, or a name made up) is ``future``: never ``latest`` nor the drill's set, flagged by
list and verify, and left out of prune's counts. The manifest (``MANIFEST_VERSION`` 2; a
version 1 manifest is the same without ``storage`` and ``versions``) holds::

    {"version": 2, "env": "dev", "set": "20261124T041500Z", "status": "complete",
     "created": "2026-11-24T04:15:00Z", "finished": "...", "tool_version": "...",
     "included": ["db", "flows", "config"],
     "postgres": {"server_version": "15.14", "database": "kestra"} | null,
     "kestra": {"version": "1.3.2"} | null,
     "artefacts": {"db.dump.zst": {"size": N, "sha256": "...", "raw_size": N,
                                   "compression": "zstd"}, ...},
     "storage": {"objects": N, "bytes": N, "include_executions": false,
                 "copy": "server-side" | "streamed" | "mixed", "index": "storage-index.json",
                 "refs": "storage-refs.json" | null (no metadata tables: not cross-checked),
                 "tables": {"kv_metadata": N | null, "namespace_file_metadata": N | null},
                 "tenant": "main", "prefix": "storage/", "streamed_bytes": N} (with storage),
     "versions": {"kestra": "1.3.2", "postgres": "15.14", "chart": "kestra-0.1.0",
                  "image": "...", "image_digest": "sha256:..."} (each null when unknown),
     "timings": {"db": 1.2, "flows": 0.1, "config": 0.2, "storage": 0.4, "total": 1.9},
     "secrets": {"sealed": true, "recipients": [...], "secrets": [names],
                 "keys": {name: [keys]}, "size": N, "sha256": "..."}
                | {"sealed": false, "reason": "..."}}     (component "secrets"; no values)

The storage copy starts once pg_dump has finished dumping the snapshot in which the metadata
rows naming objects were read (backup/run.py): Kestra saves a KV row before its object
(StorageKVBackend.put), so an object a dumped row names has been written before the copy lists
the bucket, unless it was purged meanwhile (then verify reports the row's object missing).

Prune (another module) relies only on :func:`list_sets` and :func:`delete_set`.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field

from kestra_ops.errors import InvalidInput, NotFound

PREFIX = "backups"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
MANIFEST = "manifest.json"
DB = "db.dump.zst"
FLOWS = "flows.zip"
CONFIGMAP = "configmap.yaml"
VALUES = "values.yaml"
SECRETS = "secrets.age"
STORAGE_INDEX, STORAGE_REFS = "storage-index.json", "storage-refs.json"  # see storage_set
ARTEFACTS = {"db": (DB,), "flows": (FLOWS,), "config": (CONFIGMAP, VALUES),
             "storage": (STORAGE_INDEX, STORAGE_REFS), "secrets": (SECRETS,)}
WHAT = ("db", "flows", "config", "storage", "secrets")
MANIFEST_VERSION = 2  # 2: "storage" and "versions"; sets of version 1 are read alike
FUTURE_SKEW = datetime.timedelta(minutes=5)
_STAMP = re.compile(r"^\d{8}T\d{6}Z$")


def env_prefix(env: str) -> str:
    return f"{PREFIX}/{env}/"


def set_prefix(env: str, name: str) -> str:
    return f"{PREFIX}/{env}/{name}/"


def key(env: str, name: str, artefact: str) -> str:
    return f"{set_prefix(env, name)}{artefact}"


def stamp(now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.astimezone(datetime.timezone.utc).strftime(STAMP_FORMAT)


def parse_stamp(name: str) -> datetime.datetime:
    if not _STAMP.match(name):
        raise InvalidInput(f"backup set {name!r}: expected a UTC timestamp like 20261124T041500Z")
    return datetime.datetime.strptime(name, STAMP_FORMAT).replace(tzinfo=datetime.timezone.utc)


def parse_what(text: str | None) -> tuple[str, ...]:
    """``db,flows,config`` (any subset, any order) -> the canonical tuple."""
    if not text:
        return WHAT
    parts = {p.strip() for p in text.split(",") if p.strip()}
    unknown = sorted(parts - set(WHAT))
    if unknown or not parts:
        raise InvalidInput(f"--what {text!r}: expected a comma list of {', '.join(WHAT)}")
    return tuple(w for w in WHAT if w in parts)


@dataclass
class BackupSet:
    name: str                      # the UTC stamp
    time: datetime.datetime
    complete: bool                 # manifest.json present (and readable, status complete)
    manifest: dict | None = None
    objects: dict[str, int] = field(default_factory=dict)  # artefact -> size as listed
    future: bool = False           # dated after now + FUTURE_SKEW (see the module doc)
    location: str = "backup"       # "backup" (the destination) or "legacy" (backup/locations.py)

    @property
    def size(self) -> int:
        return sum(self.objects.values())

    @property
    def included(self) -> list[str]:
        return list((self.manifest or {}).get("included") or [])

    def to_dict(self) -> dict:
        m = self.manifest or {}
        return {"name": self.name, "time": self.time.isoformat().replace("+00:00", "Z"),
                "complete": self.complete, "included": self.included, "size": self.size,
                "objects": dict(self.objects),
                "postgres_version": (m.get("postgres") or {}).get("server_version"),
                "kestra_version": (m.get("kestra") or {}).get("version"),
                "status": m.get("status") if m else "incomplete", "future": self.future,
                "location": self.location}


def is_future(time: datetime.datetime, now: datetime.datetime | None = None) -> bool:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return time > now + FUTURE_SKEW


def usable(s: BackupSet) -> bool:
    """Complete and not dated in the future: a set that may be ``latest``."""
    return s.complete and not s.future


def future_warning(s: BackupSet) -> str:
    return (f"backup set {s.name} is dated in the future (more than "
            f"{int(FUTURE_SKEW.total_seconds() // 60)} min after now): it is never used as "
            "latest and prune does not count it; check the clock of the host that took it")


def list_sets(storage, bucket: str, env: str, *, manifests: bool = True,
              now: datetime.datetime | None = None) -> list[BackupSet]:
    """Every set of ``env`` in ``bucket``, newest first. ``complete`` is True only for sets whose
    manifest.json exists (and, with ``manifests``, parses with status "complete"); ``future``
    for those dated after ``now`` (default: the clock) + FUTURE_SKEW."""
    prefix = env_prefix(env)
    sets: dict[str, BackupSet] = {}
    for obj in storage.list_objects(bucket, prefix=prefix):
        rest = obj.name[len(prefix):]
        name, _, artefact = rest.partition("/")
        if not artefact or "/" in artefact or not _STAMP.match(name):
            continue
        if name not in sets:
            time = parse_stamp(name)
            sets[name] = BackupSet(name, time, False, future=is_future(time, now))
        s = sets[name]
        s.objects[artefact] = obj.size or 0
    for s in sets.values():
        if MANIFEST not in s.objects:
            continue
        if not manifests:
            s.complete = True
            continue
        try:
            s.manifest = read_manifest(storage, bucket, env, s.name)
        except (InvalidInput, NotFound):
            continue
        s.complete = s.manifest.get("status") == "complete"
    return sorted(sets.values(), key=lambda s: s.name, reverse=True)


def newest_complete(storage, bucket: str, env: str) -> BackupSet:
    """The newest complete set that is not dated in the future."""
    sets = list_sets(storage, bucket, env)
    for s in sets:
        if usable(s):
            return s
    future = [s.name for s in sets if s.complete and s.future]
    raise NotFound(f"no complete backup set for {env} in bucket {bucket}" + (
        f" (dated in the future, not used as latest: {', '.join(future)})" if future else ""),
        hint=f"take one with: kestra-ops backup run --env {env}")


def get_set(storage, bucket: str, env: str, name: str) -> BackupSet:
    """One set by name (``latest`` = the newest complete set not dated in the future); must be
    complete. A future set named explicitly is returned (``s.future``: the caller warns)."""
    if name == "latest":
        return newest_complete(storage, bucket, env)
    parse_stamp(name)
    for s in list_sets(storage, bucket, env):
        if s.name == name:
            if not s.complete:
                raise NotFound(f"backup set {name} of {env} is incomplete (no manifest.json): "
                               "it cannot be used")
            return s
    raise NotFound(f"backup set {name} not found under s3://{bucket}/{env_prefix(env)}",
                   hint=f"list them with: kestra-ops backup list --env {env}")


def read_manifest(storage, bucket: str, env: str, name: str) -> dict:
    return read_json(storage, bucket, env, name, MANIFEST, "artefacts", dict)


def read_json(storage, bucket: str, env: str, name: str, artefact: str, field: str,
              kind: type) -> dict:
    """A JSON artefact of set ``name`` that is an object whose ``field`` is a ``kind``;
    InvalidInput (naming the set and the artefact) otherwise, NotFound when it is missing."""
    data = read_small(storage, bucket, key(env, name, artefact))
    try:
        doc = json.loads(data)
    except ValueError:
        raise InvalidInput(f"backup set {name}: {artefact} is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get(field), kind):
        raise InvalidInput(f"backup set {name}: {artefact} has no {field}")
    return doc


def write_manifest(storage, bucket: str, env: str, name: str, manifest: dict) -> None:
    put_bytes(storage, bucket, key(env, name, MANIFEST),
              json.dumps(manifest, indent=2, sort_keys=True).encode(), "application/json")


def read_small(storage, bucket: str, object_key: str) -> bytes:
    """A whole (small) object's bytes; NotFound when it does not exist."""
    return storage.get_bytes(bucket, object_key)


def put_bytes(storage, bucket: str, object_key: str, data: bytes,
              content_type: str = "application/octet-stream") -> None:
    storage.put_bytes(bucket, object_key, data, content_type)


def delete_set(storage, bucket: str, env: str, name: str) -> int:
    """Remove every object of a set, manifest FIRST (so a half-deleted set reads as
    incomplete, never as a complete set with missing artefacts); returns the count."""
    parse_stamp(name)
    prefix = set_prefix(env, name)
    objs = sorted((o.name for o in storage.list_objects(bucket, prefix=prefix)),
                  key=lambda k: (not k.endswith("/" + MANIFEST), k))
    for k in objs:
        storage.remove_object(bucket, k)
    return len(objs)
