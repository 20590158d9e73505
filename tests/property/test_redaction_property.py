"""Property tests of the redaction helper (issue 12, item 11): a secret, wherever it sits in the
values (under a secret key, in a list under one, in a URL's user:password@, in ?password=, in
-D...Password=, as the value of a secret-named env var, in an embedded application.yml), is found
by ``literal_secrets``, masked by ``redact`` and by ``values render``, and never appears in any
output format of ``values validate`` (text, json, yaml, sarif, junit, github) nor of
``values render`` (yaml, json) on stdout or stderr."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kestra_ops.redact import (MASK, literal_secrets, mask_embedded, redact, secret_spans,
                               secret_values)

REPO_ROOT = Path(__file__).resolve().parents[2]
PROPS = settings(max_examples=300, deadline=timedelta(seconds=2), derandomize=True,
                 database=None, suppress_health_check=[HealthCheck.too_slow])
CLI = settings(max_examples=25, deadline=None, derandomize=True, database=None,
               suppress_health_check=[HealthCheck.too_slow,
                                      HealthCheck.function_scoped_fixture])
FORMATS = ("text", "json", "yaml", "sarif", "junit", "github")

# a secret that cannot occur by chance in any output; URL-safe characters where it sits in a
# URL (elsewhere, YAML-safe punctuation too)
URL_SAFE = st.from_regex(r"Zq9[A-Za-z0-9._~!$()*+-]{5,24}", fullmatch=True)
TEXT_SAFE = st.from_regex(r"Zq9[A-Za-z0-9._~!$()*+,;=@/%^-]{5,24}", fullmatch=True)
SECRET_KEYS = st.sampled_from(["password", "db-password", "secret-key", "api_key", "token",
                               "accessKey", "privateKey", "credentials", "clientSecret"])
ENV_NAMES = st.sampled_from(["DB_PASS", "SMTP_PASSWORD", "MY_SECRET", "GITHUB_TOKEN",
                             "STRIPE_KEY", "aws_secret_access_key", "KEYSTORE_PWD"])
PLAIN_KEYS = st.sampled_from(["url", "value", "args", "opts", "dsn", "endpoint", "x"])


@st.composite
def placed(draw) -> tuple[object, str]:
    """(a values fragment holding the secret, the secret)."""
    kind = draw(st.sampled_from(["key", "list-under-key", "userinfo", "query", "jdbc-semicolon",
                                 "java-opt", "conninfo", "env-entry", "embedded-yaml",
                                 "quoted-json"]))
    if kind in ("userinfo", "query", "jdbc-semicolon"):
        secret = draw(URL_SAFE)
    else:
        secret = draw(TEXT_SAFE)
    host = draw(st.sampled_from(["db", "kestra-postgres:5432", "10.0.0.1", "[::1]:5432"]))
    if kind == "key":
        return {draw(SECRET_KEYS): secret}, secret
    if kind == "list-under-key":
        return {draw(SECRET_KEYS): ["${REF}", secret]}, secret
    if kind == "userinfo":
        scheme = draw(st.sampled_from(["jdbc:postgresql", "postgresql", "https", "redis"]))
        return {draw(PLAIN_KEYS): f"{scheme}://kestra:{secret}@{host}/kestra"}, secret
    if kind == "query":
        extra = draw(st.sampled_from(["", "&sslmode=require", "#frag"]))
        key = draw(st.sampled_from(["password", "sslpassword", "token", "secret"]))
        return {draw(PLAIN_KEYS): f"jdbc:postgresql://{host}/k?user=u&{key}={secret}{extra}"}, \
            secret
    if kind == "jdbc-semicolon":
        return {draw(PLAIN_KEYS): f"jdbc:sqlserver://{host};user=sa;password={secret};x=1"}, \
            secret
    if kind == "java-opt":
        prop = draw(st.sampled_from(["javax.net.ssl.keyStorePassword", "db.password",
                                     "app.secret", "api.token"]))
        return {"extraEnv": [{"name": "JAVA_TOOL_OPTIONS",
                              "value": f"-Xmx1g -D{prop}={secret} -Dfile.encoding=UTF-8"}]}, \
            secret
    if kind == "conninfo":
        return {draw(PLAIN_KEYS): f"host={host} user=kestra password={secret} dbname=k"}, secret
    if kind == "env-entry":
        return {"extraEnv": [{"name": draw(ENV_NAMES), "value": secret}]}, secret
    if kind == "embedded-yaml":
        return {"config": f"datasources:\n  postgres:\n    password: {secret}\n    user: x\n"}, \
            secret
    return {draw(PLAIN_KEYS): json.dumps({"user": "x", "password": secret})}, secret


def nested(fragment: object, draw_path: list[str]) -> dict:
    for part in reversed(draw_path):
        fragment = {part: fragment}
    return fragment


# --------------------------------------------------------------------------- the helper

@PROPS
@given(placed(), st.lists(st.sampled_from(["a", "standalone", "kestra", "x-y"]), max_size=3))
def test_the_helper_finds_and_masks_every_placement(case, path):
    fragment, secret = case
    data = nested(fragment, path)
    assert literal_secrets(data), data
    assert secret not in json.dumps(redact(data)), redact(data)
    assert any(secret in value or value in secret for value in secret_values(data))


@PROPS
@given(st.text(max_size=200))
def test_masking_any_text_terminates_and_only_replaces(text):
    masked = mask_embedded(text)
    spans = secret_spans(text)
    if not spans:
        assert masked == text
    else:
        assert MASK in masked
        for start, end in spans:
            assert 0 <= start < end <= len(text)


@PROPS
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4),
                                            st.dictionaries(st.text(max_size=12), inner,
                                                            max_size=4)),
                    max_leaves=30))
def test_redact_and_literal_secrets_agree_on_any_tree(data):
    masked = redact(data)
    for path in literal_secrets(data):
        node = masked
        for part in path:
            node = node[part if not isinstance(node, dict) else _key(node, part)]
        assert node == MASK or (isinstance(node, str) and MASK in node), (path, node)


def _key(node: dict, part):
    return next(k for k in node if str(k) == str(part))


# --------------------------------------------------------------------------- the CLI

@pytest.fixture(scope="module")
def base_text() -> str:
    return (REPO_ROOT / "values" / "base.yaml").read_text()


@CLI
@given(placed(), st.sampled_from(["standalone", "kestra", "datasources"]))
def test_validate_and_render_never_show_it(tmp_path_factory, base_text, case, where):
    import yaml

    from tests.helpers_values import repo_without_cache, run_cli

    fragment, secret = case
    folder = tmp_path_factory.mktemp("secret")
    overlay = folder / "production.yaml"
    overlay.write_text(yaml.safe_dump({where: fragment} if where != "standalone" or
                                      "extraEnv" not in fragment else {"standalone": fragment}))
    with repo_without_cache():
        outputs = []
        for fmt in FORMATS:
            result = run_cli("values", "validate", "--env", "production", "-o", fmt,
                             str(overlay))
            assert result.exit_code in (0, 1), (fmt, result.output[-500:])
            outputs.append(result.output)
        for fmt in ("yaml", "json"):
            result = run_cli("values", "render", "--env", "production", "-f", str(overlay),
                             "-o", fmt)
            assert result.exit_code == 0, result.output[-500:]
            outputs.append(result.output)
    for text in outputs:
        assert secret not in text, text[-800:]
