"""kestra-ops plan end to end: the real helm, text and JSON, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kestra_ops.cli import cli
from tests.helpers_golden import GOLDEN, assert_golden

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_plan_dev_text():
    result = CliRunner().invoke(cli, ["plan", "--env", "dev"])
    assert result.exit_code == 0, result.output
    for step in ("render", "validate", "chart lint"):
        assert re.search(rf"^  PASS +{step} \(\d+\.\ds\)", result.stdout, re.M), result.stdout
    assert result.stdout.rstrip().endswith("plan dev: ok")


def test_plan_json_lists_steps():
    result = CliRunner().invoke(cli, ["plan", "--env", "production", "--output", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True and [s["name"] for s in data["steps"]] == [
        "render", "validate", "chart lint"]


def test_plan_fails_on_a_bad_layer(tmp_path):
    base = (ROOT / "values" / "base.yaml").read_text()
    (tmp_path / "values").mkdir()
    (tmp_path / "values" / "base.yaml").write_text(base)
    (tmp_path / "values" / "dev.yaml").write_text("standalone:\n  workerThreads: many\n")
    (tmp_path / "kestra-ops.yaml").write_text(
        f"defaults: {{chart: {ROOT / 'charts' / 'kestra'}}}\nenvironments:\n  dev: {{}}\n")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "kestra-ops.yaml"),
                                      "plan", "--env", "dev"])
    assert result.exit_code == 1
    assert "values/dev.yaml:2:3: error schema/type" in result.output
    (tmp_path / "values" / "dev.yaml").write_text("standalone:\n\tworkerThreads: 4\n")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "kestra-ops.yaml"),
                                      "plan", "--env", "dev"])
    assert result.exit_code == 2
    assert "yaml/tabs" in result.output and "Traceback" not in result.output


def test_unknown_env_is_a_usage_error():
    result = CliRunner().invoke(cli, ["plan", "--env", "nope"])
    assert result.exit_code == 2
    assert result.output.startswith("error: unknown environment 'nope'")


def test_console_script_and_module_entry_points():
    exe = Path(sys.executable).parent / "kestra-ops"
    for cmd in ([str(exe), "--version"], [sys.executable, "-m", "kestra_ops", "--version"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              env={**os.environ, "KESTRA_OPS_NO_CACHE": "1"})
        assert proc.returncode == 0 and "kestra-ops, version" in proc.stdout


def test_internal_errors_are_one_line_unless_debug(monkeypatch):
    import kestra_ops.workflows.plan as plan_module

    def boom(*args, **kwargs):
        raise RuntimeError("synthetic failure")

    monkeypatch.setattr(plan_module, "plan", boom)
    result = CliRunner().invoke(cli, ["plan", "--env", "dev"])
    assert result.exit_code == 1
    assert "internal error: RuntimeError: synthetic failure" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["--debug", "plan", "--env", "dev"])
    assert isinstance(result.exception, RuntimeError)


# --------------------------------------------------------------------------- golden files

def normalised(text: str, *roots: Path) -> str:
    """``text`` without what changes from run to run: step times, absolute folders."""
    text = re.sub(r"\((\d+\.\d+)s\)", "(T s)", text)
    text = re.sub(r'"seconds": [0-9.e-]+', '"seconds": 0', text)
    for root, name in zip(roots, ("<repo>", "<project>")):
        text = text.replace(str(root), name)
    return text


def unreadable_project(tmp_path: Path) -> Path:
    """A project whose dev overlay is indented with a tab: validate fails, chart lint skipped."""
    (tmp_path / "values").mkdir()
    (tmp_path / "values" / "base.yaml").write_text((ROOT / "values" / "base.yaml").read_text())
    (tmp_path / "values" / "dev.yaml").write_text("standalone:\n\tworkerThreads: 4\n")
    (tmp_path / "kestra-ops.yaml").write_text(
        f"defaults: {{chart: {ROOT / 'charts' / 'kestra'}}}\nenvironments:\n  dev: {{}}\n")
    return tmp_path / "kestra-ops.yaml"


@pytest.mark.parametrize("fmt, suffix", [("text", "txt"), ("json", "json")])
def test_plan_dev_matches_its_golden_file(fmt, suffix):
    result = CliRunner().invoke(cli, ["plan", "--env", "dev", "-o", fmt])
    assert result.exit_code == 0, result.output
    assert_golden(f"plan-dev.{suffix}", normalised(result.stdout, ROOT))


@pytest.mark.parametrize("fmt, suffix", [("text", "txt"), ("json", "json")])
def test_plan_with_an_unreadable_layer_matches_its_golden_file(fmt, suffix, tmp_path):
    config = unreadable_project(tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(config), "plan", "--env", "dev",
                                      "-o", fmt])
    assert result.exit_code == 2, result.output
    assert_golden(f"plan-unreadable.{suffix}",
                  normalised(result.stdout, ROOT, tmp_path.resolve()))


def test_golden_normalisation_keeps_what_matters():
    """Only times and folders are normalised: statuses, details and messages stay compared."""
    text = (GOLDEN / "plan-dev.txt").read_text()
    assert "(T s)" in text and "PASS" in text and text.rstrip().endswith("plan dev: ok")
    doc = json.loads((GOLDEN / "plan-dev.json").read_text())
    assert {s["seconds"] for s in doc["steps"]} == {0}
    assert [s["status"] for s in doc["steps"]] == ["pass"] * 3
    bad = json.loads((GOLDEN / "plan-unreadable.json").read_text())
    assert (bad["exit_code"], [s["status"] for s in bad["steps"]]) == (2, ["fail", "fail", "skip"])


# --------------------------------------------------------------------------- speed (issue 12, item 17)

def test_a_warm_plan_parses_no_values_and_imports_no_schema_validator(tmp_path):
    """An unchanged environment's second plan reads its render summary, validation report and
    judged chart lint from the cache (fails without them: ruamel parsed both layers, PyYAML the
    rendered manifests, and kubernetes-validate was imported, ~0.3 s, on every run) and prints
    the same plan. helm lint and helm template still run."""
    code = (
        "import sys\n"
        "from kestra_ops.cli import main\n"
        "sys.argv = ['kestra-ops', 'plan', '--env', 'production', '-o', 'json']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as stop:\n"
        "    code = stop.code\n"
        "print(code, 'ruamel.yaml' in sys.modules, 'kubernetes_validate' in sys.modules,"
        " 'jsonschema' in sys.modules, 'yaml' in sys.modules, file=sys.stderr)\n")
    env = {**os.environ, "KESTRA_OPS_CACHE_DIR": str(tmp_path / "cache"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("KESTRA_OPS_NO_CACHE", None)

    def run():
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=ROOT, env=env, check=False)
        return normalised(proc.stdout, ROOT), proc.stderr.strip().splitlines()[-1]

    cold_out, cold = run()
    warm_out, warm = run()
    assert cold == "0 True True True True", cold
    assert warm == "0 False False False False", warm
    assert warm_out == cold_out and json.loads(warm_out)["ok"] is True


def test_plan_leaves_no_helm_running(tmp_path):
    """helm lint and helm template start with the plan and run beside render and validate; the
    plan waits for both, also when the chart lint is skipped."""
    import threading

    from kestra_ops.settings import load_config
    from kestra_ops.workflows.plan import plan

    for config, exit_code in ((ROOT / "kestra-ops.yaml", 0), (unreadable_project(tmp_path), 2)):
        report = plan(load_config(config).environment("dev", environ={}))
        assert report.exit_code == exit_code
        assert not [t for t in threading.enumerate() if t.name == "kestra-ops-helm"]


def test_plan_without_helm_fails_its_chart_lint_step_only():
    result = CliRunner().invoke(cli, ["plan", "--env", "dev", "--helm", "/nonexistent/helm",
                                      "-o", "json"])
    assert result.exit_code == 1, result.output
    assert "helm not found" in result.output and "Traceback" not in result.output
