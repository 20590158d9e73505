"""The backup bucket in ``minio setup`` and ``minio check`` (backup.bucket, default
``kestra-<env>-backups``, on backup.endpoint or the env's MinIO), and the policies its keys get.

setup (MinIO's root credentials), three steps, each created / unchanged / unsupported:

* ``backup-bucket``: created when missing, with object lock where the server has it (object
  lock can only be turned on at creation); a server refusing it gets a plain bucket;
* ``backup-versioning``: on (object lock turns it on by itself);
* ``backup-lock``: default retention GOVERNANCE, ``backup.lock_days`` days (default
  :data:`DEFAULT_LOCK_DAYS`). A server without object lock: a warning "object lock: not
  supported by <server>", not a failure. An existing bucket created without it: a warning with
  the remedy (a new bucket, then ``backup migrate-location``), since it cannot be added later.

check (the backup key, read-only: a probe object would stay locked for the retention): the
bucket exists, its versioning and object lock as far as the key may read them. A missing
bucket or one without object lock is a warning (Kestra's own storage is what check judges); no
backup configuration at all (no endpoint, half a key) is a failure.

Policies (``minio policy --role``): ``backup-writer`` (the CronJob: put, read, list, finish or
abort its own multipart uploads; no delete, no bypass of governance retention, no bucket
settings) and ``backup-operator`` (the operator's key for prune and migrate-location: the same
plus DeleteObject, still no bypass).
"""

from __future__ import annotations

from kestra_ops.adapters import storage_lock as lock
from kestra_ops.errors import KestraOpsError

DEFAULT_LOCK_DAYS = 30  # a month of undeletable versions: longer than any prune keeps dailies


def lock_days(env) -> int:
    return env.backup_lock_days or DEFAULT_LOCK_DAYS


def server_name(storage) -> str:
    """The server's name from its Server header ("MinIO", "SeaweedFS ..."), else its URL."""
    try:
        answer = storage.health("/")
    except KestraOpsError:
        return storage.url
    return answer.server.split(" ")[0] if answer.server else storage.url


def root_storage(env, main, user: str, password: str):
    """The backup endpoint signed with the same root credentials (``main`` when it is the same
    endpoint): a backup bucket on another server needs that server to accept them."""
    endpoint, secure, _bucket = env.backup_target
    if endpoint == env.minio_endpoint and secure == bool(env.minio_secure):
        return main
    from kestra_ops.adapters.storage import Storage
    from kestra_ops.storage_options import backup_options

    return Storage(endpoint, user, password, secure=secure, **backup_options(env))


def ensure_backup_bucket(storage, env, rec) -> None:
    """The three setup steps (see the module doc) into ``rec``."""
    bucket = env.backup_target[2]
    days = lock_days(env)
    data = rec.report.data
    data["backup_bucket"] = bucket
    created_locked = None
    with rec.step("backup-bucket") as step:
        if storage.bucket_exists(bucket):
            step.detail = f"{bucket} exists (unchanged)"
        else:
            created_locked = lock.make_locked_bucket(storage, bucket)
            if not created_locked:
                storage.make_bucket(bucket)
            step.detail = (f"{bucket} created" +
                           (" with object lock" if created_locked else " without object lock"))
    with rec.step("backup-versioning") as step:
        current = storage.get_versioning(bucket)
        if current == "Enabled":
            step.detail = "enabled" + (" (with object lock)" if created_locked else
                                       " (unchanged)")
        else:
            storage.set_versioning(bucket, True)
            step.detail = f"{current.lower()} -> enabled"
    with rec.step("backup-lock") as step:
        state = lock.lock_state(storage, bucket) if created_locked is not False else None
        if state is None:
            data["backup_lock"] = "unsupported"
            step.warn(f"object lock: not supported by {server_name(storage)}; versioning "
                      "keeps overwritten and deleted versions, but a key that may delete "
                      "can remove them")
        elif not state.enabled and created_locked:
            data["backup_lock"] = "absent"
            step.warn(f"{server_name(storage)} created {bucket} but did not turn object lock "
                      "on (it ignores the request): treat it as not supported")
        elif not state.enabled:
            data["backup_lock"] = "absent"
            step.warn(f"{bucket} was created without object lock, which cannot be added to "
                      "an existing bucket: to get it, set backup.bucket to a new name, run "
                      f"`kestra-ops minio setup --env {env.name}` and move the sets (copy "
                      "them, then check with `backup list`)")
        elif state.mode == "GOVERNANCE" and state.days == days:
            data["backup_lock"] = "governance"
            step.detail = f"governance, {days} days (unchanged)"
        else:
            before = (f"{state.mode.lower()}, {state.days} days" if state.mode and state.days
                      else "no default retention")
            lock.set_default_retention(storage, bucket, days)
            data["backup_lock"] = "governance"
            step.detail = (f"governance, {days} days" + (" (created)" if created_locked else
                                                         f" (was {before})"))


def check_backup_bucket(env, rec, *, environ=None) -> None:
    """``minio check``'s backup step (read-only) into ``rec``: exists, versioning, lock."""
    from kestra_ops.wiring import backup_storage_for_env

    storage, bucket, warning, why = backup_storage_for_env(env, environ=environ)
    rec.report.data["backup_bucket"] = bucket
    with rec.step("backup-bucket") as step:
        if storage is None:
            step.fail(f"{bucket}: {why}")
            return
        if warning:
            rec.report.warnings.append(warning)
        if not storage.bucket_exists(bucket):  # a warning: Kestra's storage itself is fine
            step.warn(f"{bucket} does not exist at {storage.url}: `backup run` will fail "
                      f"(create it with `kestra-ops minio setup --env {env.name}`)")
            return
        parts = [f"{bucket} exists at {storage.url}"]
        parts.append(_readable("versioning", lambda: storage.get_versioning(bucket).lower()))
        parts.append(_readable("object lock", lambda: _lock_words(storage, bucket)))
        step.detail = "; ".join(parts)
        if "object lock: none" in step.detail or "unsupported" in step.detail:
            step.warn(step.detail + " (the backups can be deleted with a key that may delete)")


def _lock_words(storage, bucket: str) -> str:
    state = lock.lock_state(storage, bucket)
    if state is None:
        return "unsupported"
    if not state.enabled:
        return "none"
    return (f"{state.mode.lower()}, {state.days} days" if state.mode and state.days
            else "on, no default retention")


def _readable(what: str, read) -> str:
    try:
        return f"{what}: {read()}"
    except KestraOpsError as err:
        return f"{what}: not readable with this key ({str(err).split(': ')[-1]})"


# --------------------------------------------------------------------------- policies

ROLES = ("kestra", "backup-writer", "backup-operator")


def writer_policy(bucket: str) -> dict:
    """The backup CronJob's key: write and read sets, never delete them."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow",
         "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
         "Resource": [f"arn:aws:s3:::{bucket}"]},
        {"Effect": "Allow",
         "Action": ["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts",
                    "s3:AbortMultipartUpload"],
         "Resource": [f"arn:aws:s3:::{bucket}/*"]}]}


def operator_policy(bucket: str) -> dict:
    """The operator's key for prune and migrate-location: the writer's plus delete (a version
    under governance retention still stays: no s3:BypassGovernanceRetention)."""
    policy = writer_policy(bucket)
    policy["Statement"][1]["Action"] = policy["Statement"][1]["Action"] + ["s3:DeleteObject"]
    return policy


def policy_for(env, role: str) -> tuple[str, dict]:
    """(policy name, policy document) of ``role`` for ``env``."""
    from kestra_ops.workflows.storage.minio_key import bucket_policy

    bucket = env.backup_target[2]
    if role == "kestra":
        return f"kestra-{env.name}-bucket", bucket_policy(env.minio_bucket)
    if role == "backup-writer":
        return f"kestra-{env.name}-backup-writer", writer_policy(bucket)
    return f"kestra-{env.name}-backup-operator", operator_policy(bucket)
