"""kestra-ops release."""

from __future__ import annotations

import click

from kestra_ops.cli.common import (check_duration, check_timeout_option, confirm_diff, emit,
                                    env_option, helm_option, kestra_options, output_option,
                                    pass_state, progress_for, quiet_option)
from kestra_ops.cli.common import kube_options


@click.command("release")
@env_option()
@kube_options()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation of the diff.")
@click.option("--timeout", default="10m", show_default=True, callback=check_duration,
              metavar="DURATION", help="How long helm waits for the upgrade.")
@check_timeout_option()
@click.option("--rollback-timeout", default=None, callback=check_duration, metavar="DURATION",
              help="How long helm waits for the rollback (default: --timeout).")
@click.option("--no-rollback", is_flag=True,
              help="When the checklist fails, leave the new revision in place.")
@click.option("--skip-backup", is_flag=True,
              help="Do not take the database backup set (the report says it was skipped).")
@click.option("--repair", is_flag=True,
              help="When the release is stuck in pending-*, roll it back first.")
@click.option("--skip-bucket", is_flag=True, help="Do not check the MinIO bucket in preflight.")
@kestra_options("Kestra and MinIO")
@helm_option()
@output_option()
@quiet_option()
@pass_state
def release_cmd(state, env: str, yes: bool, timeout: str, check_timeout: str,
                rollback_timeout: str | None, no_rollback: bool, skip_backup: bool,
                repair: bool, skip_bucket: bool, kestra_url: str | None, insecure: bool,
                helm: str | None, output: str, quiet: bool) -> None:
    """Release ENV: validate, diff, back up, deploy, check, roll back on failure, explain.

    In order, under one deploy lock (a Lease in the namespace, released however it ends):
    values validate and chart lint; preflight (a stuck release stops it unless --repair); the
    diff against the live release, confirmed unless --yes (no changes: exit 0); a pre-release
    backup in backups/releases/ENV/UTC/ (the live ConfigMap and the Helm values of the current
    revision, mode 0600) plus a database backup set when the env has object storage and a
    database (KESTRA_OPS_DATABASE_URL) configured; helm upgrade --install --wait; the full
    checklist with --wait (--check-timeout), the end-to-end test flow included. When the
    checklist fails: helm rollback to the revision live before (--rollback-timeout), the
    ConfigMap restored when it had changed outside Helm, the checklist again.

    The report lists every step with its timing, the revisions before/after and, on failure,
    the failing checklist items with their evidence (pods and reasons, Warning events, last
    log lines). It is written to backups/releases/ENV/UTC/report.json and, with object
    storage, to releases/ENV/UTC.json in the bucket.

    Without --yes the diff is shown and confirmed on the terminal; with no terminal to answer
    on, nothing changes (exit 2; the report says so).

    Exit 0 released or nothing to change; 1 a step failed, the release was rolled back, or
    the confirmation was declined; 2 invalid input, or no terminal to confirm on and no
    --yes; 130 interrupted (a release moved off its revision is rolled back to it, the lock
    released, the report says where it stopped).
    """
    from kestra_ops.workflows.release.run import release

    emit(release(state.environment(env), timeout=timeout, check_timeout=check_timeout,
                 rollback_timeout=rollback_timeout, rollback=not no_rollback,
                 skip_backup=skip_backup, repair=repair,
                 confirm=confirm_diff(yes, f"release these changes to {env}?",
                                      f"release to {env}"),
                 kestra_url=kestra_url, insecure=insecure, progress=progress_for(output, quiet),
                 helm=helm, check_bucket=not skip_bucket), output, quiet=quiet)
