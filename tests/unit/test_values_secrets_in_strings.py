"""Secrets inside strings (a JDBC URL's password, a secret-named env var, -D...Password= in
JAVA_TOOL_OPTIONS) and in the duplicate-key message: validate reports each as
kestra/plaintext-secret, and neither validate (any format) nor render (stdout) ever shows it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kestra_ops.cli import cli

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Zq9Secr3tValue"
URL = "    url: jdbc:postgresql://kestra-postgres:5432/kestra\n"
JAVA = '      value: "-XX:MaxRAMPercentage=75.0"\n'
# (what replaces which line of values/base.yaml, in production's datasources.postgres section
# or the first extraEnv entry)
CASES = {
    "jdbc ?password=": (URL, "    url: jdbc:postgresql://kestra-postgres:5432/kestra"
                             f"?user=kestra&password={SECRET}\n"),
    "jdbc user:pass@": (URL, f"    url: jdbc:postgresql://kestra:{SECRET}@kestra-postgres:5432"
                             "/kestra\n"),
    "-D...Password=": (JAVA, f'      value: "-Djavax.net.ssl.keyStorePassword={SECRET} '
                             '-XX:MaxRAMPercentage=75.0"\n'),
    "extraEnv *PASS*": ("    - name: JAVA_TOOL_OPTIONS\n" + JAVA,
                        f"    - name: SMTP_PASS\n      value: {SECRET}\n"),
    "extraEnv *KEY*": ("    - name: JAVA_TOOL_OPTIONS\n" + JAVA,
                       f"    - name: STRIPE_KEY\n      value: {SECRET}\n"),
}
FORMATS = ["text", "json", "yaml", "sarif", "junit", "github"]


def values_with(old: str, new: str, tmp_path: Path) -> Path:
    text = (ROOT / "values" / "base.yaml").read_text()
    assert old in text, "base.yaml changed: update this test's marker"
    path = tmp_path / "production.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.fixture
def in_root(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("KESTRA_OPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("KESTRA_OPS_NO_CACHE", raising=False)


@pytest.mark.parametrize("case", CASES)
def test_validate_reports_a_plaintext_secret(case, tmp_path, in_root):
    path = values_with(*CASES[case], tmp_path)
    result = CliRunner().invoke(cli, ["values", "validate", "--env", "production", "-o", "json",
                                      str(path)])
    assert result.exit_code == 1, result.output
    findings = json.loads(result.stdout)["reports"][0]["findings"]
    assert "kestra/plaintext-secret" in {f["rule"] for f in findings}, findings
    assert SECRET not in result.output


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_validate_never_prints_it(case, fmt, tmp_path, in_root):
    path = values_with(*CASES[case], tmp_path)
    for _ in range(2):  # cold, then from the cache
        result = CliRunner().invoke(cli, ["values", "validate", "--env", "production",
                                          "--output", fmt, str(path)])
        assert result.exit_code == 1, result.output
        assert SECRET not in result.output


def test_the_cached_report_holds_no_secret_and_is_0600(tmp_path, in_root):
    path = values_with(*CASES["jdbc ?password="], tmp_path)
    CliRunner().invoke(cli, ["values", "validate", "--env", "production", str(path)])
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert cached
    for file in cached:
        assert SECRET not in file.read_text(errors="replace")
        assert file.stat().st_mode & 0o077 == 0, file


@pytest.mark.parametrize("case", CASES)
def test_render_masks_it_on_stdout(case, tmp_path, in_root):
    path = values_with(*CASES[case], tmp_path)
    result = CliRunner().invoke(cli, ["values", "render", "--env", "production", "-f",
                                      str(path)])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and "******" in result.stdout
    assert "masked" in result.stderr


def test_render_keeps_the_rest_of_a_url_readable(tmp_path, in_root):
    path = values_with(*CASES["jdbc ?password="], tmp_path)
    result = CliRunner().invoke(cli, ["values", "render", "--env", "production", "-f",
                                      str(path)])
    assert ("url: jdbc:postgresql://kestra-postgres:5432/kestra?user=kestra&password=******"
            in result.stdout)


def test_the_duplicate_key_message_never_echoes_the_values(tmp_path, in_root):
    path = tmp_path / "dup.yaml"
    path.write_text(f"a:\n  password: {SECRET}\n  password: Other{SECRET}\n")
    for fmt in FORMATS:
        result = CliRunner().invoke(cli, ["values", "validate", "--output", fmt, str(path)])
        assert result.exit_code == 2, result.output
        assert SECRET not in result.output
    assert 'duplicate key "password"' in result.output
