"""deploy --dry-run with a failed preflight (issue 12, item 15): the verdict is a failure (exit 1,
outcome preflight-failed, status fail, in text and JSON), and --repair is suggested only when a
release is actually stuck; --dry-run --repair is refused (a repair is a rollback: a change)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kestra_ops.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def make_project(tmp_path, monkeypatch, namespace: str) -> Path:
    shutil.copytree(ROOT / "values", tmp_path / "values")
    (tmp_path / "kestra-ops.yaml").write_text(
        f"defaults: {{chart: {ROOT / 'charts' / 'kestra'}, namespace: {namespace}}}\n"
        "environments:\n  dev: {values: [values/base.yaml, values/dev.yaml]}\n")
    monkeypatch.chdir(tmp_path)
    for var in ("KESTRA_OPS_CONFIG", "KESTRA_OPS_NAMESPACE", "KESTRA_OPS_MINIO_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KESTRA_OPS_NO_CACHE", "1")
    return tmp_path


@pytest.fixture
def project(tmp_path, monkeypatch, fake_kube, helm_standin):
    helm_standin("v4.1.4")
    return make_project(tmp_path, monkeypatch, "not-there")


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_dry_run_with_a_failed_preflight_fails_without_suggesting_repair(project):
    result = run("deploy", "--env", "dev", "--dry-run", "--skip-bucket")
    assert result.exit_code == 1, result.output
    assert "namespace not-there does not exist" in result.output
    assert "--repair" not in result.output
    last = result.stdout.rstrip().splitlines()[-1]
    assert " ok" not in last and "preflight failed" in last, last

    result = run("deploy", "--env", "dev", "--dry-run", "--skip-bucket", "--output", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["outcome"] == "preflight-failed" and data["status"] == "fail"
    assert data["exit_code"] == 1
    assert not any("--repair" in d for d in data["details"])
    [preflight] = [s for s in data["steps"] if s["name"] == "preflight"]
    assert preflight["status"] == "fail"


def test_dry_run_with_repair_changes_nothing(tmp_path, monkeypatch, fake_kube, helm_standin):
    """--dry-run changes nothing, --repair included: a stuck release is not rolled back."""
    helm = helm_standin("v4.1.4")
    helm.state.seed(["superseded", "deployed", "pending-upgrade"])
    make_project(tmp_path, monkeypatch, "hyperplane-kestra")
    before = helm.state.statuses()
    result = run("deploy", "--env", "dev", "--dry-run", "--repair", "--skip-bucket")
    assert result.exit_code == 2, result.output
    assert "--repair" in result.output and "--dry-run" in result.output
    assert helm.state.statuses() == before and not helm.calls("rollback")
