"""kestra-ops history and kestra-ops rollback."""

from __future__ import annotations

import json
import sys

import click

from kestra_ops.cli.common import (ask, check_duration, env_option, helm_option, output_option,
                                    pass_state, quiet_option)


DESCRIPTION_WIDTH = 100  # characters of helm's description in the table


def _when(updated: str) -> str:
    """helm's RFC 3339 (nanoseconds, any offset) -> ``2026-11-24 01:02:03``."""
    return updated[:19].replace("T", " ") if updated else "-"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]])
                     .rstrip() for row in rows)


@click.command("history")
@env_option()
@helm_option()
@output_option("table", "json", default="table")
@pass_state
def history_cmd(state, env: str, helm: str | None, output: str) -> None:
    """Show the revisions of ENV's Helm release, oldest first.

    Each revision has its status (deployed, superseded, failed, pending-install,
    pending-upgrade, pending-rollback), chart, app version and helm's description; the current
    one is marked with `*`. A release whose latest revision is pending-* was left by an
    interrupted helm and blocks the next deploy: `kestra-ops rollback` repairs it.

    Read-only. Exit 0 listed, 1 the release does not exist or helm failed, 2 unknown
    environment.
    """
    from kestra_ops.adapters.helm import Helm
    from kestra_ops.workflows.rollback import release_history

    environment = state.environment(env)
    result = release_history(environment, helm=Helm.for_env(environment, helm=helm))
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    from kestra_ops.output.cells import one_line

    # one line per revision: helm's description may hold newlines (a failed upgrade lists every
    # resource not ready); the table shows its start, --output json all of it
    rows = [["", "REVISION", "UPDATED (UTC)", "STATUS", "CHART", "APP VERSION", "DESCRIPTION"]]
    for rev in result.revisions:
        rows.append(["*" if rev is result.current else "", str(rev.revision), _when(rev.updated),
                     one_line(rev.status, 20), one_line(rev.chart, 40),
                     one_line(rev.app_version, 20), one_line(rev.description, DESCRIPTION_WIDTH)])
    click.echo(f"release {result.release} in {result.namespace} ({result.env})")
    click.echo(_table(rows))
    current = result.current
    if current is not None and current.pending:
        click.echo(f"warning: revision {current.revision} is {current.status}: an interrupted "
                   f"helm left it; `kestra-ops rollback --env {env}` repairs it", err=True)


@click.command("rollback")
@env_option()
@click.option("--to", "to", type=click.IntRange(min=1), metavar="REVISION",
              help="Revision to return to (see `kestra-ops history`). Default: the last "
                   "deployed or superseded revision before the current one.")
@click.option("--timeout", default="10m", show_default=True, callback=check_duration,
              metavar="DURATION",
              help="How long helm waits for the rolled-back pods to be ready (90s, 10m, 1h).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@helm_option()
@output_option("text", "json")
@quiet_option()
@pass_state
def rollback_cmd(state, env: str, to: int | None, timeout: str, yes: bool, helm: str | None,
                 output: str, quiet: bool) -> None:
    """Roll ENV's Helm release back to an earlier revision, and wait until it is ready.

    Steps: read the history and pick the target; show it and ask (unless --yes; without a
    terminal to answer, the answer is no: exit 1, nothing changed); take the deploy lock (Lease
    `kestra-ops-deploy` in the namespace, so it never overlaps a deploy or another rollback);
    check the release did not move meanwhile; `helm rollback --wait`; record the change in
    `backups/changes.jsonl` (before/after revision). The lock is released on success, failure
    and Ctrl-C. Also the repair for a release stuck in pending-*.

    Only a deployed or superseded revision is a target. Exit 0 rolled back; 1 the rollback
    failed, the lock is held by someone else, or the confirmation was declined; 2 unknown
    revision, bad --timeout or unknown environment; 130 interrupted.
    """
    from kestra_ops.adapters.helm import Helm
    from kestra_ops.output.progress import Progress
    from kestra_ops.workflows.rollback import rollback

    environment = state.environment(env)
    progress = Progress(quiet=quiet or not sys.stderr.isatty())

    def confirm(plan) -> bool:
        if yes:
            progress.info(plan.describe())
            return True
        click.echo(plan.describe(), err=True)
        return ask("proceed?")

    def interrupted() -> None:
        click.echo("\ninterrupted: letting helm stop cleanly (Ctrl-C again to kill it)", err=True)

    result = rollback(environment, to=to, timeout=timeout, confirm=confirm,
                      helm=Helm.for_env(environment, helm=helm), progress=progress,
                      on_interrupt=interrupted)
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        new = result.new
        click.echo(f"rolled back {result.plan.release} ({env}) from revision "
                   f"{result.plan.current.revision} to {result.plan.target.revision}: "
                   f"new revision {new.revision}, {new.status} ({result.seconds:.1f}s)")
    click.get_current_context().exit(0 if result.ok else 1)
