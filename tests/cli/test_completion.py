"""kestra-ops completion (issue 13, item 4): the bash script sources cleanly and completes
commands, environment names and check ids; zsh and fish scripts are printed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXE = [sys.executable, "-m", "kestra_ops"]


def completes(words: str, cword: int, **env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KESTRA_OPS_")}
    environ.update({"_KESTRA_OPS_COMPLETE": "bash_complete", "COMP_WORDS": words,
                    "COMP_CWORD": str(cword), **env})
    proc = subprocess.run(EXE, cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines() if line]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on this system")
def test_the_bash_script_sources_cleanly():
    script = subprocess.run([*EXE, "completion", "bash"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert script.returncode == 0, script.stderr
    proc = subprocess.run(["bash", "--norc", "-c", 'eval "$1" && complete -p kestra-ops', "bash",
                           script.stdout], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "_kestra_ops_completion kestra-ops" in proc.stdout


@pytest.mark.parametrize("shell, says", [("zsh", "#compdef kestra-ops"),
                                         ("fish", "complete --no-files --command kestra-ops")])
def test_zsh_and_fish_scripts(shell, says):
    proc = subprocess.run([*EXE, "completion", shell], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and says in proc.stdout and "_KESTRA_OPS_COMPLETE" in proc.stdout


def test_an_unknown_shell_is_a_usage_error():
    proc = subprocess.run([*EXE, "completion", "tcsh"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "tcsh" in proc.stderr


def test_commands_complete():
    assert completes("kestra-ops ch", 1) == ["chart", "check"]


def test_environment_names_complete_from_the_config(tmp_path):
    (tmp_path / "k.yaml").write_text("environments:\n  qa: {}\n  prod-eu: {}\n")
    assert completes("kestra-ops check --env ", 3) == ["dev", "staging", "production"]
    assert completes("kestra-ops check --env pro", 3) == ["production"]
    assert completes(f"kestra-ops --config {tmp_path / 'k.yaml'} deploy -e ", 5) == \
        ["qa", "prod-eu"]
    assert completes("kestra-ops --config /nonexistent.yaml check --env ", 5) == []


def test_check_ids_complete_after_those_typed():
    from kestra_ops.checks.registry import check_ids

    assert completes("kestra-ops check --only ", 3) == list(check_ids())
    assert completes("kestra-ops check --only pods,re", 3) == ["pods,readiness"]
