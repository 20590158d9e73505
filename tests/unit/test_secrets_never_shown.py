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
    written = CliRunner().invoke(cli, ["values", "render", "--env", "dev", *sets, "-o", str(out)])
    assert written.exit_code == 0 and SECRET not in written.output
    assert SECRET in out.read_text() and (out.stat().st_mode & 0o777) == 0o600
