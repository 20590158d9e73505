"""kestra-ops lock status and kestra-ops lock break."""

from __future__ import annotations

import click

from kestra_ops.cli.common import confirm, emit, env_option, output_option, pass_state
from kestra_ops.cli.common import kube_options


@click.group("lock")
def lock() -> None:
    """The deploy lock of ENV (Lease kestra-ops-deploy): show it, break one left by a dead process.

    deploy, release and rollback take the lock (Lease `kestra-ops-deploy` in the env's
    namespace) so that two changes never overlap. Its holder renews it every 20 s while it
    runs; a holder that stopped renewing (killed, crashed, cut off by an API outage) leaves a
    stale lock, which the next deploy, release or rollback takes over once it expires (60 s).
    `lock break` removes one now.
    """


@lock.command("status")
@env_option()
@kube_options()
@output_option()
@pass_state
def status_cmd(state, env: str, output: str) -> None:
    """Show ENV's deploy lock: free, held (by whom, where, since when) or stale.

    Read-only. For a held lock: holder (user@host:pid), operation (deploy, release,
    rollback), host (and, on the holder's own host, whether its process still runs), when it
    was acquired and last renewed, and when it expires unless renewed. Stale: the holder has
    not renewed it within its duration (at most 60 s), so it stopped: `kestra-ops lock break`
    removes it, and the next deploy, release or rollback takes it over once it expires. Times
    are the API server's.

    Exit 0 free, or held by a holder that renews it; 1 stale, or the holder's process is gone
    (on this host), or the API server could not be read; 2 unknown environment; 130
    interrupted.
    """
    from kestra_ops.workflows.deploy.lock_admin import status_report

    emit(status_report(state.environment(env)), output)


@lock.command("break")
@env_option()
@kube_options()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True,
              help="Break the lock even though its holder still renews it (a hung process, or "
                   "one you know is gone). Without it, only a stale lock is broken.")
@output_option()
@pass_state
def break_cmd(state, env: str, yes: bool, force: bool, output: str) -> None:
    """Remove ENV's deploy lock left by a process that stopped renewing it.

    Shows the holder (user@host:pid), operation, host and age, then asks (unless --yes;
    without a terminal to answer and without --yes: exit 2, nothing changed). A lock still
    being renewed belongs to a running deploy, release or rollback: it is refused unless
    --force. The delete is conditional on the Lease being exactly the one shown (its
    resourceVersion), so a lock renewed or taken by someone else meanwhile is never deleted.
    The break is logged in backups/changes.jsonl (holder, operation, ages).

    Exit 0 broken, or nothing to break (the lock is free); 1 refused (holder alive without
    --force, declined, the lock changed since it was shown) or the API server failed; 2 no
    terminal to confirm on and no --yes, or unknown environment; 130 interrupted.
    """
    from kestra_ops.workflows.deploy.lock_admin import break_report

    def ask(status) -> bool:
        if not yes:
            click.echo(status.text(), err=True)
        return confirm(yes, f"break the deploy lock of {env} held by {status.lease.holder}?",
                       f"break the deploy lock of {env}")

    emit(break_report(state.environment(env), force=force, confirm=ask), output)
