"""Put a backup set's database back OVER the live database: the database half of rolling back
a failed irreversible upgrade.

Kestra 2.0's start-up migrations drop tables (``templates``, ``executorstate``, the 1.x
``queues`` table and its type ``queue_type``) and columns, rewrite rows and create new tables
(``locks``, ``task_outputs``, ...) [kestra-io/kestra
jdbc-postgres/src/main/resources/migrations/2.0.01-schema-postgres.sql and
2.0.02-queue-drop-legacy-postgres.sql]; Kestra says the pre-upgrade backup is the only way back
[kestra-io/docs src/contents/docs/11.migration-guide/v2.0.0/index.mdx, "Back up your
database"]. ``pg_restore --clean`` alone would keep what the upgrade created (it drops only the
dump's own objects), so the live schema ``public`` is emptied first
(:func:`kestra_ops.adapters.postgres_reset.reset_schema`, one transaction), then the dump is
restored into it (``pg_restore --single-transaction``): the database ends up as in the set.

Everything that can be checked is checked BEFORE the reset, so a refusal changes nothing: the
set has a dump and it is in the bucket; a ``pg_restore`` fitting the server is installed; the
database has no schema but ``public`` (the reset covers only ``public``: another schema would
make the restore fail after the reset); no other session is connected (stop Kestra first);
the dump is read once in full (size and sha256 against the manifest, its table of contents
through ``pg_restore --list``). Only the restore itself can then fail after the reset (the
object changed since, a role its grants name is gone, the connection lost...): the error says
the database is EMPTY and gives the command that retries the restore.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from kestra_ops.adapters import postgres as pg
from kestra_ops.adapters import postgres_reset as reset
from kestra_ops.errors import Conflict, KestraOpsError, NotFound, OperationFailed
from kestra_ops.results import Outcome
from kestra_ops.workflows.backup import restore as br
from kestra_ops.workflows.backup import sets as bs

SCHEMA = "public"  # where Kestra's JDBC backend keeps its tables (the database's default)
SESSION_WAIT = 10.0  # seconds


def restore_in_place(storage, bucket: str, env_name: str, s: bs.BackupSet, url: pg.DatabaseURL,
                     *, rec=None, lock_timeout: float = reset.LOCK_TIMEOUT,
                     session_wait: float = SESSION_WAIT) -> str:
    """Replace the content of ``url``'s database by set ``s``'s dump (see the module doc);
    ``rec`` (a :class:`kestra_ops.results.Recorder`) records the steps. Other sessions are
    waited for up to ``session_wait`` seconds (Kestra's pods still terminating, a backend that
    just closed), then refused. Returns one line:
    ``database 'kestra' reset (12 tables, 1 type) and restored from SET (N bytes, sha256 ok)``.
    NotFound / Conflict / OperationFailed before the reset: nothing changed. OperationFailed
    after it: the message says the database is EMPTY and how to retry."""
    expected = (s.manifest or {}).get("artefacts", {}).get(bs.DB)
    if expected is None:
        raise NotFound(f"backup set {s.name} has no {bs.DB} (it included "
                       f"{', '.join(s.included) or 'nothing'}): it cannot restore a database")
    if bs.DB not in s.objects:
        raise NotFound(f"backup set {s.name}: {bs.DB} is in its manifest but missing from "
                       f"s3://{bucket}/{bs.set_prefix(env_name, s.name)}")
    shown = f"database {url.dbname!r} at {url}"
    with _step(rec, f"check {shown} and {bs.DB} of {s.name}") as step:
        pg.find_binary("pg_restore", pg.server_major(url))
        others = reset.other_schemas(url, SCHEMA)
        if others:
            raise Conflict(f"{shown} has schemas besides {SCHEMA}: {', '.join(others)}; the "
                           f"in-place restore empties only {SCHEMA}: nothing was changed",
                           hint="restore into a new database with kestra-ops backup restore "
                                "--to-database")
        sessions = _sessions_gone(url, session_wait, rec)
        if sessions:
            raise Conflict(f"{shown} is in use: {len(sessions)} other session(s) connected "
                           f"({'; '.join(sessions[:3])}): nothing was changed: stop Kestra "
                           "first",
                           hint="scale its Deployments to 0, then retry")
        toc: list[str] = []
        ok, detail = br.verify_dump(storage, bucket, bs.key(env_name, s.name, bs.DB), expected,
                                    toc)
        if not ok:
            raise OperationFailed(f"backup set {s.name}: {bs.DB}: {detail}: nothing was "
                                  "changed")
        step.detail = detail
    with _step(rec, f"reset schema {SCHEMA} of {shown}") as step:
        dropped = reset.reset_schema(url, SCHEMA, lock_timeout=lock_timeout)
        step.detail = f"dropped {', '.join(dropped) or 'nothing (it was empty)'}"
    try:
        with _step(rec, f"database {s.name} -> {url}") as step:
            step.detail = br.feed_restore(storage, bucket, env_name, s, url, clean=False)
    except KestraOpsError as err:
        raise OperationFailed(after_reset(env_name, s, url, str(err))) from None
    except Exception as err:  # not one of ours: its text is not known to be free of secrets
        raise OperationFailed(after_reset(env_name, s, url, f"internal error "
                                          f"({type(err).__name__})")) from err
    except KeyboardInterrupt:
        if rec is not None:
            rec.info(after_reset(env_name, s, url, "interrupted (Ctrl-C)"))
        raise
    return (f"database {url.dbname!r} reset ({', '.join(dropped) or 'it held nothing'}) and "
            f"restored from {s.name} ({step.detail})")


def _sessions_gone(url: pg.DatabaseURL, wait: float, rec) -> list[str]:
    """The other sessions still there after up to ``wait`` seconds ([] as soon as none is)."""
    deadline = time.monotonic() + wait
    while True:
        sessions = reset.other_sessions(url)
        if not sessions or time.monotonic() >= deadline:
            return sessions
        if rec is not None:
            rec.update(f"waiting for {len(sessions)} other session(s) to close")
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


def retry_command(env_name: str, s: bs.BackupSet, url: pg.DatabaseURL) -> str:
    """The command that restores the set again; ``url`` shown without its password."""
    return f"kestra-ops backup restore --env {env_name} {s.name} --to-database {url} --clean"


def after_reset(env_name: str, s: bs.BackupSet, url: pg.DatabaseURL, why: str) -> str:
    """The message for a restore that failed after the reset: the database's state (looked at
    again when it can be) and the retry command; never the password (``why`` must not hold
    it: the adapters' messages do not)."""
    try:
        empty = pg.is_empty(url)
    except KestraOpsError:
        empty = True  # not reachable now: the reset committed and the restore did not
    state = ("is now EMPTY (its schema public was reset before the restore failed)" if empty
             else "was reset and holds an UNVERIFIED restore (not known to equal the set)")
    password = (" (the password is not shown: put it back in the URL or set PGPASSWORD)"
                if url.password else "")
    # no url.mask() here: every part is free of the password already (str(url) drops it, the
    # adapters mask their errors), and masking a short password would garble the command
    return (f"restore of {s.name} into database {url.dbname!r} failed: {why}; the database "
            f"{state}. Retry with: {retry_command(env_name, s, url)}{password}")


@contextmanager
def _step(rec, name: str):
    if rec is None:
        yield Outcome()
    else:
        with rec.step(name) as outcome:
            yield outcome
