"""The output formats are the modules of kestra_ops/output/formats and nothing else: every
reporting command offers exactly them (so a new format module reaches every command with no other
change), and each renders any report."""

from __future__ import annotations

import click
import pytest

from kestra_ops.cli import cli
from kestra_ops.output import ALIASES, format_names, render
from kestra_ops.results import FAIL, PASS, SKIP, WARN, Item, Report, Section, Step, Table


def commands(group: click.Group, ctx: click.Context, prefix: str = ""):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from commands(command, ctx, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_every_output_option_offers_exactly_the_format_modules():
    ctx = click.Context(cli)
    seen = {}
    for name, command in commands(cli, ctx):
        for param in command.params:
            if param.name == "output":
                seen[name] = sorted(param.type.choices)
    assert len(seen) >= 20, sorted(seen)  # every reporting command has one
    want = sorted([*format_names(), *ALIASES])
    assert {name: choices for name, choices in seen.items() if choices != want} == {}


def sample() -> Report:
    return Report("check", env="dev", title="check dev", message="check dev: FAILED",
                  exit_code=1, status=FAIL,
                  steps=[Step("render", PASS, "ok", 0.1), Step("lint", SKIP, "not needed")],
                  items=[Item("pods", PASS, "2 pods"), Item("events", WARN, "1 resolved"),
                         Item("configmap", FAIL, "datasources.default missing", ["hint"])],
                  tables=[Table(["A", "B"], [[1, "x\ny"]])],
                  sections=[Section("diff", ["- a", "+ b"])], warnings=["careful"],
                  data={"namespace": "ns"})


@pytest.mark.parametrize("fmt", format_names())
def test_each_format_renders_any_report(fmt):
    text = render(sample(), fmt)
    assert text and "configmap" in text
    assert render(Report("plan", env="dev", message="plan dev: ok"), fmt) is not None
