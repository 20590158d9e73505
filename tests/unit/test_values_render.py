"""`kestra-ops values render`: stdout, --out with file modes, and secrets never on a terminal."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
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


def test_render_out_is_always_0600(tmp_path, in_repo):
    """Rendered values may hold a secret nobody marked: the file is the user's only."""
    out = tmp_path / "rendered" / "dev.yaml"
    result = run_cli("values", "render", "--env", "dev", "--out-file", str(out))
    assert result.exit_code == 0, all_output(result)
    assert mode(out) == 0o600
    assert result.stdout == ""
    assert "0600" in result.stderr
    # the file is what stdout would have shown
    shown = run_cli("values", "render", "--env", "dev").stdout
    assert out.read_text() == shown
    assert not list(out.parent.glob(".*.tmp"))  # the atomic write left no temp file


def test_render_out_file_short_option_and_the_old_long_one(tmp_path, in_repo):
    for option in ("-O", "--out"):
        out = tmp_path / f"dev{option}.yaml"
        result = run_cli("values", "render", "--env", "dev", option, str(out))
        assert result.exit_code == 0, all_output(result)
        assert out.read_text().startswith("# Rendered by kestra-ops")
        assert "deprecated" not in result.stderr


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_render_output_is_the_format_not_a_file(fmt, tmp_path, in_repo, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KESTRA_OPS_CONFIG", str(in_repo / "kestra-ops.yaml"))
    result = run_cli("values", "render", "--env", "dev", "-o", fmt, "--set", SET_SECRET)
    assert result.exit_code == 0, all_output(result)
    assert list(tmp_path.iterdir()) == []  # no file named json or yaml
    values = json.loads(result.stdout) if fmt == "json" else pyyaml.safe_load(result.stdout)
    assert values["kestra"]["storage"]["minio"]["bucket"] == "kestra-dev"
    assert values["kestra"]["server"]["basic-auth"]["password"] == MASK
    assert SECRET not in all_output(result)


def test_render_json_to_a_file(tmp_path, in_repo):
    out = tmp_path / "dev.json"
    result = run_cli("values", "render", "--env", "dev", "--output", "json", "-O", str(out),
                     "--set", SET_SECRET)
    assert result.exit_code == 0, all_output(result)
    assert json.loads(out.read_text())["kestra"]["server"]["basic-auth"]["password"] == SECRET
    assert mode(out) == 0o600


def test_render_o_with_a_path_still_writes_it_with_a_deprecation_line(tmp_path, in_repo):
    out = tmp_path / "rendered.yaml"
    result = run_cli("values", "render", "--env", "dev", "-o", str(out))
    assert result.exit_code == 0, all_output(result)
    assert out.read_text().startswith("# Rendered by kestra-ops") and mode(out) == 0o600
    assert "deprecated" in result.stderr and "-O/--out-file" in result.stderr


@pytest.mark.parametrize("fmt", ["text", "sarif", "junit", "github", "table"])
def test_render_refuses_a_report_format(fmt, in_repo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # were it taken as a file name, it would land here
    monkeypatch.setenv("KESTRA_OPS_CONFIG", str(in_repo / "kestra-ops.yaml"))
    result = run_cli("values", "render", "--env", "dev", "-o", fmt)
    assert list(tmp_path.iterdir()) == []
    assert result.exit_code == 2 and "Traceback" not in all_output(result)
    assert "yaml" in result.stderr and "json" in result.stderr


@pytest.mark.parametrize("target", ["/tmp", "/proc/version", "/proc/self", "/dev/null/x.yaml"])
@pytest.mark.parametrize("option", ["-o", "-O"])
def test_render_to_a_place_that_cannot_hold_the_file_is_one_line(target, option, in_repo):
    result = run_cli("values", "render", "--env", "dev", option, target)
    assert result.exit_code == 2, all_output(result)
    assert "Traceback" not in all_output(result) and "internal error" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and target in errors[0], result.stderr
    assert result.stdout == ""


def test_render_with_both_o_path_and_out_file_is_a_usage_error(tmp_path, in_repo):
    result = run_cli("values", "render", "--env", "dev", "-o", str(tmp_path / "a.yaml"),
                     "-O", str(tmp_path / "b.yaml"))
    assert result.exit_code == 2 and list(tmp_path.iterdir()) == []


def test_render_masks_a_set_secret_on_stdout(in_repo):
    result = run_cli("values", "render", "--env", "dev", "--set", SET_SECRET)
    assert result.exit_code == 0, all_output(result)
    assert SECRET not in result.stdout
    assert SECRET not in result.stderr
    values = pyyaml.safe_load(result.stdout)
    assert values["kestra"]["server"]["basic-auth"]["password"] == MASK
    # the placeholders that are not secrets stay visible
    assert values["datasources"]["postgres"]["password"] == "${KESTRA_DB_PASSWORD}"
    assert "masked" in result.stderr and "-O/--out-file" in result.stderr


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
    out.write_text("old")
    out.chmod(0o644)
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


@pytest.mark.parametrize("host, ip", [
    ("10.0.0.5", True), ("fe80::1", True), ("::1", True), ("2001:db8::ab", True),
    ("minio.hyperplane-minio.svc.cluster.local", False), ("cafe.dead.beef", False),
    ("10.0.0", False), ("abc", False), ("my_host", False), ("ffff", False)])
def test_the_minio_endpoint_ip_check_without_ipaddress_for_names(host, ip):
    """An IP literal is found as before; a name with a letter past f skips the ipaddress
    import (every values validate reads the MinIO endpoint)."""
    from kestra_ops.values.rules_platform import _maybe_ip

    assert _maybe_ip(host) is ip
