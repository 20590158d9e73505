"""NO_COLOR, TERM=dumb and --no-color: on a terminal, output without escape codes (issue 13,
item 4); without any of them, a terminal gets colour (so the test can fail)."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from kestra_ops.output import terminal
from kestra_ops.output.progress import Progress

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "corpus" / "values" / "basic-auth-password-too-short.yaml"


def on_a_terminal(args: list[str], **env: str) -> bytes:
    """What ``kestra-ops ARGS`` writes to a pseudo-terminal (stdout and stderr both)."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("KESTRA_OPS_") and k not in ("NO_COLOR", "TERM")}
    environ.update({"KESTRA_OPS_NO_CACHE": "1", "TERM": "xterm", **env})
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "kestra_ops", *args], cwd=ROOT,
                                env=environ, stdin=subprocess.DEVNULL, stdout=follower,
                                stderr=follower)
        os.close(follower)
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        proc.wait(timeout=60)
    finally:
        os.close(leader)
    return out


def test_a_terminal_gets_colour_by_default():
    assert b"\x1b[" in on_a_terminal(["values", "validate", str(BAD)])


@pytest.mark.parametrize("args, env", [
    (["values", "validate", str(BAD)], {"NO_COLOR": "1"}),
    (["values", "validate", str(BAD)], {"TERM": "dumb"}),
    (["--no-color", "values", "validate", str(BAD)], {}),
], ids=["NO_COLOR", "TERM=dumb", "--no-color"])
def test_no_escape_codes_when_asked(args, env):
    out = on_a_terminal(args, **env)
    assert b"error" in out and b"\x1b" not in out, out


def test_an_empty_no_color_changes_nothing(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "")
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(terminal, "_disabled", False)
    tty = io.StringIO()
    tty.isatty = lambda: True
    assert terminal.styled(tty)


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_progress_on_a_terminal_is_plain_lines_when_asked(monkeypatch, env):
    monkeypatch.setattr(terminal, "_disabled", False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    tty = io.StringIO()
    tty.isatty = lambda: True
    progress = Progress(stream=tty)
    progress.info("release dev: release kestra")
    with progress.step("helm upgrade"):
        progress.update("waiting")
    assert "\x1b" not in tty.getvalue() and "- helm upgrade" in tty.getvalue()


def run_piped(args: list[str], **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KESTRA_OPS_")}
    environ.update({"KESTRA_OPS_NO_CACHE": "1", **env})
    return subprocess.run([sys.executable, "-m", "kestra_ops", *args], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120)


def test_without_a_terminal_progress_is_off_unless_asked():
    """A CI log gets the result (its steps with their timings), not the progress lines; with
    KESTRA_OPS_PROGRESS=1 it gets plain lines too. On a terminal: shown."""
    quiet = run_piped(["plan", "--env", "dev"])
    asked = run_piped(["plan", "--env", "dev"], KESTRA_OPS_PROGRESS="1")
    assert quiet.returncode == asked.returncode == 0, quiet.stderr + asked.stderr
    assert quiet.stderr == "" and "- chart lint" in asked.stderr
    assert quiet.stdout.splitlines()[-1] == asked.stdout.splitlines()[-1] == "plan dev: ok"
    assert "chart lint" in quiet.stdout  # the report keeps every step
    shown = on_a_terminal(["plan", "--env", "dev"])
    assert b"chart lint" in shown and b"plan dev: ok" in shown
