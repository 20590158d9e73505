"""A throwaway PostgreSQL cluster (Debian's server packages) for backup tests.

One cluster per session: initdb + pg_ctl in a fresh ``mktemp -d`` under /tmp owned by the
``postgres`` OS user (initdb refuses root; pytest's tmp is 0700), run through ``runuser -u
postgres --`` when the tests run as root. It listens on 127.0.0.1 on a free port (and a unix
socket in the data dir). Auth: ``scram-sha-256`` over TCP for role ``kestra`` (a superuser,
password ``PASSWORD``), so a wrong password is a real failure. ``pg_db`` creates a fresh
database per test.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass

import pytest

USER = "kestra"
PASSWORD = "Kestra-test-pw-42"


def pg_bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]))
    if found:
        return os.path.dirname(found[-1])
    exe = shutil.which("initdb")
    return os.path.dirname(os.path.realpath(exe)) if exe else None


@dataclass
class PgCluster:
    host: str
    port: int
    bindir: str
    datadir: str

    def url(self, dbname: str = "postgres", *, password: str | None = PASSWORD) -> str:
        auth = f"{USER}:{password}" if password is not None else USER
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname}"

    def create_db(self, name: str | None = None) -> str:
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def execute(self, dbname: str, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            conn.execute(sql)


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    # runuser lives in /usr/sbin or /sbin, which a non-login PATH may leave out
    runuser = shutil.which("runuser") or next(
        (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(p, os.X_OK)), "runuser")
    return [runuser, "-u", "postgres", "--", *argv]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def start_cluster(**settings):
    """Start a throwaway cluster; yields a :class:`PgCluster`; removes it all on exit.
    ``settings`` are extra server settings (``shared_buffers="256MB"``)."""
    bindir = pg_bindir()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not installed")
    tmp = tempfile.mkdtemp(prefix="kestra-ops-pg-", dir="/tmp")
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    os.chmod(tmp, 0o700)
    datadir = os.path.join(tmp, "data")
    pwfile = os.path.join(tmp, "pw")
    try:
        with open(pwfile, "w") as fh:
            fh.write(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(_as_postgres([f"{bindir}/initdb", "-D", datadir, "-U", USER, "--pwfile",
                                     pwfile, "-A", "scram-sha-256", "--auth-local=trust",
                                     "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True)
        os.unlink(pwfile)
        port = _free_port()
        extra = "".join(f" -c {k}={v}" for k, v in settings.items())
        opts = (f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50" + extra)
        subprocess.run(_as_postgres([f"{bindir}/pg_ctl", "-D", datadir, "-o", opts, "-l",
                                     os.path.join(tmp, "log"), "-w", "-t", "60", "start"]),
                       check=True, capture_output=True)
        try:
            yield PgCluster("127.0.0.1", port, bindir, datadir)
        finally:
            subprocess.run(_as_postgres([f"{bindir}/pg_ctl", "-D", datadir, "-m", "immediate",
                                         "stop"]), capture_output=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster():
    if pg_bindir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed: scripts/test "
                    "installs Debian's postgresql package")
    with start_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_db(pg_cluster):
    """A factory: ``pg_db()`` -> a new empty database's name on the session cluster."""
    return pg_cluster.create_db
