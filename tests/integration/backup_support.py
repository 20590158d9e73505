"""Shared by the backup tests: a project with PostgreSQL, a real S3 server (SeaweedFS), the fake
cluster and a FakeKestra wired through the variables kestra-ops reads.

The ``s3`` fixture here replaces the suite's moto one for every test module that imports it:
the same small interface (endpoint, client(), create_bucket, env(), access_key, secret_key) on
the process's SeaweedFS, with this test's buckets (Kestra's BUCKET and the backup destination
BACKUP_BUCKET) removed before and after it, so each test starts with none."""

from __future__ import annotations

import json

import pytest

from tests.fakes.kestra_server import FakeKestra
from tests.fakes.postgres_server import PASSWORD, pg_cluster, pg_db  # noqa: F401 - fixtures
from tests.fakes.seaweed import seaweed  # noqa: F401 - fixture: the process's SeaweedFS
from tests.helpers_configmap import project, run  # noqa: F401 - fixtures and helpers

BUCKET = "kestra-dev"  # Kestra's bucket (minio.bucket): the legacy location of backup sets
BACKUP_BUCKET = "kestra-dev-backups"  # the backup destination (backup.bucket's default)
FLOW = """id: hello
namespace: company.team
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


def fill(cluster, dbname: str, rows: int = 50_000) -> None:
    """Several tables, ~``rows`` rows in all, with an index, a FK, a sequence and a view."""
    cluster.execute(dbname, f"""
        CREATE TABLE flows (id serial PRIMARY KEY, name text NOT NULL, body text);
        CREATE TABLE executions (id bigserial PRIMARY KEY, flow_id int REFERENCES flows(id),
                                 state text, payload jsonb, created timestamptz DEFAULT now());
        CREATE TABLE logs (id bigint, line text);
        CREATE INDEX logs_id ON logs (id);
        CREATE VIEW running AS SELECT * FROM executions WHERE state = 'RUNNING';
        INSERT INTO flows (name, body) SELECT 'flow-' || g, md5(g::text) FROM
            generate_series(1, 1000) g;
        INSERT INTO executions (flow_id, state, payload) SELECT 1 + g % 1000,
            (ARRAY['RUNNING','SUCCESS','FAILED'])[1 + g % 3], jsonb_build_object('n', g)
            FROM generate_series(1, {rows // 2}) g;
        INSERT INTO logs SELECT g, repeat(md5(g::text), 3) FROM
            generate_series(1, {rows - rows // 2 - 1000}) g;
    """)


def contents(cluster, dbname: str) -> dict:
    import psycopg

    out = {}
    with psycopg.connect(cluster.url(dbname)) as conn:
        for table, order in (("flows", "id"), ("executions", "id"), ("logs", "id")):
            rows = conn.execute(f"SELECT md5(string_agg(t::text, ',' ORDER BY {order})), "
                                f"count(*) FROM {table} t").fetchone()
            out[table] = rows
    return out


class SeaweedStore:
    """The interface the backup tests used on moto's server, on SeaweedFS (root identity)."""

    def __init__(self, server):
        self.server = server
        self.endpoint, self.url = server.endpoint, server.url
        self.access_key, self.secret_key = server.root_user, server.root_password

    def client(self):
        return self.server.client()

    def create_bucket(self, name: str) -> None:
        self.client().make_bucket(name)

    def buckets(self) -> list[str]:
        return self.server.buckets()

    def env(self) -> dict[str, str]:
        """Kestra's key variables (the root identity here)."""
        return {"KESTRA_OPS_MINIO_ACCESS_KEY": self.access_key,
                "KESTRA_OPS_MINIO_SECRET_KEY": self.secret_key}

    def root_env(self) -> dict[str, str]:
        return self.server.env()

    def writer_env(self) -> dict[str, str]:
        return self.server.writer_env()


@pytest.fixture
def s3(seaweed):  # noqa: F811 - the imported fixture
    """SeaweedFS without this test's buckets (removed before and after the test)."""
    for name in (BUCKET, BACKUP_BUCKET):
        seaweed.remove_bucket(name)
    yield SeaweedStore(seaweed)
    for name in (BUCKET, BACKUP_BUCKET):
        seaweed.remove_bucket(name)


@pytest.fixture
def kestra():
    with FakeKestra() as server:
        server.add_flow(FLOW)
        yield server


@pytest.fixture
def backup_env(project, s3, kestra, pg_cluster, pg_db, monkeypatch):
    """(project, source database name): Kestra's bucket kestra-dev and the backup bucket
    kestra-dev-backups, Kestra's key and the backup key variables set, data loaded."""
    s3.create_bucket(BUCKET)
    s3.create_bucket(BACKUP_BUCKET)
    writer = s3.writer_env() if hasattr(s3, "writer_env") else {  # moto checks no key
        "KESTRA_OPS_BACKUP_ACCESS_KEY": s3.access_key,
        "KESTRA_OPS_BACKUP_SECRET_KEY": s3.secret_key}
    for key, value in {**s3.env(), **writer}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KESTRA_OPS_MINIO_ENDPOINT", s3.endpoint)
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECURE", "false")
    monkeypatch.setenv("KESTRA_OPS_KESTRA_URL", kestra.url)
    monkeypatch.setenv("KESTRA_OPS_BASIC_AUTH_USERNAME", kestra.username)
    monkeypatch.setenv("KESTRA_OPS_BASIC_AUTH_PASSWORD", kestra.password)
    name = pg_db()
    fill(pg_cluster, name)
    monkeypatch.setenv("KESTRA_OPS_DATABASE_URL", pg_cluster.url(name))
    return project, name


def objects(s3, prefix: str = "backups/dev/", bucket: str = BACKUP_BUCKET) -> list[str]:
    return sorted(o.object_name for o in s3.client().list_objects(bucket, prefix=prefix,
                                                                   recursive=True))


def backup_json(project, *args: str) -> tuple[int, dict | None, str]:
    result = run(project, "backup", "run", "--env", "dev", "--output", "json", *args)
    try:
        data = json.loads(result.stdout)
    except ValueError:
        data = None
    return result.exit_code, data, result.output


def multipart_uploads(s3, bucket: str = BACKUP_BUCKET) -> list:
    from minio import Minio

    client: Minio = s3.client()
    result = client._list_multipart_uploads(bucket)
    return list(result.uploads)
