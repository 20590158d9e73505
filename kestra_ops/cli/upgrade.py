"""kestra-ops upgrade plan | run."""

from __future__ import annotations

from pathlib import Path

import click

from kestra_ops.cli.common import (asker as _asker, check_duration, check_timeout_option,
                                    emit, env_option, helm_option, kestra_options, kube_options,
                                    output_option, pass_state, progress_for, quiet_option)


@click.group()
def upgrade() -> None:
    """Kestra version upgrades along the version catalogue (kestra_ops/upgrades/catalogue.yaml).

    The catalogue holds, for the 1.3 patch line and the 2.0 line, the path from each source
    version, the migrations each step needs (automatic at start-up, or a `kestra migrate`
    command run as a Kubernetes Job), whether each step can be undone, the configuration keys,
    chart changes and flow syntax each version removes, and the source of every fact. Where
    the sources are unsure a step counts as irreversible.
    """


@upgrade.command("plan")
@env_option()
@click.option("--to", "to", required=True, metavar="VERSION",
              help="The target: a catalogued version (1.3.22, v2.0.8) or a line (2.0 = its "
                   "latest release).")
@click.option("--from", "from_version", metavar="VERSION",
              help="Plan offline from this version (no cluster, no Kestra).")
@click.option("--flows", "flows_dir", type=click.Path(path_type=Path), metavar="DIR",
              help="Check this flows directory against the target (default: the env's flows "
                   "exported from Kestra; offline: not checked).")
@kube_options()
@kestra_options()
@output_option()
@pass_state
def plan_cmd(state, env: str, to: str, from_version: str | None, flows_dir: Path | None,
             kestra_url: str | None, insecure: bool, output: str) -> None:
    """Plan the upgrade of ENV to VERSION; changes nothing.

    Reads the running version (Kestra's /api/v1/configs and the image tag of Deployment
    kestra-standalone; they must agree or the report says so), then prints the path step by
    step: what each step runs (automatic migrations at start-up, `kestra migrate` Jobs, whether
    Kestra is stopped first), which steps are IRREVERSIBLE and why, configuration keys, chart
    and behaviour changes, and the sources of each fact. Then the values change the next
    `upgrade run` writes (the diff of ENV's overlay: image.tag), the values keys the target
    removes (errors), and the flows the target breaks (flows validate --target-version on the
    flows exported from Kestra, or --flows DIR), each with file:line and the replacement.

    Exit 0 a path with nothing in the way (or already there); 1 flows or values the target
    refuses; 2 invalid input (an unknown target, one older than the running version).
    """
    from kestra_ops.workflows.upgrade.plan import plan_upgrade

    emit(plan_upgrade(state.environment(env), to, from_version=from_version,
                      flows_dir=flows_dir, kestra_url=kestra_url,
                      insecure=insecure,
                      shared_with=state.config.overlay_shared_with(env)).to_report(), output)


def _required(state, environment):
    name = environment.upgrade_requires
    return state.environment(name) if name else None


@upgrade.command("run")
@env_option()
@click.option("--to", "to", required=True, metavar="VERSION",
              help="The target: a catalogued version or a line (its latest release).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--take-backup", is_flag=True,
              help="For an irreversible step without a fresh verified backup set: take one "
                   "(the full backup run set), verify it, then go on.")
@click.option("--identity", type=click.Path(path_type=Path), metavar="FILE",
              help="age identity: verify also opens the set's sealed Secrets.")
@click.option("--timeout", default="10m", show_default=True, callback=check_duration,
              metavar="DURATION", help="How long helm waits (release, stop, restore).")
@check_timeout_option()
@kube_options()
@kestra_options("Kestra and MinIO")
@helm_option()
@output_option()
@quiet_option()
@pass_state
def run_cmd(state, env: str, to: str, yes: bool, take_backup: bool, identity: Path | None,
            timeout: str, check_timeout: str, kestra_url: str | None, insecure: bool,
            helm: str | None, output: str, quiet: bool) -> None:
    """Run the NEXT step of ENV's path to VERSION (one step per run; the report says what is
    left), under the deploy lock.

    An IRREVERSIBLE step (the catalogue says so, or its sources are unsure) is refused unless
    a complete backup set of ENV younger than upgrade.backup_max_age (default 60m) passes
    backup verify (--take-backup takes one), and unless the environment named by
    upgrade.requires (default: staging before production) runs the same version with a
    passing check in its release or upgrade reports. Manual migrations run as Kubernetes Jobs
    with the target image and ENV's own configuration and Secrets (their logs go into the
    report); an irreversible step stops Kestra first (no two versions on one database). Then
    the overlay's image.tag is set and a guarded release runs (lint, diff, upgrade, check).

    When it fails: a reversible step is rolled back by the release and the overlay put back;
    past an irreversible point, NOT helm rollback alone: the pre-upgrade backup set is restored
    (the failed database kept as a set first) and the previous version started, and the report
    says so. The report is stored in backups/upgrades/ENV/UTC/ and upgrades/ENV/ in the bucket.

    Exit 0 upgraded (or already there); 1 refused by a gate, a flow or values error, a failed
    Job, or a failure (rolled back or restored); 2 invalid input, or no terminal to confirm on
    and no --yes; 130 interrupted (past an irreversible point Kestra is left stopped and the
    report gives the `upgrade restore` command).
    """
    from kestra_ops.workflows.upgrade.run import upgrade_run

    environment = state.environment(env)
    emit(upgrade_run(environment, to, confirm=_asker(yes, f"upgrade {env}"),
                     take_backup=take_backup, identity=identity,
                     required=_required(state, environment), timeout=timeout,
                     check_timeout=check_timeout, kestra_url=kestra_url, insecure=insecure,
                     progress=progress_for(output, quiet), helm=helm,
                     shared_with=state.config.overlay_shared_with(env)), output, quiet=quiet)


@upgrade.command("restore")
@env_option()
@click.option("--set", "set_name", required=True, metavar="SET",
              help="The pre-upgrade backup set (the upgrade report names it).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--timeout", default="10m", show_default=True, callback=check_duration,
              metavar="DURATION", help="How long helm waits.")
@check_timeout_option()
@kube_options()
@kestra_options("Kestra and MinIO")
@helm_option()
@output_option()
@quiet_option()
@pass_state
def restore_cmd(state, env: str, set_name: str, yes: bool, timeout: str, check_timeout: str,
                kestra_url: str | None, insecure: bool, helm: str | None, output: str,
                quiet: bool) -> None:
    """Go back to the version ENV's values name, from the pre-upgrade backup SET, after an
    upgrade left Kestra stopped past an irreversible point (Ctrl-C, a failed restore).

    Under the deploy lock: Kestra stopped (0 replicas) with ENV's values; the current database
    kept as a backup set of its own; the database reset and restored from SET; Kestra started;
    the checklist. Exit 0 restored and the check passes; 1 the check still fails or a step
    failed; 2 invalid input or no terminal to confirm on and no --yes.
    """
    from kestra_ops.workflows.upgrade.recover import upgrade_restore

    emit(upgrade_restore(state.environment(env), set_name, timeout=timeout,
                         check_timeout=check_timeout, kestra_url=kestra_url, insecure=insecure,
                         progress=progress_for(output, quiet), helm=helm,
                         confirm=_asker(yes, f"restore {env}")), output, quiet=quiet)
