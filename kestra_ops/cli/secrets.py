"""kestra-ops secrets apply."""

from __future__ import annotations

import json
import sys

import click

from kestra_ops.cli.common import ask, env_option, output_option, pass_state, quiet_option


@click.group("secrets")
def secrets() -> None:
    """The Kubernetes Secrets the chart reads (existingSecrets in values)."""


@secrets.command("apply")
@env_option()
@click.option("--yes", "-y", is_flag=True, help="Write without asking.")
@click.option("--dry-run", is_flag=True, help="Show what would be created or updated; write "
              "nothing.")
@output_option("text", "json")
@quiet_option()
@pass_state
def apply_cmd(state, env: str, yes: bool, dry_run: bool, output: str, quiet: bool):
    """Create or update the Secrets the chart references, from variables or a prompt.

    \b
    Secret names and keys come from existingSecrets in ENV's merged values; the values from:
      KESTRA_OPS_DB_PASSWORD          database password
      KESTRA_OPS_MINIO_ACCESS_KEY     MinIO access key (the bucket-scoped key)
      KESTRA_OPS_MINIO_SECRET_KEY     MinIO secret key (of that key, never the root's)
      KESTRA_OPS_BASIC_AUTH_PASSWORD  basic-auth password (8+ chars, upper, lower, digit)
      KESTRA_OPS_ENCRYPTION_KEY       base64 of 32 bytes (openssl rand -base64 32)
    On a terminal, an unset variable is asked for without echo; otherwise it is an error.

    The basic-auth password and the basic-auth username in values (an e-mail) are checked
    before anything is written, and a MinIO root key is refused (exit 2): an access key equal to
    KESTRA_OPS_MINIO_ROOT_USER (or MINIO_ROOT_USER, or minioadmin), a secret key equal to the
    root password. Values are never printed: each key is reported as created,
    updated or unchanged (compared by hash). A Secret changed by someone else since it was read
    stops the run (exit 1) with nothing after it written. Exit 0 on success, 1 when a write
    fails or is declined, 2 for a missing or invalid value.
    """
    from kestra_ops.errors import InvalidInput
    from kestra_ops.output.progress import Progress
    from kestra_ops.workflows.secrets import apply_secrets

    environment = state.environment(env)
    interactive = sys.stdin.isatty()

    def prompt(spec) -> str:
        return click.prompt(f"{spec.purpose} for Secret {spec.secret}, key {spec.key} "
                            f"({spec.variable})", hide_input=True, confirmation_prompt=True,
                            err=True)

    def confirm(result) -> bool:
        if yes:
            return True
        if not interactive:
            raise InvalidInput("not on a terminal: pass --yes to write the Secrets (or "
                               "--dry-run to only show the plan); nothing was written")
        _show(result, output="text", quiet=False, err=True)
        return ask("Write these Secrets?")

    result = apply_secrets(environment, prompt=prompt if interactive else None,
                           dry_run=dry_run, confirm=confirm,
                           progress=Progress(quiet=quiet or output == "json"))
    _show(result, output=output, quiet=quiet)


def _show(result, *, output: str, quiet: bool, err: bool = False) -> None:
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2), err=err)
        return
    width = max((len(s.name) for s in result.secrets), default=0)
    if not quiet:
        for change in result.secrets:
            action = change.action
            if result.dry_run and action != "unchanged":
                action = f"would {action}"
            keys = ", ".join(f"{k}: {v}" for k, v in change.keys.items())
            click.echo(f"  {action:14} {change.name:{width}}  {keys}", err=err)
    counts = {a: sum(1 for s in result.secrets if s.action == a)
              for a in ("create", "update", "unchanged")}
    summary = f"{counts['create']} to create, {counts['update']} to update, " \
              f"{counts['unchanged']} unchanged"
    if err:
        return
    if result.dry_run:
        summary += " (dry run: nothing written)"
    elif result.changes:
        summary = f"{counts['create']} created, {counts['update']} updated, " \
                  f"{counts['unchanged']} unchanged"
    click.echo(f"secrets apply {result.env} (namespace {result.namespace}): {summary}")
