"""`kestra-ops values render`: stdout, --out with file modes, and secrets never on a terminal."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml as pyyaml

from kestra_ops.redact import MASK
from tests.helpers_values import all_output, in_repo, run_cli  # noqa: F401

SECRET = "S3cretPassw0rd"
SET_SECRET = f"kestra.server.basic-auth.password={SECRET}"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_render_dev_to_stdout(in_repo):
    result = run_cli("values", "render", "--env", "dev")
    assert result.exit_code == 0, all_output(result)
    assert result.stdout.startswith("# Rendered by kestra-ops for environment 'dev' from: "
                                    "values/base.yaml, values/dev.yaml\n")
    values = pyyaml.safe_load(result.stdout)
    assert values["standalone"]["workerThreads"] == 8
    assert values["kestra"]["storage"]["minio"]["bucket"] == "kestra-dev"
    assert values["kestra"]["server"]["basic-auth"]["password"] == "${KESTRA_BASIC_AUTH_PASSWORD}"
    assert result.stderr == ""


def test_render_each_environment_uses_its_overlay(in_repo):
    buckets = {}
    for env in ("dev", "staging", "production"):
        result = run_cli("values", "render", "--env", env)
        assert result.exit_code == 0, all_output(result)
        buckets[env] = pyyaml.safe_load(result.stdout)["kestra"]["storage"]["minio"]["bucket"]
    assert buckets == {"dev": "kestra-dev", "staging": "kestra-staging",
                       "production": "kestra-production"}


def test_render_out_without_secrets_is_0644(tmp_path, in_repo):
    out = tmp_path / "rendered" / "dev.yaml"
    result = run_cli("values", "render", "--env", "dev", "--out", str(out))
    assert result.exit_code == 0, all_output(result)
    assert mode(out) == 0o644
    assert result.stdout == ""
    assert "0644" in result.stderr
    # the file is what stdout would have shown
    shown = run_cli("values", "render", "--env", "dev").stdout
    assert out.read_text() == shown
    assert not list(out.parent.glob(".*.tmp"))  # the atomic write left no temp file


def test_render_masks_a_set_secret_on_stdout(in_repo):
    result = run_cli("values", "render", "--env", "dev", "--set", SET_SECRET)
    assert result.exit_code == 0, all_output(result)
    assert SECRET not in result.stdout
    assert SECRET not in result.stderr
    values = pyyaml.safe_load(result.stdout)
    assert values["kestra"]["server"]["basic-auth"]["password"] == MASK
    # the placeholders that are not secrets stay visible
    assert values["datasources"]["postgres"]["password"] == "${KESTRA_DB_PASSWORD}"
    assert "masked" in result.stderr and "--out" in result.stderr


def test_render_out_with_a_secret_is_0600(tmp_path, in_repo):
    out = tmp_path / "prod.yaml"
    result = run_cli("values", "render", "--env", "production", "--set", SET_SECRET,
                     "--out", str(out))
    assert result.exit_code == 0, all_output(result)
    assert mode(out) == 0o600
    assert SECRET not in all_output(result)
    assert "0600" in result.stderr
    values = pyyaml.safe_load(out.read_text())
    assert values["kestra"]["server"]["basic-auth"]["password"] == SECRET


def test_render_out_tightens_an_existing_file(tmp_path, in_repo):
    out = tmp_path / "values.yaml"
    assert run_cli("values", "render", "--env", "dev", "--out", str(out)).exit_code == 0
    assert mode(out) == 0o644
    assert run_cli("values", "render", "--env", "dev", "--set", SET_SECRET,
                   "--out", str(out)).exit_code == 0
    assert mode(out) == 0o600
    assert SECRET in out.read_text()


def test_render_with_an_extra_values_file(tmp_path, in_repo):
    extra = tmp_path / "extra.yaml"
    extra.write_text("standalone:\n  workerThreads: 12\nkestra:\n  plugins:\n    blacklist: null\n")
    result = run_cli("values", "render", "--env", "dev", "-f", str(extra))
    assert result.exit_code == 0, all_output(result)
    values = pyyaml.safe_load(result.stdout)
    assert values["standalone"]["workerThreads"] == 12
    # deleting the only key of a commented map still renders valid YAML (an empty map)
    assert values["kestra"]["plugins"] == {}
    assert values["kestra"]["jdbc"] == {"cleaner": {"retention": "7d"}}
    assert str(extra.name) in result.stdout.splitlines()[0]


def test_render_an_unknown_environment_is_a_usage_error(in_repo):
    result = run_cli("values", "render", "--env", "qa")
    assert result.exit_code == 2
    assert "Traceback" not in all_output(result)
    assert result.stderr.startswith("error: unknown environment 'qa'")
    assert result.stdout == ""


def test_render_a_broken_extra_file_is_a_usage_error(tmp_path, in_repo):
    extra = tmp_path / "broken.yaml"
    extra.write_text("a: [1,\n")
    result = run_cli("values", "render", "--env", "dev", "-f", str(extra))
    assert result.exit_code == 2
    assert "Traceback" not in all_output(result)
    assert result.stderr.startswith("error: ")
    assert "broken.yaml:2:1: invalid YAML" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
