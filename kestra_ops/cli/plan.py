"""kestra-ops plan."""

from __future__ import annotations

import click

from kestra_ops.cli.common import (emit, env_option, helm_option, kube_version_option,
                                    output_option, pass_state, progress_for, quiet_option)
from kestra_ops.cli.common import RENDER_SETTINGS, kube_options


@click.command("plan")
@env_option()
@kube_options(RENDER_SETTINGS)
@kube_version_option()
@helm_option()
@output_option()
@quiet_option()
@pass_state
def plan_cmd(state, env: str, kube_version: str, helm: str | None, output: str, quiet: bool):
    """Offline main job: render + validate + chart lint for ENV, one summary.

    Needs no cluster. Exit 0 when every step passes (warnings allowed), 1 when a step fails,
    2 when a values file cannot be read.
    """
    from kestra_ops.workflows.plan import plan

    emit(plan(state.environment(env), kube_version=kube_version, helm=helm,
              progress=progress_for(output, quiet)), output, quiet=quiet)
