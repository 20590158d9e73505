"""PostgreSQL: psycopg for queries, pg_dump / pg_restore binaries for dumps.

Connection URLs are libpq URIs (``postgresql://user:pass@host:port/db?host=/socket/dir``),
parsed by :mod:`kestra_ops.adapters.postgres_url` (:class:`DatabaseURL`, re-exported here); which
database and password come from :func:`kestra_ops.credentials.database_url` (and, per
database.mode, :mod:`kestra_ops.workflows.backup.database_target`). A password in a URL
(``user:pass@`` or ``?password=``) is never put on a child's command line: the child gets the URL
without it and the password in its own ``PGPASSWORD``, in an environment that holds nothing else
of ours (:mod:`kestra_ops.adapters.childenv`). Every message shown to the user has the password
masked. ``psycopg`` is
imported only when a query runs (~0.2 s).

Binaries: ``pg_dump``/``pg_restore`` on PATH and under /usr/lib/postgresql/*/bin; the lowest
version >= the server's major is preferred (a newer client can dump an older server, never
the reverse), else the highest found.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass

from kestra_ops.adapters import childenv
from kestra_ops.adapters.postgres_url import DatabaseURL  # noqa: F401 - re-exported
from kestra_ops.errors import OperationFailed, PermissionDenied, ToolMissing, Unreachable

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def connect(url: DatabaseURL, *, autocommit: bool = True):
    import psycopg

    try:
        return psycopg.connect(url.conninfo, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as err:
        msg = url.mask(" ".join(str(err).split()))
        cls = PermissionDenied if "authentication" in msg or "permission" in msg else Unreachable
        raise cls(f"PostgreSQL {url}: {msg}") from None


def tcp_reachable(host: str, port: int, timeout: float = 5.0) -> str:
    """"" when a TCP connection to ``host:port`` opens (then closed at once: no credentials,
    no TLS), else why not (one line)."""
    import socket

    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return ""
    except socket.gaierror as err:
        return f"cannot resolve {host}: {err.strerror or err}"
    except OSError as err:
        return err.strerror or str(err) or type(err).__name__


def _query(url: DatabaseURL, sql: str, params=()) -> list[tuple]:
    import psycopg

    with connect(url) as conn:
        try:
            return conn.execute(sql, params).fetchall()
        except psycopg.Error as err:
            raise OperationFailed(f"PostgreSQL {url}: {url.mask(str(err).strip())}") from None


def server_version(url: DatabaseURL) -> str:
    return _query(url, "SHOW server_version")[0][0].split()[0]


def server_major(url: DatabaseURL) -> int:
    return int(_query(url, "SHOW server_version_num")[0][0]) // 10000


_USER_RELS = ("FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
              "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
              "AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%' ")


def is_empty(url: DatabaseURL) -> bool:
    """No table, view, sequence or other relation outside the system schemas."""
    return _query(url, "SELECT count(*) " + _USER_RELS +
                  "AND c.relkind IN ('r','p','v','m','S','f')")[0][0] == 0


def row_counts(url: DatabaseURL) -> dict[str, int]:
    """Exact ``count(*)`` of every user table, keyed ``schema.table``."""
    import psycopg
    from psycopg import sql

    with connect(url) as conn:
        tables = conn.execute("SELECT n.nspname, c.relname " + _USER_RELS +
                              "AND c.relkind IN ('r','p') ORDER BY 1, 2").fetchall()
        out = {}
        for schema, table in tables:
            try:
                q = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema),
                                                                 sql.Identifier(table))
                out[f"{schema}.{table}"] = conn.execute(q).fetchone()[0]
            except psycopg.Error as err:
                raise OperationFailed(f"count rows of {schema}.{table}: {err}") from None
        return out


def _execute(url: DatabaseURL, statement, what: str) -> None:
    import psycopg

    with connect(url) as conn:
        try:
            conn.execute(statement)
        except psycopg.Error as err:
            raise OperationFailed(f"{what} on {url}: {url.mask(str(err).strip())}") from None


def create_database(url: DatabaseURL, name: str) -> DatabaseURL:
    """Create database ``name`` on ``url``'s server; returns its URL. OperationFailed when it
    exists already (then it is not ours) or the role may not create databases."""
    from psycopg import sql

    _execute(url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)),
             f"create database {name!r}")
    return url.with_dbname(name)


def drop_database(url: DatabaseURL, name: str) -> None:
    from psycopg import sql

    _execute(url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
        sql.Identifier(name)), f"drop database {name!r}")


@dataclass(frozen=True)
class Identity:
    """What tells two connections apart: the cluster (``pg_control_system()``'s system
    identifier, None when not readable; the postmaster's start time) and the database (oid,
    name)."""

    system_identifier: int | None
    started: str
    oid: int
    database: str

    def same_database(self, other: "Identity") -> bool:
        """The same database of the same cluster. A cluster is the same when the system
        identifiers are (a copy made from a base backup or snapshot shares it too: refused
        alike), or, one of them unreadable, when the postmaster started at the same
        microsecond."""
        if (self.oid, self.database) != (other.oid, other.database):
            return False
        if self.system_identifier is not None and other.system_identifier is not None:
            return self.system_identifier == other.system_identifier
        return self.started == other.started


def identity(url: DatabaseURL) -> Identity:
    import psycopg

    with connect(url) as conn:
        try:
            oid, name, started = conn.execute(
                "SELECT d.oid, d.datname, pg_postmaster_start_time()::text FROM pg_database d "
                "WHERE d.datname = current_database()").fetchone()
        except psycopg.Error as err:
            raise OperationFailed(f"PostgreSQL {url}: {url.mask(str(err).strip())}") from None
        try:
            system = conn.execute("SELECT system_identifier FROM pg_control_system()"
                                  ).fetchone()[0]
        except psycopg.Error:
            system = None  # not granted to this role (a managed service may revoke it)
    return Identity(None if system is None else int(system), started, int(oid), name)


@functools.lru_cache(maxsize=None)
def binary_version(path: str) -> tuple[int, int]:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10,
                         env=childenv.build()).stdout
    m = _VERSION.search(out)
    return (int(m[1]), int(m[2] or 0)) if m else (0, 0)


def installed(name: str) -> dict[str, tuple[int, int]]:
    """Every ``name`` binary on PATH or under /usr/lib/postgresql/*/bin: real path -> version."""
    found: dict[str, tuple[int, int]] = {}
    for path in [shutil.which(name), *sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))]:
        if path and os.access(path, os.X_OK):
            real = os.path.realpath(path)
            # Debian's pg_wrapper only dispatches to the binaries under /usr/lib/postgresql
            if real not in found and os.path.basename(real) != "pg_wrapper":
                found[real] = binary_version(real)
    known = {path: version for path, version in found.items() if version != (0, 0)}
    return known or found


def find_binary(name: str, server_major: int | None = None) -> str:
    """``pg_dump`` / ``pg_restore``: see the module doc for the choice."""
    found = installed(name)
    if not found:
        raise ToolMissing(f"{name} not found on PATH or under /usr/lib/postgresql/*/bin",
                          hint="install the PostgreSQL client (Debian: apt-get install "
                               "postgresql-client)")
    if server_major is not None:
        fitting = [p for p, v in found.items() if v[0] >= server_major]
        if not fitting:
            best = max(found, key=found.get)
            raise ToolMissing(f"{name} {found[best][0]} is older than the server "
                              f"(PostgreSQL {server_major}); install postgresql-client-"
                              f"{server_major} or newer")
        return min(fitting, key=found.get)
    return max(found, key=found.get)


class Child:
    """A pg_dump / pg_restore child whose stderr is collected in a thread (bounded)."""

    pipe_size = 0  # its stdout pipe's capacity when widened (dump()); 0: not known

    def __init__(self, argv: list[str], url: DatabaseURL, *, stdin=None, stdout=None,
                 env: dict | None = None):
        self.argv = argv
        self.url = url
        self.name = os.path.basename(argv[0])
        self._err: list[bytes] = []
        try:
            self.proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout,
                                         stderr=subprocess.PIPE,
                                         env=url.child_env() if env is None else env,
                                         start_new_session=True)
        except OSError as err:
            raise ToolMissing(f"cannot run {argv[0]}: {err.strerror}") from None
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        size = 0
        for line in self.proc.stderr:
            if size < 64 * 1024:
                self._err.append(line)
                size += len(line)

    def wait(self, timeout: float | None = None) -> int:
        code = self.proc.wait(timeout)
        self._thread.join(5)
        return code

    def stderr(self) -> str:
        text = b"".join(self._err).decode("utf-8", "replace")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return self.url.mask("; ".join(lines[:5]))

    def failure(self, code: int) -> str:
        how = f"killed by signal {-code}" if code < 0 else f"exit {code}"
        detail = self.stderr()
        return f"{self.name} failed ({how})" + (f": {detail}" if detail else "")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.wait(10)
        except subprocess.TimeoutExpired:
            pass


def dump(url: DatabaseURL, *, server_major_version: int | None = None,
         snapshot: str | None = None) -> Child:
    """``pg_dump -Fc -Z0`` of ``url``'s database to the child's stdout (a pipe); with
    ``snapshot`` (a :class:`Snapshot`'s id) it dumps the database as that snapshot saw it."""
    exe = find_binary("pg_dump", server_major_version)
    argv = [exe, "--format=custom", "--compress=0", "--no-password"]
    if snapshot is not None:
        argv += ["--snapshot", snapshot]
    child = Child(argv + ["--dbname", url.url], url, stdout=subprocess.PIPE)
    child.pipe_size = widen_pipe(child.proc.stdout.fileno())
    return child


PIPE_SIZE = 1024 * 1024  # /proc/sys/fs/pipe-max-size's default: allowed without privileges


def widen_pipe(fd: int, size: int = PIPE_SIZE) -> int:
    """Grow the pipe ``fd`` to ``size`` bytes (Linux ``F_SETPIPE_SZ``; either end will do);
    returns its capacity then, 0 where not known (not Linux, not a pipe). pg_dump writes its
    stdout 4 KiB at a time: with the 64 KiB default, the reader wakes for every few writes
    and pg_dump stalls whenever the reader is busy. Refused (EPERM: the user's pipe quota,
    ``fs.pipe-user-pages-soft``) leaves the pipe as it was."""
    try:
        import fcntl

        get, put = fcntl.F_GETPIPE_SZ, fcntl.F_SETPIPE_SZ
    except (ImportError, AttributeError):
        return 0
    try:
        if fcntl.fcntl(fd, get) < size:
            fcntl.fcntl(fd, put, size)
    except OSError:
        pass
    try:
        return fcntl.fcntl(fd, get)
    except OSError:
        return 0


def restore(url: DatabaseURL, *, clean: bool = False,
            server_major_version: int | None = None) -> Child:
    """``pg_restore --no-owner --single-transaction [--clean --if-exists] -d URL`` from stdin
    (atomic: a failed restore leaves the target as it was)."""
    exe = find_binary("pg_restore", server_major_version)
    argv = [exe, "--no-owner", "--no-password", "--single-transaction"]
    if clean:
        argv += ["--clean", "--if-exists"]
    return Child(argv + ["--dbname", url.url], url, stdin=subprocess.PIPE)


def list_toc() -> Child:
    """``pg_restore --list`` reading a dump on stdin, its table of contents on stdout."""
    exe = find_binary("pg_restore")
    return Child([exe, "--list"], DatabaseURL("postgresql://", None), stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, env=childenv.build())
