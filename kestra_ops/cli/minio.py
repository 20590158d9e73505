"""kestra-ops minio setup / check."""

from __future__ import annotations

import click

from kestra_ops.cli.common import (confirm, emit, env_option, output_option, pass_state,
                                    progress_for, quiet_option)
from kestra_ops.cli.common import kube_options


@click.group("minio")
def minio() -> None:
    """The environment's bucket on the shared MinIO (or any S3 store): setup and check."""


@minio.command("setup")
@env_option()
@kube_options()
@click.option("--show-secret", is_flag=True,
              help="Print the new key on stdout instead of writing it to the Secret (a new "
                   "key is created on every such run).")
@click.option("--yes", "-y", is_flag=True, help="Create the key and write the Secret without "
              "asking.")
@output_option()
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
    Each may instead name a file holding it (KESTRA_OPS_MINIO_ROOT_USER_FILE, ..._PASSWORD_FILE).
    The new secret key is printed only with --show-secret. Creating a key needs --yes when
    stdin is not a terminal. Exit 0 when done (warnings allowed), 1 when a step fails or is
    declined (the admin API refusing the root credentials, a 5xx, no answer), 2 for bad
    configuration, missing root credentials, or no --yes without a terminal.
    """
    from kestra_ops.workflows.storage.minio_setup import setup_minio

    def ask(what: str) -> bool:
        return confirm(yes, f"{what[0].upper()}{what[1:]}?", what)

    emit(setup_minio(state.environment(env), show_secret=show_secret, confirm=ask,
                     progress=progress_for(output, quiet)), output, quiet=quiet)


@minio.command("check")
@env_option()
@output_option()
@quiet_option()
@pass_state
def check_cmd(state, env: str, output: str, quiet: bool):
    """Check ENV's object storage: health plus a write/read/delete probe of a unique object.

    Credentials: Kestra's bucket-scoped key, KESTRA_OPS_MINIO_ACCESS_KEY /
    KESTRA_OPS_MINIO_SECRET_KEY. Exit 0 when the probe passes (a non-MinIO store without health
    endpoints is a warning), 1 otherwise, 2 for bad configuration.
    """
    from kestra_ops.workflows.storage.minio_setup import check_minio

    emit(check_minio(state.environment(env), progress=progress_for(output, quiet)), output,
         quiet=quiet)
