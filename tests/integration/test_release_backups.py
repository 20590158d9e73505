"""What a release keeps and puts back: the database backup set it takes before the upgrade (a
real throwaway PostgreSQL, the S3 server), the report it stores in the bucket, and the ConfigMap
it restores after a rollback when it had been changed outside Helm. Same install as
test_release.py; the env's MinIO is the MinIO front of the fakes with the S3 server behind it."""

from __future__ import annotations

import datetime
import json
import re

import yaml
from click.testing import CliRunner

from kestra_ops.cli import cli
from kestra_ops.workflows.deploy import preflight
from tests.fakes.postgres_server import PASSWORD, pg_cluster, pg_db  # noqa: F401 - fixtures
from tests.helpers_checks import CM, NS, install  # noqa: F401 - fixture
from tests.integration.release_support import (BACKUP_BUCKET, BUCKET, configmap_data,  # noqa: F401
                                               failing_check, interrupt, lock_free, objects,
                                               patch_outside_helm, read_object, release, step,
                                               storage)

DB_STEP = "pre-release backup: database backup set"
RESTORE_STEP = f"restore ConfigMap {CM} from the pre-release backup"


def local_report(install, data) -> bytes:
    path = install.root / "backups" / "releases" / "dev" / data["started"] / "report.json"
    return path.read_bytes()


def no_secrets(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, "a secret in the report"


# --- the database backup set ------------------------------------------------------------------

def test_release_takes_a_database_backup_set(install, storage, pg_cluster, pg_db, monkeypatch):
    db = pg_db()
    pg_cluster.execute(db, "CREATE TABLE flows (id int PRIMARY KEY, name text); INSERT INTO "
                           "flows SELECT g, 'flow-' || g FROM generate_series(1, 100) g")
    monkeypatch.setenv("KESTRA_OPS_DATABASE_URL", pg_cluster.url(db))
    result, data = release(install)
    assert result.exit_code == 0, result.output
    assert data["outcome"] == "released"
    name = data["backup"]["database"].removeprefix("set ")
    assert data["backup"]["database"] == f"set {name}" and re.fullmatch(r"\d{8}T\d{6}Z", name)
    db_step = step(data, DB_STEP)
    assert db_step["status"] == "pass" and db_step["detail"] == f"set {name} in {BACKUP_BUCKET}"
    assert f"database: set {name}" in data["backup"]["summary"]
    names = [s["name"] for s in data["steps"]]
    assert names.index(DB_STEP) < next(i for i, n in enumerate(names)
                                       if n.startswith("helm upgrade"))  # before the upgrade
    prefix = f"backups/dev/{name}/"
    assert objects(storage, "backups/", BACKUP_BUCKET) == [prefix + f for f in (
        "configmap.yaml", "db.dump.zst", "flows.zip", "manifest.json", "values.yaml")]
    assert objects(storage, "backups/") == []  # nothing in Kestra's own bucket
    manifest = json.loads(read_object(storage, prefix + "manifest.json", BACKUP_BUCKET))
    assert manifest["status"] == "complete" and manifest["set"] == name
    assert manifest["included"] == ["db", "flows", "config"]
    assert manifest["postgres"]["database"] == db
    assert manifest["artefacts"]["db.dump.zst"]["raw_size"] > 1000
    listed = CliRunner().invoke(cli, ["--config", str(install.config), "backup", "list",
                                      "--env", "dev", "--output", "json"])
    assert listed.exit_code == 0, listed.output
    assert [(s["name"], s["complete"]) for s in json.loads(listed.stdout)["sets"]] == [
        (name, True)]
    stored = read_object(storage, f"releases/dev/{data['started']}.json")
    assert stored == local_report(install, data)
    no_secrets(stored.decode(), PASSWORD, storage.secret_key, install.kestra.password)
    assert lock_free(install)


# --- the report in the bucket -----------------------------------------------------------------

def test_report_is_stored_in_the_bucket(install, storage, monkeypatch):
    # no database: the backup set is skipped, said so
    result, data = release(install)
    assert result.exit_code == 0, result.output
    started = data["started"]
    assert re.fullmatch(r"\d{8}T\d{6}Z", started)
    when = datetime.datetime.strptime(started, "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc)
    assert abs(datetime.datetime.now(datetime.timezone.utc) - when) < datetime.timedelta(
        minutes=5)  # UTC, not local time
    key = f"releases/dev/{started}.json"
    assert objects(storage, "releases/") == [key]
    stored = read_object(storage, key)
    assert stored == local_report(install, data)  # byte for byte
    path = install.root / "backups" / "releases" / "dev" / started / "report.json"
    assert data["stored"] == [str(path), f"s3://{BUCKET}/{key}"]
    assert json.loads(stored) == {**data, "stored": []}  # what was printed, before it was stored
    no_secrets(stored.decode(), storage.secret_key, install.kestra.password)
    assert step(data, "pre-release backup: database")["status"] == "skip"
    assert "no database" in data["backup"]["database"]
    assert objects(storage, "backups/", BACKUP_BUCKET) == []


def test_interrupted_release_report_is_stored_in_the_bucket(install, storage, monkeypatch):
    monkeypatch.setattr(preflight, "run_preflight", interrupt)
    result, data = release(install)
    assert result.exit_code == 130, result.output
    stored = json.loads(read_object(storage, f"releases/dev/{data['started']}.json"))
    assert stored["outcome"] == "interrupted" and stored["stopped_at"] == "preflight"
    assert lock_free(install)


def test_report_upload_failure_is_a_warning(install, storage, monkeypatch):
    storage.client().remove_bucket(BUCKET)  # gone after preflight would have looked
    result, data = release(install, "--skip-bucket")
    assert result.exit_code == 0 and data["outcome"] == "released", result.output
    assert any(w.startswith("could not store the report in the bucket") for w in
               data["warnings"]), data["warnings"]
    assert len(data["stored"]) == 1 and local_report(install, data)


def test_ctrl_c_while_storing_the_report_keeps_the_outcome(install, storage, monkeypatch):
    from kestra_ops.adapters.storage import Storage

    monkeypatch.setattr(Storage, "put_bytes", interrupt)
    result, data = release(install)
    assert result.exit_code == 0 and data["outcome"] == "released", result.output
    assert any("interrupted (Ctrl-C)" in w for w in data["warnings"]), data["warnings"]
    assert len(data["stored"]) == 1 and local_report(install, data)
    assert objects(storage, "releases/") == [] and lock_free(install)


# --- the ConfigMap after a rollback -----------------------------------------------------------

def test_rollback_restores_a_configmap_changed_outside_helm(install, monkeypatch):
    chart, patched = patch_outside_helm(install)
    failing_check(install, monkeypatch, chart_cm=chart)
    result, data = release(install)
    assert result.exit_code == 1, result.output
    assert data["outcome"] == "rolled-back" and data["rolled_back_to"] == 2
    saved = yaml.safe_load(open(data["backup"]["files"]["configmap"]))
    assert saved["data"] == patched  # taken before the upgrade
    # the data itself is never in the printed (and stored) report: it may hold credentials
    assert "configmap_data" not in data["backup"]
    assert json.dumps(patched["application.yml"])[1:-1] not in result.stdout
    restore = step(data, RESTORE_STEP)
    assert restore["status"] == "pass"
    names = [s["name"] for s in data["steps"]]
    assert (names.index("helm rollback to revision 2 (wait 1m)") < names.index(RESTORE_STEP)
            < names.index("check after the rollback (wait 2s)"))
    assert configmap_data(install) == patched  # not the chart's data the rollback applied
    assert data["recheck"]["ok"] and "the checklist after the rollback passes" in data["message"]
    assert lock_free(install)


def test_rollback_leaves_an_unchanged_configmap(install, monkeypatch):
    before = configmap_data(install)
    failing_check(install, monkeypatch, chart_cm=before)
    result, data = release(install)
    assert result.exit_code == 1, result.output
    assert data["outcome"] == "rolled-back"
    restore = step(data, "restore ConfigMap")
    assert (restore["name"], restore["status"], restore["detail"]) == (
        "restore ConfigMap", "skip", "unchanged by the release")
    assert not any(s["name"] == RESTORE_STEP for s in data["steps"])
    assert configmap_data(install) == before and lock_free(install)


def test_no_configmap_before_the_release_is_not_restored(install, monkeypatch):
    install.kube.store.delete("configmaps", NS, CM)
    failing_check(install, monkeypatch)
    result, data = release(install)
    assert result.exit_code == 1, result.output
    assert "configmap" not in data["backup"]["files"]
    assert not any(s["name"].startswith("restore ConfigMap") for s in data["steps"])
