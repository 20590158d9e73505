"""kestra-ops values render | validate | rules."""

from __future__ import annotations

from pathlib import Path

import click

from kestra_ops.cli.common import color, env_option, output_option, pass_state


@click.group()
def values() -> None:
    """Layered values: render an environment's values, validate values files."""


@values.command("render")
@env_option()
@click.option("-f", "--values", "extra", multiple=True, type=click.Path(path_type=Path),
              metavar="FILE", help="Extra values file layered on top (repeatable).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Set a value (Helm --set syntax: a.b.c=value, {a,b} for a list; repeatable).")
@click.option("--out", "-o", "out", type=click.Path(path_type=Path), metavar="OUT",
              help="Write to OUT (mode 0600 when it holds a secret) instead of stdout.")
@pass_state
def render_cmd(state, env: str, extra: tuple[Path, ...], sets: tuple[str, ...], out: Path | None):
    """Merge an environment's values layers with Helm's rules and print or write the result.

    Layers come from kestra-ops.yaml (default: values/base.yaml then values/ENV.yaml), then
    each -f FILE, then each --set. Maps merge, lists replace, null deletes a key. The first
    layer's comments and key order are kept. On stdout, literal secrets are masked.
    """
    from kestra_ops.fileio import write_atomic
    from kestra_ops.workflows.values import render

    environment = state.environment(env)
    if out is None:
        rendered = render(environment, extra, sets, redact=True)
        click.echo(rendered.text, nl=False)
        if rendered.has_secrets:
            click.echo(f"warning: {len(rendered.secret_paths)} plaintext secret(s) masked in "
                       "this output; use --out FILE to write them (0600)", err=True)
        return
    rendered = render(environment, extra, sets)
    write_atomic(out, rendered.text, secret=rendered.has_secrets)
    mode = "0600, holds secrets" if rendered.has_secrets else "0644"
    click.echo(f"wrote {out} ({mode}) from {' + '.join(rendered.merged.layers)}", err=True)


@values.command("validate")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@env_option(required=False)
@click.option("--chart", type=click.Path(path_type=Path, file_okay=False),
              help="Chart whose values.schema.json to use (default: the environment's chart).")
@output_option("text", "json", "sarif", "junit", "github")
@click.option("--no-cache", is_flag=True, envvar="KESTRA_OPS_NO_CACHE",
              help="Validate from scratch (reports are cached by the content of every input).")
@pass_state
def validate_cmd(state, files: tuple[Path, ...], env: str | None, chart: Path | None, output: str,
                 no_cache: bool):
    """Validate values files against values.schema.json and Kestra's rules.

    With --env and no FILE: the environment's merged layers. With FILEs: each file; an
    overlay listed for an environment in kestra-ops.yaml is checked on top of that
    environment's earlier layers, any other file on its own (rules of --env, or of the
    environment its name gives, else production's).

    Every finding names its rule, JSON path and file:line:col (in the layer that set the
    value) with a fix hint. Exit 0 clean, 1 any error finding, 2 unreadable file or invalid
    YAML. Formats: text, json, sarif (2.1.0, for code scanning), junit, github.
    """
    from kestra_ops.output.findings import render as render_reports
    from kestra_ops.values.findings import exit_code
    from kestra_ops.workflows.values import validate_env, validate_files

    if not files and not env:
        raise click.UsageError("give FILE arguments or --env ENV")
    if files:
        reports = validate_files(state.config, files, env, chart, use_cache=not no_cache)
    else:
        environment = state.environment(env, chart=str(chart) if chart else None)
        reports = [validate_env(environment, use_cache=not no_cache)]
    text = render_reports(reports, output, color=color())
    if text:
        click.echo(text)
    click.get_current_context().exit(exit_code(reports))


@values.command("rules")
@output_option("text", "json")
def rules_cmd(output: str) -> None:
    """List every rule values validate and chart lint can report."""
    import json

    from kestra_ops.values.catalog import RULES

    if output == "json":
        click.echo(json.dumps([{"rule": r, "title": t, "help": h} for r, (t, h) in RULES.items()],
                              indent=2))
        return
    for rule, (title, help_) in RULES.items():
        click.echo(f"{rule:32} {title}\n{'':32} {help_}")
