"""Every `kestra-ops ...` line in runbooks/*.md and README.md must parse against the real CLI."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from kestra_ops.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "runbooks").glob("*.md")) + [ROOT / "README.md"]
SHELL_STOPS = {">", ">>", "|", "&&", "||", ";", "2>", "2>&1", "<"}


def command_lines(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, argv after 'kestra-ops') for each command in a fenced code block."""
    out, in_code, buf, start = [], False, "", 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip().startswith("```"):
            in_code = not in_code
            continue
        if not in_code:
            continue
        text = line.strip()
        if buf:
            buf += " " + text
        elif re.match(r"^(\$ )?(\S+/)?kestra-ops(\s|$)", text):
            buf, start = re.sub(r"^\$ ", "", text), number
        else:
            continue
        if buf.endswith("\\"):
            buf = buf[:-1]
            continue
        words = []
        for word in shlex.split(buf, comments=True):
            if word in SHELL_STOPS or word.startswith((">", "2>")):
                break
            words.append(word)
        out.append((start, words[1:]))
        buf = ""
    return out


def check_args(args: list[str]) -> None:
    """Parse ``args`` down to the leaf command without running it (raises click errors)."""
    ctx = cli.make_context("kestra-ops", list(args), resilient_parsing=False)
    command: click.Command = cli
    while isinstance(command, click.Group):
        protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args
        rest = [*protected, *ctx.args]
        if not rest:
            return
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None, f"unknown command {name!r}"
        ctx = sub.make_context(name, rest, parent=ctx, resilient_parsing=False)
        command = sub


CASES = [(doc, line, args) for doc in DOCS if doc.exists() for line, args in command_lines(doc)]


def test_docs_have_commands():
    assert (ROOT / "README.md").exists()
    assert len(CASES) >= 10
    assert {doc.name for doc, _, _ in CASES} >= {"README.md", "deployment.md"}


@pytest.mark.parametrize("doc,line,args", CASES,
                         ids=[f"{d.name}:{n}" for d, n, _ in CASES])
def test_command_line_is_valid(doc, line, args):
    try:
        check_args(args)
    except click.exceptions.Exit as done:  # eager --help / --version stop parsing, successfully
        assert done.exit_code == 0
    except click.ClickException as err:
        pytest.fail(f"{doc.name}:{line}: kestra-ops {' '.join(args)}: {err.format_message()}")


def test_checker_rejects_unknown_command_and_option():
    with pytest.raises(click.UsageError):
        check_args(["values", "frobnicate"])
    with pytest.raises(click.NoSuchOption):
        check_args(["plan", "--env", "dev", "--no-such-flag"])
    with pytest.raises(click.MissingParameter):
        check_args(["plan"])


PROMOTE = [(doc, line, args) for doc, line, args in CASES if args[:2] == ["flows", "promote"]]


@pytest.fixture
def fake_kestra(monkeypatch):
    from tests.fakes.kestra_server import FakeKestra

    with FakeKestra(step_seconds=0.02) as fake:
        for name in ("KESTRA_OPS_CONFIG", "KESTRA_OPS_ENV", "KUBECONFIG"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("KESTRA_OPS_KESTRA_URL", fake.url)
        monkeypatch.setenv("KESTRA_OPS_BASIC_AUTH_USERNAME", fake.username)
        monkeypatch.setenv("KESTRA_OPS_BASIC_AUTH_PASSWORD", fake.password)
        monkeypatch.setenv("KESTRA_OPS_NO_CACHE", "1")
        monkeypatch.chdir(ROOT)
        yield fake


def test_docs_show_flows_promote():
    assert {doc.name for doc, _, _ in PROMOTE} >= {"README.md", "flows.md"}


@pytest.mark.parametrize("doc,line,args", PROMOTE, ids=[f"{d.name}:{n}" for d, n, _ in PROMOTE])
def test_flows_promote_examples_run_on_the_repository(fake_kestra, doc, line, args):
    """Issue 12: the documented promote works on this repository's own files (against a Kestra
    server: the fake one), not only parses."""
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, f"{doc.name}:{line}: {result.output}"
    assert "company.production.sales.orders-report" in result.output, result.output
    if "--yes" in args:
        names = {f"{f['namespace']}.{f['id']}" for f in fake_kestra.all_flows()}
        assert {"company.production.sales.orders-report",
                "company.production.shared.notify"} <= names
