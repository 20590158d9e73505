"""kestra-ops scale."""

from __future__ import annotations

import click

from kestra_ops.cli.common import (asker, check_duration, check_timeout_option, emit,
                                    env_option, helm_option, kestra_options, kube_options,
                                    output_option, pass_state, progress_for, quiet_option)


@click.command("scale")
@env_option()
@click.option("--mode", type=click.Choice(["distributed", "standalone"]),
              help="Kestra's mode: distributed (one Deployment per component) or standalone "
                   "(one server).")
@click.option("--workers", type=click.IntRange(1, 1000), metavar="N",
              help="Distributed workers: distributed.worker.replicas, or with the workers' "
                   "autoscaler enabled its floor (autoscaling.minReplicas).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True,
              help="Show the values change and validate it; write nothing, change nothing.")
@click.option("--timeout", default="10m", show_default=True, callback=check_duration,
              metavar="DURATION", help="How long helm waits for the upgrade (and a rollback).")
@check_timeout_option()
@click.option("--skip-backup", is_flag=True,
              help="Do not take the release's database backup set (the report says so).")
@click.option("--skip-bucket", is_flag=True, help="Do not check the MinIO bucket in preflight.")
@kube_options()
@kestra_options("Kestra and MinIO")
@helm_option()
@output_option()
@quiet_option()
@pass_state
def scale_cmd(state, env: str, mode: str | None, workers: int | None, yes: bool, dry_run: bool,
              timeout: str, check_timeout: str, skip_backup: bool, skip_bucket: bool,
              kestra_url: str | None, insecure: bool, helm: str | None, output: str,
              quiet: bool) -> None:
    """Scale ENV between standalone and distributed mode, or its workers: a guarded release.

    The change is written to ENV's overlay (its last values layer) as a line edit that keeps
    its comments: `mode`, and for --workers N `distributed.worker.replicas` (with the workers'
    autoscaler enabled: its floor `distributed.worker.autoscaling.minReplicas`; the autoscaler
    owns the count up to maxReplicas). --workers needs distributed mode. The masked diff is
    shown and the values after the change are validated as `values validate` does (an error
    blocks; nothing is written); --dry-run stops there.

    Then, under the deploy lock: Kestra's counts of flows, executions and triggers are read;
    the overlay is written (never over an edit made meanwhile); a guarded release runs (lint,
    diff, backup, helm upgrade --wait for every component's Deployment, the checklist, helm
    rollback on failure). A failed or interrupted release is rolled back and the overlay put
    back as it was (left alone, and said so, if someone edited it meanwhile). After a release
    that passed: the cluster must run the new mode's Deployments, ready, and none of the other
    mode's; and Kestra must count no fewer flows, executions and triggers than before.

    The database and the object storage are not touched by a mode change: every component
    uses the same ones the standalone server used. Running tasks: each old pod is given its
    terminationGracePeriodSeconds to finish them (runbooks/scale-out.md).

    The report is stored in backups/scale/ENV/UTC/report.json and scale/ENV/UTC.json in the
    bucket. Exit 0 scaled, nothing to change, or a dry run; 1 blocked by a values rule, the
    release failed (rolled back), fewer flows/executions/triggers after, or declined; 2
    invalid input (e.g. --workers on standalone, a symlinked overlay, no terminal to confirm on
    and no --yes); 130 interrupted (a moved release is rolled back, the overlay put back).
    """
    from kestra_ops.workflows.scale.run import scale

    emit(scale(state.environment(env), mode=mode, workers=workers, dry_run=dry_run,
               shared_with=state.config.overlay_shared_with(env),
               confirm=None if dry_run else asker(yes, f"scale {env}"), timeout=timeout,
               check_timeout=check_timeout, skip_backup=skip_backup,
               check_bucket=not skip_bucket, kestra_url=kestra_url, insecure=insecure,
               progress=progress_for(output, quiet), helm=helm), output, quiet=quiet)
