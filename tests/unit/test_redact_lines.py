"""Credentials in free text (container log lines in check and release reports) are masked."""

from __future__ import annotations

import pytest

from kestra_ops.redact import MASK, environment_secrets, mask_line


@pytest.mark.parametrize("line, expected", [
    ("connect jdbc:postgresql://kestra:S3cr3t@db:5432/kestra failed",
     f"connect jdbc:postgresql://kestra:{MASK}@db:5432/kestra failed"),
    ("datasources.postgres.password=hunter2 user=kestra",
     f"datasources.postgres.password={MASK} user=kestra"),
    ('{"password": "hunter2", "user": "x"}', f'{{"password": "{MASK}", "user": "x"}}'),
    ("MINIO_SECRET_KEY: abcd1234", f"MINIO_SECRET_KEY: {MASK}"),
    ("token=abc123; next", f"token={MASK}; next"),
])
def test_credentials_in_a_line_are_masked(line, expected):
    assert mask_line(line) == expected


@pytest.mark.parametrize("line", [
    "Caused by: fatal thing",
    'FATAL: password authentication failed for user "kestra"',
    "password: ${KESTRA_DB_PASSWORD}",  # a reference, not the secret
    "see https://kestra.io/docs/configuration",
])
def test_lines_without_credentials_are_left_alone(line):
    assert mask_line(line) == line


def test_known_secrets_are_masked_anywhere():
    assert mask_line("login as admin with Pa55word-x", ["Pa55word-x"]) == f"login as admin with {MASK}"


def test_environment_secrets():
    environ = {"KESTRA_OPS_BASIC_AUTH_PASSWORD": "Pa55word-x", "KESTRA_OPS_MINIO_SECRET_KEY":
               "minio-secret", "KESTRA_OPS_ENV": "dev", "KESTRA_OPS_DATABASE_URL":
               "postgresql://kestra:p%40ss-word@db/kestra", "KESTRA_OPS_TOKEN": "x"}
    found = environment_secrets(environ)
    assert {"Pa55word-x", "minio-secret", "p%40ss-word", "p@ss-word"} <= set(found)
    assert "dev" not in found and "x" not in found  # not secret-named; too short to mask
