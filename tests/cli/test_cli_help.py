"""Top-level help: every command listed, its one-liner in sync, no subcommand imported."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from kestra_ops.cli import KestraOpsGroup, cli


@pytest.mark.parametrize("name", sorted(KestraOpsGroup.LAZY))
def test_lazy_one_liner_matches_the_command(name):
    command = cli.get_command(click.Context(cli), name)
    first = (command.help or "").strip().splitlines()[0].rstrip(".")
    assert first.startswith(KestraOpsGroup.LAZY[name][2].rstrip(".")), (
        f"update LAZY[{name!r}] in kestra_ops/cli/__init__.py to the command's first help line")


def test_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in KestraOpsGroup.LAZY:
        assert f"  {name} " in result.output


def test_help_imports_no_subcommand_module():
    code = ("import sys; from kestra_ops.cli import cli\n"
            "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('kestra_ops.cli.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    assert out == "[]"


def test_release_has_its_module_and_history_rollback_theirs():
    """cli/release.py holds `release`; `history` and `rollback` live in cli/history.py."""
    lazy = KestraOpsGroup.LAZY
    assert lazy["release"][:2] == ("kestra_ops.cli.release", "release_cmd")
    assert [lazy[n][:2] for n in ("history", "rollback")] == [
        ("kestra_ops.cli.history", "history_cmd"), ("kestra_ops.cli.history", "rollback_cmd")]
