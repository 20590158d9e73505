"""kestra-ops deploy."""

from __future__ import annotations

import click

from kestra_ops.cli.common import (check_duration, confirm_diff, emit, env_option, helm_option,
                                    output_option, pass_state, progress_for, quiet_option)
from kestra_ops.cli.common import kube_options


@click.command("deploy")
@env_option()
@kube_options()
@click.option("--dry-run", is_flag=True, help="Stop after the diff: change nothing.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Print the diff of every changed object (Secret values masked). Always "
                   "printed with --dry-run, and before the confirmation prompt.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 3 instead of 0 when there were changes (applied or, with --dry-run, "
                   "found).")
@click.option("--timeout", default="10m", show_default=True, callback=check_duration,
              metavar="DURATION", help="How long helm waits for the release to be ready.")
@click.option("--repair", is_flag=True,
              help="When the release is stuck in pending-*, roll it back to the last deployed "
                   "revision first (not with --dry-run).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--skip-bucket", is_flag=True, help="Do not check the MinIO bucket in preflight.")
@helm_option()
@output_option()
@quiet_option()
@pass_state
def deploy_cmd(state, env: str, dry_run: bool, show_diff: bool, detailed_exitcode: bool,
               timeout: str, repair: bool, yes: bool, skip_bucket: bool, helm: str | None,
               output: str, quiet: bool) -> None:
    """Deploy ENV: validate, preflight, diff, then helm upgrade --install --wait.

    In order: the merged values are validated (stop on any error); preflight checks the API
    server, namespace, every permission the chart needs, the bucket and the release (a
    release stuck in pending-* stops the deploy unless --repair); under the deploy lock (a
    Lease in the namespace, released on error and Ctrl-C) helm dependency update runs when
    the chart has dependencies, the render is diffed against the LIVE objects (a server-side
    dry-run apply per object, as `kubectl diff --server-side`), the change is confirmed
    (unless --yes), and `helm upgrade --install --wait` runs. Every change is logged in
    backups/changes.jsonl.

    Changes made outside Helm (`config patch` without --persist, `kubectl edit`) show in the
    diff with who made them and when; confirming (or --yes) reverts them and takes the fields
    back (Helm 4: --force-conflicts; Helm 3's three-way merge reverts them anyway). A release
    whose last revision failed is never "no changes": the deploy writes a new revision.

    When the upgrade fails, the evidence (pods, container reasons, Warning events, last log
    lines) is read while the failing pods still exist, then the release is rolled back to its
    last good revision. Ctrl-C stops helm and rolls back the same way; a second Ctrl-C leaves
    the release as it is (then: `kestra-ops rollback`).

    Without --yes the diff is shown and confirmed on the terminal; with no terminal to answer
    on, nothing changes (exit 2).

    Exit 0 deployed or nothing to change; 1 validation, preflight or the upgrade failed, or
    the confirmation was declined; 2 invalid input, or no terminal to confirm on and no
    --yes; 3 changes (with --detailed-exitcode: object changes, reverted drift, or a failed
    release to repair); 130 interrupted (the lock is released).
    """
    from kestra_ops.workflows.deploy.upgrade import deploy

    if dry_run and repair:  # a repair is a rollback: a dry run changes nothing
        raise click.UsageError("--repair rolls a stuck release back (a change): it cannot go "
                               "with --dry-run; run --dry-run alone to see the diff")
    result = deploy(state.environment(env), timeout=timeout, dry_run=dry_run, repair=repair,
                    confirm=confirm_diff(yes, f"deploy these changes to {env}?",
                                         f"deploy to {env}"),
                    progress=progress_for(output, quiet), helm=helm,
                    check_bucket=not skip_bucket)
    emit(result.to_report(detailed=detailed_exitcode, show_diff=show_diff), output, quiet=quiet)
