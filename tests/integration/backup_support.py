"""Shared by the backup tests: a project with PostgreSQL, S3 (moto), the fake cluster and a
FakeKestra wired through the variables kestra-ops reads."""

from __future__ import annotations

import json

import pytest

from tests.fakes.kestra_server import FakeKestra
from tests.fakes.postgres_server import PASSWORD, pg_cluster, pg_db  # noqa: F401 - fixtures
from tests.helpers_configmap import project, run  # noqa: F401 - fixtures and helpers

BUCKET = "kestra-dev"
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


@pytest.fixture
def kestra():
    with FakeKestra() as server:
        server.add_flow(FLOW)
        yield server


@pytest.fixture
def backup_env(project, s3, kestra, pg_cluster, pg_db, monkeypatch):
    """(project, source database name): S3 bucket kestra-dev, variables set, data loaded."""
    s3.create_bucket(BUCKET)
    for key, value in s3.env().items():
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


def objects(s3, prefix: str = "backups/dev/") -> list[str]:
    return sorted(o.object_name for o in s3.client().list_objects(BUCKET, prefix=prefix,
                                                                   recursive=True))


def backup_json(project, *args: str) -> tuple[int, dict | None, str]:
    result = run(project, "backup", "run", "--env", "dev", "--output", "json", *args)
    try:
        data = json.loads(result.stdout)
    except ValueError:
        data = None
    return result.exit_code, data, result.output


def multipart_uploads(s3) -> list:
    from minio import Minio

    client: Minio = s3.client()
    result = client._list_multipart_uploads(BUCKET)
    return list(result.uploads)
