"""kestra-ops.yaml is checked by a schema (issue 12, item 10): an unknown key, a wrong type, a
namespace or release that is not a DNS label, credentials anywhere (a URL, a list) are exit 2
naming file:line; the same rules hold for KESTRA_OPS_* variables and flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from kestra_ops.errors import ConfigError
from kestra_ops.settings import load_config
from tests.helpers_values import REPO_ROOT, all_output, run_cli

GOOD = """\
defaults:
  namespace: hyperplane-kestra
  minio: {endpoint: minio.hyperplane-minio.svc.cluster.local:9000, secure: true}
environments:
  dev:
    context: dev
    values: [values/base.yaml, values/dev.yaml]
  qa: {}
"""


def load(tmp_path: Path, text: str, environ: dict | None = None):
    (tmp_path / "kestra-ops.yaml").write_text(text)
    return load_config(start=tmp_path, environ={"KESTRA_OPS_NO_CACHE": "1", **(environ or {})})


def refused(tmp_path: Path, text: str, line: int, *says: str) -> str:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    message = str(err.value)
    assert f"kestra-ops.yaml:{line}: " in message, message
    for part in says:
        assert part in f"{message} {err.value.hint or ''}", message
    assert err.value.exit_code == 2 and "\n" not in message
    return message


def test_a_good_file_loads(tmp_path):
    config = load(tmp_path, GOOD)
    assert config.env_names == ["dev", "qa"]
    assert config.environment("qa", environ={}).namespace == "hyperplane-kestra"


def test_the_repository_config_loads():
    config = load_config(REPO_ROOT / "kestra-ops.yaml", environ={"KESTRA_OPS_NO_CACHE": "1"})
    assert config.env_names == ["dev", "staging", "production"]


@pytest.mark.parametrize("text, line, says", [
    ("defaults:\n  namespcae: x\nenvironments:\n  dev: {}\n", 2,
     ["defaults.namespcae: unknown key", "did you mean 'namespace'?"]),
    ("environments:\n  dev:\n    kestra_urll: https://k.example.com/\n", 3,
     ["environments.dev.kestra_urll: unknown key", "kestra_url"]),
    ("environments:\n  dev:\n    minio:\n      bukcet: kestra-dev\n", 4,
     ["environments.dev.minio.bukcet: unknown key", "bucket"]),
    ("environmnets:\n  dev: {}\n", 1, ["environmnets: unknown key"]),
    # a key holding a newline or a terminal escape: shown escaped, on one line
    ('environments:\n  dev: {}\n"name\\nspace": x\n', 3, ["name\\nspace: unknown key"]),
    ('environments:\n  "de\\nv": {}\n', 2, ["environments.de\\nv: an environment name"]),
    ('environments:\n  dev: {"\\e[31mred": 1}\n', 2, ["environments.dev.\\x1b[31mred: unknown"]),
], ids=["namespcae", "kestra_urll", "minio-bukcet", "top-level", "newline-key", "newline-env",
        "escape-key"])
def test_unknown_keys(text, line, says, tmp_path):
    refused(tmp_path, text, line, *says)


@pytest.mark.parametrize("text, line, says", [
    ("environments:\n  dev:\n    namespace: [a, b]\n", 3, ["environments.dev.namespace",
                                                            "must be a string"]),
    ("environments:\n  dev:\n    minio: notamap\n", 3, ["environments.dev.minio",
                                                         "must be a mapping"]),
    ("environments:\n  dev:\n", 2, ["environments.dev", "must be a mapping"]),
    ("environments: {dev: }\n", 1, ["environments.dev", "must be a mapping"]),
    ("environments: [dev]\n", 1, ["environments", "must map environment names"]),
    ("environments: {}\n", 1, ["environments", "must map environment names"]),
    ("defaults: 3\nenvironments: {dev: {}}\n", 1, ["defaults", "must be a mapping"]),
    ("environments:\n  dev:\n    values: values/dev.yaml\n", 3, ["values",
                                                                 "list of paths"]),
    ("environments:\n  dev:\n    minio: {secure: maybe}\n", 3, ["minio.secure",
                                                                  "true or false"]),
    ("environments:\n  dev:\n    minio: {lifecycle_days: 0}\n", 3, ["lifecycle_days"]),
    ("environments:\n  dev:\n    kestra_url: ftp://k.example.com/\n", 3, ["kestra_url",
                                                                            "http"]),
    ("environments:\n  ../x: {}\n", 2, ["environment name"]),
    ("- a\n- b\n", 1, ["must be a mapping"]),
], ids=["namespace-list", "minio-string", "env-null", "env-null-flow", "envs-list",
        "envs-empty", "defaults-int", "values-string", "secure-string", "days-zero",
        "url-ftp", "env-name", "not-a-map"])
def test_wrong_types(text, line, says, tmp_path):
    refused(tmp_path, text, line, *says)


@pytest.mark.parametrize("field, value", [
    ("namespace", "-n"), ("namespace", "--kube-context=evil"), ("namespace", "Hyperplane"),
    ("namespace", "a_b"), ("namespace", "a" * 64), ("namespace", "a.b"), ("release", "-x"),
    ("release", "--post-renderer=/bin/sh"), ("release", "a" * 54), ("release", "kestra-"),
    ("context", "--kubeconfig=/tmp/x"),
])
def test_names_that_could_reach_helm_as_a_flag_are_refused(field, value, tmp_path):
    text = f"environments:\n  dev:\n    {field}: '{value}'\n"
    refused(tmp_path, text, 3, f"environments.dev.{field}")


@pytest.mark.parametrize("field, variable", [("namespace", "KESTRA_OPS_NAMESPACE"),
                                             ("release", "KESTRA_OPS_RELEASE")])
def test_the_same_rules_for_variables_and_flags(field, variable, tmp_path):
    config = load(tmp_path, GOOD)
    with pytest.raises(ConfigError, match=variable):
        config.environment("dev", environ={variable: "-evil"})
    with pytest.raises(ConfigError, match=f"--{field}"):
        config.environment("dev", flags={field: "--evil"}, environ={})
    assert getattr(config.environment("dev", environ={variable: "ok-name"}), field) == "ok-name"


@pytest.mark.parametrize("text, line", [
    ("environments:\n  dev:\n    kestra_url: https://admin:Zq9Pw@k.example.com/\n", 3),
    ("environments:\n  dev:\n    kestra_url: https://admin@k.example.com/\n", 3),
    ("environments:\n  dev:\n    minio: {endpoint: 'http://key:Zq9Pw@minio:9000'}\n", 3),
    ("environments:\n  dev:\n    minio: {endpoint: 'key:Zq9Pw@minio:9000'}\n", 3),
    ("environments:\n  dev:\n    values: [values/base.yaml, 'https://u:Zq9Pw@h/x.yaml']\n", 3),
    ("environments:\n  dev:\n    values:\n      - {password: Zq9Pw}\n", 4),
    ("environments:\n  dev:\n    minio:\n      secret-key: [Zq9Pw]\n", 4),
    ("defaults:\n  token: {value: Zq9Pw}\nenvironments: {dev: {}}\n", 2),
], ids=["url-user-pass", "url-user", "endpoint-url", "endpoint-bare", "in-a-list",
        "map-in-a-list", "secret-list", "secret-map"])
def test_credentials_anywhere_are_refused(text, line, tmp_path):
    message = refused(tmp_path, text, line)
    assert "Zq9Pw" not in message
    assert "credentials" in message


def test_a_cached_config_is_checked_again(tmp_path, monkeypatch):
    """A cache entry written before a rule existed cannot let a bad file through."""
    monkeypatch.setenv("KESTRA_OPS_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "kestra-ops.yaml").write_text("environments:\n  dev:\n    namespace: '-n'\n")
    from kestra_ops import cache
    from kestra_ops.settings import _parse_config

    path = tmp_path / "kestra-ops.yaml"
    key = cache.file_key("config", path.resolve(), path.read_bytes())
    cache.put_json("config", key, {"data": {"environments": {"dev": {"namespace": "-n"}}}})
    with pytest.raises(ConfigError, match="kestra-ops.yaml:3: environments.dev.namespace"):
        _parse_config(path)


def test_on_the_cli_a_bad_config_is_one_line_and_exit_2(tmp_path, monkeypatch):
    (tmp_path / "kestra-ops.yaml").write_text("environments:\n  dev:\n    namespcae: x\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KESTRA_OPS_NO_CACHE", "1")
    monkeypatch.delenv("KESTRA_OPS_CONFIG", raising=False)
    result = run_cli("values", "render", "--env", "dev")
    assert result.exit_code == 2, all_output(result)
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ") and first.endswith(
        "kestra-ops.yaml:3: environments.dev.namespcae: unknown key"), result.stderr
    assert "Traceback" not in all_output(result)


def test_minio_secure_false_outside_dev_is_a_validate_warning(tmp_path, monkeypatch):
    import shutil

    shutil.copytree(REPO_ROOT / "values", tmp_path / "values")
    (tmp_path / "charts").symlink_to(REPO_ROOT / "charts")
    (tmp_path / "kestra-ops.yaml").write_text(
        "defaults:\n  minio: {endpoint: minio.example.svc.cluster.local:9000, secure: false}\n"
        "environments:\n  dev: {}\n  staging: {}\n  production:\n    minio: {secure: true}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KESTRA_OPS_NO_CACHE", "1")
    for name in ("KESTRA_OPS_CONFIG", "KESTRA_OPS_MINIO_SECURE", "KESTRA_OPS_MINIO_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    staging = run_cli("values", "validate", "--env", "staging")
    assert staging.exit_code == 0, all_output(staging)
    assert "minio.secure is false for staging" in staging.stdout
    for env in ("dev", "production"):
        result = run_cli("values", "validate", "--env", env)
        assert result.exit_code == 0 and "minio.secure" not in all_output(result), env
    assert "minio.secure is false" in run_cli("values", "validate", "--env", "staging",
                                              "-o", "json").stdout


@pytest.mark.parametrize("url, warned", [("http://kestra.example.com/", True),
                                         ("https://kestra.example.com/", False),
                                         ("http://127.0.0.1:8080", False), (None, False)])
def test_a_plain_http_kestra_url_is_an_environment_warning(url, warned, tmp_path):
    line = f"    kestra_url: {url}\n" if url else ""
    config = load(tmp_path, f"environments:\n  production:\n{line or '    {}'}\n"
                  if not url else f"environments:\n  production:\n{line}")
    warnings = config.environment("production", environ={}).warnings
    assert any("kestra_url is plain http://" in w for w in warnings) is warned


def test_an_empty_variable_clears_a_setting_but_never_the_namespace(tmp_path):
    config = load(tmp_path, GOOD)
    env = config.environment("dev", environ={"KESTRA_OPS_MINIO_ENDPOINT": "",
                                             "KESTRA_OPS_KESTRA_URL": ""})
    assert env.minio_endpoint == "" and not env.kestra_url
    for variable in ("KESTRA_OPS_NAMESPACE", "KESTRA_OPS_RELEASE"):
        with pytest.raises(ConfigError, match=variable):
            config.environment("dev", environ={variable: ""})
