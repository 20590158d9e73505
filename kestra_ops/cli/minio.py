"""kestra-ops minio setup / check."""

from __future__ import annotations

import click

from kestra_ops.cli.common import (confirm, emit, env_option, insecure_warned, output_option,
                                    pass_state, progress_for, quiet_option,
                                    storage_environment, storage_insecure_option)
from kestra_ops.cli.common import kube_options


@click.group("minio")
def minio() -> None:
    """The environment's buckets on the shared MinIO (or any S3 store): setup, check, policy.

    Two buckets: Kestra's (minio.bucket, default kestra-ENV, Kestra's bucket-scoped key) and
    the backups' (backup.bucket, default kestra-ENV-backups, a key of its own).
    """


@minio.command("setup")
@env_option()
@kube_options()
@click.option("--show-secret", is_flag=True,
              help="Print the new key on stdout instead of writing it to the Secret (a new "
                   "key is created on every such run).")
@click.option("--yes", "-y", is_flag=True, help="Create the key and write the Secret without "
              "asking.")
@storage_insecure_option()
@output_option()
@quiet_option()
@pass_state
def setup_cmd(state, env: str, show_secret: bool, yes: bool, insecure: bool, output: str,
              quiet: bool):
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
      key is replaced (without an admin API: reported, exit 1);
    - the backup bucket (backup.bucket, default kestra-ENV-backups, on backup.endpoint or the
      same server): created with object lock where the server has it (it can only be turned
      on at creation; a server without it: a warning), versioning on, default retention
      GOVERNANCE for backup.lock_days (default 30) days. A bucket that exists without object
      lock is reported with the remedy. Its keys: see `minio policy`.

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

    emit(insecure_warned(setup_minio(storage_environment(state, env, insecure),
                                     show_secret=show_secret, confirm=ask,
                                     progress=progress_for(output, quiet)), insecure),
         output, quiet=quiet)


@minio.command("check")
@env_option()
@storage_insecure_option()
@output_option()
@quiet_option()
@pass_state
def check_cmd(state, env: str, insecure: bool, output: str, quiet: bool):
    """Check ENV's object storage: health plus a write/read/delete probe of a unique object.

    Credentials: Kestra's bucket-scoped key, KESTRA_OPS_MINIO_ACCESS_KEY /
    KESTRA_OPS_MINIO_SECRET_KEY. The backup bucket is checked read-only with the backup key
    (KESTRA_OPS_BACKUP_ACCESS_KEY / _SECRET_KEY): exists, versioning, object lock; a missing
    bucket or one without object lock is a warning. Exit 0 when the probe passes (a non-MinIO
    store without health endpoints is a warning), 1 otherwise, 2 for bad configuration.
    """
    from kestra_ops.workflows.storage.minio_setup import check_minio

    emit(insecure_warned(check_minio(storage_environment(state, env, insecure),
                                     progress=progress_for(output, quiet)), insecure),
         output, quiet=quiet)


@minio.command("policy")
@env_option()
@click.option("--role", type=click.Choice(["kestra", "backup-writer", "backup-operator"]),
              default="backup-writer", show_default=True,
              help="Whose key the policy is for.")
@pass_state
def policy_cmd(state, env: str, role: str):
    """Print the S3 policy (JSON) for one of ENV's keys, to attach to a key by hand.

    \b
    - kestra: Kestra's key, objects and multipart on minio.bucket only;
    - backup-writer: the backup CronJob's key (backup.existingSecret): put, read, list and
      abort its own multipart uploads on backup.bucket; no s3:DeleteObject, no
      s3:BypassGovernanceRetention, no bucket settings;
    - backup-operator: the operator's key for `backup prune` / `migrate-location`: the
      writer's plus s3:DeleteObject (a version under governance retention still stays).

    \b
    With MinIO: mc admin policy create ALIAS NAME policy.json, then a key with it
    (mc admin user svcacct add --policy policy.json ALIAS USER). Nothing is changed here.
    """
    import json

    from kestra_ops.workflows.storage.backup_bucket import policy_for

    name, policy = policy_for(state.environment(env), role)
    click.echo(json.dumps({"name": name, "policy": policy}, indent=2))
