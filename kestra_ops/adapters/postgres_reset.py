"""PostgreSQL: empty one schema in place (for restoring a backup over a database that a failed
upgrade changed), and the checks that go before it.

:func:`reset_schema` drops, in ONE transaction, every table (CASCADE), view, materialized view,
sequence, function/procedure/aggregate and user-defined type (enum, composite, domain, range)
of a schema. It leaves the schema itself, its extensions and every object that belongs to an
extension (a ``pg_depend`` row of type ``'e'``) in place, and so never touches the array types
and row types PostgreSQL makes by itself (they go with their type / table). Names come from
the catalogs and are quoted by psycopg (:class:`psycopg.sql.Identifier`); a routine is named
by its ``regprocedure`` text, which the server itself quotes and qualifies (the
``search_path`` is set to ``pg_catalog`` only, so nothing of the schema is "visible" and every
name comes out schema-qualified).

``lock_timeout`` bounds the wait for each lock: a Kestra still running (holding a lock on one
of its tables) gives :class:`Conflict` instead of a hang, and the transaction rolls back:
nothing is dropped unless everything is. ``CASCADE`` also drops what other schemas built on
these objects (a view elsewhere over one of its tables): callers that must not lose such
objects check first (:func:`other_schemas`).
"""

from __future__ import annotations

from kestra_ops.adapters.postgres import DatabaseURL, connect
from kestra_ops.errors import Conflict, OperationFailed, PermissionDenied, Unreachable

LOCK_TIMEOUT = 30.0  # seconds

# pg_depend: the object belongs to an extension (deptype 'e') or is part of another object
# ('i': an identity column's sequence, a range type's constructors), dropped with it
_NOT_EXT = ("NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{cat}'::regclass "
            "AND d.objid = {oid} AND d.deptype IN ('e', 'i'))")

# kind label (plural: + "s") and the statement, in the order they are dropped: tables first
# (their sequences, views and row types go with them), types last
_RELKINDS = {"r": "table", "p": "table", "f": "foreign table", "v": "view",
             "m": "materialized view", "S": "sequence"}
_DROP = {"table": "DROP TABLE IF EXISTS {} CASCADE",
         "foreign table": "DROP FOREIGN TABLE IF EXISTS {} CASCADE",
         "view": "DROP VIEW IF EXISTS {} CASCADE",
         "materialized view": "DROP MATERIALIZED VIEW IF EXISTS {} CASCADE",
         "sequence": "DROP SEQUENCE IF EXISTS {} CASCADE",
         "function": "DROP ROUTINE IF EXISTS {} CASCADE",
         "procedure": "DROP ROUTINE IF EXISTS {} CASCADE",
         "type": "DROP TYPE IF EXISTS {} CASCADE"}
_ORDER = ("table", "foreign table", "view", "materialized view", "sequence", "function",
          "procedure", "type")

_RELATIONS = ("SELECT c.relkind::text, c.relname FROM pg_class c "
              "JOIN pg_namespace n ON n.oid = c.relnamespace "
              "WHERE n.nspname = %s AND c.relkind IN ('r','p','f','v','m','S') AND "
              + _NOT_EXT.format(cat="pg_class", oid="c.oid") + " ORDER BY c.relname")
_ROUTINES = ("SELECT p.prokind::text, p.oid::regprocedure::text FROM pg_proc p "
             "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s AND "
             + _NOT_EXT.format(cat="pg_proc", oid="p.oid") + " ORDER BY 2")
# enum, domain, range, and composite types made by CREATE TYPE (their pg_class row is kind 'c';
# a table's row type is kind 'r'...); arrays and multiranges go with their type
_TYPES = ("SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
          "LEFT JOIN pg_class c ON c.oid = t.typrelid WHERE n.nspname = %s AND "
          "(t.typtype IN ('e','d','r') OR (t.typtype = 'c' AND c.relkind = 'c')) AND "
          + _NOT_EXT.format(cat="pg_type", oid="t.oid") + " AND (c.oid IS NULL OR "
          + _NOT_EXT.format(cat="pg_class", oid="c.oid") + ") ORDER BY t.typname")

_SYSTEM = ("n.nspname NOT IN ('pg_catalog', 'information_schema') "
           "AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%' "
           "AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%%'")


def plural(count: int, kind: str) -> str:
    return f"{count} {kind}{'' if count == 1 else 's'}"


def _objects(conn, schema: str) -> list[tuple[str, object]]:
    """(kind, name) in drop order; name: a :class:`psycopg.sql.Composable`."""
    from psycopg import sql

    found: dict[str, list] = {kind: [] for kind in _ORDER}
    for relkind, name in conn.execute(_RELATIONS, (schema,)).fetchall():
        found[_RELKINDS[relkind]].append(sql.Identifier(schema, name))
    for prokind, signature in conn.execute(_ROUTINES, (schema,)).fetchall():
        # the server's own quoting of "schema"."name"(argument types): see the module doc
        found["procedure" if prokind == "p" else "function"].append(sql.SQL(signature))
    for (name,) in conn.execute(_TYPES, (schema,)).fetchall():
        found["type"].append(sql.Identifier(schema, name))
    return [(kind, name) for kind in _ORDER for name in found[kind]]


def reset_schema(url: DatabaseURL, schema: str = "public", *,
                 lock_timeout: float = LOCK_TIMEOUT) -> list[str]:
    """Drop every object of ``schema`` (see the module doc) in one transaction; returns what
    was dropped, counted per kind (``["12 tables", "1 type"]``; ``[]``: it held nothing).
    Conflict when a lock is not granted within ``lock_timeout`` seconds, PermissionDenied when
    the role may not drop an object (both name it; nothing is dropped then)."""
    import psycopg
    from psycopg import sql

    shown = f"database {url.dbname!r} at {url}"
    conn = connect(url)
    counts: dict[str, int] = {}
    current, phase = None, "reading the catalog"
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('search_path', 'pg_catalog', true), "
                         "set_config('lock_timeout', %s, true)",
                         (f"{max(1, int(lock_timeout * 1000))}ms",))
            for kind, name in _objects(conn, schema):
                current, phase = (kind, name), "dropping"
                conn.execute(sql.SQL(_DROP[kind]).format(name))
                counts[kind] = counts.get(kind, 0) + 1
            current, phase = None, "committing"
    except psycopg.Error as err:
        raise _error(conn, url, shown, err, current, phase, lock_timeout) from None
    finally:
        conn.close()
    return [plural(counts[kind], kind) for kind in _ORDER if counts.get(kind)]


def _error(conn, url: DatabaseURL, shown: str, err, current, phase: str,
           lock_timeout: float) -> Exception:
    """The typed error for a failed reset; the transaction has rolled back (nothing dropped)
    unless the connection broke while committing."""
    import psycopg

    what = _name(conn, current)
    if isinstance(err, (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected)):
        why = (f"{what} stayed locked by another session for {lock_timeout:g}s"
               if isinstance(err, psycopg.errors.LockNotAvailable) else
               f"a deadlock with another session while dropping {what}")
        return Conflict(f"{shown} is in use: {why}{_sessions_text(conn)}; nothing was "
                        "dropped: stop Kestra first", hint="scale its Deployments to 0, then "
                        "retry")
    if isinstance(err, psycopg.errors.InsufficientPrivilege):
        return PermissionDenied(f"{shown}: may not drop {what}: {_first_line(url, err)}; "
                                "nothing was dropped",
                                hint="connect as the objects' owner (or a superuser)")
    if conn.broken:
        where = f"dropping {what}" if phase == "dropping" else phase
        outcome = ("whether the drops were committed is unknown: look at the database"
                   if phase == "committing" else "nothing was dropped")
        return Unreachable(f"PostgreSQL {url}: connection lost while {where}: "
                           f"{_first_line(url, err)}; {outcome}")
    doing = f"drop {what}" if phase == "dropping" else phase
    return OperationFailed(f"{shown}: {doing}: {_first_line(url, err)}; nothing was dropped")


def _name(conn, current) -> str:
    if current is None:
        return "an object"
    kind, name = current
    try:
        return f"{kind} {name.as_string(conn)}"
    except Exception:  # the connection is gone: the bare name will do
        return kind


def _first_line(url: DatabaseURL, err) -> str:
    return url.mask((str(err).strip().splitlines() or ["error"])[0])


def other_sessions(url: DatabaseURL) -> list[str]:
    """The other client sessions connected to ``url``'s database, one short line each
    (``pid 123 user kestra application 'x' state idle``; what the role may not see is left
    out). Empty when there are none."""
    import psycopg

    with connect(url) as conn:
        try:
            return _sessions(conn)
        except psycopg.Error as err:
            raise OperationFailed(f"PostgreSQL {url}: {_first_line(url, err)}") from None


def _sessions(conn) -> list[str]:
    rows = conn.execute(
        "SELECT pid, usename, application_name, state FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend' ORDER BY pid").fetchall()
    out = []
    for pid, user, application, state in rows:
        line = f"pid {pid}" + (f" user {user}" if user else "")
        line += (f" application {application!r}" if application else "")
        out.append(line + (f" state {state}" if state else ""))
    return out


def _sessions_text(conn) -> str:
    """`` (N other session(s): ...)`` seen from ``conn`` (its transaction over), or ""."""
    try:
        found = _sessions(conn)
    except Exception:  # only an addition to the message being raised
        return ""
    if not found:
        return ""
    more = f", +{len(found) - 3} more" if len(found) > 3 else ""
    return f" ({len(found)} other session(s): {'; '.join(found[:3])}{more})"


def other_schemas(url: DatabaseURL, schema: str = "public") -> list[str]:
    """The user schemas of ``url``'s database other than ``schema`` (not PostgreSQL's own, not
    one that belongs to an extension), each with its count of relations:
    ``["audit (3 relations)"]``."""
    import psycopg

    with connect(url) as conn:
        try:
            rows = conn.execute(
                "SELECT n.nspname, (SELECT count(*) FROM pg_class c WHERE c.relnamespace = "
                "n.oid AND c.relkind IN ('r','p','f','v','m','S')) FROM pg_namespace n WHERE "
                + _SYSTEM + " AND n.nspname <> %s AND "
                + _NOT_EXT.format(cat="pg_namespace", oid="n.oid") + " ORDER BY 1",
                (schema,)).fetchall()
        except psycopg.Error as err:
            raise OperationFailed(f"PostgreSQL {url}: {_first_line(url, err)}") from None
    return [f"{name} ({plural(count, 'relation')})" for name, count in rows]
