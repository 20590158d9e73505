"""kestra-ops run outside any project: plan and values validate use the packaged chart, values
and schema, and plan says which it used; inside a project, its own. The fast path of ``values
validate`` imports ``importlib.resources`` only when the packaged copy is needed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kestra_ops import __version__, packaged
from kestra_ops.cli import cli

ROOT = Path(__file__).resolve().parents[2]
needs_helm = pytest.mark.skipif(
    not (shutil.which("helm") or (Path(sys.executable).parent / "helm").exists()),
    reason="helm is not installed (scripts/setup installs it)")


@pytest.fixture
def empty(tmp_path, monkeypatch):
    """An empty working directory with no kestra-ops.yaml above it, and a private cache."""
    folder = tmp_path / "empty"
    folder.mkdir()
    monkeypatch.chdir(folder)
    for name in ("KESTRA_OPS_CONFIG", "KESTRA_OPS_CHART", "KESTRA_OPS_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KESTRA_OPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return folder


@needs_helm
def test_plan_outside_a_project_says_it_used_the_packaged_chart_and_values(empty):
    result = CliRunner().invoke(cli, ["plan", "--env", "dev"])
    assert result.exit_code == 0, result.output
    label = f"packaged (kestra-ops {__version__})"
    assert f"\n  chart: {label}\n  values: {label}\n" in result.stdout
    assert result.stdout.startswith("plan dev (namespace hyperplane-kestra, release kestra, "
                                    "chart packaged)")
    result = CliRunner().invoke(cli, ["plan", "--env", "dev", "-o", "json"])
    data = json.loads(result.stdout)
    assert data["chart"] == {"source": "packaged", "path": str(packaged.chart())}
    assert data["values"] == {"source": "packaged",
                              "layers": [str(p) for p in packaged.values_layers("dev")]}
    assert data["packaged_version"] == __version__ and data["ok"] is True
    assert list(empty.iterdir()) == []


@needs_helm
def test_plan_in_a_project_names_its_own_chart_and_values(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, ["plan", "--env", "dev", "-o", "json"])
    data = json.loads(result.stdout)
    assert data["chart"] == {"source": "project", "path": str(ROOT / "charts" / "kestra")}
    assert data["values"]["source"] == "project" and "packaged_version" not in data
    assert data["details"] == ["chart: ./charts/kestra",
                               "values: ./values/base.yaml + ./values/dev.yaml"]


def test_values_validate_outside_a_project_applies_the_packaged_schema(empty, tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text((ROOT / "values" / "base.yaml").read_text())
    bad.write_text(good.read_text() + "notAChartKey: 1\n")
    result = CliRunner().invoke(cli, ["values", "validate", str(good)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["values", "validate", str(bad), "-o", "json"])
    assert result.exit_code == 1, result.output
    rules = [f["rule"] for r in json.loads(result.stdout)["reports"] for f in r["findings"]]
    assert rules == ["schema/unknown-key"]
    result = CliRunner().invoke(cli, ["values", "validate", "--env", "staging"])
    assert result.exit_code == 0, result.output
    assert str(packaged.values_layers("staging")[1]) in result.stdout


def test_an_install_without_packaged_files_is_exit_2_in_one_line(empty, monkeypatch):
    monkeypatch.setattr(packaged, "__file__", str(empty / "kestra_ops" / "packaged.py"))
    packaged.root.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["plan", "--env", "dev"])
    finally:
        packaged.root.cache_clear()
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: this kestra-ops install ships no chart and values")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


CODE = """\
import sys
from kestra_ops.entry import values_validate
code = values_validate(["values", "validate", sys.argv[1]])
print(code, "importlib.resources" in sys.modules, "click" in sys.modules, file=sys.stderr)
"""


@pytest.mark.parametrize("where, resources", [("project", False), ("empty", True)])
def test_the_fast_path_imports_importlib_resources_only_for_the_packaged_copy(
        where, resources, tmp_path):
    """In a project (its charts/kestra) the fast path looks no further; outside one it finds
    the packaged schema through importlib.resources. Either way without click."""
    file = tmp_path / "values.yaml"
    file.write_text((ROOT / "values" / "base.yaml").read_text())
    cwd = ROOT if where == "project" else tmp_path
    env = {k: v for k, v in os.environ.items() if not k.startswith("KESTRA_OPS_")}
    env.update(KESTRA_OPS_CACHE_DIR=str(tmp_path / "cache"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    proc = subprocess.run([sys.executable, "-c", CODE, str(file)], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.stderr.split() == ["0", str(resources), "False"], proc.stderr
