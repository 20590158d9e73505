"""kestra-ops secrets apply."""

from __future__ import annotations

import sys

import click

from kestra_ops.cli.common import (confirm, emit, env_option, output_option, pass_state,
                                    progress_for, quiet_option)
from kestra_ops.cli.common import kube_options


@click.group("secrets")
def secrets() -> None:
    """The Kubernetes Secrets the chart reads (existingSecrets in values)."""


@secrets.command("apply")
@env_option()
@kube_options()
@click.option("--yes", "-y", is_flag=True, help="Write without asking.")
@click.option("--dry-run", is_flag=True, help="Show what would be created or updated; write "
              "nothing.")
@output_option()
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
    Each variable may instead name a file holding the value: KESTRA_OPS_DB_PASSWORD_FILE and
    so on (a mounted secret; one trailing newline is dropped). On a terminal, an unset value is
    asked for without echo; otherwise it is an error. Without a terminal, --yes is required to
    write (exit 2, nothing written).

    The basic-auth password and the basic-auth username in values (an e-mail) are checked
    before anything is written, and a MinIO root key is refused (exit 2): an access key equal to
    KESTRA_OPS_MINIO_ROOT_USER (or MINIO_ROOT_USER, or minioadmin), a secret key equal to the
    root password. Values are never printed: each key is reported as created,
    updated or unchanged (compared by hash). A Secret changed by someone else since it was read
    stops the run (exit 1) with nothing after it written. Exit 0 on success, 1 when a write
    fails or is declined, 2 for a missing or invalid value or no --yes without a terminal.
    """
    from kestra_ops.output import render
    from kestra_ops.workflows.secrets import apply_secrets

    interactive = sys.stdin.isatty()

    def prompt(spec) -> str:
        return click.prompt(f"{spec.purpose} for Secret {spec.secret}, key {spec.key} "
                            f"({spec.variable})", hide_input=True, confirmation_prompt=True,
                            err=True)

    def ask_plan(plan) -> bool:
        if yes:
            return True
        if interactive:
            click.echo(render(plan, "text"), err=True)
        return confirm(False, "Write these Secrets?", "write the Secrets")

    emit(apply_secrets(state.environment(env), prompt=prompt if interactive else None,
                       dry_run=dry_run, confirm=ask_plan, progress=progress_for(output, quiet)),
         output, quiet=quiet)
