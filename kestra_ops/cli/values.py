"""kestra-ops values render | validate | rules."""

from __future__ import annotations

from pathlib import Path

import click

from kestra_ops.cli.common import emit, env_option, output_option, pass_state


@click.group()
def values() -> None:
    """Layered values: render an environment's values, validate values files."""


RENDER_FORMATS = ("yaml", "json")


def _render_output(ctx, param, value):
    """-o/--output is the format (yaml, json), as everywhere. For one release a value that is
    not a format name is still taken as the file to write (its old meaning), with a warning."""
    if value is None or value in RENDER_FORMATS:
        return value
    from kestra_ops.output import ALIASES, format_names

    if value in (*format_names(), *ALIASES):
        raise click.BadParameter(f"{value!r}: values render prints {' or '.join(RENDER_FORMATS)}"
                                 " (the values themselves, not a report)")
    click.echo(f"warning: -o {value} is deprecated: -o/--output names the format "
               f"({', '.join(RENDER_FORMATS)}); write to a file with -O/--out-file {value}",
               err=True)
    return Path(value)


@values.command("render")
@env_option()
@click.option("-f", "--values", "extra", multiple=True, type=click.Path(path_type=Path),
              metavar="FILE", help="Extra values file layered on top (repeatable).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Set a value (Helm --set syntax: a.b.c=value, {a,b} for a list; repeatable).")
@click.option("--output", "-o", "fmt", metavar="[yaml|json]", callback=_render_output,
              help="Output format: yaml (the default, comments kept) or json. (Not a report: "
                   "the values themselves.)")
@click.option("--out-file", "-O", "--out", "out", type=click.Path(path_type=Path),
              metavar="FILE", help="Write to FILE (mode 0600, secrets kept) instead of stdout.")
@pass_state
def render_cmd(state, env: str, extra: tuple[Path, ...], sets: tuple[str, ...],
               fmt: str | Path | None, out: Path | None):
    """Merge an environment's values layers with Helm's rules and print or write the result.

    Layers come from kestra-ops.yaml (default: values/base.yaml then values/ENV.yaml), then
    each -f FILE, then each --set. Maps merge, lists replace, null deletes a key. The first
    layer's comments and key order are kept. On stdout, literal secrets are masked.
    """
    from kestra_ops.workflows.values import render_values

    if isinstance(fmt, Path):  # the deprecated -o FILE
        if out is not None:
            raise click.UsageError("give the file once: -O/--out-file FILE (-o is the format)")
        fmt, out = None, fmt
    rendered = render_values(state.environment(env), extra, sets, out=out, fmt=fmt or "yaml")
    if rendered.written is None:
        click.echo(rendered.text, nl=False)
    if rendered.notice:
        click.echo(rendered.notice, err=True)


@values.command("validate")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@env_option(required=False)
@click.option("-f", "--values", "layers", multiple=True, type=click.Path(path_type=Path),
              metavar="FILE", help="A values layer, merged in order as helm lint -f does "
              "(on top of --env's layers when given; repeatable).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Set a value on top (Helm --set syntax; repeatable).")
@click.option("--chart", type=click.Path(path_type=Path, file_okay=False),
              help="Chart whose values.schema.json to use (default: the environment's chart).")
@output_option()
@click.option("--no-cache", is_flag=True, envvar="KESTRA_OPS_NO_CACHE",
              help="Validate from scratch (reports are cached by the content of every input).")
@pass_state
def validate_cmd(state, files: tuple[Path, ...], env: str | None, layers: tuple[Path, ...],
                 sets: tuple[str, ...], chart: Path | None, output: str, no_cache: bool):
    """Validate values files against values.schema.json and Kestra's rules.

    With --env and no FILE: the environment's merged layers. With FILEs: each file; an
    overlay listed for an environment in kestra-ops.yaml is checked on top of that
    environment's earlier layers, any other file on its own (rules of --env, or of the
    environment its name gives, else production's).

    With -f/--values and --set (as helm lint takes them): the layers merged in order, and each
    --set on top, validated as one (on top of --env's layers when --env is given; else with
    the rules of --env, of the environment the last layer's name gives, or production's).

    Every finding names its rule, JSON path and file:line:col (in the layer that set the
    value) with a fix hint. Exit 0 clean, 1 any error finding, 2 unreadable file or invalid
    YAML. Formats: text, json, yaml, sarif (2.1.0, for code scanning), junit, github.
    """
    from kestra_ops.workflows.values import validate_report

    if files and (layers or sets):
        raise click.UsageError("give FILE arguments, or -f/--values layers and --set, not both")
    if not files and not env and not layers:
        raise click.UsageError("give FILE arguments, -f/--values FILE or --env ENV")
    environment = None if files or (layers and not env) else \
        state.environment(env, chart=str(chart) if chart else None)
    emit(validate_report(state.config, files, env, chart, environment=environment,
                         layers=layers, sets=sets, use_cache=not no_cache), output)


@values.command("rules")
@output_option()
def rules_cmd(output: str) -> None:
    """List every rule values validate and chart lint can report."""
    from kestra_ops.workflows.values import rules_report

    emit(rules_report(), output)
