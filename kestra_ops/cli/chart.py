"""kestra-ops chart lint."""

from __future__ import annotations

import click

from kestra_ops.cli.common import (emit, env_option, helm_option, kube_version_option,
                                    output_option, pass_state)
from kestra_ops.cli.common import RENDER_SETTINGS, kube_options


@click.group()
def chart() -> None:
    """Our Helm chart (charts/kestra)."""


@chart.command("lint")
@env_option()
@kube_options(RENDER_SETTINGS)
@kube_version_option()
@helm_option()
@output_option()
@pass_state
def lint_cmd(state, env: str, kube_version: str, helm: str | None, output: str) -> None:
    """Lint the chart with the environment's merged values.

    Runs the real helm (`lint --strict`, then `template`), checks every rendered object
    against the Kubernetes API schemas offline (kubernetes-validate, strict: unknown fields
    are errors), then our manifest rules: ConfigMap kestra-config carries the three datasource
    sections, probes are on port 8081, no `latest` or untagged image outside dev.
    Exit 0 clean, 1 any error.
    """
    from kestra_ops.workflows.deploy.chart_lint import lint_chart

    emit(lint_chart(state.environment(env), kube_version=kube_version, helm=helm).to_report(),
         output)
