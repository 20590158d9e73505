"""config patch's failed rollouts (automatic restore), config backups and config restore against
the fake Kubernetes API; the backup manifest re-applied; the uploader hook."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from kestra_ops.errors import OperationFailed
from kestra_ops.settings import load_config
from tests.helpers_configmap import (CM, DEP, NS, app_yml, backup_files, changes,  # noqa: F401
                                     clear_failure_when_restored, freeze_running_pods, project,
                                     ready, run)


def test_backup_is_reappliable(project, fake_kube):
    result = run(project, "config", "patch", "--env", "dev", "--set",
                 "kestra.jdbc.cleaner.retention=14d", "--yes", "--no-restart")
    assert result.exit_code == 0, result.output
    [backup] = backup_files(project)
    fake_kube.store.delete("configmaps", NS, CM)
    from kestra_ops.adapters.kube import Kube

    kube = Kube(context="fake", kubeconfig=str(fake_kube.kubeconfig), namespace=NS)
    kube.core.create_namespaced_config_map(NS, yaml.safe_load(backup.read_text()))
    assert "retention: 7d" in app_yml(fake_kube)


def test_crashloop_restores_the_backup(project, fake_kube):
    original = app_yml(fake_kube)
    freeze_running_pods(fake_kube)
    fake_kube.controller.set_failure(DEP, "crashloop")
    watcher = clear_failure_when_restored(fake_kube, original)
    result = run(project, "config", "patch", "--env", "dev", "--set",
                 "kestra.jdbc.cleaner.retention=14d", "--yes", "--timeout", "20s")
    watcher.join(timeout=5)
    assert result.exit_code == 1
    assert "error:" not in result.stderr  # a failed report, not an error: it says what it did
    message = result.stdout.rstrip().splitlines()[-1]  # the report's last line
    assert message.startswith("rollout failed: deployment kestra-standalone: pod "
                              "kestra-standalone-")
    steps = [line.split("(")[0].split() for line in result.stdout.splitlines()
             if line.startswith("  PASS") or line.startswith("  FAIL")]
    assert [(st[0], " ".join(st[1:3])) for st in steps] == [
        ("PASS", "read configmap"), ("PASS", "check Kestra's"), ("PASS", "back up"),
        ("PASS", "write configmap"), ("FAIL", "rollout restart"), ("PASS", "restore configmap"),
        ("PASS", "rollout restart")]
    restarts = re.search(r"container kestra: CrashLoopBackOff \((\d+) restarts\)", message)
    assert restarts and int(restarts[1]) >= 3
    assert "last exit 1 Error" in message and "Back-off restarting failed container" in message
    [backup] = backup_files(project)
    assert f"restored kestra-config from backups/configmap/{backup.name}" in message
    assert "deployment kestra-standalone is ready again on it" in message
    assert "timed out waiting for the condition" not in message
    assert app_yml(fake_kube) == original and ready(fake_kube)
    assert [e["action"] for e in changes(project)] == [
        "configmap.patch", "deployment.restart", "configmap.restore", "deployment.restart"]


def test_never_ready_times_out_restores_and_says_when_restore_fails_too(project, fake_kube):
    original = app_yml(fake_kube)
    freeze_running_pods(fake_kube)
    fake_kube.controller.set_failure(DEP, "never-ready")
    result = run(project, "config", "patch", "--env", "dev", "--set",
                 "kestra.jdbc.cleaner.retention=14d", "--yes", "--timeout", "0.6s")
    assert result.exit_code == 1
    message = result.stdout.rstrip().splitlines()[-1]
    assert message.startswith("rollout failed: deployment kestra-standalone: not ready after "
                              "0.6s: pod ")
    assert "container kestra: never ready (0 restarts); last event Unhealthy: Readiness probe " \
           "failed" in message
    assert "restored kestra-config from backups/configmap/" in message
    assert "the restart on the restored configuration failed too" in message
    assert app_yml(fake_kube) == original


def test_wait_for_rollout_names_an_image_pull_failure(project, fake_kube):
    from kestra_ops.adapters.kube import Kube
    from kestra_ops.output.progress import Progress
    from kestra_ops.workflows.rollout import restart_deployment, wait_for_rollout

    freeze_running_pods(fake_kube)
    fake_kube.controller.set_failure(DEP, "imagepull")
    kube = Kube(context="fake", kubeconfig=str(fake_kube.kubeconfig), namespace=NS)
    restart_deployment(kube, NS, DEP)
    with pytest.raises(OperationFailed) as err:
        wait_for_rollout(kube, NS, DEP, 10, Progress(quiet=True))
    assert "container kestra: ImagePullBackOff" in str(err.value)
    assert 'Failed to pull image "kestra/kestra:v1.3.2"' in str(err.value) or \
        "Back-off pulling image" in str(err.value)


def test_backups_listing_and_restore(project, fake_kube):
    original = app_yml(fake_kube)
    for value in ("14d", "21d"):
        result = run(project, "config", "patch", "--env", "dev", "--set",
                     f"kestra.jdbc.cleaner.retention={value}", "--yes", "--no-restart")
        assert result.exit_code == 0, result.output
    result = run(project, "config", "backups", "--env", "dev", "--output", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)["backups"]
    assert len(listed) == 2 and all(b["size"] > 100 and b["env"] == "dev" for b in listed)
    assert listed[0]["time"] >= listed[1]["time"]
    newest_first = [int(b["resourceVersion"]) for b in listed]
    assert newest_first == sorted(newest_first, reverse=True)
    oldest = listed[-1]["name"]
    table = run(project, "config", "backups", "--env", "dev")
    lines = table.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["NAME"])
    assert lines[header].split()[:4] == ["NAME", "TIME", "(UTC)", "SIZE"]
    assert [line.split()[0] for line in lines[header + 1:header + 3]] == [
        listed[0]["name"], oldest]
    assert json.loads(run(project, "config", "backups", "--env", "production",
                          "--output", "json").stdout)["backups"] == []

    patched = app_yml(fake_kube)
    result = run(project, "config", "restore", "--env", "dev", oldest, "--yes",
                 "--output", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["restored_from"] == f"backups/configmap/{oldest}" and data["restarted"]
    assert (data["command"], data["outcome"], data["status"]) == ("config restore", "restored",
                                                                  "pass")
    assert data["keys"] == ["kestra.jdbc.cleaner.retention"]
    assert app_yml(fake_kube) == original and ready(fake_kube)
    # the live (patched) ConfigMap was backed up first: restoring that undoes the restore
    newest = backup_files(project)
    assert len(newest) == 3
    own = project / data["backup"]
    assert yaml.safe_load(own.read_text())["data"]["application.yml"] == patched
    result = run(project, "config", "restore", "--env", "dev", str(own), "--yes", "--no-restart")
    assert result.exit_code == 0, result.output
    assert app_yml(fake_kube) == patched
    actions = [e["action"] for e in changes(project)]
    assert actions[2:] == ["configmap.restore", "deployment.restart", "configmap.restore"]


def test_restore_refuses_wrong_backups(project, fake_kube):
    result = run(project, "config", "restore", "--env", "dev", "kestra-config-nope.yaml", "--yes")
    assert result.exit_code == 2 and "not found" in result.stderr
    result = run(project, "config", "patch", "--env", "dev", "--set",
                 "kestra.jdbc.cleaner.retention=14d", "--yes", "--no-restart")
    assert result.exit_code == 0, result.output
    [backup] = backup_files(project)
    result = run(project, "config", "restore", "--env", "production", backup.name, "--yes")
    assert result.exit_code == 2
    assert "taken from environment 'dev', not 'production'" in result.stderr
    assert "retention: 14d" in app_yml(fake_kube)


def test_backup_copy_goes_through_the_uploader(project, fake_kube):
    """The object-storage copy is a parameter: whatever uploads the file says where it went."""
    from kestra_ops.workflows.configmap.patch import patch_config
    from kestra_ops.workflows.configmap.doc import Patch

    env = load_config(project / "kestra-ops.yaml").environment("dev")
    uploaded = []

    def upload(path: Path) -> str:
        uploaded.append(path.read_text())
        return f"s3://{env.minio_bucket}/backups/configmap/{path.name}"

    result = patch_config(env, Patch(sets=("kestra.jdbc.cleaner.retention=14d",)),
                          confirm=lambda diff: True, restart=False, uploader=upload)
    [backup] = backup_files(project)
    assert uploaded == [backup.read_text()]
    assert result.data["uploaded"] == f"s3://kestra-dev/backups/configmap/{backup.name}"
    assert changes(project)[-1]["uploaded"] == result.data["uploaded"]


def test_wait_for_rollout_stops_at_the_progress_deadline(project, fake_kube):
    from kestra_ops.adapters.kube import Kube
    from kestra_ops.workflows.rollout import restart_deployment, wait_for_rollout

    freeze_running_pods(fake_kube)
    fake_kube.controller.progress_deadline = 0.3
    fake_kube.controller.set_failure(DEP, "never-ready")
    kube = Kube(context="fake", kubeconfig=str(fake_kube.kubeconfig), namespace=NS)
    restart_deployment(kube, NS, DEP)
    with pytest.raises(OperationFailed) as err:
        wait_for_rollout(kube, NS, DEP, 30, None)
    message = str(err.value)
    assert message.startswith("deployment kestra-standalone: progress deadline exceeded: pod ")
    assert "container kestra: never ready (0 restarts); last event Unhealthy" in message


def test_backup_is_copied_to_the_bucket_when_storage_is_configured(project, fake_kube, s3,
                                                                   monkeypatch):
    s3.create_bucket("kestra-dev")
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KESTRA_OPS_MINIO_ENDPOINT", s3.endpoint)
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECURE", "false")
    result = run(project, "config", "patch", "--env", "dev", "--yes", "--no-restart",
                 "--set", "kestra.jdbc.cleaner.retention=30d", "--output", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    local = project / data["backup"]
    key = f"backups/dev/configmap/{local.name}"
    assert data["uploaded"] == f"s3://kestra-dev/{key}"
    copied = s3.client().get_object("kestra-dev", key).read()
    assert copied == local.read_bytes()


@pytest.mark.parametrize("where", ["missing bucket", "unreachable endpoint"])
def test_a_failed_bucket_copy_is_a_warning_and_the_patch_goes_on(project, fake_kube, s3,
                                                                 monkeypatch, where):
    """The local 0600 backup is the guarantee; the bucket copy is best effort, so a patch that
    fixes a wrong MinIO endpoint stays possible while object storage is unreachable."""
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    endpoint = s3.endpoint if where == "missing bucket" else "127.0.0.1:9"  # discard port
    monkeypatch.setenv("KESTRA_OPS_MINIO_ENDPOINT", endpoint)
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECURE", "false")
    result = run(project, "config", "patch", "--env", "dev", "--yes", "--no-restart",
                 "--set", "kestra.jdbc.cleaner.retention=30d", "--output", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["changed"] and data["uploaded"] is None
    local = project / data["backup"]
    assert local.is_file() and local.stat().st_mode & 0o777 == 0o600
    warning = next(w for w in data["warnings"] if "not copied to the bucket" in w)
    assert data["backup"] in warning
    assert ("NoSuchBucket" if where == "missing bucket" else "127.0.0.1:9") in warning
    [backup_step] = [s for s in data["steps"] if s["name"].startswith("back up configmap")]
    assert backup_step["status"] == "warn" and data["status"] == "warn"
    assert yaml.safe_load(fake_kube.store.get("configmaps", NS, "kestra-config")["data"][
        "application.yml"])["kestra"]["jdbc"]["cleaner"]["retention"] == "30d"
