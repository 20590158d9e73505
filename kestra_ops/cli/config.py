"""kestra-ops config patch | backups | restore."""

from __future__ import annotations

from pathlib import Path

import click

from kestra_ops.cli.common import (confirm, duration_seconds, emit, env_option, output_option,
                                    pass_state, progress_for, quiet_option)
from kestra_ops.cli.common import kube_options


def timeout_option():
    return click.option("--timeout", default="5m", show_default=True, metavar="DURATION",
                        callback=duration_seconds,
                        help="How long to wait for the rollout (90s, 10m, 1h30m, PT5M).")


def no_restart_option():
    return click.option("--no-restart", is_flag=True,
                        help="Write the ConfigMap only; Kestra reads it at its next restart.")


def yes_option():
    return click.option("--yes", "-y", is_flag=True,
                        help="Do not ask for confirmation (required when stdin is not a "
                             "terminal).")


@click.group()
def config() -> None:
    """Patch ConfigMap kestra-config (the server's application.yml) with a backup first."""


@config.command("patch")
@env_option()
@kube_options()
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Set a key of application.yml (values --set syntax: "
                   "kestra.jdbc.cleaner.retention=14d; repeatable).")
@click.option("--file", "-f", "patch_file", type=click.Path(path_type=Path, dir_okay=False),
              metavar="PATCH.yaml", help="YAML patch merged with Helm's rules: maps merge, "
                                         "lists replace, null deletes (applied before --set).")
@yes_option()
@click.option("--persist", is_flag=True,
              help="Also write the change into the environment's last values layer, keeping "
                   "its comments, so the next deploy keeps it.")
@no_restart_option()
@timeout_option()
@output_option()
@quiet_option()
@pass_state
def patch_cmd(state, env: str, sets: tuple[str, ...], patch_file: Path | None, yes: bool,
              persist: bool, no_restart: bool, timeout: float, output: str, quiet: bool):
    """Change application.yml in ConfigMap kestra-config and restart Kestra.

    Checks the result with the same Kestra rules as `values validate` (a change that breaks
    one is refused), shows the diff with secrets masked and asks, backs up the live
    ConfigMap to backups/configmap/ (mode 0600; a copy goes to the env's bucket when object
    storage is configured and reachable, else a warning: the local file is the backup),
    writes it only if nobody changed it meanwhile, then restarts deployment
    kestra-standalone and waits until it is ready. If the rollout fails, the backup is put
    back automatically (exit 1).

    Helm owns this ConfigMap: without --persist the change is out-of-band (field manager
    kestra-ops). The next `kestra-ops deploy` / `release` shows it as changed outside Helm
    and, once confirmed, reverts it (Helm 4: with --force-conflicts; a plain `helm upgrade`
    on Helm 4 fails on the conflict). --persist also writes it into the values, so deploys
    keep it.

    It runs under the deploy lock (Lease kestra-ops-deploy, the one deploy, release and
    rollback take), from the read to the end of the rollout: while another change holds it,
    the patch is refused (exit 1) naming the holder, with nothing read or written.
    """
    from kestra_ops.workflows.configmap.patch import patch_config
    from kestra_ops.workflows.configmap.doc import Patch

    if not sets and patch_file is None:
        raise click.UsageError("give --set KEY=VALUE or --file PATCH.yaml")
    emit(patch_config(state.environment(env), Patch(patch_file, sets),
                      confirm=_confirm(yes, "patch configmap kestra-config"),
                      restart=not no_restart, persist_values=persist, timeout=timeout,
                      progress=progress_for(output, quiet), bucket_copy=True),
         output, quiet=quiet)


@config.command("restore")
@env_option()
@kube_options()
@click.argument("backup", metavar="BACKUP")
@yes_option()
@no_restart_option()
@timeout_option()
@output_option()
@quiet_option()
@pass_state
def restore_cmd(state, env: str, backup: str, yes: bool, no_restart: bool, timeout: float,
                output: str, quiet: bool):
    """Put a backup's data back into ConfigMap kestra-config and restart Kestra.

    BACKUP is a path or a file name in backups/configmap/ (see `config backups`). The live
    ConfigMap is backed up first; the write is refused if it changes meanwhile; a failed
    rollout puts the live data back (exit 1). Under the deploy lock, as `config patch`: a
    held lock refuses it (exit 1) naming the holder.
    """
    from kestra_ops.workflows.configmap.patch import restore_config

    emit(restore_config(state.environment(env), backup,
                        confirm=_confirm(yes, "restore configmap kestra-config"),
                        restart=not no_restart, timeout=timeout,
                        progress=progress_for(output, quiet), bucket_copy=True),
         output, quiet=quiet)


@config.command("backups")
@env_option()
@kube_options()
@output_option()
@pass_state
def backups_cmd(state, env: str, output: str):
    """List the local backups of ConfigMap kestra-config, newest first."""
    from kestra_ops.workflows.configmap.patch import list_backups

    emit(list_backups(state.environment(env)), output)


def _confirm(yes: bool, what: str):
    """Shown the masked diff (on stderr) before asking; --yes goes ahead."""
    def ask_change(diff: str) -> bool:
        if yes:
            return True
        click.echo(diff, nl=False, err=True)
        return confirm(False, "apply this change?", what)

    return ask_change
