"""database.mode cloudnativepg on the real control plane (issue 16, the database's part).

No CloudNativePG operator runs here: the CRDs are tests/fixtures/cnpg/crds.yaml (CNPG's
published schema trimmed to the fields kestra-ops uses), a stand-in Deployment labelled like the
operator's install (app.kubernetes.io/name=cloudnative-pg) plays its presence, and a test thread
plays its Backup controller by setting status.phase. Without the CRD, preflight fails naming it;
with it, kestra-ops deploys a Cluster the API server accepts and reads back, and
``backup run --cnpg-backup`` creates a Backup, waits for the "operator" and records it in the
set."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.e2e.support import s3_env, wait_until
from tests.fakes.postgres_server import pg_cluster  # noqa: F401 - fixture

CRDS = Path(__file__).resolve().parents[1] / "fixtures" / "cnpg" / "crds.yaml"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CLUSTERS_CRD = "clusters.postgresql.cnpg.io"
URL = "jdbc:postgresql://kestra-db-rw:5432/kestra?sslmode=disable"
CNPG = f"""
database:
  mode: cloudnativepg
  cloudnativepg:
    clusterName: kestra-db
    instances: 2
    storage: {{size: 5Gi}}
    sslmode: disable
    backup:
      endpointURL: http://seaweed.example:8333
      retentionPolicy: 7d
backup:
  env: dev
datasources:
  default: {{url: "{URL}"}}
  postgres: {{url: "{URL}"}}
kestra:
  datasources:
    postgres: {{url: "{URL}"}}
"""


def _crd_gone(install, name: str) -> bool:
    try:
        install.get(f"{CRD_PATH}/{name}")
    except AssertionError as err:
        return " 404 " in str(err)
    return False


def remove_crds(install) -> None:
    for doc in yaml.safe_load_all(CRDS.read_text()):
        name = doc["metadata"]["name"]
        if not _crd_gone(install, name):
            install._raw("DELETE", f"{CRD_PATH}/{name}")
        wait_until(f"CRD {name} deleted", lambda n=name: _crd_gone(install, n), timeout=60)


@pytest.fixture
def crds(install):
    """The trimmed CNPG CRDs installed and established; removed afterwards."""
    for doc in yaml.safe_load_all(CRDS.read_text()):
        if _crd_gone(install, doc["metadata"]["name"]):
            install._raw("POST", CRD_PATH, body=doc, content_type="application/json")
    for doc in yaml.safe_load_all(CRDS.read_text()):
        name = doc["metadata"]["name"]
        wait_until(f"CRD {name} established", lambda n=name: any(
            c["type"] == "Established" and c["status"] == "True"
            for c in (install.get(f"{CRD_PATH}/{n}").get("status") or {}).get(
                "conditions") or []), timeout=60)
    # discovery of the new group settles after Established: wait until it is served
    wait_until("postgresql.cnpg.io/v1 served", lambda: any(
        r["name"] == "clusters" for r in install.get("/apis/postgresql.cnpg.io/v1")
        .get("resources") or []), timeout=60)
    yield
    remove_crds(install)


@pytest.fixture
def operator(install):
    """A Deployment labelled as CloudNativePG's install labels its operator, running (the fake
    kubelet makes its pod ready) in a namespace of its own."""
    ns = f"cnpg-{uuid.uuid4().hex[:8]}"
    install.core.create_namespace({"metadata": {"name": ns}}, field_manager="e2e-test")
    labels = {"app.kubernetes.io/name": "cloudnative-pg"}
    install.apps.create_namespaced_deployment(ns, {
        "metadata": {"name": "cnpg-controller-manager", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                     {"name": "manager", "image": "ghcr.io/cloudnative-pg/cloudnative-pg:1.27"}
                 ]}}}}, field_manager="e2e-test")
    wait_until("operator stand-in available", lambda: (install.get(
        f"/apis/apps/v1/namespaces/{ns}/deployments/cnpg-controller-manager")["status"]
        .get("availableReplicas") == 1), timeout=60)
    yield ns
    try:
        install.core.delete_namespace(ns)
    except Exception:  # noqa: BLE001 - best effort: the cluster is purged at the end
        pass


def with_cnpg(install) -> None:
    """values/dev.yaml with the CNPG settings merged in (mappings deep-merged)."""
    def merge(into: dict, more: dict) -> dict:
        for key, value in more.items():
            into[key] = (merge(dict(into.get(key) or {}), value)
                         if isinstance(value, dict) else value)
        return into

    path = install.overlay()
    merged = merge(yaml.safe_load(path.read_text()) or {}, yaml.safe_load(CNPG))
    path.write_text(yaml.safe_dump(merged, sort_keys=False))


def test_without_the_crd_preflight_fails_naming_it(install):
    remove_crds(install)
    with_cnpg(install)
    result = install.run("preflight", "--env", "dev", "--skip-bucket", "--output", "json")
    assert result.exit_code == 1, result.stdout
    [item] = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "database"]
    assert item["status"] == "fail"
    assert f"CRD {CLUSTERS_CRD} is not installed" in item["reason"]


def test_a_cloudnativepg_cluster_is_deployed_and_backed_up(install, crds, operator, seaweed,
                                                           pg_cluster, monkeypatch):  # noqa: F811
    ns = install.namespace
    with_cnpg(install)
    checked = install.run_ok("preflight", "--env", "dev", "--skip-bucket", "--output", "json")
    [item] = [c for c in json.loads(checked.stdout)["checks"] if c["name"] == "database"]
    assert item["status"] == "pass"
    assert f"operator {operator}/cnpg-controller-manager running" in item["reason"]

    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    cluster = install.get(f"/apis/postgresql.cnpg.io/v1/namespaces/{ns}/clusters/kestra-db")
    spec = cluster["spec"]
    assert spec["instances"] == 2 and spec["storage"] == {"size": "5Gi"}
    assert spec["bootstrap"] == {"initdb": {"database": "kestra", "owner": "kestra"}}
    store = spec["backup"]["barmanObjectStore"]
    assert store["destinationPath"] == "s3://kestra-dev-backups/cnpg"
    assert store["endpointURL"] == "http://seaweed.example:8333"
    assert store["s3Credentials"]["accessKeyId"] == {"name": "kestra-cnpg-backup",
                                                     "key": "ACCESS_KEY_ID"}
    assert store["wal"] == {"compression": "gzip"} and spec["backup"]["retentionPolicy"] == "7d"
    names = {s["metadata"]["name"] for s in install.get(
        f"/apis/apps/v1/namespaces/{ns}/statefulsets")["items"]}
    assert "kestra-postgres" not in names  # no bundled PostgreSQL in this mode
    dep = install.deployment()
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KESTRA_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "kestra-db-app", "key": "password"}

    # backup run --cnpg-backup: the logical dump (of a loopback PostgreSQL standing in for the
    # Cluster's -rw Service) and the operator's Backup, completed by a thread playing it
    bucket = f"kestra-{ns}"
    for name, value in s3_env(seaweed, bucket, "admin@example.com").items():
        monkeypatch.setenv(name, value)
    seaweed.client().make_bucket(f"{bucket}-backups")
    monkeypatch.setenv("KESTRA_OPS_DATABASE_URL", pg_cluster.url(pg_cluster.create_db()))
    played = play_the_operator(install, ns)
    try:
        done = install.run_ok("backup", "run", "--env", "dev", "--what", "db", "--cnpg-backup",
                              "--cnpg-timeout", "60", "--output", "json")
    finally:
        played.stop.set()
        played.join(10)
        # the session's SeaweedFS is shared: later tests count its buckets
        seaweed.remove_bucket(f"{bucket}-backups")
    report = json.loads(done.stdout)
    entry = report["manifest"]["cloudnativepg"]
    assert entry["cluster"] == "kestra-db" and entry["phase"] == "completed"
    assert entry["name"] == played.seen[0]
    assert (entry["backupId"], entry["beginWal"], entry["endWal"]) == (
        "20261206T120000", "000000010000000000000002", "000000010000000000000003")
    assert entry["destinationPath"] == "s3://kestra-dev-backups/cnpg"
    backup = install.get(f"/apis/postgresql.cnpg.io/v1/namespaces/{ns}/backups/{entry['name']}")
    assert backup["spec"] == {"cluster": {"name": "kestra-db"}, "method": "barmanObjectStore"}
    assert backup["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kestra-ops"
    assert "db.dump.zst" in report["manifest"]["artefacts"]  # the logical dump too


def play_the_operator(install, ns: str) -> threading.Thread:
    """A thread that, for each new Backup in ``ns``, sets status.phase running, then completed
    with a backupId, WAL range and destination (through the status subresource)."""
    base = f"/apis/postgresql.cnpg.io/v1/namespaces/{ns}/backups"
    stop = threading.Event()
    seen: list[str] = []

    def status(name: str, body: dict) -> None:
        install._raw("PATCH", f"{base}/{name}/status", body={"status": body},
                     content_type="application/merge-patch+json")

    def run() -> None:
        while not stop.is_set():
            for item in install.get(base).get("items") or []:
                name = item["metadata"]["name"]
                if name in seen:
                    continue
                seen.append(name)
                status(name, {"phase": "running", "startedAt": "2026-12-06T12:00:00Z"})
                time.sleep(2.5)  # long enough for kestra-ops to see it running
                status(name, {"phase": "completed", "backupId": "20261206T120000",
                              "beginWal": "000000010000000000000002",
                              "endWal": "000000010000000000000003",
                              "destinationPath": "s3://kestra-dev-backups/cnpg",
                              "serverName": "kestra-db", "method": "barmanObjectStore",
                              "stoppedAt": "2026-12-06T12:00:03Z"})
            stop.wait(0.3)

    thread = threading.Thread(target=run, name="cnpg-operator", daemon=True)
    thread.stop, thread.seen = stop, seen
    thread.start()
    return thread
