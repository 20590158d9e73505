"""`kestra-ops flows validate DIR --target-version VERSION [--from-version VERSION]` as a user
meets it: exit codes, file:line in the text, the findings in JSON, one-line errors for a
version the catalogue does not know."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kestra_ops.cli import cli

HEAD = "id: {id}\nnamespace: company.team\n"
REMOVED = HEAD + """tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [a, b]
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: "{{{{ taskrun.value }}}}"
"""
CHANGED = HEAD + """tasks:
  - id: fan_out
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: log
        type: io.kestra.plugin.core.log.Log
        message: hi
"""


def run(*args: str):
    return CliRunner().invoke(cli, ["flows", "validate", *args])


def assert_clean_exit(result) -> None:
    text = result.stdout + result.stderr
    assert "Traceback" not in text and "internal error" not in text, text
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)


@pytest.fixture
def flows(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no kestra-ops.yaml of the repository
    folder = tmp_path / "flows"
    folder.mkdir()
    return folder


def test_removed_syntax_is_an_error_with_file_line(flows: Path):
    (flows / "loop.yaml").write_text(REMOVED.format(id="loop"))
    result = run(str(flows), "--target-version", "2.0.8")
    assert_clean_exit(result)
    assert result.exit_code == 1, result.stdout
    assert "flows/loop.yaml:5:11: error upgrade/foreach-removed" in result.stdout
    assert "io.kestra.plugin.core.flow.Loop" in result.stdout  # the replacement


def test_warnings_only_exit_0(flows: Path):
    (flows / "fan.yaml").write_text(CHANGED.format(id="fan"))
    result = run(str(flows), "--target-version", "2.0.8", "--from-version", "1.3.22")
    assert_clean_exit(result)
    assert result.exit_code == 0, result.stdout
    assert "flows/fan.yaml:5:11: warning upgrade/parallel-fail-fast" in result.stdout


def test_json_has_the_findings(flows: Path):
    (flows / "loop.yaml").write_text(REMOVED.format(id="loop"))
    (flows / "fan.yaml").write_text(CHANGED.format(id="fan"))
    result = run(str(flows), "--target-version", "2.0.8", "--output", "json")
    assert_clean_exit(result)
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    found = {(f["rule"], f["severity"], f["file"], f["line"], f["col"])
             for report in doc["reports"] for f in report["findings"]}
    assert found == {("upgrade/foreach-removed", "error", "flows/loop.yaml", 5, 11),
                     ("upgrade/parallel-fail-fast", "warning", "flows/fan.yaml", 5, 11)}
    assert any("2.0.8" in layer for layer in doc["reports"][0]["layers"])


@pytest.mark.parametrize("args, says", [
    (["--target-version", "9.9.9"], "not on a supported line"),
    (["--target-version", "abc"], "not a Kestra version"),
    (["--target-version", "2.0.99"], "not in the version catalogue"),
    (["--target-version", "2.0.8", "--from-version", "x.y"], "not a Kestra version"),
    (["--target-version", "2.0.0", "--from-version", "2.0.8"], "not older than"),
    (["--from-version", "1.3.22"], "needs --target-version"),
])
def test_unknown_version_is_one_line_exit_2(flows: Path, args, says):
    (flows / "loop.yaml").write_text(REMOVED.format(id="loop"))
    result = run(str(flows), *args)
    assert_clean_exit(result)
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and says in lines[0], result.stderr
    assert len([line for line in lines if not line.startswith("hint:")]) == 1, result.stderr
    assert result.stdout == ""


def test_1_3_target_does_not_flag_2_0_features(flows: Path):
    (flows / "loop.yaml").write_text(REMOVED.format(id="loop"))
    (flows / "fan.yaml").write_text(CHANGED.format(id="fan"))
    result = run(str(flows), "--target-version", "1.3.22", "--output", "json")
    assert_clean_exit(result)
    assert result.exit_code == 0
    rules = [f["rule"] for r in json.loads(result.stdout)["reports"] for f in r["findings"]]
    assert rules == []
    # the same flows against 2.0 are flagged: the 1.3 run was not blind
    assert run(str(flows), "--target-version", "2.0").exit_code == 1


def test_without_target_version_no_upgrade_rules(flows: Path):
    (flows / "loop.yaml").write_text(REMOVED.format(id="loop"))
    result = run(str(flows), "--output", "json")
    assert result.exit_code == 0
    assert "upgrade/" not in result.stdout


def test_help_names_the_options_and_the_catalogue():
    result = CliRunner().invoke(cli, ["flows", "validate", "--help"])
    assert result.exit_code == 0
    assert "--target-version" in result.stdout and "--from-version" in result.stdout
    assert "catalogue" in result.stdout
