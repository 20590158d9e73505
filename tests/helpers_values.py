"""Shared helpers for the values tests: the corpus, its expectations, running the CLI."""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = REPO_ROOT / "tests" / "corpus" / "values"
VALUES_DIR = REPO_ROOT / "values"
ENVIRONMENTS = ("dev", "staging", "production")

_EXPECT = re.compile(r"^# expect: (?P<body>.+)$")
_KEYS = {"rule", "line", "exit", "env"}


@dataclass(frozen=True)
class Expectation:
    rule: str
    line: int
    exit: int
    env: str = "production"


def corpus_files() -> list[Path]:
    return sorted(CORPUS_DIR.glob("*.yaml"))


def parse_expectation(path: Path) -> Expectation:
    """The ``# expect: rule=R line=N exit=N [env=E]`` header on the first line of ``path``."""
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8")
    m = _EXPECT.match(first)
    if not m:
        raise ValueError(f"{path.name}: the first line is not an '# expect:' header: {first!r}")
    fields = dict(item.split("=", 1) for item in m["body"].split())
    unknown = set(fields) - _KEYS
    missing = {"rule", "line", "exit"} - set(fields)
    if unknown or missing:
        raise ValueError(f"{path.name}: bad header fields (unknown {unknown}, missing {missing})")
    return Expectation(fields["rule"], int(fields["line"]), int(fields["exit"]),
                       fields.get("env", "production"))


def rel(path: Path) -> str:
    """``path`` as kestra-ops names it when run from the repository root."""
    return str(path.resolve().relative_to(REPO_ROOT))


@pytest.fixture
def in_repo(monkeypatch):
    """Run from the repository root (kestra-ops.yaml, values/ and the chart are found there)
    with no KESTRA_OPS_* variable leaking in from the caller's environment, and without the
    report cache (every run parses and validates for real, and nothing is written to ~/.cache)."""
    import os

    for name in list(os.environ):
        if name.startswith("KESTRA_OPS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KESTRA_OPS_NO_CACHE", "1")
    monkeypatch.chdir(REPO_ROOT)
    return REPO_ROOT


@contextmanager
def repo_without_cache():
    """In the repository root with KESTRA_OPS_NO_CACHE=1, both put back after (for hypothesis
    tests, whose examples share one function-scoped fixture)."""
    import os

    before, saved = os.getcwd(), os.environ.get("KESTRA_OPS_NO_CACHE")
    os.chdir(REPO_ROOT)
    os.environ["KESTRA_OPS_NO_CACHE"] = "1"  # nothing written to the user's cache
    try:
        yield REPO_ROOT
    finally:
        os.chdir(before)
        if saved is None:
            os.environ.pop("KESTRA_OPS_NO_CACHE", None)
        else:
            os.environ["KESTRA_OPS_NO_CACHE"] = saved


def run_cli(*args: str, input: str | None = None) -> Result:
    """Invoke ``kestra-ops ARGS`` in-process; stdout and stderr are kept apart."""
    from kestra_ops.cli import cli

    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=True)


def all_output(result: Result) -> str:
    return (result.stdout or "") + (result.stderr or "")


def assert_no_traceback(result: Result) -> None:
    text = all_output(result)
    assert "Traceback" not in text, text
    assert "internal error" not in text, text
    # click turns a clean ctx.exit() into SystemExit; anything else escaped the CLI's handling
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))


def findings_of(result: Result) -> list[dict]:
    """Findings of a ``--output json`` run (every report)."""
    doc = json.loads(result.stdout)
    return [f for report in doc["reports"] for f in report["findings"]]


def validate_json(*files: str, env: str | None = None) -> tuple[Result, list[dict]]:
    args = ["values", "validate", "--output", "json"]
    if env:
        args += ["--env", env]
    result = run_cli(*args, *files)
    assert_no_traceback(result)
    return result, findings_of(result)
