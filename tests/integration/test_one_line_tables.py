"""Tables stay one row per line when helm's description holds newlines (a failed upgrade quotes
every resource not ready): ``history`` and ``preflight`` text collapse and cut the cell; their
JSON keeps the full text."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kestra_ops.cli import cli
from tests.integration.test_preflight import DEPLOYED, invoke, write_helm, write_project

NS = "hyperplane-kestra"
FAILED = ('Upgrade "kestra" failed: context deadline exceeded\n'
          f"resource Deployment/{NS}/kestra-standalone not ready. status: InProgress, message: "
          "Available: 0/1\n"
          f"resource StatefulSet/{NS}/kestra-postgres not ready. status: InProgress, message: "
          "Ready: 0/1\n" + "\n".join(f"resource Job/{NS}/job-{i} not ready" for i in range(20)))


def test_history_rows_stay_one_line_and_json_keeps_the_description(helm_standin, fake_kube,
                                                                   tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KESTRA_OPS_CONFIG", raising=False)
    standin = helm_standin("v4.1.4")
    standin.state.seed(["superseded", "failed", "deployed"])
    with standin.state.locked() as data:
        data["releases"][f"{NS}/kestra"][1]["info"]["description"] = FAILED
    result = CliRunner().invoke(cli, ["history", "--env", "dev"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2 + 3  # title, header, one line per revision
    failed = next(line for line in lines if " failed " in line)
    assert 'Upgrade "kestra" failed: context deadline exceeded resource Deployment/' in failed
    assert failed.endswith("...") and len(failed.split("  ")[-1]) <= 100
    data = json.loads(CliRunner().invoke(cli, ["history", "--env", "dev", "-o", "json"]).stdout)
    assert data["revisions"][1]["description"] == FAILED


@pytest.fixture
def project(tmp_path, fake_kube, monkeypatch):
    monkeypatch.setenv("KESTRA_OPS_KUBECONFIG", str(fake_kube.kubeconfig))
    for name in ("KESTRA_OPS_MINIO_ENDPOINT", "KESTRA_OPS_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    history = DEPLOYED + [{**DEPLOYED[1], "revision": 3, "status": "failed",
                           "description": FAILED}]
    monkeypatch.setenv("KESTRA_OPS_HELM", str(write_helm(tmp_path, history)))
    return write_project(tmp_path, minio_endpoint=None)


def test_preflight_lines_stay_one_line_and_json_keeps_the_reason(project):
    result = invoke(project, "--skip-bucket")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert not any(line.lstrip().startswith("resource ") for line in lines)
    release = [line for line in lines if line.lstrip().startswith("WARN  release")]
    assert len(release) == 1
    assert "revision 3 failed (Upgrade \"kestra\" failed: context deadline exceeded resource" \
        in release[0]
    assert "..." in release[0] and len(release[0]) < 400
    data = json.loads(invoke(project, "--skip-bucket", "--output", "json").stdout)
    reason = next(c for c in data["checks"] if c["name"] == "release")["reason"]
    assert FAILED in reason
