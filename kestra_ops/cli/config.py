"""kestra-ops config patch | backups | restore."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from kestra_ops.cli.common import ask, color, env_option, output_option, pass_state, quiet_option


class Duration(click.ParamType):
    """30s, 5m, 1h or PT5M -> seconds."""

    name = "DURATION"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        from kestra_ops.values.rules_platform import parse_duration

        seconds = parse_duration(str(value))
        if seconds is None or seconds <= 0:
            self.fail(f"{value!r} is not a duration (30s, 5m, 1h)", param, ctx)
        return seconds


def timeout_option():
    return click.option("--timeout", type=Duration(), default="5m", show_default=True,
                        help="How long to wait for the rollout.")


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
@output_option("text", "json")
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
    """
    from kestra_ops.workflows.configmap import helm_warning, patch_config
    from kestra_ops.workflows.configmap_doc import Patch

    if not sets and patch_file is None:
        raise click.UsageError("give --set KEY=VALUE or --file PATCH.yaml")
    environment = state.environment(env)
    click.echo(f"warning: {helm_warning(environment, persist)}", err=True)
    uploader = _uploader(environment, quiet)
    result = _run(lambda progress: patch_config(
        environment, Patch(patch_file, sets), confirm=_confirm(yes, quiet, output),
        restart=not no_restart, persist_values=persist, timeout=timeout, progress=progress,
        uploader=uploader), output, quiet)
    _show(result, output)


@config.command("restore")
@env_option()
@click.argument("backup", metavar="BACKUP")
@yes_option()
@no_restart_option()
@timeout_option()
@output_option("text", "json")
@quiet_option()
@pass_state
def restore_cmd(state, env: str, backup: str, yes: bool, no_restart: bool, timeout: float,
                output: str, quiet: bool):
    """Put a backup's data back into ConfigMap kestra-config and restart Kestra.

    BACKUP is a path or a file name in backups/configmap/ (see `config backups`). The live
    ConfigMap is backed up first; the write is refused if it changes meanwhile; a failed
    rollout puts the live data back (exit 1).
    """
    from kestra_ops.workflows.configmap import restore_config

    environment = state.environment(env)
    click.echo(f"warning: {_restore_warning()}", err=True)
    uploader = _uploader(environment, quiet)
    result = _run(lambda progress: restore_config(
        environment, backup, confirm=_confirm(yes, quiet, output), restart=not no_restart,
        timeout=timeout, progress=progress, uploader=uploader), output, quiet)
    _show(result, output)


@config.command("backups")
@env_option()
@output_option("table", "json", default="table")
@pass_state
def backups_cmd(state, env: str, output: str):
    """List the local backups of ConfigMap kestra-config, newest first."""
    from kestra_ops.workflows.configmap import list_backups

    environment = state.environment(env)
    found = list_backups(environment)
    if output == "json":
        click.echo(json.dumps([b.to_dict(environment.root) for b in found], indent=2))
        return
    if not found:
        click.echo(f"no backups in {environment.root / 'backups' / 'configmap'}", err=True)
        return
    width = max(len(b.name) for b in found)
    click.echo(f"{'NAME':{width}}  {'TIME (UTC)':20}  {'SIZE':>8}  RESOURCEVERSION")
    for b in found:
        click.echo(f"{b.name:{width}}  {b.taken.strftime('%Y-%m-%d %H:%M:%S'):20}  "
                   f"{_size(b.size):>8}  {b.resource_version or '-'}")


# --------------------------------------------------------------------------- helpers


def _restore_warning() -> str:
    return ("Helm owns configmap kestra-config: a restore is an out-of-band change too; the "
            "next `kestra-ops deploy` renders it from the values again")


def _confirm(yes: bool, quiet: bool, output: str):
    def confirm(diff: str) -> bool:
        if not (yes and quiet):
            click.echo(diff, nl=False, err=output == "json")
        if yes:
            return True
        if not sys.stdin.isatty():
            from kestra_ops.errors import Aborted

            raise Aborted("not confirmed: stdin is not a terminal and --yes was not given; "
                          "nothing was changed")
        return ask("apply this change?")

    return confirm


def _uploader(environment, quiet: bool):
    """Backups also go to the env's bucket when object storage is configured."""
    from kestra_ops.workflows.configmap_backups import storage_uploader

    uploader, why_not = storage_uploader(environment)
    if uploader is None and not quiet:
        click.echo(f"note: the backup stays local only: {why_not}", err=True)
    return uploader


def _run(action, output: str, quiet: bool):
    from kestra_ops.output.findings import render_text
    from kestra_ops.output.progress import Progress
    from kestra_ops.workflows.configmap_doc import PatchRefused

    try:
        return action(Progress(quiet=quiet))
    except PatchRefused as err:
        if output == "json":
            click.echo(json.dumps({"changed": False, "error": str(err),
                                   "findings": [f.to_dict() for f in err.report.findings]},
                                  indent=2))
        else:
            click.echo(render_text([err.report], color=color()), err=True)
        raise


def _show(result, output: str) -> None:
    from kestra_ops.output.findings import render_text

    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    if result.findings is not None and result.findings.findings:
        click.echo(render_text([result.findings], color=color()), err=True)
    if not result.changed:
        click.echo(f"configmap {result.configmap}: unchanged")
        return
    what = (f"restored configmap {result.configmap} from {result.restored_from}"
            if result.action == "restore" else f"patched configmap {result.configmap}")
    click.echo(f"{what} in {result.namespace}: {len(result.keys)} key(s) changed "
               f"(resourceVersion {result.resource_version_before} -> "
               f"{result.resource_version_after})")
    for key in result.keys:
        click.echo(f"  ~ {key}")
    click.echo(f"backup: {result.backup}" + (f" (copied to {result.uploaded})"
                                             if result.uploaded else ""))
    if result.restarted:
        click.echo(f"restarted deployment kestra-standalone: ready in "
                   f"{result.rollout_seconds:.1f}s")
    if result.persisted:
        click.echo(f"persisted to {result.persisted}")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
