"""Where backup sets live: the backup destination, and the old (legacy) location.

* the **destination** (``backup``): ``env.backup_target`` -- backup.endpoint (default the env's
  MinIO), backup.bucket (default ``kestra-<env>-backups``) -- with the backup key
  (KESTRA_OPS_BACKUP_ACCESS_KEY / _SECRET_KEY, see :func:`kestra_ops.credentials.backup_key`).
  ``backup run`` writes only here; ``backup prune`` prunes only here unless told.
* the **legacy** location: ``backups/<env>/`` in Kestra's own bucket (minio.bucket) read with
  Kestra's MinIO key, where sets were written before the destination existed. Its sets are still
  listed (LOCATION ``legacy``), verifiable and restorable by name, and ``latest`` is the newest
  usable set of both; ``backup migrate-location`` moves them. It is skipped when it is the same
  place as the destination (backup.bucket set to Kestra's bucket) or when no MinIO key is set.

The set layout (``backups/<env>/<stamp>/...``) is the same in both places
(:mod:`kestra_ops.workflows.backup.sets`).
"""

from __future__ import annotations

from dataclasses import dataclass

from kestra_ops.errors import KestraOpsError, NotFound
from kestra_ops.workflows.backup import sets as bs

BACKUP, LEGACY = "backup", "legacy"


@dataclass
class Place:
    location: str  # BACKUP or LEGACY
    storage: object
    bucket: str
    warning: str = ""  # the destination read with Kestra's key (no backup key set)

    def where(self, env: str) -> str:
        return f"s3://{self.bucket}/{bs.env_prefix(env)}"


def destination(env, *, environ=None) -> Place:
    """The backup destination (ConfigError when it is not configured)."""
    from kestra_ops.wiring import backup_storage_or_fail

    storage, bucket, warning = backup_storage_or_fail(
        env, f"backups of {env.name} need object storage", environ=environ)
    return Place(BACKUP, storage, bucket, warning)


def legacy(env, *, environ=None) -> tuple[Place | None, str]:
    """(the legacy location, "") or (None, why it is not looked at)."""
    from kestra_ops.wiring import storage_for_env

    endpoint, _secure, bucket = env.backup_target
    if not env.minio_bucket:
        return None, "no Kestra bucket (minio.bucket)"
    if bucket == env.minio_bucket and (env.backup_endpoint or env.minio_endpoint) == \
            env.minio_endpoint:
        return None, "backup.bucket is Kestra's bucket: no separate legacy location"
    storage, why = storage_for_env(env, environ=environ)
    if storage is None:
        return None, why
    return Place(LEGACY, storage, env.minio_bucket), ""


def data_storage_for(env):
    """(Storage, bucket) of Kestra's data bucket (minio.bucket, Kestra's MinIO key): what the
    storage-objects copy of a backup reads from."""
    from kestra_ops.wiring import storage_or_fail

    return storage_or_fail(env, f"Kestra's storage of {env.name}"), env.minio_bucket


def kestra_storage_for(env, values: dict | None):
    """(Storage, bucket) of Kestra's internal storage for the storage copy of a backup, with
    what Kestra's own values say (``kestra.storage``, minio or s3:
    :mod:`kestra_ops.workflows.backup.kestra_store`) reconciled with kestra-ops.yaml:

    * a store type kestra-ops cannot copy, or an s3 ``path`` prefix: InvalidInput;
    * the values' bucket is the one copied; minio.bucket set to another one: InvalidInput
      (the copy would read a bucket Kestra does not use);
    * reached as kestra-ops.yaml's minio.* say (endpoint, secure, region, path_style,
      ca_file); without minio.endpoint, at the values' endpoint, TLS, region and addressing.

    Without values (None) or a kestra.storage there: :func:`data_storage_for`, as before."""
    import dataclasses

    from kestra_ops.errors import InvalidInput
    from kestra_ops.workflows.backup import kestra_store

    store = kestra_store.from_values(values)
    if store is None:
        return data_storage_for(env)
    if store.type not in kestra_store.COPIED_TYPES:
        raise InvalidInput(f"Kestra's internal storage of {env.name} is type {store.type!r} "
                           "(kestra.storage.type): the storage copy of a backup reads minio "
                           "or s3 stores only", hint="leave storage out: --what db,flows,config")
    if store.prefix:
        raise InvalidInput(f"{store.where}.path is {store.prefix!r}: Kestra's objects live "
                           "under that prefix, and the storage copy of a backup reads the "
                           "tenant root (main/) only")
    if store.endpoint and "@" in store.endpoint:  # never into a URL that errors would show
        raise InvalidInput(f"{store.where}.endpoint carries credentials (user:password@): "
                           "Kestra's key belongs in accessKey / secretKey placeholders")
    changes: dict = {}
    if store.bucket and store.bucket != env.minio_bucket:
        if env.sources.get("minio_bucket") not in (None, "default"):
            raise InvalidInput(f"Kestra of {env.name} stores into bucket {store.bucket} "
                               f"({store.where}.bucket in its values) but kestra-ops' "
                               f"minio.bucket is {env.minio_bucket}: the storage copy would "
                               "read a bucket Kestra does not use",
                               hint=f"set minio.bucket: {store.bucket} for {env.name}")
        changes["minio_bucket"] = store.bucket
    if not env.minio_endpoint and store.endpoint:
        changes.update(minio_endpoint=store.endpoint, minio_secure=store.secure)
        if env.minio_region is None:
            changes["minio_region"] = store.region
        if env.minio_path_style is None:
            changes["minio_path_style"] = store.path_style
    return data_storage_for(dataclasses.replace(env, **changes) if changes else env)


def key_warnings(env=None, *, environ=None) -> list[str]:
    """The backup key warning (Kestra's key standing in for the backup key), if any."""
    from kestra_ops import credentials as creds

    _a, _s, warning, _why = creds.backup_key(creds.Resolver(environ=environ))
    return [warning] if warning else []


def list_place(place: Place, env: str, *, now=None) -> list[bs.BackupSet]:
    """The sets of ``place``, each tagged with its location; none when the bucket is missing."""
    if not place.storage.bucket_exists(place.bucket):
        return []
    found = bs.list_sets(place.storage, place.bucket, env, now=now)
    for s in found:
        s.location = place.location
    return found


def list_all(env, *, now=None, environ=None) -> tuple[list[bs.BackupSet], list[Place],
                                                      list[str], list[str]]:
    """(sets newest first -- the destination's first on equal names --, places looked at,
    warnings, notes). A legacy location that cannot be listed is a warning, not a failure."""
    dest = destination(env, environ=environ)
    places, warnings, notes = [dest], [dest.warning] if dest.warning else [], []
    if not dest.storage.bucket_exists(dest.bucket):
        warnings.append(f"backup bucket {dest.bucket} does not exist at {dest.storage.url} "
                        f"(create it with: kestra-ops minio setup --env {env.name})")
        sets = []
    else:
        sets = list_place(dest, env.name, now=now)
    old, why = legacy(env, environ=environ)
    if old is None:
        notes.append(f"legacy location not looked at: {why}")
    else:
        try:
            found = list_place(old, env.name, now=now)
        except KestraOpsError as err:
            warnings.append(f"legacy location {old.where(env.name)} not listed: {err}")
        else:
            places.append(old)
            sets += found
            if found:
                warnings.append(f"{len(found)} set(s) in the legacy location "
                                f"{old.where(env.name)} (Kestra's own bucket): move them with "
                                f"`kestra-ops backup migrate-location --env {env.name}`")
    order = {BACKUP: 0, LEGACY: 1}
    sets.sort(key=lambda s: (s.name, -order.get(s.location, 0)), reverse=True)
    return sets, places, warnings, notes


def find_set(env, name: str, *, storage=None, environ=None) -> tuple[Place, bs.BackupSet]:
    """(place, set) of set ``name`` (or ``latest``: the newest usable set of both locations; a
    set in both is taken from the destination). ``storage`` given: the destination's bucket
    through it, and no legacy look-up (tests, the release's pre-backup)."""
    if storage is not None:
        place = Place(BACKUP, storage, env.backup_target[2])
        s = bs.get_set(storage, place.bucket, env.name, name)
        s.location = BACKUP
        return place, s
    if name != "latest":
        bs.parse_stamp(name)
    sets, places, warnings, _notes = list_all(env, environ=environ)
    by_location = {p.location: p for p in places}
    unlisted = "".join(f"; {w}" for w in warnings if "not listed" in w)
    if name == "latest":
        for s in sets:
            if bs.usable(s):
                return by_location[s.location], s
        future = [s.name for s in sets if s.complete and s.future]
        raise NotFound(f"no complete backup set for {env.name} in " +
                       " or ".join(p.where(env.name) for p in places) + (
                           f" (dated in the future, not used as latest: {', '.join(future)})"
                           if future else "") + unlisted,
                       hint=f"take one with: kestra-ops backup run --env {env.name}")
    for s in sets:
        if s.name == name:
            if not s.complete:
                raise NotFound(f"backup set {name} of {env.name} ({s.location}) is incomplete "
                               "(no manifest.json): it cannot be used")
            return by_location[s.location], s
    raise NotFound(f"backup set {name} not found under " +
                   " or ".join(p.where(env.name) for p in places) + unlisted,
                   hint=f"list them with: kestra-ops backup list --env {env.name}")


def list_report(env, *, environ=None):
    """backup list: ENV's sets of both locations, newest first, as a table; JSON ``sets``
    (BackupSet.to_dict, with ``location`` "backup" or "legacy")."""
    from kestra_ops.results import Report, Table

    sets, places, warnings, notes = list_all(env, environ=environ)
    dest = places[0]
    report = Report("backup list", env.name, title=f"backup list {env.name} "
                    f"({dest.where(env.name)})", outcome="listed",
                    data={"sets": [s.to_dict() for s in sets],
                          "locations": {p.location: p.where(env.name) for p in places}})
    report.warnings += warnings
    report.details += notes
    if not sets:
        report.message = "no backup sets under " + " or ".join(p.where(env.name)
                                                               for p in places)
        return report
    report.tables.append(Table(["SET", "STATUS", "LOCATION", "SIZE", "INCLUDED", "POSTGRES"], [
        [s.name, "future" if s.future else "complete" if s.complete else "incomplete",
         s.location, f"{s.size / 1e6:.1f}MB", ",".join(s.included) or "-",
         s.to_dict()["postgres_version"] or "-"] for s in sets]))
    complete = sum(1 for s in sets if bs.usable(s))
    future = [s for s in sets if s.future]
    report.warnings += [bs.future_warning(s) for s in future]
    report.message = (f"{len(sets)} set(s), {complete} complete" +
                      (f", {len(future)} dated in the future" if future else "") +
                      ", newest first")
    return report

