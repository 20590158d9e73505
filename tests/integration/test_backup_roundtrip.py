"""backup run / list / verify / restore / drill against real PostgreSQL and an S3 server."""

from __future__ import annotations

import json
import time

from tests.helpers_configmap import app_yml, backup_files

from tests.integration.backup_support import (  # noqa: F401 - fixtures
    BACKUP_BUCKET, backup_env, backup_json, contents, kestra, objects, pg_cluster, pg_db, project,
    run, s3, seaweed)


def test_round_trip(backup_env, s3, pg_cluster, pg_db, kestra, fake_kube):
    project, source = backup_env
    code, data, output = backup_json(project)
    assert code == 0, output
    name = data["set"]
    assert (data["command"], data["status"], data["outcome"]) == ("backup run", "pass", "complete")
    assert data["included"] == ["db", "flows", "config", "storage", "secrets"]
    assert data["manifest"]["status"] == "complete"
    assert [s["name"].split(" ")[0] for s in data["steps"]] == ["db", "storage", "flows",
                                                                "config", "secrets",
                                                                "manifest.json"]
    # no backup.recipients here: the set is complete and says the Secrets are not in it
    assert data["manifest"]["secrets"]["sealed"] is False
    assert [w.split(":")[0] for w in data["warnings"]] == ["secrets not included"]
    prefix = f"backups/dev/{name}/"
    assert objects(s3) == [prefix + f for f in ("configmap.yaml", "db.dump.zst", "flows.zip",
                                                 "manifest.json", "storage-index.json",
                                                 "values.yaml")]  # no metadata tables: no refs
    manifest = json.loads(s3.client().get_object(BACKUP_BUCKET, prefix + "manifest.json").read())
    assert manifest["postgres"]["server_version"].startswith("15")
    assert manifest["kestra"]["version"]
    assert manifest["artefacts"]["db.dump.zst"]["raw_size"] > manifest["artefacts"][
        "db.dump.zst"]["size"] > 10_000
    assert set(manifest["timings"]) >= {"db", "flows", "config", "total"}
    values = s3.client().get_object(BACKUP_BUCKET, prefix + "values.yaml").read().decode()
    assert "datasources" in values and "kestra" in values

    listed = run(project, "backup", "list", "--env", "dev", "--output", "json")
    assert listed.exit_code == 0, listed.output
    sets = json.loads(listed.stdout)["sets"]
    assert [(s["name"], s["complete"]) for s in sets] == [(name, True)]
    table = run(project, "backup", "list", "--env", "dev")
    [line] = [ln for ln in table.stdout.splitlines() if ln.split()[:1] == [name]]
    assert line.split()[1:2] == ["complete"] and "db,flows,config" in line
    assert table.stdout.rstrip().endswith("1 set(s), 1 complete, newest first")

    verified = run(project, "backup", "verify", "--env", "dev", name, "--output", "json",
                   "--toc")
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.stdout)
    assert all(a["ok"] for a in report["artefacts"].values()) and len(report["artefacts"]) == 5
    assert any("TABLE DATA public logs" in line for line in report["toc"])
    assert report["toc_entries"] == len(report["toc"])
    assert [(c["id"], c["status"]) for c in report["checks"]] == [
        (a, "pass") for a in sorted(report["artefacts"])] + [
        ("secrets", "warn"), ("storage", "pass"),
        ("storage-refs", "warn")]  # no recipients, no Kestra metadata tables here
    text = run(project, "backup", "verify", "--env", "dev", name)
    assert text.exit_code == 0 and text.stdout.rstrip().endswith(f"verify dev {name}: ok")
    assert "TABLE DATA" not in text.stdout  # the table of contents only with --toc

    target = pg_db()
    restored = run(project, "backup", "restore", "--env", "dev", name, "--yes",
                   "--to-database", pg_cluster.url(target))
    assert restored.exit_code == 0, restored.output
    assert contents(pg_cluster, target) == contents(pg_cluster, source)
    assert contents(pg_cluster, target)["logs"][1] == 24_000

    # a non-empty target is refused without --clean, then accepted with it
    again = run(project, "backup", "restore", "--env", "dev", "latest", "--yes",
                "--to-database", pg_cluster.url(target))
    assert again.exit_code == 1 and "not empty" in again.output
    pg_cluster.execute(target, "DELETE FROM logs WHERE id < 100")
    clean = run(project, "backup", "restore", "--env", "dev", "latest", "--yes", "--clean",
                "--to-database", pg_cluster.url(target))
    assert clean.exit_code == 0, clean.output
    assert contents(pg_cluster, target) == contents(pg_cluster, source)

    drilled = run(project, "backup", "drill", "--env", "dev", "--database-only", "--output", "json")
    assert drilled.exit_code == 0, drilled.output
    drill = json.loads(drilled.stdout)
    assert drill["ok"] and drill["counts"]["public.logs"] == [24_000, 24_000]
    assert any("dropped" in d for d in drill["details"])
    import psycopg

    with psycopg.connect(pg_cluster.url()) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE "
                            "'kestra_drill_%'").fetchall()
    assert left == []

    # the drill reports a difference when the source moved on
    pg_cluster.execute(source, "INSERT INTO logs VALUES (0, 'new')")
    moved = run(project, "backup", "drill", "--env", "dev", "--database-only")
    assert moved.exit_code == 1 and "public.logs: source 24001, restored 24000" in moved.output


def test_restore_flows_and_config(backup_env, s3, kestra, fake_kube):
    project, _ = backup_env
    original = app_yml(fake_kube)
    code, data, output = backup_json(project, "--what", "flows,config")
    assert code == 0, output
    assert data["included"] == ["flows", "config"]
    patched = run(project, "config", "patch", "--env", "dev", "--yes", "--no-restart",
                  "--set", "kestra.jdbc.cleaner.retention=30d")
    assert patched.exit_code == 0, patched.output
    assert app_yml(fake_kube) != original
    before = backup_files(project)
    restored = run(project, "backup", "restore", "--env", "dev", data["set"], "--yes",
                   "--flows", "--config", "--output", "json")
    assert restored.exit_code == 0, restored.output
    report = json.loads(restored.stdout)
    assert "flows imported" in report["details"]
    imports = kestra.calls("POST", r"/flows/import$")
    assert len(imports) == 1
    assert app_yml(fake_kube) == original
    assert len(backup_files(project)) == len(before) + 1  # the live one was backed up first
    without = run(project, "backup", "restore", "--env", "dev", data["set"], "--yes",
                  "--to-database", "postgresql://x@127.0.0.1:9/none")
    assert without.exit_code == 1 and "has no db.dump.zst" in without.output


def test_db_only_needs_no_kube_or_kestra(backup_env, s3, monkeypatch):
    project, _ = backup_env
    monkeypatch.setenv("KESTRA_OPS_KESTRA_URL", "http://127.0.0.1:9")
    code, data, output = backup_json(project, "--what", "db", "--quiet")
    assert code == 0, output
    assert [k.rsplit("/", 1)[1] for k in objects(s3)] == ["db.dump.zst", "manifest.json"]
    time.sleep(1.01)
    code2, data2, _ = backup_json(project, "--what", "db")
    sets = json.loads(run(project, "backup", "list", "--env", "dev", "-o", "json").stdout)["sets"]
    assert [s["name"] for s in sets] == [data2["set"], data["set"]]


def test_bad_what_is_usage_error(backup_env):
    project, _ = backup_env
    result = run(project, "backup", "run", "--env", "dev", "--what", "db,logs")
    assert result.exit_code == 2 and "--what" in result.output


def test_restore_without_yes_or_terminal_is_refused_and_changes_nothing(backup_env, s3,
                                                                      pg_cluster, pg_db):
    import psycopg

    project, _ = backup_env
    code, data, output = backup_json(project, "--what", "db")
    assert code == 0, output
    target = pg_db()
    refused = run(project, "backup", "restore", "--env", "dev", "latest",
                  "--to-database", pg_cluster.url(target))
    assert refused.exit_code == 2, refused.output
    assert refused.stderr == (f"error: refusing to restore database of dev from {data['set']} "
                              "without --yes (stdin is not a terminal); nothing was changed\n")
    with psycopg.connect(pg_cluster.url(target)) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone()[0] == 0
