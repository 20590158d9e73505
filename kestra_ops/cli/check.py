"""kestra-ops check."""

from __future__ import annotations

import click

from kestra_ops.cli.completion import complete_check_ids
from kestra_ops.cli.common import (duration_seconds, emit, env_option, kestra_options,
                                    output_option, pass_state, progress_for, quiet_option)
from kestra_ops.cli.common import kube_options
from kestra_ops.workflows.check import CHECK_IDS, checklist_help

HELP = f"""Run the post-deploy checklist for ENV: each item PASS, WARN or FAIL, with its time.

\b
{checklist_help()}

The checks run concurrently, each within --timeout-per-check. Credentials:
KESTRA_OPS_BASIC_AUTH_USERNAME / KESTRA_OPS_BASIC_AUTH_PASSWORD, else the basic-auth Secret.
Exit 0 when every check passes (warnings allowed), 1 when one fails, 2 for an unknown --only
id, 130 interrupted.
"""


@click.command("check", help=HELP)
@env_option()
@kube_options()
@click.option("--wait", "wait", metavar="DURATION", callback=duration_seconds,
              help="Run failing checks again until all pass or DURATION has passed (e.g. 5m).")
@click.option("--only", metavar="ID,...", shell_complete=complete_check_ids,
              help=f"Run only these checks (comma-separated): {', '.join(CHECK_IDS)}.")
@click.option("--timeout-per-check", "timeout", default="60s", show_default=True,
              metavar="DURATION", callback=duration_seconds,
              help="Time budget of each check (each attempt, with --wait).")
@kestra_options("Kestra and MinIO")
@output_option()
@quiet_option()
@pass_state
def check_cmd(state, env: str, wait: float | None, only: str | None, timeout: float,
              kestra_url: str | None, insecure: bool, output: str, quiet: bool) -> None:
    from kestra_ops.workflows.check import check, select

    select(only)  # an unknown id is refused before anything connects
    emit(check(state.environment(env), only=only, wait=wait, timeout=timeout,
               kestra_url=kestra_url, insecure=insecure, progress=progress_for(output, quiet)),
         output, quiet=quiet)
