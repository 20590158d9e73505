"""``backup drill``: restore the newest usable set into a scratch database and compare per-table
row counts with the source (exit 1 on any difference).

A drill never touches a database it did not create:

* by default it creates its own, ``kestra_drill_<UTC time>_<random>`` on the source's server,
  and drops it afterwards, on success, failure and Ctrl-C alike; a name that exists already
  (CREATE DATABASE fails) is not ours and is never dropped;
* a given ``--scratch-url`` is refused (exit 2, nothing written) when it is the source — the
  same host/port/database in the URL, or, however the URL spells it (another address, the unix
  socket), the same database of the same cluster (``pg_control_system()``'s system identifier,
  or the postmaster's start time when that is not readable, and the database's oid and name) —
  or when it is not empty. It is restored into without ``--clean`` and kept afterwards.

The report (JSON) adds ``counts`` (table -> [source, restored]) and ``scratch`` (``database``,
``created``) to those of restore.
"""

from __future__ import annotations

import datetime
import secrets

from kestra_ops.adapters import postgres as pg
from kestra_ops.errors import InvalidInput, KestraOpsError, NotFound
from kestra_ops.results import Recorder
from kestra_ops.workflows.backup import restore as br
from kestra_ops.workflows.backup import sets as bs


def scratch_name() -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    return f"kestra_drill_{now:%Y%m%d%H%M%S}_{secrets.token_hex(4)}"


def check_scratch(source: pg.DatabaseURL, scratch: pg.DatabaseURL) -> None:
    """Refuse (InvalidInput) a scratch database that is the source or is not empty."""
    refused = (f"--scratch-url {scratch} is the source database ({source}): a drill restores "
               "only into a database that is not the source; nothing was changed")
    if scratch.address == source.address:
        raise InvalidInput(refused)
    if pg.identity(scratch).same_database(pg.identity(source)):
        raise InvalidInput(refused + " (the same database of the same cluster)")
    if not pg.is_empty(scratch):
        raise InvalidInput(f"scratch database {scratch.dbname!r} at {scratch} is not empty: a "
                           "drill restores only into an empty database; nothing was changed",
                           hint="omit --scratch-url: the drill then creates (and drops) its own")


def drill(env, *, database_url: str | None = None, scratch_url: str | None = None,
          progress=None, storage=None, namespace: bool = False, identity: str | None = None,
          scratch_bucket: str | None = None, kestra_url: str | None = None,
          insecure: bool = False, timeout: str = "10m", kube=None, helm=None,
          data_storage=None, check_wait: float = 120.0):
    """See the module doc. With ``namespace`` the drill is a whole disaster recovery into a
    scratch namespace (:mod:`kestra_ops.workflows.backup.drill_namespace`). ``identity`` (an age
    identity file): the set's sealed Secrets must open with it, checked before the scratch
    database is made."""
    from kestra_ops.credentials import database_url as resolve
    from kestra_ops.workflows.backup import sealed

    source = resolve(database_url)
    given = pg.DatabaseURL.parse(scratch_url) if scratch_url else None
    s, storage, bucket = _newest_with_db(env, storage)
    if given is not None:
        check_scratch(source, given)
    report = br.report_for("backup drill", env, s)
    sealed.check_identity(report, storage, bucket, env.name, s, identity)
    report.data["counts"] = counts = {}
    rec = Recorder(report, progress)
    created = None
    if given is not None:
        target = given
    else:
        name = scratch_name()
        try:
            target = pg.create_database(source, name)
        except KeyboardInterrupt:
            _drop(source, name, report)  # the name is ours (random): it may have been created
            raise
        created = name
        report.details.append(f"scratch database {created} created")
    report.data["scratch"] = {"database": target.dbname, "created": created is not None}
    try:
        if namespace:
            from kestra_ops.workflows.backup import drill_namespace

            report = drill_namespace.run(
                env, s, report, target, storage=storage, bucket=bucket, identity=identity,
                scratch_bucket=scratch_bucket, kestra_url=kestra_url, insecure=insecure,
                timeout=timeout, kube=kube, helm=helm, data_storage=data_storage,
                progress=progress, check_wait=check_wait)
        else:
            _restore_and_compare(rec, storage, bucket, env, s, source, target, counts)
    except BaseException as err:
        left = _drop(source, created, report) if created else None
        if left and isinstance(err, KestraOpsError):
            raise type(err)(f"{err}; {left}", hint=err.hint) from None
        raise
    verdict = "FAILED: the restored Kestra failed its checks" if namespace else \
        "FAILED: row counts differ"
    if created:
        left = _drop(source, created, report)
        if left:
            report.data["ok"], verdict = False, f"FAILED: {left}"
    else:
        report.details.append(f"scratch database {target.dbname} kept (given by --scratch-url)")
    if namespace:
        return drill_namespace.finish(report, verdict)
    return br.finish(report, verdict)


def _newest_with_db(env, storage):
    """(set, storage, bucket): the newest usable set holding a dump, in the backup destination
    or the legacy location (only the destination's bucket when ``storage`` is given)."""
    from kestra_ops.workflows.backup import locations

    if storage is not None:
        bucket = env.backup_target[2]
        found = [(x, storage, bucket) for x in bs.list_sets(storage, bucket, env.name)]
    else:
        sets, places, _w, _n = locations.list_all(env)
        where = {p.location: p for p in places}
        found = [(x, where[x.location].storage, where[x.location].bucket) for x in sets]
    for x, st, bucket in found:
        if bs.usable(x) and bs.DB in x.manifest["artefacts"]:
            return x, st, bucket
    raise NotFound(f"no complete backup set with a database for {env.name}")


def _restore_and_compare(rec, storage, bucket, env, s, source, target, counts) -> None:
    report = rec.report
    with rec.step(f"restore {s.name} into {target.dbname}") as step:
        step.detail = br.restore_db(storage, bucket, env.name, s, target, clean=False)
        report.details.append(step.detail)
    with rec.step("compare row counts") as step:
        src, dst = pg.row_counts(source), pg.row_counts(target)
        for table in sorted(set(src) | set(dst)):
            a, b = src.get(table), dst.get(table)
            counts[table] = [a, b]
            if a != b:
                report.data["ok"] = False
                report.details.append(f"{table}: source {a}, restored {b}")
        step.detail = f"{len(counts)} tables compared"
        if not report.data["ok"]:
            step.fail()
    report.details.append(f"{len(counts)} tables compared")


def _drop(source: pg.DatabaseURL, name: str, report) -> str | None:
    """Drop our scratch database: None when done, else what is left and how to drop it. A
    Ctrl-C during the drop does not stop it (it is retried once), and is raised once done."""
    interrupted = False
    for _attempt in (1, 2):
        try:
            pg.drop_database(source, name)
            report.details.append(f"scratch database {name} dropped")
            left = None
            break
        except KeyboardInterrupt:
            interrupted = True
            left = f"scratch database {name} NOT dropped (interrupted)"
        except KestraOpsError as err:
            left = f"scratch database {name} NOT dropped: {err}"
            break
    if left:
        left += f"; drop it with: DROP DATABASE \"{name}\""
        report.details.append(left)
    if interrupted:
        raise KeyboardInterrupt()
    return left
