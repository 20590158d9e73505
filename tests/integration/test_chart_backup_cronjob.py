"""The chart's backup CronJob, rendered by the real helm: it runs only `backup run` (never prune)
against the separate backup bucket, with the keys of backup.existingSecret."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HELM = shutil.which("helm") or str(Path(sys.executable).parent / "helm")
pytestmark = pytest.mark.skipif(not Path(HELM).exists(), reason="helm is not installed "
                                "(scripts/setup installs it)")


def cronjob(*sets: str) -> dict:
    argv = [HELM, "template", "kestra", str(ROOT / "charts" / "kestra"),
            "--set", "backup.enabled=true", "--set", "backup.env=production"]
    for item in sets:
        argv += ["--set", item]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    [job] = [d for d in yaml.safe_load_all(done.stdout) if d and d["kind"] == "CronJob"]
    return job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]


def test_the_cronjob_runs_only_backup_run_into_the_backup_bucket():
    container = cronjob()
    assert container["command"] == ["kestra-ops", "backup", "run", "--env", "production",
                                    "--quiet", "--output", "json"]
    assert "prune" not in " ".join(container["command"])
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["KESTRA_OPS_BACKUP_BUCKET"] == "kestra-production-backups"
    assert "KESTRA_OPS_BACKUP_ENDPOINT" not in env
    assert container["envFrom"] == [{"secretRef": {"name": "kestra-backup"}}]


def test_bucket_endpoint_and_secret_are_configurable():
    container = cronjob("backup.bucket=prod-backups", "backup.endpoint=https://s3.example:9000",
                        "backup.existingSecret=backup-writer-key")
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["KESTRA_OPS_BACKUP_BUCKET"] == "prod-backups"
    assert env["KESTRA_OPS_BACKUP_ENDPOINT"] == "https://s3.example:9000"
    assert container["envFrom"] == [{"secretRef": {"name": "backup-writer-key"}}]


def test_a_bad_bucket_name_is_refused_by_the_schema():
    argv = [HELM, "template", "kestra", str(ROOT / "charts" / "kestra"), "--set",
            "backup.enabled=true", "--set", "backup.env=production", "--set",
            "backup.bucket=Bad_Name"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "/backup/bucket" in done.stderr


def _pod(*sets: str) -> dict:
    argv = [HELM, "template", "kestra", str(ROOT / "charts" / "kestra"),
            "--set", "backup.enabled=true", "--set", "backup.env=production"]
    for item in sets:
        argv += ["--set", item]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    [job] = [d for d in yaml.safe_load_all(done.stdout) if d and d["kind"] == "CronJob"]
    return job["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_s3_options_unset_add_no_env_and_no_volume():
    pod = _pod()
    names = {e["name"] for e in pod["containers"][0]["env"]}
    assert not {n for n in names if n.endswith(("_REGION", "_PATH_STYLE", "_CA_FILE"))}
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]


def test_region_path_style_and_ca_of_another_endpoint_go_to_the_backup_only():
    pod = _pod("backup.endpoint=https://s3.example:9000", "backup.region=eu-west-3",
               "backup.pathStyle=false", "backup.caConfigMap=s3-ca", "backup.caKey=bundle.pem")
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["KESTRA_OPS_BACKUP_REGION"] == "eu-west-3"
    assert env["KESTRA_OPS_BACKUP_PATH_STYLE"] == "false"
    assert env["KESTRA_OPS_BACKUP_CA_FILE"] == "/etc/kestra-ops/backup-ca/bundle.pem"
    assert not any(name.startswith("KESTRA_OPS_MINIO_") for name in env)
    assert {"name": "backup-ca", "mountPath": "/etc/kestra-ops/backup-ca",
            "readOnly": True} in container["volumeMounts"]
    assert {"name": "backup-ca", "configMap": {"name": "s3-ca"}} in pod["volumes"]


def test_on_kestras_own_store_the_options_are_its_too():
    """No backup.endpoint: the backups live on Kestra's store, reached the same way."""
    env = {e["name"]: e["value"] for e in _pod(
        "backup.region=us-east-1", "backup.pathStyle=true",
        "backup.caConfigMap=s3-ca")["containers"][0]["env"]}
    for prefix in ("BACKUP", "MINIO"):
        assert env[f"KESTRA_OPS_{prefix}_REGION"] == "us-east-1"
        assert env[f"KESTRA_OPS_{prefix}_PATH_STYLE"] == "true"
        assert env[f"KESTRA_OPS_{prefix}_CA_FILE"] == "/etc/kestra-ops/backup-ca/ca.crt"


def test_a_bad_path_style_is_refused_by_the_schema():
    argv = [HELM, "template", "kestra", str(ROOT / "charts" / "kestra"), "--set",
            "backup.enabled=true", "--set", "backup.env=production", "--set",
            "backup.pathStyle=sometimes"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "/backup/pathStyle" in done.stderr
