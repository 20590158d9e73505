"""kestra-ops backup prune (attached to the ``backup`` group as ``prune_cmd``)."""

from __future__ import annotations

import click

from kestra_ops.cli.common import (emit, env_option, output_option, pass_state, progress_for,
                                    quiet_option)


@click.command("prune")
@env_option()
@click.option("--keep-daily", type=click.IntRange(min=0), required=True, metavar="N",
              help="Keep the newest set of each of the N most recent days.")
@click.option("--keep-weekly", type=click.IntRange(min=0), required=True, metavar="N",
              help="Keep the newest set of each of the N most recent ISO weeks.")
@click.option("--keep-monthly", type=click.IntRange(min=0), required=True, metavar="N",
              help="Keep the newest set of each of the N most recent months.")
@click.option("--confirm", is_flag=True, help="Delete (without it: a dry run).")
@click.option("--legacy", is_flag=True, help="Prune the sets left in the old location "
              "(backups/ENV/ in Kestra's bucket, Kestra's key) instead of the backup bucket.")
@output_option()
@quiet_option()
@pass_state
def prune_cmd(state, env: str, keep_daily: int, keep_weekly: int, keep_monthly: int,
              confirm: bool, legacy: bool, output: str, quiet: bool):
    """Delete backup sets outside the retention (a dry run unless --confirm).

    \b
    Grandfather-father-son over complete sets (manifest.json with status complete):
    the newest set per day, ISO week and month, for the N most recent of each.
    - the newest complete set is never deleted;
    - when the newest set is incomplete or failed, nothing is deleted (exit 1);
    - incomplete sets older than a day are deleted (younger ones may still be running);
    - sets dated in the future (more than 5 min ahead) are ignored: never kept as the
      newest, never deleted.
    Only the backup bucket (backup.bucket) is pruned, with the backup key in
    KESTRA_OPS_BACKUP_ACCESS_KEY / _SECRET_KEY: the operator's, which may delete (the CronJob's
    may not); --legacy prunes the old location instead.
    Exit 0 when done (or planned), 1 when blocked or a deletion fails.
    """
    from kestra_ops.workflows.backup.prune import prune_backups

    emit(prune_backups(state.environment(env), keep_daily=keep_daily, keep_weekly=keep_weekly,
                       keep_monthly=keep_monthly, confirm=confirm, legacy=legacy,
                       progress=progress_for(output, quiet)), output, quiet=quiet)
