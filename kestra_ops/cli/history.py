"""kestra-ops history and kestra-ops rollback."""

from __future__ import annotations

import click

from kestra_ops.cli.common import (check_duration, confirm_diff, emit, env_option, helm_option,
                                    output_option, pass_state, progress_for, quiet_option)
from kestra_ops.cli.common import kube_options


@click.command("history")
@env_option()
@kube_options()
@helm_option()
@output_option()
@pass_state
def history_cmd(state, env: str, helm: str | None, output: str) -> None:
    """Show the revisions of ENV's Helm release, oldest first.

    Each revision has its status (deployed, superseded, failed, pending-install,
    pending-upgrade, pending-rollback), chart, app version and helm's description (on one line,
    cut at 100 characters; --output json keeps it whole); the current one is marked with `*`.
    A release whose latest revision is pending-* was left by an interrupted helm and blocks the
    next deploy: `kestra-ops rollback` repairs it (a warning says so).

    Read-only. Exit 0 listed, 1 the release does not exist or helm failed, 2 unknown
    environment.
    """
    from kestra_ops.workflows.deploy.rollback import history_report

    emit(history_report(state.environment(env), helm=helm), output)


@click.command("rollback")
@env_option()
@kube_options()
@click.option("--to", "to", type=click.IntRange(min=1), metavar="REVISION",
              help="Revision to return to (see `kestra-ops history`). Default: the last "
                   "deployed or superseded revision before the current one.")
@click.option("--timeout", default="10m", show_default=True, callback=check_duration,
              metavar="DURATION",
              help="How long helm waits for the rolled-back pods to be ready (90s, 10m, 1h).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@helm_option()
@output_option()
@quiet_option()
@pass_state
def rollback_cmd(state, env: str, to: int | None, timeout: str, yes: bool, helm: str | None,
                 output: str, quiet: bool) -> None:
    """Roll ENV's Helm release back to an earlier revision, and wait until it is ready.

    Steps: read the history and pick the target; compare it with the live objects (fields
    changed outside Helm are named: the rollback takes them back); show it and ask (unless
    --yes; with no terminal to answer on: exit 2, nothing changed); take the deploy lock
    (Lease `kestra-ops-deploy` in the namespace, so it never overlaps a deploy or another
    rollback); check the release did not move meanwhile; `helm rollback --wait`; record the
    change in `backups/changes.jsonl` (before/after revision). The lock is released on
    success, failure and Ctrl-C. Also the repair for a release stuck in pending-*.

    Only a deployed or superseded revision is a target. Exit 0 rolled back; 1 the rollback
    failed, the lock is held by someone else, or the confirmation was declined; 2 unknown
    revision, bad --timeout, unknown environment, or no terminal to confirm on and no --yes;
    130 interrupted.
    """
    from kestra_ops.workflows.deploy.rollback import rollback

    result = rollback(state.environment(env), to=to, timeout=timeout, helm=helm,
                      confirm=confirm_diff(yes, f"roll back {env}?", f"roll back {env}"),
                      progress=progress_for(output, quiet))
    emit(result.to_report(), output, quiet=quiet)
