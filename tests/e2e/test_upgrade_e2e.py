"""``kestra-ops upgrade run`` on the real control plane (issue 15), with real PostgreSQL, a real
S3 server (SeaweedFS) for the backup sets, and a fake Kestra that keeps its flows in PostgreSQL
and reports the version of the image its pods run (set here by a follower thread: the fake
kubelet runs no containers). The four scenarios:

1. a reversible patch upgrade (a catalogue where the patch range is known to be reversible):
   released with helm's guard only, and a failing one rolled back by helm, overlay put back;
2. an irreversible step refused without a fresh verified backup set, then run with one;
3. a migration Job that fails: the upgrade stops before the release, nothing changed;
4. a release that fails after an irreversible step (the database migrated): the pre-upgrade
   backup set and the previous version are restored.

Assertions read the cluster through the API, helm's history, PostgreSQL and the files.
"""

from __future__ import annotations

import copy
import json
import threading
import time

import psycopg
import pytest
import yaml

from kestra_ops.upgrades import catalogue as cat_mod
from kestra_ops.upgrades.version import split_tag
from tests.e2e.conftest import SECRETS
from tests.e2e.support import s3_env, wait_until
from tests.fakes.kestra_persist import pause, resume
from tests.fakes.kestra_server import Backend, FakeKestra
from tests.fakes.postgres_server import pg_cluster  # noqa: F401 - fixture

USERNAME = "platform-admin@example.com"
NS = "company.team"
FLOW = (f"id: nightly\nnamespace: {NS}\ntasks:\n  - id: log\n"
        "    type: io.kestra.plugin.core.log.Log\n    message: hi\n")


class Follower(threading.Thread):
    """Plays the kubelet's part for Kestra: the fake reports the version of the image its ready
    pods run, and is down (503, no database connection) while no pod exists; ``crash`` (a tag) puts a crash loop on the pods of that image;
    ``on_job`` (a Job-name part -> callable) runs once when such a Job's pod shows up."""

    def __init__(self, install, kestra):
        super().__init__(daemon=True)
        self.install, self.kestra = install, kestra
        self.crash: str | None = None
        self.on_job: dict = {}
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                self._once()
            except Exception:  # noqa: BLE001 - the next round reads again
                pass
            time.sleep(0.2)

    def _once(self):
        pods = self.install.get(f"/api/v1/namespaces/{self.install.namespace}/pods")["items"]
        servers = [p for p in pods if p["metadata"]["name"].startswith("kestra-standalone-")]
        if not servers:  # scaled to 0: Kestra is down, its database connection closed
            pause(self.kestra)
        for pod in pods:
            name = pod["metadata"]["name"]
            image = next((c["image"] for c in pod["spec"]["containers"]
                          if c["name"] == "kestra"), "")
            tag = image.rsplit(":", 1)[-1]
            annotations = pod["metadata"].get("annotations") or {}
            if name.startswith("kestra-migrate-"):
                for part, action in list(self.on_job.items()):
                    if part in name:
                        self.on_job.pop(part)
                        action()
                continue
            if not name.startswith("kestra-standalone-"):
                continue
            if self.crash and tag == self.crash and "fake-kubelet/state" not in annotations:
                self.install.core.patch_namespaced_pod(name, self.install.namespace, {
                    "metadata": {"annotations": {"fake-kubelet/state": "crashloop"}}},
                    field_manager="e2e-test")
            ready = any(c["type"] == "Ready" and c["status"] == "True"
                        for c in (pod.get("status") or {}).get("conditions") or [])
            found = split_tag(tag)
            if ready and found and pod["metadata"].get("deletionTimestamp") is None:
                self.kestra.version = str(found[0])
                resume(self.kestra)


@pytest.fixture
def up(install, seaweed, pg_cluster, monkeypatch):  # noqa: F811 - the fixture
    """``dev`` on SeaweedFS and a PostgreSQL database, deployed, with a backed fake Kestra
    holding one flow, and the follower. Yields a dict; the tag to deploy is set per test."""
    # Kestra's bucket is the one values/dev.yaml names (rule kestra/bucket-env; backup run
    # copies the bucket Kestra's values name), emptied first; the backup bucket is this test's
    bucket, backups = "kestra-dev", f"kestra-{install.namespace}-backups"
    seaweed.remove_bucket(bucket)
    env = {**s3_env(seaweed, bucket, USERNAME), "KESTRA_OPS_BACKUP_BUCKET": backups}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    db = pg_cluster.url(pg_cluster.create_db())
    monkeypatch.setenv("KESTRA_OPS_DATABASE_URL", db)
    state = {"db": db, "bucket": bucket, "install": install}

    def start(tag: str):
        install.overlay().write_text(install.overlay().read_text().replace(
            'tag: "v1.3.2"', f'tag: "{tag}"', 1))
        install.run_ok("minio", "setup", "--env", "dev", "--yes")
        kestra = FakeKestra(USERNAME, SECRETS["KESTRA_OPS_BASIC_AUTH_PASSWORD"],
                            step_seconds=0.02, version=tag.lstrip("v"),
                            backend=Backend(database_url=db, s3_endpoint=seaweed.endpoint,
                                            s3_access_key=seaweed.root_user,
                                            s3_secret_key=seaweed.root_password,
                                            bucket=bucket)).start()
        state["kestra"] = kestra
        monkeypatch.setenv("KESTRA_OPS_KESTRA_URL", kestra.url)
        install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
        with psycopg.connect(db, autocommit=True) as conn:  # a 1.x table the 2.0 step drops
            conn.execute("CREATE TABLE IF NOT EXISTS templates (id text PRIMARY KEY)")
            conn.execute("INSERT INTO templates VALUES ('legacy') ON CONFLICT DO NOTHING")
        from kestra_ops.adapters.kestra_api import KestraClient

        with KestraClient(kestra.url, USERNAME, SECRETS["KESTRA_OPS_BASIC_AUTH_PASSWORD"],
                          backoff=0.01, timeout=10) as client:
            client.create_flow(FLOW)
        kestra.sync()
        follower = state["follower"] = Follower(install, kestra)
        follower.start()
        return state

    state["start"] = start
    try:
        yield state
    finally:
        if "follower" in state:
            state["follower"].stopping.set()
        if "kestra" in state:
            state["kestra"].stop()
        for name in (bucket, backups):
            try:
                seaweed.remove_bucket(name)
            except Exception:  # noqa: BLE001 - best effort
                pass


def upgrade(install, *args: str) -> tuple[int, dict]:
    result = install.run("upgrade", "run", "--env", "dev", "--yes", "--check-timeout", "60s",
                         "--output", "json", *args)
    assert result.exit_code in (0, 1, 130), result.output
    return result.exit_code, json.loads(result.stdout)


def image(install) -> str:
    return install.deployment()["spec"]["template"]["spec"]["containers"][0]["image"]


def tables(db: str) -> dict:
    with psycopg.connect(db) as conn:
        rows = conn.execute("SELECT table_name, column_name FROM information_schema.columns "
                            "WHERE table_schema = 'public' ORDER BY 1, 2").fetchall()
    out: dict = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def overlay_tag(install) -> str:
    return yaml.safe_load(install.overlay().read_text())["image"]["tag"]


def env_of(install):
    from kestra_ops.settings import load_config

    return load_config(install.root / "kestra-ops.yaml").environment("dev")


def reversible_patches():
    """The catalogue with the 1.3 patch range marked reversible, as an operator who verified
    it would: the packaged catalogue has no step it can prove reversible (its sources are
    unsure), so the reversible path is exercised on this copy."""
    data = copy.deepcopy(yaml.safe_load(cat_mod.CATALOGUE.read_text()))
    for entry in data["releases"]:
        if entry["version"] == "1.3.1..1.3.21":
            entry["reversible"] = True
            entry["reversibility"] = "verified reversible for this test"
    return cat_mod.parse_catalogue(data, "test-catalogue")


def test_a_reversible_patch_upgrade_and_a_failing_one_rolled_back(up):
    from kestra_ops.workflows.upgrade.run import upgrade_run

    install = up["install"]
    up["start"]("v1.3.2")
    result = upgrade_run(env_of(install), "1.3.5", catalogue=reversible_patches(),
                         check_timeout="60s")
    assert result.exit_code == 0, result.message
    assert result.data["reversible"] is True and not result.items  # no gates
    assert image(install).endswith(":v1.3.5") and overlay_tag(install) == "v1.3.5"
    assert [r["status"] for r in install.history()] == ["superseded", "deployed"]
    wait_until("Kestra to report 1.3.5", lambda: up["kestra"].version == "1.3.5")

    up["follower"].crash = "v1.3.21"  # the next one crash-loops: helm takes it back
    failed = upgrade_run(env_of(install), "1.3.21", catalogue=reversible_patches(),
                         timeout="20s", check_timeout="30s")
    assert failed.exit_code == 1 and failed.outcome == "rolled-back", failed.message
    assert "reversible" in failed.message
    assert image(install).endswith(":v1.3.5") and overlay_tag(install) == "v1.3.5"
    assert not failed.data["restore"] and failed.data["backup_set"] is None
    assert install.lease() is None


def test_an_irreversible_step_needs_a_fresh_verified_backup(up):
    install = up["install"]
    up["start"]("v1.3.2")
    before = install.overlay().read_text()
    # the plan, online: the running version from Kestra and the Deployment, the flows exported
    planned = install.run("upgrade", "plan", "--env", "dev", "--to", "2.0", "--output", "json")
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert plan["running"]["api"] == "1.3.2" and plan["running"]["image"].endswith(":v1.3.2")
    assert [(s["from"], s["to"]) for s in plan["steps"]] == [("1.3.2", "1.3.22"),
                                                              ("1.3.22", "2.0.8")]
    assert all(s["sources"] for s in plan["steps"])
    assert "1 flow(s) checked against 2.0.8" in plan["notes"]
    code, data = upgrade(install, "--to", "1.3.22")
    assert code == 1 and data["outcome"] == "blocked", data["message"]
    gates = {g["id"]: g for g in data["gates"]}
    assert gates["backup"]["status"] == "fail" and "no complete backup set" in \
        gates["backup"]["reason"]
    assert "nothing was changed" in data["message"]
    assert install.overlay().read_text() == before
    assert [r["status"] for r in install.history()] == ["deployed"]
    assert image(install).endswith(":v1.3.2") and install.lease() is None

    code, data = upgrade(install, "--to", "1.3.22", "--take-backup")
    assert code == 0 and data["outcome"] == "upgraded", data["message"]
    assert data["gates"][1]["status"] == "pass" and data["backup_set"]
    install.run_ok("backup", "verify", "--env", "dev", data["backup_set"])
    assert image(install).endswith(":v1.3.22") and overlay_tag(install) == "v1.3.22"
    # Kestra was stopped before the new version started (no two versions on one database)
    history = install.history()
    assert [r["status"] for r in history] == ["superseded", "superseded", "deployed"]
    names = [s["name"] for s in data["steps"]]
    assert names.index("stop Kestra (0 replicas, the running version)") < \
        names.index("guarded release of Kestra 1.3.22")
    wait_until("Kestra to report 1.3.22", lambda: up["kestra"].version == "1.3.22")
    stored = list((install.root / "backups" / "upgrades" / "dev").glob("*/report.json"))
    assert stored and json.loads(stored[0].read_text())["outcome"] in ("blocked", "upgraded")


def test_a_failing_migration_job_stops_before_the_release(up):
    install = up["install"]
    config = install.root / "kestra-ops.yaml"
    data = yaml.safe_load(config.read_text())
    data["environments"]["dev"]["upgrade"] = {
        "job_annotations": {"fake-kubelet/state": "crashloop"}}
    config.write_text(yaml.safe_dump(data))
    up["start"]("v1.3.22")
    before = install.overlay().read_text()
    code, report = upgrade(install, "--to", "2.0.8", "--take-backup")
    assert code == 1 and report["outcome"] == "failed", report["message"]
    assert "stopped before the release; nothing was changed" in report["message"]
    job = report["jobs"][0]
    assert job["migration"] == "migrate-plan" and job["succeeded"] is False
    live = install.get(f"/apis/batch/v1/namespaces/{install.namespace}/jobs/{job['name']}")
    container = live["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith(":v2.0.8")
    # the image's entrypoint runs /app/kestra "$@" (kestra-io/kestra docker-entrypoint.sh)
    assert container["args"] == ["migrate", "plan"] and "command" not in container
    assert any(c["type"] == "Failed" and c["status"] == "True"
               for c in live["status"].get("conditions") or [])
    assert install.overlay().read_text() == before
    assert [r["status"] for r in install.history()] == ["deployed"]
    assert image(install).endswith(":v1.3.22")
    assert install.deployment()["spec"]["replicas"] == 1


def test_a_failed_release_after_an_irreversible_step_restores_the_backup(up):
    install = up["install"]
    up["start"]("v1.3.22")
    db = up["db"]
    original = tables(db)
    assert "templates" in original

    def migrate():  # what 2.0's `migrate run` does to a 1.3 database (catalogue, 2.0.0)
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("DROP TABLE templates")
            conn.execute("CREATE TABLE locks (name text PRIMARY KEY)")
            conn.execute("CREATE TABLE kestra_migration_history (script_id text)")
            conn.execute("INSERT INTO kestra_migration_history VALUES ('2.0.01-schema')")

    follower = up["follower"]
    follower.on_job["migrate-run"] = migrate
    follower.crash = "v2.0.8"  # the new version never becomes ready
    code, data = upgrade(install, "--to", "2.0.8", "--take-backup", "--timeout", "20s")
    assert code == 1 and data["outcome"] == "restored", data["message"]
    assert f"restored backup set {data['backup_set']} and Kestra 1.3.22" in data["message"]
    assert [j["migration"] for j in data["jobs"]] == ["migrate-plan", "migrate-run"]
    assert all(j["succeeded"] for j in data["jobs"])
    assert data["failed_state_set"] and data["failed_state_set"] != data["backup_set"]
    # the database is the pre-upgrade one again, the failed one kept as a set
    assert tables(db) == original
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT id FROM templates").fetchall() == [("legacy",)]
        assert conn.execute("SELECT count(*) FROM flows WHERE namespace = %s AND id = %s",
                            (NS, "nightly")).fetchone()[0] == 1
    install.run_ok("backup", "verify", "--env", "dev", data["failed_state_set"])
    # the previous version runs, from the pre-upgrade values
    assert image(install).endswith(":v1.3.22") and overlay_tag(install) == "v1.3.22"
    wait_until("the previous version to be ready",
               lambda: install.deployment()["status"].get("readyReplicas") == 1)
    assert data["check"]["exit_code"] == 0
    assert install.lease() is None
