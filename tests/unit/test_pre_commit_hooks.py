"""This repository's pre-commit hooks (issue 13, item 2): each runs a real kestra-ops command
the way pre-commit runs it (entry + the staged files it matches), and passes on the repository's
own values and flows."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())


def test_the_hooks_are_well_formed():
    assert [h["id"] for h in HOOKS] == ["kestra-ops-values-validate", "kestra-ops-flows-validate"]
    for hook in HOOKS:
        assert {"id", "name", "entry", "language"} <= set(hook)
        assert hook["language"] == "python" and hook["entry"].startswith("kestra-ops ")
        re.compile(hook["files"])


@pytest.mark.parametrize("hook", HOOKS, ids=lambda h: h["id"])
def test_each_hook_passes_on_the_repositorys_files(hook, tmp_path):
    pattern = re.compile(hook["files"])
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    files = [f for f in tracked.stdout.splitlines() if pattern.search(f)]
    assert files, f"{hook['id']} matches no file of this repository"
    argv = shlex.split(hook["entry"])[1:]
    if hook.get("pass_filenames", True):
        argv += files
    proc = subprocess.run([sys.executable, "-m", "kestra_ops", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "KESTRA_OPS_NO_CACHE": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
