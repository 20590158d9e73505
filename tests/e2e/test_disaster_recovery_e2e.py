"""Disaster recovery on the real control plane (issue 14): deploy, write flows, KV values, a
namespace file and an execution into a Kestra that keeps them where a real one does (the backed
fake: real PostgreSQL tables, objects in a real S3 server, SeaweedFS), back up with sealed
Secrets, lose the namespace and the bucket's contents, then ``backup restore --to-namespace``
brings the whole Kestra back into a NEW namespace: Secrets unsealed, chart installed, database
and objects restored, the counts equal the set's and the canary reads the KV value and the
namespace file. Asserted through the API server, PostgreSQL and the S3 server."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from kestra_ops.adapters.kestra_api import KestraClient
from tests.e2e.conftest import PG_CLAIM, SECRETS
from tests.e2e.support import s3_env, wait_until
from tests.fakes.kestra_server import Backend, FakeKestra
from tests.fakes.postgres_server import pg_cluster  # noqa: F401 - fixture

NS = "company.team"
USERNAME = "platform-admin@example.com"  # kestra.server.basic-auth.username in values/base.yaml
FLOW = (f"id: nightly\nnamespace: {NS}\ntasks:\n  - id: log\n"
        "    type: io.kestra.plugin.core.log.Log\n    message: hi\n")


@pytest.fixture
def dr(install, seaweed, pg_cluster, monkeypatch, tmp_path):  # noqa: F811 - the fixture
    """``dev`` on SeaweedFS (Kestra's bucket + the backup bucket, root key for both), a source
    database, an age identity whose public key is backup.recipients."""
    # Kestra's bucket is the one values/dev.yaml names (rule kestra/bucket-env; backup run
    # copies the bucket Kestra's values name), emptied first; the backup bucket is this test's
    bucket, backups = "kestra-dev", f"kestra-{install.namespace}-backups"
    seaweed.remove_bucket(bucket)
    env = {**s3_env(seaweed, bucket, USERNAME), "KESTRA_OPS_BACKUP_BUCKET": backups,
           "KESTRA_OPS_BASIC_AUTH_PASSWORD": SECRETS["KESTRA_OPS_BASIC_AUTH_PASSWORD"]}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    identity = tmp_path / "backup.age"
    public = install.run_ok("backup", "keygen", "--out", str(identity)).stdout.strip()
    monkeypatch.setenv("KESTRA_OPS_BACKUP_RECIPIENTS", public)
    source = pg_cluster.url(pg_cluster.create_db())
    monkeypatch.setenv("KESTRA_OPS_DATABASE_URL", source)
    yield {"bucket": bucket, "backups": backups, "identity": identity, "source": source}
    for name in (bucket, backups):
        try:
            seaweed.remove_bucket(name)
        except Exception:  # noqa: BLE001 - best effort
            pass


def backed(pg_url: str, seaweed, bucket: str, *, lazy: bool = False) -> FakeKestra:
    """A Kestra on ``pg_url`` and ``bucket``; ``lazy``: started before its database is
    restored (it opens the database on its first request, as a pod that starts after)."""
    return FakeKestra(USERNAME, SECRETS["KESTRA_OPS_BASIC_AUTH_PASSWORD"], step_seconds=0.02,
                      backend=Backend(database_url=pg_url, s3_endpoint=seaweed.endpoint,
                                      s3_access_key=seaweed.root_user,
                                      s3_secret_key=seaweed.root_password, bucket=bucket),
                      open_backend_on_first_request=lazy)


def client_of(kestra: FakeKestra) -> KestraClient:
    return KestraClient(kestra.url, kestra.username, kestra.password, backoff=0.01, timeout=10)


def deploy_and_back_up(install, dr, seaweed, monkeypatch, *, execution: bool,
                       output: str = "text") -> str:
    """Deploy, write a flow, a KV value and a namespace file (and one execution) into a Kestra
    that keeps them in the source database and Kestra's bucket; take a backup set."""
    install.run_ok("minio", "setup", "--env", "dev", "--yes")
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    with backed(dr["source"], seaweed, dr["bucket"]) as source:
        monkeypatch.setenv("KESTRA_OPS_KESTRA_URL", source.url)
        with client_of(source) as client:
            client.create_flow(FLOW)
            client.put_kv(NS, "db_host", "pg.internal")
            client.put_namespace_file(NS, "scripts/etl.sql", b"select 1;\n")
            if execution:
                run = client.create_execution(NS, "nightly")
                wait_until("the execution's end", lambda: client.get_execution(run["id"])[
                    "state"]["current"] in client.TERMINAL_STATES)
        source.sync()
        done = install.run_ok("backup", "run", "--env", "dev", "--output", output)
    monkeypatch.delenv("KESTRA_OPS_KESTRA_URL")
    return done.stdout


def test_a_whole_kestra_comes_back_in_a_new_namespace(install, dr, seaweed, pg_cluster,  # noqa: F811
                                                      monkeypatch):
    made = json.loads(deploy_and_back_up(install, dr, seaweed, monkeypatch, execution=True,
                                         output="json"))
    assert made["manifest"]["secrets"]["sealed"] is True
    assert made["manifest"]["storage"]["objects"] >= 2
    assert made["manifest"]["counts"] == {"flows": 1, "executions": 1, "kv": 1,
                                          "namespace_files": 1}
    install.run_ok("backup", "verify", "--env", "dev", "latest", "--identity",
                   str(dr["identity"]))

    # the disaster: the namespace and every object of Kestra's bucket are gone
    install.core.delete_namespace(install.namespace)
    s3 = seaweed.client()
    for obj in s3.list_objects(dr["bucket"], recursive=True):
        s3.remove_object(dr["bucket"], obj.object_name)
    assert not list(s3.list_objects(dr["bucket"], recursive=True))

    target = f"dr-{install.namespace}"
    pv = f"pv-{target}"
    install.core.create_persistent_volume({
        "metadata": {"name": pv},
        "spec": {"capacity": {"storage": "50Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": f"/tmp/{pv}"},
                 "claimRef": {"namespace": target, "name": PG_CLAIM}}}, field_manager="e2e-test")
    restored_db = pg_cluster.url(pg_cluster.create_db())
    args = ("backup", "restore", "--env", "dev", "latest", "--to-namespace", target,
            "--to-database", restored_db, "--identity", str(dr["identity"]), "--yes",
            "--output", "json")
    try:
        # the restored Kestra is not up yet (its database must be empty until restored): every
        # step but the check is done, and the same command resumes
        first = install.run(*args, "--kestra-url", "http://127.0.0.1:9", "--check-wait", "1s")
        assert first.exit_code == 1, first.output
        assert first.stdout, first.stderr
        report = json.loads(first.stdout)
        assert report["steps_done"] == ["namespace", "secrets", "chart", "database", "storage",
                                        "scale-up"]
        ns = install.core.read_namespace(target)
        assert ns.metadata.labels["kestra-ops/recovery-of"] == "dev"
        secret = install.core.read_namespaced_secret("kestra-encryption", target)
        assert base64.b64decode(next(iter(secret.data.values()))).decode() == \
            SECRETS["KESTRA_OPS_ENCRYPTION_KEY"]
        assert install.apps.read_namespaced_deployment("kestra-standalone", target) \
            .spec.replicas == 1
        assert {o.object_name.rstrip("/").rsplit("/", 1)[-1]
                for o in s3.list_objects(dr["bucket"], recursive=True)} >= {
            "db_host.ion", "etl.sql"}

        # as if Ctrl-C had cut the storage copy short: the state says it began, not ended
        state = json.loads(install.core.read_namespaced_config_map(
            "kestra-ops-recovery", target).data["state.json"])
        assert state["begun"] == ["secrets", "chart", "database", "storage", "scale-up", "check"]
        state["done"] = state["done"][:4]  # namespace, secrets, chart, database
        install.core.patch_namespaced_config_map("kestra-ops-recovery", target, {
            "data": {"state.json": json.dumps(state)}}, field_manager="e2e-test")
        one = sorted(o.object_name for o in s3.list_objects(dr["bucket"], recursive=True)
                     if not o.object_name.endswith("/"))[0]
        s3.remove_object(dr["bucket"], one)  # one object not copied yet

        with backed(restored_db, seaweed, dr["bucket"], lazy=True) as restored:
            second = install.run(*args, "--kestra-url", restored.url)
            assert second.exit_code == 0, second.output
            report = json.loads(second.stdout)
            assert report["resumed"] is True
            assert [s["name"] for s in report["steps"]] == ["storage", "scale-up", "check"]
            assert one in {o.object_name for o in s3.list_objects(dr["bucket"], recursive=True)}
            checks = {c["id"]: c for c in report["checks"]}
            assert checks["canary"]["status"] == "pass", checks["canary"]
            assert checks["counts"]["status"] == "pass", checks["counts"]
            # a finished recovery run again only checks again (nothing is rewritten)
            third = install.run(*args, "--kestra-url", restored.url)
            assert third.exit_code == 0, third.output
            assert [s["name"] for s in json.loads(third.stdout)["steps"]] == ["check"]
            with client_of(restored) as client:
                assert client.get_kv(NS, "db_host") == "pg.internal"
                assert client.get_namespace_file(NS, "scripts/etl.sql") == b"select 1;\n"
                assert [f["id"] for f in client.search_flows(NS)] == ["nightly"]
    finally:
        for delete in (lambda: install.core.delete_namespace(target),
                       lambda: install.core.delete_persistent_volume(pv)):
            try:
                delete()
            except Exception:  # noqa: BLE001 - best effort
                pass


def test_a_namespace_in_use_is_refused_before_anything_is_written(install, dr, seaweed,  # noqa: F811
                                                                   pg_cluster):
    install.run_ok("minio", "setup", "--env", "dev", "--yes")
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    install.run_ok("backup", "run", "--env", "dev", "--what", "db,config,secrets")
    revisions = install.history()
    empty = pg_cluster.url(pg_cluster.create_db())
    refused = install.run("backup", "restore", "--env", "dev", "latest", "--to-namespace",
                          install.namespace, "--to-database", empty, "--identity",
                          str(dr["identity"]), "--yes")
    assert refused.exit_code == 2
    assert f"namespace {install.namespace}" in refused.stderr
    assert "nothing changed" in refused.stderr
    assert "deployment/kestra-standalone" in refused.stderr
    assert install.history() == revisions  # the live release was not touched
    assert not install.core.list_namespaced_config_map(
        install.namespace, field_selector="metadata.name=kestra-ops-recovery").items


def test_the_drill_uses_scratch_places_only_and_deletes_them(install, dr, seaweed,  # noqa: F811
                                                            pg_cluster, monkeypatch):
    deploy_and_back_up(install, dr, seaweed, monkeypatch, execution=False)
    live_objects = sorted(o.object_name for o in
                          seaweed.client().list_objects(dr["bucket"], recursive=True))
    scratch_db = pg_cluster.create_db()
    scratch_bucket = f"drill-{uuid.uuid4().hex[:10]}"
    seaweed.client().make_bucket(scratch_bucket)
    try:
        with backed(pg_cluster.url(scratch_db), seaweed, scratch_bucket, lazy=True) as drilled:
            result = install.run("backup", "drill", "--env", "dev", "--scratch-url",
                                 pg_cluster.url(scratch_db), "--scratch-bucket", scratch_bucket,
                                 "--kestra-url", drilled.url, "--identity",
                                 str(dr["identity"]), "--output", "json")
            assert result.exit_code == 0, result.output
            report = json.loads(result.stdout)
            checks = {c["id"]: c["status"] for c in report["checks"]}
            assert checks["canary"] == "pass" and checks["counts"] == "pass", report["checks"]
            assert report["rto_seconds"] > 0 and report["rpo_seconds"] >= 0
            assert report["stored"].endswith(".json") and "/drills/" in report["stored"]
            namespace = report["scratch"]["namespace"]
            assert namespace.startswith("kestra-drill-")
        # the drill deleted its namespace (the namespace controller may still be finishing)
        gone = install.core.read_namespace(namespace)
        assert gone.metadata.deletion_timestamp is not None
        # the live bucket was never written by the drill
        assert sorted(o.object_name for o in seaweed.client().list_objects(
            dr["bucket"], recursive=True)) == live_objects
        stored = report["stored"].split("/", 3)[3]
        assert json.loads(seaweed.client().get_object(dr["backups"],
                                                      stored).read())["ok"] is True
    finally:
        seaweed.remove_bucket(scratch_bucket)
