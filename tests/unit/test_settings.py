"""Precedence (flag > KESTRA_OPS_* > kestra-ops.yaml > default) and credential refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from kestra_ops.errors import ConfigError
from kestra_ops.settings import load_config

CONFIG = """\
defaults:
  namespace: from-defaults
environments:
  staging:
    namespace: from-file
    context: staging-ctx
    minio: {bucket: kestra-staging, secure: false}
    values: [v/base.yaml, v/staging.yaml]
  qa: {}
"""


@pytest.fixture
def config(tmp_path: Path):
    (tmp_path / "kestra-ops.yaml").write_text(CONFIG)
    return load_config(start=tmp_path, environ={})


def test_file_then_env_then_flag(config, tmp_path):
    env = config.environment("staging", environ={})
    assert (env.namespace, env.sources["namespace"]) == ("from-file", "config")
    assert env.context == "staging-ctx" and env.minio_bucket == "kestra-staging"
    assert env.minio_secure is False
    assert env.values_paths == (tmp_path / "v/base.yaml", tmp_path / "v/staging.yaml")
    env = config.environment("staging", environ={"KESTRA_OPS_NAMESPACE": "from-env"})
    assert (env.namespace, env.sources["namespace"]) == ("from-env", "environment")
    env = config.environment("staging", flags={"namespace": "from-flag"},
                             environ={"KESTRA_OPS_NAMESPACE": "from-env"})
    assert (env.namespace, env.sources["namespace"]) == ("from-flag", "flag")


def test_defaults_section_and_builtin_defaults(config):
    qa = config.environment("qa", environ={})
    assert qa.namespace == "from-defaults"
    assert qa.release == "kestra" and qa.sources["release"] == "default"
    assert qa.minio_bucket == "kestra-qa"
    assert [p.as_posix() for p in qa.values] == ["values/base.yaml", "values/qa.yaml"]


def test_unknown_environment_names_the_known_ones(config):
    with pytest.raises(ConfigError, match="unknown environment 'prod'.*staging, qa"):
        config.environment("prod")


def test_embedded_default_without_a_file(tmp_path):
    config = load_config(start=tmp_path, environ={})
    assert config.path is None and config.env_names == ["dev", "staging", "production"]
    assert config.environment("production", environ={}).namespace == "hyperplane-kestra"


def test_credentials_in_the_file_are_refused_with_their_line(tmp_path):
    (tmp_path / "kestra-ops.yaml").write_text(
        "environments:\n  dev:\n    minio:\n      bucket: kestra-dev\n      secret-key: abc\n")
    with pytest.raises(ConfigError, match=r"kestra-ops.yaml:5: environments.dev.minio.secret-key"):
        load_config(start=tmp_path, environ={"KESTRA_OPS_NO_CACHE": "1"})


def test_malformed_config_names_file_and_line(tmp_path):
    (tmp_path / "kestra-ops.yaml").write_text("environments:\n  dev: [\n")
    with pytest.raises(Exception) as err:
        load_config(start=tmp_path, environ={})
    assert err.value.exit_code == 2 and "kestra-ops.yaml:3" in str(err.value)


def test_explicit_missing_config(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.yaml", environ={})
