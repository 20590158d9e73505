"""kestra_ops.redact: which keys hold secrets, which values are references, and masking."""

from __future__ import annotations

import copy

import pytest

from kestra_ops.redact import (MASK, is_placeholder, is_secret_key, literal_secrets, mask_text,
                               redact)


# --------------------------------------------------------------------------- is_secret_key

@pytest.mark.parametrize("key", [
    "password", "Password", "DB_PASSWORD", "db-password", "passwd", "secret", "client_secret",
    "secret-key", "secretKey", "secretkey", "access-key", "accessKey", "access_key",
    "api-key", "apiKey", "private-key", "privateKey", "token", "authToken", "credentials",
    "credential", "encryption-key", "KESTRA_BASIC_AUTH_PASSWORD", "KESTRA_MINIO_SECRET_KEY",
])
def test_secret_keys(key):
    assert is_secret_key(key) is True


@pytest.mark.parametrize("key", [
    # keys that *name* a secret (references into Kubernetes Secrets), not hold one
    "passwordKey", "accessKeyKey", "secretKeyKey", "existingSecrets", "existingSecret",
    "existing-secret", "secretName", "secret-name", "name", "password-key-name",
    # ordinary keys
    "username", "url", "endpoint", "bucket", "region", "key", "value", "port", "enabled",
])
def test_non_secret_keys(key):
    assert is_secret_key(key) is False


def test_non_string_keys_are_handled():
    assert is_secret_key(0) is False
    assert is_secret_key(None) is False


# --------------------------------------------------------------------------- placeholders

@pytest.mark.parametrize("value", [
    "${KESTRA_DB_PASSWORD}", "${a}", "${_X1}", "  ${KESTRA_DB_PASSWORD}  ", "${micronaut.x-y}",
    "${VAR:}",  # an empty default still inlines nothing
])
def test_placeholders(value):
    assert is_placeholder(value) is True


@pytest.mark.parametrize("value", [
    "${VAR:default}",  # an inline default is a literal secret in disguise
    "${KESTRA_DB_PASSWORD:changeme}",
    "prefix-${VAR}", "${VAR}-suffix", "${VAR", "$VAR", "${1VAR}", "${}", "", "hunter2",
    None, 42, ["${VAR}"], {"a": "${VAR}"},
])
def test_not_placeholders(value):
    assert is_placeholder(value) is False


# --------------------------------------------------------------------------- redact

def test_redact_masks_literal_secrets_and_keeps_the_rest():
    data = {
        "datasources": {"postgres": {"url": "jdbc:postgresql://db:5432/kestra",
                                     "username": "kestra", "password": "hunter2"}},
        "kestra": {"storage": {"minio": {"access-key": "AKIA123", "secret-key": 12345678,
                                         "bucket": "kestra-dev"}}},
        "existingSecrets": {"database": {"name": "kestra-postgres", "passwordKey": "password"}},
    }
    before = copy.deepcopy(data)
    out = redact(data)
    assert data == before  # a copy: the input is untouched
    assert out["datasources"]["postgres"] == {"url": "jdbc:postgresql://db:5432/kestra",
                                              "username": "kestra", "password": MASK}
    assert out["kestra"]["storage"]["minio"] == {"access-key": MASK, "secret-key": MASK,
                                                 "bucket": "kestra-dev"}
    assert out["existingSecrets"] == before["existingSecrets"]


def test_redact_keeps_placeholders_and_empty_values():
    data = {"password": "${KESTRA_DB_PASSWORD}", "token": "", "secret": None,
            "api-key": "${API_KEY:inline-default}"}
    assert redact(data) == {"password": "${KESTRA_DB_PASSWORD}", "token": "", "secret": None,
                            "api-key": MASK}


def test_redact_masks_secret_env_var_entries_in_lists():
    env = [{"name": "JAVA_TOOL_OPTIONS", "value": "-XX:MaxRAMPercentage=75.0"},
           {"name": "KESTRA_DB_PASSWORD", "value": "hunter2"},
           {"name": "MINIO_SECRET_KEY", "value": "${FROM_SECRET}"},
           {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}}]
    out = redact({"standalone": {"extraEnv": env}})["standalone"]["extraEnv"]
    assert out[0] == env[0]
    assert out[1] == {"name": "KESTRA_DB_PASSWORD", "value": MASK}
    assert out[2] == env[2]
    assert out[3] == env[3]


def test_redact_recurses_into_nested_lists():
    data = {"a": [[{"password": "x1"}], {"b": [{"token": "t"}]}]}
    assert redact(data) == {"a": [[{"password": MASK}], {"b": [{"token": MASK}]}]}


def test_redact_scalars_pass_through():
    assert redact("hunter2") == "hunter2"
    assert redact(None) is None


# --------------------------------------------------------------------------- literal_secrets

def test_literal_secrets_finds_every_path():
    data = {
        "datasources": {"default": {"password": "${KESTRA_DB_PASSWORD}"},
                        "postgres": {"password": "plain"}},
        "kestra": {"server": {"basic-auth": {"username": "a@b.c", "password": 12345678}},
                   "encryption": {"secret-key": "${KESTRA_ENCRYPTION_KEY:c2VjcmV0}"}},
        "existingSecrets": {"minio": {"accessKeyKey": "access-key", "secretKeyKey": "secret-key"}},
        "empty": {"password": ""},
    }
    assert sorted(literal_secrets(data)) == sorted([
        ("datasources", "postgres", "password"),
        ("kestra", "server", "basic-auth", "password"),
        ("kestra", "encryption", "secret-key"),  # ${VAR:default} counts as plaintext
    ])


def test_literal_secrets_in_env_var_lists():
    data = {"standalone": {"extraEnv": [
        {"name": "JAVA_TOOL_OPTIONS", "value": "-Xmx1g"},
        {"name": "KESTRA_DB_PASSWORD", "value": "hunter2"},
        {"name": "MINIO_SECRET_KEY", "value": "${FROM_SECRET}"},
        {"name": "API_TOKEN", "value": "${TOKEN:abc}"},
        {"name": "GITHUB_TOKEN", "value": ""},
    ]}}
    assert literal_secrets(data) == [("standalone", "extraEnv", 1, "value"),
                                     ("standalone", "extraEnv", 3, "value")]


def test_literal_secrets_of_clean_values_is_empty():
    import yaml

    from tests.helpers_values import VALUES_DIR

    for path in VALUES_DIR.glob("*.yaml"):
        assert literal_secrets(yaml.safe_load(path.read_text())) == [], path.name


def test_literal_secrets_paths_agree_with_redact():
    """Every path literal_secrets reports is masked by redact, and nothing else changes."""
    data = {"a": {"password": "x", "user": "u"}, "l": [{"name": "DB_PASSWORD", "value": "v"}],
            "t": {"token": 7}}
    masked = redact(data)
    for path in literal_secrets(data):
        node = masked
        for part in path:
            node = node[part]
        assert node == MASK, path
    assert masked["a"]["user"] == "u"


# --------------------------------------------------------------------------- mask_text

def test_mask_text_replaces_longest_secret_first():
    text = "login with hunter2-extended then hunter2"
    assert mask_text(text, ["hunter2", "hunter2-extended"]) == f"login with {MASK} then {MASK}"


def test_mask_text_ignores_empty_secrets():
    assert mask_text("nothing to hide", [""]) == "nothing to hide"
    assert mask_text("", ["x"]) == ""


# --------------------------------------------------------------------------- secrets inside strings

@pytest.mark.parametrize("value, secret", [
    ("jdbc:postgresql://db:5432/kestra?user=kestra&password=Zq9Pw0rd", "Zq9Pw0rd"),
    ("jdbc:postgresql://kestra:Zq9Pw0rd@db:5432/kestra", "Zq9Pw0rd"),
    ("postgresql://kestra@db/kestra?sslmode=require&password=Zq9Pw0rd", "Zq9Pw0rd"),
    ("https://admin:Zq9Pw0rd@kestra.example.com/", "Zq9Pw0rd"),
    ("jdbc:sqlserver://db;user=sa;password=Zq9Pw0rd", "Zq9Pw0rd"),
    ("-XX:MaxRAMPercentage=75.0 -Djavax.net.ssl.keyStorePassword=Zq9Pw0rd -Dx=1", "Zq9Pw0rd"),
    ("-Ddatasources.postgres.password=Zq9Pw0rd", "Zq9Pw0rd"),
    ("datasources:\n  postgres:\n    password: Zq9Pw0rd\n", "Zq9Pw0rd"),
])
def test_secrets_inside_strings_are_found_and_masked(value, secret):
    data = {"standalone": {"extraEnv": [{"name": "JAVA_TOOL_OPTIONS", "value": value}]},
            "datasources": {"postgres": {"url": value}}, "args": [value]}
    assert sorted(literal_secrets(data), key=str) == sorted([
        ("standalone", "extraEnv", 0, "value"), ("datasources", "postgres", "url"), ("args", 0)],
        key=str)
    masked = redact(data)
    for shown in (masked["standalone"]["extraEnv"][0]["value"],
                  masked["datasources"]["postgres"]["url"], masked["args"][0]):
        assert secret not in shown and MASK in shown
    assert secret not in str(masked)


@pytest.mark.parametrize("value", [
    "jdbc:postgresql://kestra-postgres:5432/kestra",
    "jdbc:postgresql://db/kestra?password=${KESTRA_DB_PASSWORD}",
    "jdbc:postgresql://kestra:${KESTRA_DB_PASSWORD}@db/kestra",
    "-XX:MaxRAMPercentage=75.0",
    "https://kestra.example.com:8443/ui",
    "https://user@kestra.example.com/",
    "minio.hyperplane-minio.svc.cluster.local:9000",
    "io.kestra.plugin.docker.*",
    "secretName: kestra-basic-auth",  # names a Secret, does not hold one
])
def test_strings_without_a_secret_are_left_alone(value):
    data = {"url": value, "l": [value], "env": [{"name": "JAVA_TOOL_OPTIONS", "value": value}]}
    assert literal_secrets(data) == []
    assert redact(data) == data


@pytest.mark.parametrize("name", ["DB_PASS", "MY_SECRET_VALUE", "GITHUB_TOKEN", "STRIPE_KEY",
                                  "aws_secret_access_key", "SMTP_PASSWD", "KEYSTORE"])
def test_env_var_entries_with_a_secret_looking_name(name):
    data = {"standalone": {"extraEnv": [{"name": name, "value": "Zq9Value"},
                                        {"name": "TZ", "value": "Europe/Paris"}]}}
    assert literal_secrets(data) == [("standalone", "extraEnv", 0, "value")]
    assert redact(data)["standalone"]["extraEnv"] == [{"name": name, "value": MASK},
                                                      {"name": "TZ", "value": "Europe/Paris"}]


def test_values_inside_a_secret_keys_list_are_secrets():
    data = {"password": ["Zq9One", "${REF}", ["Zq9Two"]], "token": {"name": "not-a-secret"}}
    assert sorted(literal_secrets(data), key=str) == [("password", 0), ("password", 2, 0)]
    assert "Zq9" not in str(redact(data))


def test_secret_values_lists_every_secret_text():
    from kestra_ops.redact import secret_values

    data = {"url": "jdbc:postgresql://db/k?password=Zq9Pw0rd", "password": "Zq9Other",
            "env": [{"name": "API_KEY", "value": "Zq9Key"}], "ok": "kestra"}
    assert set(secret_values(data)) == {"Zq9Pw0rd", "Zq9Other", "Zq9Key"}
