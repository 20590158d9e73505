"""config patch against the fake Kubernetes API, seeded with the ConfigMap and Deployment the
chart renders: happy path (backup, write, restart, JSON), text output, --no-restart, no TTY,
usage errors, the one duration grammar, rule violations refused, 409 and a concurrent change on
the write, masked secrets, --persist keeping the overlay's comments."""

from __future__ import annotations

import json
import stat
import textwrap

import pytest
import yaml

from kestra_ops.errors import Conflict
from kestra_ops.settings import load_config
from kestra_ops.values.merge import load_layers
from tests.helpers_configmap import (CM, DEP, NS, app_yml, backup_files, changes,  # noqa: F401
                                     cm_rv, project, ready, restarted_at, run)


def test_patch_backs_up_writes_restarts_and_reports_json(project, fake_kube):
    original, rv0 = app_yml(fake_kube), cm_rv(fake_kube)
    result = run(project, "config", "patch", "--env", "dev", "--set",
                 "kestra.server.termination-grace-period=4m", "--yes", "--output", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["changed"] and data["restarted"] and data["keys"] == [
        "kestra.server.termination-grace-period"]
    assert data["resource_version_before"] == rv0 != data["resource_version_after"]
    assert "-    termination-grace-period: 5m" in data["diff"]
    assert "+    termination-grace-period: 4m" in data["diff"]
    assert (data["command"], data["status"], data["outcome"], data["exit_code"]) == (
        "config patch", "pass", "patched", 0)
    [helm] = [w for w in data["warnings"] if "Helm owns configmap kestra-config" in w]
    assert "--persist" in helm
    assert [s["status"] for s in data["steps"]] == ["pass"] * 5

    # the live ConfigMap changed on that one line only
    assert app_yml(fake_kube) == original.replace("termination-grace-period: 5m",
                                                  "termination-grace-period: 4m")
    # the backup: 0600, a re-appliable manifest of what was read, without server-set fields
    [backup] = backup_files(project)
    assert data["backup"] == f"backups/configmap/{backup.name}"
    assert backup.name.startswith("kestra-config-") and backup.name.endswith("Z.yaml")
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    manifest = yaml.safe_load(backup.read_text())
    assert manifest["kind"] == "ConfigMap" and manifest["data"]["application.yml"] == original
    assert set(manifest["metadata"]) <= {"name", "namespace", "labels", "annotations"}
    assert f"resourceVersion {rv0}" in backup.read_text().splitlines()[0]
    # Kestra restarted and ready on a new ReplicaSet
    assert restarted_at(fake_kube) and ready(fake_kube)
    pods = fake_kube.store.list("pods", NS)
    assert len({p["metadata"]["labels"]["pod-template-hash"] for p in pods}) == 1
    # the change log: what, where, before/after, the backup; no values
    log = changes(project)
    assert [e["action"] for e in log] == ["configmap.patch", "deployment.restart"]
    assert log[0]["before"] == rv0 and log[0]["after"] == data["resource_version_after"]
    assert log[0]["backup"] == data["backup"] and log[0]["target"] == f"configmap {NS}/{CM}"
    assert "4m" not in json.dumps(log)


def test_text_output_and_unchanged_patch(project, fake_kube):
    result = run(project, "config", "patch", "--env", "dev", "--set",
                 "kestra.server.termination-grace-period=5m", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith("configmap kestra-config: unchanged")
    assert "warning: configmap kestra-config already has these values: nothing to do" in \
        result.stdout
    assert backup_files(project) == [] and restarted_at(fake_kube) is None

    result = run(project, "config", "patch", "--env", "dev", "--set",
                 "kestra.jdbc.cleaner.retention=14d", "--yes")
    assert result.exit_code == 0, result.output
    last = result.stdout.rstrip().splitlines()[-1]
    assert last.startswith("patched configmap kestra-config in hyperplane-kestra: 1 key(s) "
                           "changed (resourceVersion ")
    assert "  ~ kestra.jdbc.cleaner.retention" in result.stdout
    assert "restarted deployment kestra-standalone: ready in" in result.stdout
    assert "+      retention: 14d" in result.stdout  # the masked diff, in the report
    assert "PASS        rollout restart deployment/kestra-standalone" in result.stdout
    assert "Helm owns configmap kestra-config" in result.stdout  # a warning of the report


def test_no_restart_writes_only(project, fake_kube):
    generation = fake_kube.store.get("deployments", NS, DEP)["metadata"]["generation"]
    result = run(project, "config", "patch", "--env", "dev", "--set",
                 "kestra.url=https://kestra-dev2.example.com/", "--yes", "--no-restart",
                 "--output", "json", "--quiet")
    assert result.exit_code == 0, result.output
    assert "write configmap" not in result.stderr and "+++" not in result.stderr  # --quiet
    data = json.loads(result.stdout)
    assert data["changed"] and not data["restarted"]
    assert any(w.startswith("not restarted: Kestra reads application.yml at start")
               for w in data["warnings"])
    assert "url: https://kestra-dev2.example.com/" in app_yml(fake_kube)
    assert restarted_at(fake_kube) is None
    assert fake_kube.store.get("deployments", NS, DEP)["metadata"]["generation"] == generation
    assert [e["action"] for e in changes(project)] == ["configmap.patch"]


def test_without_tty_and_yes_nothing_is_written(project, fake_kube):
    original, rv0 = app_yml(fake_kube), cm_rv(fake_kube)
    result = run(project, "config", "patch", "--env", "dev", "--set",
                 "kestra.jdbc.cleaner.retention=14d")
    assert result.exit_code == 2, result.output  # the confirm policy: refused, not declined
    assert result.stderr.rstrip().splitlines()[-1] == (
        "error: refusing to patch configmap kestra-config without --yes (stdin is not a "
        "terminal); nothing was changed")
    assert "+      retention: 14d" in result.stderr  # shown before refusing
    assert "warning: Helm owns configmap kestra-config" in result.stderr
    assert result.stdout == ""
    assert (app_yml(fake_kube), cm_rv(fake_kube)) == (original, rv0)
    assert backup_files(project) == [] and changes(project) == []


def test_usage_errors(project, fake_kube):
    result = run(project, "config", "patch", "--env", "dev", "--yes")
    assert result.exit_code == 2 and "give --set KEY=VALUE or --file" in result.stderr
    result = run(project, "config", "patch", "--env", "dev", "--set", "a=1", "--timeout", "soon")
    assert result.exit_code == 2 and "invalid duration 'soon'" in result.stderr
    result = run(project, "config", "patch", "--env", "dev", "--set",
                 "micronaut.server.port=9999", "--persist", "--yes")
    assert result.exit_code == 2 and "micronaut is not rendered from values" in result.stderr
    assert backup_files(project) == []


def test_timeout_takes_the_one_duration_grammar(project, fake_kube):
    """--timeout 1h30m was refused (the old parser knew one unit per value); PT5M too works."""
    for timeout, value in (("1h30m", "14d"), ("PT5M", "21d")):
        result = run(project, "config", "patch", "--env", "dev", "--set",
                     f"kestra.jdbc.cleaner.retention={value}", "--yes", "--timeout", timeout,
                     "--output", "json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["restarted"] and ready(fake_kube)
        assert f"retention: {value}" in app_yml(fake_kube)


def test_rule_breaking_change_is_refused(project, fake_kube):
    original, rv0 = app_yml(fake_kube), cm_rv(fake_kube)
    result = run(project, "config", "patch", "--env", "dev", "--set", "datasources.default=null",
                 "--yes")
    assert result.exit_code == 1
    assert "error kestra/datasource-missing: datasources.default is missing" in result.stdout
    assert "FAIL        check Kestra's rules" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == (
        "the patched application.yml breaks 1 rule(s); nothing was written")
    assert (app_yml(fake_kube), cm_rv(fake_kube)) == (original, rv0)
    assert backup_files(project) == [] and restarted_at(fake_kube) is None

    # the live pod grace period (360s) must stay above Kestra's: 10m is refused, in JSON too
    result = run(project, "config", "patch", "--env", "dev", "--set",
                 "kestra.server.termination-grace-period=10m", "--yes", "--output", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [f["rule"] for f in data["findings"] if f["severity"] == "error"] == [
        "kestra/grace-period"]
    assert (data["status"], data["outcome"], data["changed"]) == ("fail", "refused", False)
    assert app_yml(fake_kube) == original and changes(project) == []


def test_conflict_on_write_writes_nothing(project, fake_kube):
    original, rv0 = app_yml(fake_kube), cm_rv(fake_kube)
    fake_kube.fail_next("update", "configmaps", code=409, reason="Conflict", message=(
        'Operation cannot be fulfilled on configmaps "kestra-config": the object has been '
        "modified; please apply your changes to the latest version and try again"))
    result = run(project, "config", "patch", "--env", "dev", "--set",
                 "kestra.jdbc.cleaner.retention=14d", "--yes")
    assert result.exit_code == 1
    assert ("error: configmap kestra-config changed since it was read (resourceVersion "
            f"{rv0}): nothing was written") in result.stderr
    assert (app_yml(fake_kube), cm_rv(fake_kube)) == (original, rv0)
    assert restarted_at(fake_kube) is None
    assert "configmap.patch" not in [e["action"] for e in changes(project)]


def test_concurrent_change_between_read_and_write(project, fake_kube):
    """Someone patches the ConfigMap while the diff is on screen: our write is refused."""
    from kestra_ops.workflows.configmap.patch import patch_config
    from kestra_ops.workflows.configmap.doc import Patch

    env = load_config(project / "kestra-ops.yaml").environment("dev")

    def meanwhile(diff: str) -> bool:
        assert "retention: 14d" in diff
        fake_kube.store.patch("configmaps", NS, CM, {"metadata": {"labels": {"x": "y"}}})
        return True

    with pytest.raises(Conflict, match="changed since it was read"):
        patch_config(env, Patch(sets=("kestra.jdbc.cleaner.retention=14d",)),
                     confirm=meanwhile, restart=False)
    live = fake_kube.store.get("configmaps", NS, CM)
    assert live["metadata"]["labels"]["x"] == "y"  # their change stands, ours is not written
    assert "retention: 7d" in live["data"]["application.yml"]


def test_secrets_are_masked_in_the_diff(project, fake_kube):
    patch = project / "patch.yaml"
    patch.write_text(textwrap.dedent("""\
        kestra:
          storage:
            minio:
              secret-key: Sup3rSecretMinio
        """))
    result = run(project, "config", "patch", "--env", "dev", "--file", str(patch), "--yes",
                 "--no-restart")
    assert result.exit_code == 0, result.output
    assert "-      secret-key: ${KESTRA_MINIO_SECRET_KEY}" in result.stdout
    assert "+      secret-key: ****** (changed)" in result.stdout
    assert "secret-key: Sup3rSecretMinio" in app_yml(fake_kube)  # written, never shown

    result = run(project, "config", "patch", "--env", "dev", "--set",
                 "kestra.storage.minio.secret-key=An0therSecret", "--yes", "--no-restart",
                 "--output", "json")
    assert result.exit_code == 0, result.output
    diff = json.loads(result.stdout)["diff"]
    assert "-      secret-key: ******\n" in diff
    assert "+      secret-key: ****** (changed)\n" in diff
    for text in (result.output, (project / "backups" / "changes.jsonl").read_text()):
        assert "Sup3rSecretMinio" not in text and "An0therSecret" not in text
    assert "plaintext secret" in result.stdout  # a dev warning finding, in the JSON


def test_persist_writes_the_overlay_keeping_comments(project, fake_kube):
    overlay = project / "values" / "dev.yaml"
    before = overlay.read_text()
    patch = project / "patch.yaml"
    patch.write_text(textwrap.dedent("""\
        kestra:
          server:
            termination-grace-period: 4m
          jdbc:
            cleaner: null
        """))
    result = run(project, "config", "patch", "--env", "dev", "--file", str(patch), "--persist",
                 "--yes")
    assert result.exit_code == 0, result.output
    assert "persisted to values/dev.yaml" in result.stdout
    assert "the change is also written to values/dev.yaml" in result.stdout
    assert "still render a different" not in result.output  # values and ConfigMap agree
    after = overlay.read_text()
    for line in before.splitlines():  # every comment and value is still there
        assert line in after.splitlines()
    assert "# fewer worker threads and a smaller pod than base" in after
    overlay_data = yaml.safe_load(after)
    assert overlay_data["kestra"]["server"] == {"termination-grace-period": "4m"}
    assert overlay_data["kestra"]["jdbc"] == {"cleaner": None}  # explicit null deletes
    assert overlay_data["kestra"]["storage"]["minio"]["bucket"] == "kestra-dev"
    merged = load_layers([project / "values" / "base.yaml", overlay]).plain
    assert merged["kestra"]["server"]["termination-grace-period"] == "4m"
    assert "cleaner" not in merged["kestra"]["jdbc"]
    assert "jdbc:\n  cleaner: {}" not in app_yml(fake_kube)
    assert changes(project)[-1]["action"] == "values.persist"
    assert run(project, "values", "validate", "--env", "dev", "--no-cache").exit_code == 0


@pytest.mark.parametrize("reply", ["n", "y"])
def test_on_a_terminal_the_diff_and_the_helm_warning_come_before_the_question(
        project, fake_kube, monkeypatch, reply):
    import types

    from click.testing import CliRunner

    from kestra_ops.cli import cli, common

    terminal = types.SimpleNamespace(isatty=lambda: True)  # stdin is a terminal: ask
    monkeypatch.setattr(common, "sys", types.SimpleNamespace(stdin=terminal, stdout=terminal))
    original, rv0 = app_yml(fake_kube), cm_rv(fake_kube)
    result = CliRunner().invoke(cli, ["--config", str(project / "kestra-ops.yaml"), "config",
                                      "patch", "--env", "dev", "--set",
                                      "kestra.jdbc.cleaner.retention=14d", "--no-restart"],
                                input=f"{reply}\n")
    diff = result.stderr.index("+      retention: 14d")
    warning = result.stderr.index("warning: Helm owns configmap kestra-config")
    assert diff < warning < result.stderr.index("apply this change? [y/N]")
    if reply == "n":
        assert result.exit_code == 1
        assert "error: not confirmed: nothing was changed" in result.stderr
        assert (app_yml(fake_kube), cm_rv(fake_kube)) == (original, rv0)
        assert backup_files(project) == [] and changes(project) == []
    else:
        assert result.exit_code == 0, result.output
        assert "retention: 14d" in app_yml(fake_kube) and len(backup_files(project)) == 1
