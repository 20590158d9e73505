"""``kestra-ops chart lint --env production`` passes for both of the chart's modes (issue 16,
"done when"): the shipped production values (standalone), and the same values with the
production overlay switched to distributed mode as an operator would write it. The CLI runs
helm lint --strict, helm template and the strict Kubernetes schema check of every rendered
object; the JSON report is read back, not the exit code alone."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kestra_ops.cli import cli

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not (shutil.which("helm") or (Path(sys.executable).parent / "helm").exists()),
    reason="helm is not installed (scripts/setup installs it)")

# appended to a copy of values/production.yaml: distributed mode, as the scale-out runbook has it
DISTRIBUTED = """
mode: distributed
datasources:  # up to 12 pods in a rollout x 2 pools: within kestra/db-connection-budget
  default: {maximum-pool-size: 3}
  postgres: {maximum-pool-size: 3}
distributed:
  webserver:
    replicas: 2
    resources: {requests: {cpu: "1", memory: 2Gi}, limits: {memory: 2Gi}}
  executor:
    resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 1Gi}}
  scheduler:
    resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 1Gi}}
  worker:
    replicas: 3
    threads: 16
    resources: {requests: {cpu: "2", memory: 4Gi}, limits: {memory: 4Gi}}
    autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 4}
networkPolicy:
  enabled: true
"""


def _project(tmp_path: Path, mode: str) -> Path:
    """A copy of the project's kestra-ops.yaml, values/ and chart, the production overlay in
    ``mode``; returns the config file."""
    for part in ("values", "charts"):
        shutil.copytree(ROOT / part, tmp_path / part)
    shutil.copy(ROOT / "kestra-ops.yaml", tmp_path / "kestra-ops.yaml")
    production = tmp_path / "values" / "production.yaml"
    if mode == "distributed":
        assert "\nmode:" not in production.read_text()
        production.write_text(production.read_text() + DISTRIBUTED)
    return tmp_path / "kestra-ops.yaml"


@pytest.mark.parametrize("mode", ["standalone", "distributed"])
def test_chart_lint_production_passes_in_both_modes(tmp_path, monkeypatch, mode):
    config = _project(tmp_path, mode)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KESTRA_OPS_NO_CACHE", "1")  # helm and the schemas run, no verdict cache
    result = CliRunner().invoke(cli, ["--config", str(config), "chart", "lint", "--env",
                                      "production", "--kube-version", "1.33.0", "--output",
                                      "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "pass" and report["warnings"] == []
    assert [r["findings"] for r in report["reports"]] == [[]]
    names = set(report["manifests"])
    if mode == "distributed":
        assert {f"Deployment/kestra-{c}" for c in ("webserver", "executor", "scheduler",
                                                   "worker")} <= names
        assert {"PodDisruptionBudget/kestra-webserver", "PodDisruptionBudget/kestra-worker"} \
            <= names
        # every kind the strict Kubernetes schemas judged: budgets, the autoscaler, policies
        assert {"HorizontalPodAutoscaler/kestra-worker", "NetworkPolicy/kestra-webserver",
                "NetworkPolicy/kestra-worker", "NetworkPolicy/kestra-postgres"} <= names
        assert "Deployment/kestra-standalone" not in names
    else:
        assert "Deployment/kestra-standalone" in names
        assert not any("kestra-worker" in n for n in names)


@pytest.mark.parametrize("mode", ["standalone", "distributed"])
def test_values_validate_production_passes_in_both_modes(tmp_path, monkeypatch, mode):
    """The values rules too (the connection budget, the webserver count...): the production
    overlay of the scale-out runbook validates without an error or a warning."""
    config = _project(tmp_path, mode)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KESTRA_OPS_NO_CACHE", "1")
    result = CliRunner().invoke(cli, ["--config", str(config), "values", "validate", "--env",
                                      "production", "--output", "json"])
    assert result.exit_code == 0, result.output
    findings = [f for r in json.loads(result.stdout)["reports"] for f in r["findings"]]
    assert findings == [], findings
