"""Secrets never reach stdout, stderr or any report format, whatever the finding."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kestra_ops.cli import cli

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Zq9Secr3tValue"
CASES = {
    "string password": f"    password: {SECRET}\n",
    "numeric password": "    password: 98765432123\n",
    "list password": f"    password: [{SECRET}]\n",
    "map password": f"    password: {{nested: {SECRET}}}\n",
}


def values_with(line: str, tmp_path: Path) -> Path:
    text = (ROOT / "values" / "base.yaml").read_text()
    marker = '    password: "${KESTRA_BASIC_AUTH_PASSWORD}"\n'
    assert marker in text, "base.yaml changed: update this test's marker"
    path = tmp_path / "production.yaml"
    path.write_text(text.replace(marker, line))
    return path


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "junit", "github"])
def test_validate_never_prints_the_secret(case, fmt, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    path = values_with(CASES[case], tmp_path)
    result = CliRunner().invoke(cli, ["values", "validate", "--no-cache", "--env", "production",
                                      "--output", fmt, str(path)])
    assert result.exit_code == 1, result.output
    assert SECRET not in result.output and "98765432123" not in result.output


def test_render_masks_on_stdout_and_writes_0600(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    sets = ["--set", f"kestra.server.basic-auth.password={SECRET}"]
    shown = CliRunner().invoke(cli, ["values", "render", "--env", "dev", *sets])
    assert shown.exit_code == 0 and SECRET not in shown.output and "******" in shown.output
    out = tmp_path / "rendered.yaml"
    written = CliRunner().invoke(cli, ["values", "render", "--env", "dev", *sets, "-O", str(out)])
    assert written.exit_code == 0 and SECRET not in written.output
    assert SECRET in out.read_text() and (out.stat().st_mode & 0o777) == 0o600


ROOT_USER, ROOT_PASSWORD = "Zq9RootUser", "Zq9RootPassw0rd"
MINIO_VARS = ("KESTRA_OPS_MINIO_ROOT_USER", "KESTRA_OPS_MINIO_ROOT_PASSWORD", "MINIO_ROOT_USER",
              "MINIO_ROOT_PASSWORD", "KESTRA_OPS_MINIO_ACCESS_KEY", "KESTRA_OPS_MINIO_SECRET_KEY")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_apply_refusing_a_root_key_never_prints_it(fmt, monkeypatch):
    """Refused before the cluster is asked: exit 2, one line, neither root value in it."""
    monkeypatch.chdir(ROOT)
    for name in MINIO_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KESTRA_OPS_MINIO_ROOT_USER", ROOT_USER)
    monkeypatch.setenv("KESTRA_OPS_MINIO_ROOT_PASSWORD", ROOT_PASSWORD)
    for name, value in {"KESTRA_OPS_DB_PASSWORD": "db-Pass-1", "KESTRA_OPS_MINIO_ACCESS_KEY":
                        ROOT_USER, "KESTRA_OPS_MINIO_SECRET_KEY": ROOT_PASSWORD,
                        "KESTRA_OPS_BASIC_AUTH_PASSWORD": "Basic-Auth-9q2w",
                        "KESTRA_OPS_ENCRYPTION_KEY": "A" * 43 + "="}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")  # never reached
    result = CliRunner().invoke(cli, ["secrets", "apply", "--env", "dev", "--yes",
                                      "--output", fmt])
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1
    assert "is the MinIO root user" in result.stderr
    assert ROOT_USER not in result.output and ROOT_PASSWORD not in result.output


def test_minio_setup_with_only_the_old_variables_never_prints_them(monkeypatch):
    """The rename is explained in one line (exit 2) before anything is contacted."""
    monkeypatch.chdir(ROOT)
    for name in MINIO_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KESTRA_OPS_MINIO_ENDPOINT", "127.0.0.1:9")  # never reached
    monkeypatch.setenv("KESTRA_OPS_MINIO_ACCESS_KEY", ROOT_USER)
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECRET_KEY", ROOT_PASSWORD)
    result = CliRunner().invoke(cli, ["minio", "setup", "--env", "dev", "--yes"])
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: minio setup for dev: KESTRA_OPS_MINIO_ROOT_USER and "
                                    "KESTRA_OPS_MINIO_ROOT_PASSWORD not set: the MinIO root "
                                    "credentials now have their own variables")
    assert ROOT_USER not in result.output and ROOT_PASSWORD not in result.output
