"""kestra-ops.yaml's ``backup:`` section (issue 14): the backup destination (its own bucket,
default ``kestra-<env>-backups``, endpoint and secure defaulting to MinIO's) and the age
recipients the Secrets are sealed to (public keys only: an identity is refused, exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kestra_ops.errors import ConfigError
from kestra_ops.settings import load_config

RECIPIENT = "age1" + "q" * 58


def env(tmp_path: Path, body: str, environ: dict | None = None, name: str = "dev"):
    (tmp_path / "kestra-ops.yaml").write_text(
        "defaults:\n  minio: {endpoint: minio.example:9000, secure: true}\n"
        f"environments:\n  dev:\n    {body}\n  production: {{}}\n")
    config = load_config(start=tmp_path, environ={"KESTRA_OPS_NO_CACHE": "1"})
    return config.environment(name, environ=environ or {})


def test_defaults_a_bucket_of_its_own_on_the_same_server(tmp_path):
    e = env(tmp_path, "values: []", name="production")
    assert e.backup_target == ("minio.example:9000", True, "kestra-production-backups")
    assert e.backup_recipients == () and e.backup_lock_days is None
    assert e.backup_include_executions is False


def test_the_section_sets_every_field(tmp_path):
    e = env(tmp_path, "backup: {bucket: vault, endpoint: 'https://s3.backup:9443', "
                      f"recipients: [{RECIPIENT}], lock_days: 30, include_executions: true}}")
    assert e.backup_target == ("https://s3.backup:9443", True, "vault")
    assert e.backup_recipients == (RECIPIENT,)
    assert e.backup_lock_days == 30 and e.backup_include_executions is True


def test_variables_override_the_file(tmp_path):
    e = env(tmp_path, "backup: {bucket: vault}", environ={
        "KESTRA_OPS_BACKUP_BUCKET": "other", "KESTRA_OPS_BACKUP_RECIPIENTS": f"{RECIPIENT},"})
    assert e.backup_bucket == "other" and e.backup_recipients == (RECIPIENT,)


@pytest.mark.parametrize("body, says", [
    ("backup: {recipents: [x]}", "did you mean 'recipients'"),
    ("backup: {recipients: [AGE-SECRET-KEY-1QQQQ]}", "PRIVATE key"),
    ("backup: {recipients: []}", "list of age public keys"),
    ("backup: {recipients: [age1short]}", "not an age public key"),
    ("backup: {lock_days: 0}", "whole number of days"),
    ("backup: {include_executions: maybe}", "true or false"),
    ("backup: 5", "must be a mapping"),
    ("backup: {endpoint: 'http://user:pw@s3:9000'}", "credentials"),
])
def test_bad_sections_are_exit_2_with_the_line(tmp_path, body, says):
    with pytest.raises(ConfigError) as err:
        env(tmp_path, body)
    message = f"{err.value} {err.value.hint or ''}"
    assert "kestra-ops.yaml:5: " in message and says in message, message
    assert err.value.exit_code == 2 and "AGE-SECRET-KEY-1QQQQ" not in message


def test_a_private_key_in_a_variable_is_refused_without_echoing_it(tmp_path):
    with pytest.raises(ConfigError) as err:
        env(tmp_path, "values: []", environ={"KESTRA_OPS_BACKUP_RECIPIENTS":
                                             "AGE-SECRET-KEY-1SECRETSECRET"})
    assert "KESTRA_OPS_BACKUP_RECIPIENTS" in str(err.value)
    assert "SECRETSECRET" not in str(err.value)
