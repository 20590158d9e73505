"""chart lint with the real helm binary, the real Kubernetes schemas and our manifest rules."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from kestra_ops.cli import cli
from kestra_ops.defaults import DEFAULT_KUBE_VERSION
from kestra_ops.settings import load_config
from kestra_ops.workflows.deploy.chart_lint import lint_chart

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not (shutil.which("helm") or (Path(__import__("sys").executable).parent / "helm").exists()),
    reason="helm is not installed (scripts/setup installs it)")


def env(name: str, *extra: Path, chart: Path | None = None):
    environment = load_config(ROOT / "kestra-ops.yaml").environment(name, environ={})
    environment = replace(environment, values=environment.values + tuple(extra))
    return replace(environment, chart=chart) if chart else environment


@pytest.mark.parametrize("name", ["dev", "staging", "production"])
def test_every_environment_lints_clean(name):
    result = lint_chart(env(name))
    assert result.report.findings == []
    names = {m.name for m in result.manifests}
    assert "kind: ConfigMap" in result.rendered  # helm template's text, for the release's diff
    assert {"ConfigMap/kestra-config", "Deployment/kestra-standalone",
            "StatefulSet/kestra-postgres", "Service/kestra", "Service/kestra-postgres"} <= names
    if name == "production":  # backups are on in production
        assert {"CronJob/kestra-backup", "Role/kestra-backup", "ServiceAccount/kestra-backup"} <= names


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "override.yaml"
    path.write_text(text)
    return path


def test_latest_tag_is_an_error_outside_dev_only(tmp_path):
    override = write(tmp_path, "image:\n  tag: latest\n")
    rules = [f.rule for f in lint_chart(env("production", override)).report.findings]
    assert rules == ["manifest/image-latest"]
    assert lint_chart(env("dev", override)).report.findings == []


def copy_chart(tmp_path: Path) -> Path:
    chart = tmp_path / "kestra"
    shutil.copytree(ROOT / "charts" / "kestra", chart)
    return chart


def test_probe_off_the_management_port_is_reported(tmp_path):
    chart = copy_chart(tmp_path)
    # the Kestra pod spec is the helper kestra.deployment (shared by both modes)
    helpers = chart / "templates" / "_helpers.tpl"
    text = helpers.read_text()
    assert "port: management" in text
    helpers.write_text(text.replace("port: management", "port: http"))
    findings = lint_chart(env("staging", chart=chart)).report.findings
    probes = [f for f in findings if f.rule == "manifest/probes"]
    assert {"livenessProbe", "readinessProbe"} <= {w for f in probes for w in f.message.split()}
    assert all(f.location.file.endswith("templates/deployment.yaml") for f in probes)


def test_unknown_field_fails_the_kubernetes_schema(tmp_path):
    chart = copy_chart(tmp_path)
    service = chart / "templates" / "service.yaml"
    service.write_text(service.read_text().replace("spec:\n", "spec:\n  clusterIPz: None\n", 1))
    findings = lint_chart(env("dev", chart=chart)).report.findings
    schema = [f for f in findings if f.rule == "k8s/schema"]
    assert schema and "Service/kestra" in schema[0].message
    assert schema[0].location.file.endswith("templates/service.yaml")


def test_values_without_a_section_fail_in_helm_itself(tmp_path):
    override = write(tmp_path, "datasources:\n  default: null\n")
    findings = lint_chart(env("dev", override)).report.findings
    # helm applies the same values.schema.json: lint and template both refuse
    assert any(f.rule == "helm/lint" and f.severity == "error" for f in findings)
    assert any(f.rule == "helm/template" and "default" in f.message for f in findings)


def test_template_that_drops_a_section_is_reported(tmp_path):
    chart = copy_chart(tmp_path)
    configmap = chart / "templates" / "configmap.yaml"
    text = configmap.read_text()
    configmap.write_text(text.replace('(dict "datasources" .Values.datasources "kestra" .Values.kestra)',
                                      '(dict "kestra" .Values.kestra)'))
    findings = lint_chart(env("dev", chart=chart)).report.findings
    assert [f.rule for f in findings] == ["manifest/configmap", "manifest/configmap"]
    assert {"datasources.default", "datasources.postgres"} <= {
        w for f in findings for w in f.message.split()}


def test_cli_exit_codes_and_missing_helm(monkeypatch):
    monkeypatch.chdir(ROOT)
    runner = CliRunner()
    ok = runner.invoke(cli, ["chart", "lint", "--env", "staging"])
    assert ok.exit_code == 0, ok.output
    assert "manifests" in ok.output
    assert ok.stdout.rstrip().splitlines()[-1].endswith(f"against Kubernetes {DEFAULT_KUBE_VERSION}: ok")
    data = __import__("json").loads(runner.invoke(cli, ["chart", "lint", "--env", "staging",
                                                        "-o", "json"]).stdout)
    assert (data["command"], data["status"], data["exit_code"], data["tool"]) == (
        "chart lint", "pass", 0, "kestra-ops")
    assert [(r["target"], r["errors"]) for r in data["reports"]] == [("chart:staging", 0)]
    assert "Deployment/kestra-standalone" in data["manifests"]
    missing = runner.invoke(cli, ["chart", "lint", "--env", "dev", "--helm", "/nonexistent/helm"])
    assert missing.exit_code == 1
    assert "helm not found" in missing.output and "Traceback" not in missing.output


def test_helm_error_is_shown_not_its_debug_hint(tmp_path):
    """helm template's own error line ("chart requires kubeVersion ..."), not the "Use --debug
    flag to render out invalid YAML" hint helm prints after it."""
    chart = copy_chart(tmp_path)
    chart_yaml = chart / "Chart.yaml"
    text = chart_yaml.read_text()
    assert 'kubeVersion: ">=1.25.0-0"' in text
    chart_yaml.write_text(text.replace('kubeVersion: ">=1.25.0-0"', 'kubeVersion: ">=1.40.0-0"'))
    findings = lint_chart(env("dev", chart=chart), kube_version="1.33.0").report.findings
    template = [f for f in findings if f.rule == "helm/template"]
    assert len(template) == 1, findings
    assert template[0].message == ("helm template: chart requires kubeVersion: >=1.40.0-0 which "
                                   "is incompatible with Kubernetes v1.33.0")
    assert template[0].location.file == str(chart / "Chart.yaml")
    result = CliRunner().invoke(cli, ["--config", str(_config(tmp_path, chart)), "chart", "lint",
                                      "--env", "dev", "--kube-version", "1.33.0"])
    assert result.exit_code == 1, result.output
    assert "chart requires kubeVersion: >=1.40.0-0" in result.output
    assert "--debug" not in result.output and "Traceback" not in result.output


def test_a_multi_line_helm_error_keeps_its_detail(tmp_path):
    override = write(tmp_path, "datasources:\n  default: null\n")
    template = [f for f in lint_chart(env("dev", override)).report.findings
                if f.rule == "helm/template"]
    assert len(template) == 1
    message = template[0].message
    assert message.startswith("helm template: values don't meet the specifications"), message
    assert "missing property 'default'" in message and "\n" not in message


def _config(tmp_path: Path, chart: Path) -> Path:
    config = tmp_path / "kestra-ops.yaml"
    config.write_text(f"defaults: {{chart: {chart}}}\nenvironments:\n  dev:\n    values: "
                      f"[{ROOT / 'values' / 'base.yaml'}, {ROOT / 'values' / 'dev.yaml'}]\n")
    return config
