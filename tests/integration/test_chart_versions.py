"""The chart for every catalogued Kestra line, chosen by image.tag (real helm binary): the 2.x
worker controller's gRPC port, probes unchanged, and chart lint clean on 1.3 and 2.0 tags
(helm lint --strict, the strict Kubernetes schemas, our manifest rules)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from kestra_ops.settings import load_config
from kestra_ops.upgrades.version import parse, split_tag
from kestra_ops.workflows.deploy.chart_lint import lint_chart

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kestra"
HELM = shutil.which("helm") or str(Path(sys.executable).parent / "helm")
pytestmark = pytest.mark.skipif(not Path(HELM).exists(), reason="helm is not installed "
                                "(scripts/setup installs it)")
APP_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
GRPC = {"name": "grpc", "containerPort": 50051, "protocol": "TCP"}


def container(tag: str) -> dict:
    """The kestra container of kestra-standalone rendered with production's values and ``tag``."""
    argv = [HELM, "template", "kestra", str(CHART), "-f", str(ROOT / "values" / "base.yaml"),
            "-f", str(ROOT / "values" / "production.yaml"), "--set-string", f"image.tag={tag}",
            "--show-only", "templates/deployment.yaml"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    deployment = yaml.safe_load(done.stdout)
    [kestra] = [c for c in deployment["spec"]["template"]["spec"]["containers"]
                if c["name"] == "kestra"]
    return kestra


@pytest.mark.parametrize("tag, grpc", [
    ("v1.3.2", False), ("v1.3.2-no-plugins", False), ("v1.3.22", False),
    ("v2.0.0", True), ("v2.0.8", True), ("v2.0.8-slim", True),
    ("latest", False),  # not a version: the chart's appVersion (v1.3.2)
    ("", False),  # empty: the chart's appVersion
])
def test_the_grpc_port_is_declared_for_2x_images_only(tag, grpc):
    kestra = container(tag)
    assert kestra["image"] == f"kestra/kestra:{tag or APP_VERSION}"
    ports = kestra["ports"]
    assert (GRPC in ports) is grpc
    assert [p["name"] for p in ports] == ["http", "management"] + (["grpc"] if grpc else [])
    # probes unchanged on the management port 8081 (the catalogue's chart entry probes-unchanged)
    for probe, path in (("livenessProbe", "/health/liveness"),
                        ("readinessProbe", "/health/readiness")):
        assert kestra[probe]["httpGet"] == {"path": path, "port": "management"}


@pytest.mark.parametrize("tag", ["v2.0.8", "v2.1.0-slim", "latest", "develop", "v2.0",
                                 "2.0.8", "v10.0.0", "v2.0.8-", "v2.0.0-rc13", " v2.0.8"])
def test_the_chart_and_kestra_ops_agree_on_a_tags_version(tag):
    """The chart's version helper reads the tag as kestra_ops.upgrades.version does: a tag
    that is no version falls back to appVersion."""
    found = split_tag(tag)
    version = found[0] if found else parse(APP_VERSION)
    assert (GRPC in container(tag)["ports"]) is (version.major >= 2), tag


def lint_env(name: str, tmp_path: Path, tag: str):
    override = tmp_path / "tag.yaml"
    override.write_text(f'image:\n  tag: "{tag}"\n')
    environment = load_config(ROOT / "kestra-ops.yaml").environment(name, environ={})
    return replace(environment, values=environment.values + (override,))


@pytest.mark.parametrize("tag", ["v1.3.2", "v2.0.8", "v2.0.8-slim"])
def test_production_lints_clean_on_each_line(tag, tmp_path):
    result = lint_chart(lint_env("production", tmp_path, tag))
    assert result.report.findings == []
    [deployment] = [m for m in result.manifests if m.name == "Deployment/kestra-standalone"]
    [kestra] = deployment.doc["spec"]["template"]["spec"]["containers"]
    assert (GRPC in kestra["ports"]) is tag.startswith("v2.")
