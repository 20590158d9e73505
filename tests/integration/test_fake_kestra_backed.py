"""The fake Kestra in backed mode: flows and executions in real PostgreSQL tables, KV values,
namespace files and execution files as objects in a real S3 server (SeaweedFS), laid out as a real
Kestra lays them out; a second instance on the same database + bucket sees everything the first
wrote, and its canary fails when an object is gone."""

from __future__ import annotations

import io
import uuid

import psycopg
import pytest

from kestra_ops.adapters.kestra_api import KestraClient
from kestra_ops.errors import NotFound
from tests.fakes.kestra_server import Backend, FakeKestra
from tests.fakes.postgres_server import pg_cluster, pg_db  # noqa: F401 - fixtures
from tests.fakes.seaweed import seaweed  # noqa: F401 - fixture
from tests.integration.test_kestra_client_storage import finished

NS = "company.team"
FLOW = f"id: hello\nnamespace: {NS}\ntasks:\n  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
CANARY = f"""id: canary
namespace: {NS}
tasks:
  - id: read_kv
    type: io.kestra.plugin.core.kv.Get
    key: greeting
    errorOnMissing: true
  - id: read_file
    type: io.kestra.plugin.core.namespace.DownloadFiles
    namespace: "{{{{ flow.namespace }}}}"
    files:
      - /sql/query.sql
"""


@pytest.fixture
def backend(pg_cluster, pg_db, seaweed):  # noqa: F811 - the imported fixtures
    bucket = f"kestra-{uuid.uuid4().hex[:8]}"
    yield Backend(database_url=pg_cluster.url(pg_db()), s3_endpoint=seaweed.endpoint,
                  s3_access_key=seaweed.root_user, s3_secret_key=seaweed.root_password, bucket=bucket)
    seaweed.remove_bucket(bucket)


def client_of(kestra: FakeKestra) -> KestraClient:
    return KestraClient(kestra.url, kestra.username, kestra.password, backoff=0.01, timeout=5)


def outputs(execution: dict) -> dict:
    return {run["taskId"]: run.get("outputs") for run in execution["taskRunList"]}


def seed(client: KestraClient) -> dict:
    client.create_flow(FLOW)
    client.update_flow(NS, "hello", FLOW + "# v2\n")
    client.create_flow(CANARY)
    client.put_kv(NS, "greeting", "hello")
    client.put_kv(NS, "limits", {"max": 3})
    client.put_kv(NS, "limits", {"max": 4})  # version 2
    client.put_namespace_file(NS, "/sql/query.sql", b"select 1")
    client.put_namespace_file(NS, "/readme.md", b"# team")
    ex = finished(client, client.create_execution(NS, "canary")["id"])
    assert ex["state"]["current"] == "SUCCESS"
    return ex


def test_a_second_instance_sees_what_the_first_wrote(backend, seaweed):  # noqa: F811
    with FakeKestra(backend=backend, step_seconds=0.02) as source:
        client = client_of(source)
        ex = seed(client)
        out = outputs(ex)
        assert out["read_kv"] == {"value": "hello"}
        uri = out["read_file"]["files"]["/sql/query.sql"]
        assert uri.startswith(f"kestra:///company/team/canary/executions/{ex['id']}/tasks/read-file/")
        before = {"flows": [(f["namespace"], f["id"], f["revision"]) for f in client.search_flows()],
                  "executions": client.count_executions(), "kv": client.kv_keys(NS),
                  "files": client.namespace_files(NS), "namespaces": client.namespaces()}

    # where a real Kestra keeps it: rows in PostgreSQL ...
    with psycopg.connect(backend.database_url) as conn:
        flows = conn.execute("SELECT key, revision, deleted FROM flows ORDER BY key").fetchall()
        kv = conn.execute("SELECT key, version, last FROM kv_metadata WHERE name = 'limits' "
                          "ORDER BY version").fetchall()
        files = conn.execute("SELECT path, parent_path FROM namespace_file_metadata ORDER BY path").fetchall()
        executions = conn.execute("SELECT key, state_current, flow_id FROM executions").fetchall()
    assert ("main_company.team_hello_2", 2, False) in flows and len(flows) == 3
    assert kv == [("main_company.team_limits_1", 1, False), ("main_company.team_limits_2", 2, True)]
    assert files == [("/readme.md", "/"), ("/sql/", "/"), ("/sql/query.sql", "/sql/")]
    assert executions == [(ex["id"], "SUCCESS", "canary")]
    # ... and objects in the bucket (with storage-minio's zero-byte directory objects)
    names = {o.object_name for o in seaweed.client().list_objects(backend.bucket, prefix="main/", recursive=True)}
    assert {"main/company/team/_kv/greeting.ion", "main/company/team/_kv/limits.ion",
            "main/company/team/_kv/limits.ion.v2", "main/company/team/_files/sql/query.sql",
            "main/company/team/_files/readme.md", "main" + uri[len("kestra://"):],
            "main/", "main/company/", "main/company/team/_files/sql/"} <= names
    got = seaweed.client().get_object(backend.bucket, "main/company/team/_kv/limits.ion.v2")
    assert got.read() == b'{"max": 4}'
    got.close()

    with FakeKestra(backend=backend, step_seconds=0.02) as restored:
        client = client_of(restored)
        after = {"flows": [(f["namespace"], f["id"], f["revision"]) for f in client.search_flows()],
                 "executions": client.count_executions(), "kv": client.kv_keys(NS),
                 "files": client.namespace_files(NS), "namespaces": client.namespaces()}
        assert after == before == {"flows": [(NS, "canary", 1), (NS, "hello", 2)], "executions": 1,
                                   "kv": ["greeting", "limits"], "files": ["/readme.md", "/sql/query.sql"],
                                   "namespaces": [NS]}
        old = client.get_execution(ex["id"])
        assert old["state"]["current"] == "SUCCESS" and outputs(old) == out
        assert client.get_kv(NS, "limits") == {"max": 4}
        assert client.get_namespace_file(NS, "sql/query.sql") == b"select 1"
        again = finished(client, client.create_execution(NS, "canary")["id"])
        assert again["state"]["current"] == "SUCCESS"
        assert outputs(again)["read_kv"] == {"value": "hello"}
        client.delete_flow(NS, "hello")
        assert client.count_executions() == 2
    with FakeKestra(backend=backend) as third:
        assert [f["id"] for f in client_of(third).search_flows()] == ["canary"]
        assert client_of(third).count_executions() == 2


def test_the_canary_fails_when_an_object_is_gone(backend, seaweed):  # noqa: F811
    with FakeKestra(backend=backend, step_seconds=0.02) as source:
        seed(client_of(source))
    seaweed.client().remove_object(backend.bucket, "main/company/team/_files/sql/query.sql")
    with FakeKestra(backend=backend, step_seconds=0.02) as restored:
        client = client_of(restored)
        assert client.namespace_files(NS) == ["/readme.md", "/sql/query.sql"]  # the metadata is there
        with pytest.raises(NotFound):
            client.get_namespace_file(NS, "/sql/query.sql")
        ex = finished(client, client.create_execution(NS, "canary")["id"])
        assert ex["state"]["current"] == "FAILED"
        assert [r["taskId"] for r in ex["taskRunList"]] == ["read_kv", "read_file"]
        assert ex["taskRunList"][-1]["state"]["current"] == "FAILED"
    seaweed.client().remove_object(backend.bucket, "main/company/team/_kv/greeting.ion")
    with FakeKestra(backend=backend, step_seconds=0.02) as restored:
        client = client_of(restored)
        with pytest.raises(NotFound):
            client.get_kv(NS, "greeting")
        ex = finished(client, client.create_execution(NS, "canary")["id"])
        assert ex["state"]["current"] == "FAILED" and len(ex["taskRunList"]) == 1


def test_a_copy_of_the_database_and_the_bucket_is_a_whole_kestra(backend, pg_cluster, seaweed):  # noqa: F811
    """What a restore does, crudely: the database cloned, every object copied to a new bucket."""
    with FakeKestra(backend=backend, step_seconds=0.02) as source:
        seed(client_of(source))
    dbname = f"t_{uuid.uuid4().hex[:10]}"
    pg_cluster.execute("postgres", f'CREATE DATABASE "{dbname}" TEMPLATE "{backend.database_url.rsplit("/", 1)[1]}"')
    s3 = seaweed.client()
    bucket = f"restored-{uuid.uuid4().hex[:8]}"
    s3.make_bucket(bucket)
    for obj in s3.list_objects(backend.bucket, recursive=True):  # (SeaweedFS cannot server-side
        resp = s3.get_object(backend.bucket, obj.object_name)      # copy a directory object)
        data = resp.read()
        resp.close()
        s3.put_object(bucket, obj.object_name, io.BytesIO(data), len(data))
    copy = Backend(database_url=pg_cluster.url(dbname), s3_endpoint=backend.s3_endpoint,
                   s3_access_key=backend.s3_access_key, s3_secret_key=backend.s3_secret_key, bucket=bucket)
    try:
        with FakeKestra(backend=copy, step_seconds=0.02) as restored:
            client = client_of(restored)
            assert client.count_executions() == 1 and client.kv_keys(NS) == ["greeting", "limits"]
            ex = finished(client, client.create_execution(NS, "canary")["id"])
            assert ex["state"]["current"] == "SUCCESS"
            assert outputs(ex)["read_file"]["files"]["/sql/query.sql"]
        assert "secret" not in repr(copy).lower() and pg_cluster.url(dbname).split("@")[0] not in repr(copy)
    finally:
        seaweed.remove_bucket(bucket)


def test_a_fake_started_before_its_database_is_restored_opens_it_on_the_first_request(
        backend):
    import psycopg as pg

    kestra = FakeKestra(backend=backend, open_backend_on_first_request=True).start()
    try:
        with pg.connect(backend.database_url) as conn:
            tables = conn.execute("SELECT count(*) FROM information_schema.tables WHERE "
                                  "table_schema = 'public'").fetchone()[0]
        assert tables == 0  # nothing made yet: a restore into this database is still allowed
        with client_of(kestra) as client:
            client.create_flow(FLOW)
        with pg.connect(backend.database_url) as conn:
            assert conn.execute("SELECT count(*) FROM flows").fetchone()[0] >= 1
    finally:
        kestra.stop()
