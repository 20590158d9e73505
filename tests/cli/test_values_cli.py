"""`kestra-ops values validate | rules` as a user meets them: exit codes, usage errors, formats."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from kestra_ops.values.catalog import RULES
from tests.helpers_values import (CORPUS_DIR, REPO_ROOT, VALUES_DIR,
                                  assert_no_traceback, findings_of, in_repo,  # noqa: F401
                                  parse_expectation, rel, run_cli, validate_json)

CLEAN = "values/production.yaml"  # validated on top of values/base.yaml
ERRORS = rel(CORPUS_DIR / "jdbc-url-mysql.yaml")
WARNINGS = rel(CORPUS_DIR / "worker-threads-too-many.yaml")
BROKEN = rel(CORPUS_DIR / "yaml-unclosed-bracket.yaml")


def one_line_error(result) -> str:
    assert_no_traceback(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --------------------------------------------------------------------------- exit codes

@pytest.mark.parametrize("files, code", [
    ([CLEAN], 0),
    ([WARNINGS], 0),
    ([ERRORS], 1),
    ([BROKEN], 2),
    ([CLEAN, ERRORS], 1),
    ([WARNINGS, ERRORS, BROKEN], 2),  # unreadable wins over errors
], ids=["clean", "warnings-only", "errors", "unreadable", "clean+errors", "all"])
def test_exit_codes(files, code, in_repo):
    result = run_cli("values", "validate", "--env", "production", *files)
    assert_no_traceback(result)
    assert result.exit_code == code, result.output
    # text output ends each file with its status line
    for file in files:
        assert re.search(rf"^{re.escape(file)} \(env production\).*: ", result.stdout, re.M)


@pytest.mark.parametrize("env", ["dev", "staging", "production"])
def test_validate_an_environment_without_files(env, in_repo):
    result = run_cli("values", "validate", "--env", env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == f"env:{env} (env {env}) [values/base.yaml + values/{env}.yaml]: ok"
    # kestra-ops.yaml's defaults reach MinIO over plain HTTP: said outside dev, not an error
    assert lines[1:] == ([] if env == "dev" else [
        f"  warning: minio.secure is false for {env} (config): kestra-ops reaches MinIO over "
        "plain HTTP, so its keys and backups travel unencrypted"])


def test_env_from_the_environment_variable(in_repo, monkeypatch):
    monkeypatch.setenv("KESTRA_OPS_ENV", "staging")
    result = run_cli("values", "validate")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("env:staging ")


# --------------------------------------------------------------------------- usage errors

def test_validate_without_arguments_is_a_usage_error(in_repo):
    result = run_cli("values", "validate")
    assert result.exit_code == 2
    assert_no_traceback(result)
    assert "Usage:" in result.stderr
    assert "give FILE arguments, -f/--values FILE or --env ENV" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("args", [
    ["--env", "qa"],
    ["--env", "qa", CLEAN],
], ids=["env-only", "env-and-file"])
def test_unknown_environment_is_one_line(args, in_repo):
    result = run_cli("values", "validate", *args)
    assert result.exit_code == 2
    line = one_line_error(result)
    assert line.startswith("error: unknown environment 'qa'")
    assert "dev, staging, production" in line


def test_unknown_output_format_is_a_usage_error(in_repo):
    result = run_cli("values", "validate", "--output", "xml", CLEAN)
    assert result.exit_code == 2
    assert_no_traceback(result)
    assert "'xml' is not one of" in result.stderr


def test_missing_chart_schema_is_one_line(tmp_path, in_repo):
    result = run_cli("values", "validate", "--chart", str(tmp_path / "nochart"), CLEAN)
    assert result.exit_code == 2
    assert "values schema not found" in one_line_error(result)


# --------------------------------------------------------------------------- unreadable files

def test_missing_file_is_unreadable(tmp_path, in_repo):
    missing = tmp_path / "nope.yaml"
    result, findings = validate_json(str(missing), env="production")
    assert result.exit_code == 2
    assert [(f["rule"], f["message"]) for f in findings] == [("io/unreadable", "file not found")]
    assert findings[0]["file"] == str(missing)


def test_directory_is_unreadable(tmp_path, in_repo):
    result, findings = validate_json(str(tmp_path), env="production")
    assert result.exit_code == 2
    assert [(f["rule"], f["message"]) for f in findings] == [
        ("io/unreadable", "is a directory, not a file")]


def test_unreadable_permissions(tmp_path, in_repo, monkeypatch):
    path = tmp_path / "locked.yaml"
    path.write_text("a: 1\n")
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything: make the read fail as it would
        real = os.open

        def denied(name, *args, **kwargs):
            if Path(name) == path:
                raise PermissionError(13, "Permission denied", str(name))
            return real(name, *args, **kwargs)

        monkeypatch.setattr(os, "open", denied)
    result, findings = validate_json(str(path), env="production")
    assert result.exit_code == 2
    assert [(f["rule"], f["message"]) for f in findings] == [
        ("io/unreadable", "cannot read: Permission denied")]


def test_one_unreadable_file_does_not_hide_the_others(tmp_path, in_repo):
    result, findings = validate_json(str(tmp_path / "missing.yaml"), ERRORS, env="production")
    assert result.exit_code == 2
    rules = {f["rule"] for f in findings}
    assert {"io/unreadable", "kestra/jdbc-url"} <= rules


# --------------------------------------------------------------------------- formats

@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "junit", "github"])
def test_every_format_is_selectable(fmt, in_repo):
    result = run_cli("values", "validate", "--env", "production", "-o", fmt, ERRORS)
    assert_no_traceback(result)
    assert result.exit_code == 1
    out = result.stdout
    if fmt == "text":
        assert f"{ERRORS}:" in out and "kestra/jdbc-url" in out
    elif fmt == "json":
        assert any(f["rule"] == "kestra/jdbc-url" for f in findings_of(result))
    elif fmt == "sarif":
        assert json.loads(out)["version"] == "2.1.0"
    elif fmt == "junit":
        from junitparser import JUnitXml

        assert JUnitXml.fromstring(out).failures >= 1
    else:
        assert out.startswith(f"::error file={ERRORS},line=")


def test_clean_github_output_is_empty(in_repo):
    result = run_cli("values", "validate", "-o", "github", CLEAN)
    assert result.exit_code == 0
    assert result.stdout == ""


# --------------------------------------------------------------------------- where findings point

def test_overlay_findings_point_into_the_overlay(tmp_path, in_repo):
    """An overlay listed in kestra-ops.yaml is validated on top of its base, and a finding on a
    value it sets is located in the overlay, one on a value from base in base."""
    (tmp_path / "values").mkdir()
    shutil.copy(VALUES_DIR / "base.yaml", tmp_path / "values" / "base.yaml")
    overlay = tmp_path / "values" / "production.yaml"
    overlay.write_text("# production overlay\nkestra:\n  storage:\n    minio:\n"
                       "      bucket: kestra-staging\n  queue:\n    type: kafka\n")
    config = tmp_path / "kestra-ops.yaml"
    config.write_text(f"defaults:\n  chart: {REPO_ROOT / 'charts' / 'kestra'}\n"
                      "environments:\n  production:\n"
                      "    values: [values/base.yaml, values/production.yaml]\n")
    result = run_cli("--config", str(config), "values", "validate", "-o", "json", str(overlay))
    assert_no_traceback(result)
    assert result.exit_code == 1, result.output
    where = {(f["rule"], f["file"].rsplit("/", 1)[-1], f["line"]) for f in findings_of(result)}
    assert ("kestra/bucket-env", "production.yaml", 5) in where
    assert ("kestra/datasource-name", "production.yaml", 7) in where
    assert all(name == "production.yaml" for _, name, _ in where)


def test_text_output_gives_file_line_col_rule_and_hint(in_repo):
    path = CORPUS_DIR / "schema-unknown-key-nested-typo.yaml"
    line = parse_expectation(path).line
    result = run_cli("values", "validate", "--env", "production", rel(path))
    assert result.exit_code == 1
    assert (f"{rel(path)}:{line}:3: error schema/unknown-key: unknown key 'workerThread' in "
            "standalone [$.standalone.workerThread]") in result.stdout
    assert "    hint: did you mean 'workerThreads'?" in result.stdout


# --------------------------------------------------------------------------- values rules

def test_rules_lists_every_rule():
    result = run_cli("values", "rules")
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.stdout.splitlines()
              if line and not line.startswith(" ")]
    assert listed == list(RULES)
    for rule, (title, help_) in RULES.items():
        assert title in result.stdout and help_ in result.stdout, rule


def test_rules_as_json():
    result = run_cli("values", "rules", "--output", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert (doc["command"], doc["status"], doc["exit_code"]) == ("values rules", "pass", 0)
    rules = doc["rules"]  # the list the command printed alone before the result model
    assert [r["rule"] for r in rules] == list(RULES)
    assert all(r["title"] == RULES[r["rule"]][0] and r["help"] == RULES[r["rule"]][1]
               for r in rules)


def test_help_mentions_the_exit_codes():
    result = run_cli("values", "validate", "--help")
    assert result.exit_code == 0
    assert "Exit 0 clean, 1 any error finding, 2 unreadable file" in " ".join(result.stdout.split())
