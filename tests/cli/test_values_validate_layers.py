"""values validate -f/--values and --set, as helm lint takes them (issue 13, item 4): layers
merged in order and validated as one, --set on top; on top of --env's layers with --env."""

from __future__ import annotations

import json
import os

import pytest

from tests.helpers_values import REPO_ROOT, all_output, assert_no_traceback, run_cli


@pytest.fixture(autouse=True)
def in_the_repository(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("KESTRA_OPS_NO_CACHE", "1")
    for name in list(os.environ):
        if name in ("KESTRA_OPS_ENV", "KESTRA_OPS_CONFIG"):
            monkeypatch.delenv(name)


def validate(*args: str):
    result = run_cli("values", "validate", "-o", "json", *args)
    assert_no_traceback(result)
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


def test_layers_merge_in_order_with_the_rules_the_last_layers_name_gives():
    result, data = validate("-f", "values/base.yaml", "-f", "values/production.yaml")
    assert result.exit_code == 0, all_output(result)
    [report] = data["reports"]
    assert report["layers"] == ["values/base.yaml", "values/production.yaml"]
    assert report["env"] == "production"


def test_a_set_on_top_is_validated_and_never_echoed():
    result, data = validate("-f", "values/base.yaml", "-f", "values/production.yaml",
                            "--set", "kestra.server.basic-auth.password=weak")
    assert result.exit_code == 1
    [report] = data["reports"]
    assert report["layers"][-1] == "--set"
    rules = {f["rule"] for f in report["findings"]}
    assert "kestra/basic-auth-password" in rules
    assert "weak" not in all_output(result)


def test_with_env_the_layers_go_on_top_of_the_envs():
    result, data = validate("--env", "dev", "-f", "values/production.yaml")
    assert result.exit_code == 1  # production's bucket in dev
    [report] = data["reports"]
    assert report["layers"] == ["values/base.yaml", "values/dev.yaml", "values/production.yaml"]
    assert any(f["rule"] == "kestra/bucket-env" for f in report["findings"])


def test_the_order_matters():
    """dev.yaml on top of production.yaml is dev's values: production's rules fail on them."""
    good, _ = validate("-f", "values/base.yaml", "-f", "values/production.yaml")
    bad, data = validate("--env", "production", "-f", "values/base.yaml", "-f",
                         "values/production.yaml", "-f", "values/dev.yaml")
    assert good.exit_code == 0 and bad.exit_code == 1, all_output(bad)


@pytest.mark.parametrize("args, says", [
    (["values/dev.yaml", "-f", "values/base.yaml"], "not both"),
    (["values/dev.yaml", "--set", "a=b"], "not both"),
    (["--set", "a=b"], "-f/--values FILE or --env ENV"),
    (["-f", "values/base.yaml", "--set", "novalue"], "expected KEY=VALUE"),
    (["-f", "values/base.yaml", "--env", "nosuch"], "unknown environment"),
])
def test_usage_errors_are_exit_2(args, says):
    result = run_cli("values", "validate", *args)
    assert_no_traceback(result)
    assert result.exit_code == 2 and says in all_output(result), all_output(result)
