"""The validation cache cannot vouch for values it did not validate (issue 12, item 5).

A cached report is only trusted when its MAC, keyed by a per-user secret (0600, created on
first use), matches: editing a cached report to ``"findings": []`` (or moving a clean report
under another entry's name) is a miss, so ``plan`` and ``deploy`` validate again and refuse.
Cache files are 0600 and cache folders 0700.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from kestra_ops.cli import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """production values with a weak basic-auth password, a fresh cache and cache key."""
    work = tmp_path / "project"
    shutil.copytree(ROOT / "values", work / "values")
    prod = work / "values" / "production.yaml"
    prod.write_text(prod.read_text() + "  server:\n    basic-auth:\n"
                    "      username: platform-admin@example.com\n      password: weak\n")
    (work / "kestra-ops.yaml").write_text(
        f"defaults: {{chart: {ROOT / 'charts' / 'kestra'}}}\nenvironments:\n"
        "  production: {values: [values/base.yaml, values/production.yaml]}\n")
    for name in list(os.environ):
        if name.startswith("KESTRA_OPS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KESTRA_OPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.chdir(work)
    return tmp_path


def run(*args):
    return CliRunner().invoke(cli, list(args))


def entries(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "validate").glob("*.json"))


def tamper(path: Path) -> None:
    """Edit a cached report as a user would: its findings emptied, the rest kept."""
    text = path.read_text()
    start = text.index("{")
    data = json.loads(text[start:])
    assert data["findings"], "the cached report holds the weak password's finding"
    data["findings"] = []
    path.write_text(text[:start] + json.dumps(data))


def test_a_tampered_report_is_ignored_by_plan_and_deploy(project):
    first = run("values", "validate", "--env", "production")
    assert first.exit_code == 1 and "kestra/basic-auth-password" in first.output, first.output
    [entry] = entries(project / "cache")
    tamper(entry)

    again = run("values", "validate", "--env", "production")
    assert again.exit_code == 1 and "kestra/basic-auth-password" in again.output, again.output

    tamper(entries(project / "cache")[0])
    plan = run("plan", "--env", "production", "--output", "json")
    assert plan.exit_code == 1, plan.output
    assert "kestra/basic-auth-password" in plan.output

    tamper(entries(project / "cache")[0])
    deploy = run("deploy", "--env", "production", "--yes", "--output", "json")
    assert deploy.exit_code == 1, deploy.output
    assert json.loads(deploy.stdout)["outcome"] == "invalid"


def test_a_clean_report_moved_under_another_name_is_ignored(project):
    """A valid entry of other inputs (a clean dev-like report) copied over production's entry."""
    assert run("values", "validate", "--env", "production").exit_code == 1
    [entry] = entries(project / "cache")
    prod = project / "project" / "values" / "production.yaml"
    weak = prod.read_text()
    prod.write_text(weak.replace("password: weak", 'password: "${KESTRA_BASIC_AUTH_PASSWORD}"'))
    assert run("values", "validate", "--env", "production").exit_code == 0
    [clean] = [p for p in entries(project / "cache") if p != entry]
    shutil.copyfile(clean, entry)
    prod.write_text(weak)
    result = run("values", "validate", "--env", "production")
    assert result.exit_code == 1 and "kestra/basic-auth-password" in result.output


def test_cache_files_are_private_and_the_key_is_0600(project):
    os.umask(0o022)
    assert run("values", "validate", "--env", "production").exit_code == 1
    cache = project / "cache"
    for folder in (cache, cache / "validate", cache / "config"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for path in [*cache.rglob("*.json")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    keys = [p for p in (project / "config").rglob("*") if p.is_file()]
    assert len(keys) == 1 and stat.S_IMODE(keys[0].stat().st_mode) == 0o600


def test_a_key_readable_by_others_is_not_trusted(project):
    """A key file others can read (or write) cannot vouch for anything: the cache is bypassed."""
    assert run("values", "validate", "--env", "production").exit_code == 1
    [key] = [p for p in (project / "config").rglob("*") if p.is_file()]
    key.chmod(0o644)
    tamper(entries(project / "cache")[0])
    result = run("values", "validate", "--env", "production")
    assert result.exit_code == 1 and "kestra/basic-auth-password" in result.output


def test_a_fifo_in_the_cache_is_a_miss_not_a_hang(project):
    assert run("values", "validate", "--env", "production").exit_code == 1
    [entry] = entries(project / "cache")
    entry.unlink()
    os.mkfifo(entry)
    result = run("values", "validate", "--env", "production")
    assert result.exit_code == 1 and "kestra/basic-auth-password" in result.output
