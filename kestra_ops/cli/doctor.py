"""kestra-ops doctor."""

from __future__ import annotations

import click

from kestra_ops.cli.common import (duration_seconds, emit, env_option, kestra_options,
                                    kube_options, output_option, pass_state, progress_for,
                                    quiet_option)
from kestra_ops.workflows.doctor import doctor_help

HELP = f"""Walk the troubleshooting guide for ENV: each problem found, with its fix.

\b
{doctor_help()}

Each source looked at (pods and logs, ConfigMap, permissions, release, MinIO, Kestra's API,
flows, executions) is listed; one that cannot be read is named with the findings it leaves
unchecked. Nothing is changed. Exit 0 when every source was read and no problem is found; 1
when one is, or when a source could not be read (the verdict then says "not checked: ...",
never "no problems found").
"""


@click.command("doctor", help=HELP)
@env_option(required=False)
@click.option("--local", is_flag=True,
              help="Check the local toolchain instead: helm 3.8+, pg_dump/pg_restore against "
                   "the database server's major (KESTRA_OPS_DATABASE_URL), the kubeconfig and "
                   "context ENV would use (the current one without --env). Talks to no cluster.")
@kube_options()
@click.option("--stuck-after", default="1h", show_default=True, metavar="DURATION",
              callback=duration_seconds,
              help="An execution RUNNING longer than this is reported as stuck.")
@kestra_options("Kestra and MinIO")
@output_option()
@quiet_option()
@pass_state
def doctor_cmd(state, env: str | None, local: bool, stuck_after: float, kestra_url: str | None,
               insecure: bool, output: str, quiet: bool) -> None:
    if local:
        from kestra_ops.workflows.toolchain import run_local

        # without --env: the kubeconfig and context flags (or the kubeconfig's current context)
        emit(run_local(state.environment(env) if env else None,
                       context=state.flags.get("context"),
                       kubeconfig=state.flags.get("kubeconfig")), output, quiet=quiet)
        return
    if not env:
        raise click.UsageError("Missing option '--env' / '-e' (or --local).")
    from kestra_ops.workflows.doctor import run_doctor

    emit(run_doctor(state.environment(env), kestra_url=kestra_url, insecure=insecure,
                    stuck_after=stuck_after, progress=progress_for(output, quiet)),
         output, quiet=quiet)
