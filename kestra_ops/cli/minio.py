"""kestra-ops minio setup / check."""

from __future__ import annotations

import json
import sys

import click

from kestra_ops.cli.common import ask, env_option, output_option, pass_state, quiet_option

MARK = {"pass": "ok", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


@click.group("minio")
def minio() -> None:
    """The environment's bucket on the shared MinIO (or any S3 store): setup and check."""


@minio.command("setup")
@env_option()
@click.option("--show-secret", is_flag=True,
              help="Print the new key on stdout instead of writing it to the Secret (a new "
                   "key is created on every such run).")
@click.option("--yes", "-y", is_flag=True, help="Create the key and write the Secret without "
              "asking.")
@output_option("text", "json")
@quiet_option()
@pass_state
def setup_cmd(state, env: str, show_secret: bool, yes: bool, output: str, quiet: bool):
    """Create ENV's bucket and a bucket-scoped key, idempotently.

    \b
    - health: /minio/health/live and /ready (404, or another S3 store's 4xx/501 for both: not
      MinIO, a warning);
    - the bucket (minio.bucket, default kestra-ENV), created with the plain S3 API if missing;
    - versioning and lifecycle when set in kestra-ops.yaml (minio.versioning: true|false,
      minio.lifecycle_days: N = noncurrent versions and unfinished uploads expire after N days);
    - a least-privilege policy (objects and multipart on that bucket only) and a service account
      with it, through MinIO's admin API; when the server has none (it answers 404, 405, 501 or
      an S3 NotImplemented-like error), the policy is printed, nothing is written, and the step
      is a warning: apply the policy, create a key with it, store it with `secrets apply`;
    - the new key into the Secret existingSecrets.minio (name and keys from ENV's values); a
      Secret already holding a live service account is left unchanged, one holding the root
      key is replaced (without an admin API: reported, exit 1).

    \b
    Root credentials: KESTRA_OPS_MINIO_ROOT_USER / KESTRA_OPS_MINIO_ROOT_PASSWORD (MinIO's
    MINIO_ROOT_USER / MINIO_ROOT_PASSWORD), never printed, never written to a Secret.
    KESTRA_OPS_MINIO_ACCESS_KEY / _SECRET_KEY are Kestra's bucket-scoped key, not used here.
    The new secret key is printed only with --show-secret. Exit 0 when done (warnings
    allowed), 1 when a step fails or is declined (the admin API refusing the root
    credentials, a 5xx, no answer), 2 for bad configuration or missing root credentials.
    """
    from kestra_ops.errors import InvalidInput
    from kestra_ops.output.progress import Progress
    from kestra_ops.workflows.minio_setup import setup_minio

    environment = state.environment(env)

    def confirm(what: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise InvalidInput(f"not on a terminal: pass --yes to {what}; the bucket steps "
                               "are done, no key was created")
        return ask(f"{what[0].upper()}{what[1:]}?")

    result = setup_minio(environment, show_secret=show_secret, confirm=confirm,
                         progress=Progress(quiet=quiet or output == "json"))
    _show(result, "setup", output=output, quiet=quiet)
    click.get_current_context().exit(result.exit_code)


@minio.command("check")
@env_option()
@output_option("text", "json")
@quiet_option()
@pass_state
def check_cmd(state, env: str, output: str, quiet: bool):
    """Check ENV's object storage: health plus a write/read/delete probe of a unique object.

    Credentials: Kestra's bucket-scoped key, KESTRA_OPS_MINIO_ACCESS_KEY /
    KESTRA_OPS_MINIO_SECRET_KEY. Exit 0 when the probe passes (a non-MinIO store without health
    endpoints is a warning), 1 otherwise, 2 for bad configuration.
    """
    from kestra_ops.workflows.minio_setup import check_minio

    result = check_minio(state.environment(env))
    _show(result, "check", output=output, quiet=quiet)
    click.get_current_context().exit(result.exit_code)


def _show(result, what: str, *, output: str, quiet: bool) -> None:
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    for step in result.steps:
        if quiet and step.status == "pass":
            continue
        click.echo(f"  {MARK[step.status]:4}  {step.name:10}  {step.detail}")
    if result.policy is not None:
        click.echo(f"policy {result.policy_name} (apply it by hand):")
        click.echo(json.dumps(result.policy, indent=2))
    if result.credentials is not None:
        click.echo(f"access key: {result.credentials['access_key']}")
        click.echo(f"secret key: {result.credentials['secret_key']}")
    click.echo(f"minio {what} {result.env} ({result.endpoint}, bucket {result.bucket}): "
               f"{'ok' if result.ok else 'FAILED'}")
