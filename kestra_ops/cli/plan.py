"""kestra-ops plan."""

from __future__ import annotations

import json

import click

from kestra_ops.cli.common import (color, env_option, helm_option, kube_version_option,
                                    output_option, pass_state, quiet_option)

MARK = {"ok": "ok", "warning": "warn", "failed": "FAIL", "skipped": "skip"}


@click.command("plan")
@env_option()
@kube_version_option()
@helm_option()
@output_option("text", "json")
@quiet_option()
@pass_state
def plan_cmd(state, env: str, kube_version: str, helm: str | None, output: str, quiet: bool):
    """Offline main job: render + validate + chart lint for ENV, one summary.

    Needs no cluster. Exit 0 when every step passes (warnings allowed), 1 when a step fails,
    2 when a values file cannot be read.
    """
    from kestra_ops.output.findings import render_text
    from kestra_ops.workflows.plan import plan

    environment = state.environment(env)

    def show(step) -> None:
        if output == "text" and not quiet:
            click.echo(f"  {MARK[step.status]:4}  {step.name:10} {step.detail} "
                       f"({step.seconds:.2f}s)")

    if output == "text" and not quiet:
        click.echo(f"plan {env} (namespace {environment.namespace}, release "
                   f"{environment.release}, chart {environment.chart})")
    result = plan(environment, kube_version=kube_version, helm=helm, on_step=show)
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        findings = [r for r in result.reports if r.findings]
        if findings:
            click.echo(render_text(findings, color=color()))
        verdict = {0: "ok", 1: "FAILED", 2: "INVALID INPUT"}[result.exit_code]
        click.echo(f"plan {env}: {verdict}")
    click.get_current_context().exit(result.exit_code)
