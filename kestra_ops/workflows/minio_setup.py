"""minio setup / minio check: the environment's bucket, its options and a bucket-scoped key.

Bucket work uses the plain S3 API (any S3 store). MinIO's admin API (policies, service accounts)
is optional: when the server has none (404/405/501, another S3 store) the least-privilege policy
is returned for the operator to apply by hand, and the key step is skipped with a warning
(:mod:`kestra_ops.workflows.minio_key`). ``minio setup`` signs with MinIO's root credentials,
KESTRA_OPS_MINIO_ROOT_USER / _PASSWORD (never shown, never written to a Secret); ``minio check``
with Kestra's bucket-scoped key, KESTRA_OPS_MINIO_ACCESS_KEY / _SECRET_KEY. The new key is
written to the env's Secret (existingSecrets.minio, through the write path of
:mod:`kestra_ops.workflows.secrets`), or returned for printing with ``show_secret``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Callable, Mapping

from kestra_ops.errors import ConfigError, KestraOpsError, Unreachable
from kestra_ops.settings import Environment

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
HEALTH = ("/minio/health/live", "/minio/health/ready")
LIFECYCLE_RULE = "kestra-ops-noncurrent"
PROBE_PREFIX = "kestra-ops-probe/"


@dataclass
class Step:
    name: str
    status: str  # pass | warn | fail | skip
    detail: str

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass
class MinioResult:
    env: str
    endpoint: str
    bucket: str
    steps: list[Step] = field(default_factory=list)
    policy_name: str | None = None
    policy: dict | None = None  # set when the admin API was not available (apply it by hand)
    credentials: dict | None = field(default=None, repr=False)  # only with show_secret

    @property
    def ok(self) -> bool:
        return all(s.status != FAIL for s in self.steps)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def add(self, name: str, status: str, detail: str) -> Step:
        step = Step(name, status, detail)
        self.steps.append(step)
        return step

    def to_dict(self) -> dict:
        out = {"env": self.env, "endpoint": self.endpoint, "bucket": self.bucket, "ok": self.ok,
               "steps": [s.to_dict() for s in self.steps], "policy_name": self.policy_name,
               "policy": self.policy}
        if self.credentials is not None:
            out["credentials"] = dict(self.credentials)
        return out


def bucket_policy(bucket: str) -> dict:
    """Least privilege for Kestra's storage on one bucket: objects and multipart, nothing else."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow",
         "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
         "Resource": [f"arn:aws:s3:::{bucket}"]},
        {"Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                    "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
         "Resource": [f"arn:aws:s3:::{bucket}/*"]}]}


def _storage(env: Environment, environ: Mapping[str, str] | None, *, root: bool = False):
    from kestra_ops.adapters.storage import for_env

    storage, why = for_env(env, environ=environ, root=root)
    if storage is None:
        raise ConfigError(f"minio {'setup' if root else 'check'} for {env.name}: {why}; "
                          "nothing was changed")
    return storage


def _not_minio(answer) -> bool:
    """An answer from a store without MinIO's health endpoints: 404, or another server's 4xx/501
    (SeaweedFS takes /minio/health/live for an object and answers 403 AccessDenied)."""
    return answer.status == 404 or (answer.status in (400, 403, 405, 501)
                                    and not answer.from_minio)


def check_health(storage, result: MinioResult) -> None:
    """live and ready: 200 pass; "not there" from both = not MinIO (warn); anything else
    (503, a 5xx, MinIO refusing) fails."""
    answers = {path: storage.health(path) for path in HEALTH}
    if all(a.status == 200 for a in answers.values()):
        result.add("health", PASS, f"{storage.url} is live and ready")
    elif all(_not_minio(a) for a in answers.values()):
        a = answers[HEALTH[0]]
        server = f" from {a.server}" if a.server else ""
        result.add("health", WARN, f"not MinIO, health endpoints unavailable at {storage.url} "
                   f"(HTTP {a.status}{f' {a.code}' if a.code else ''}{server}); continuing "
                   "with the plain S3 API")
    else:
        result.add("health", FAIL, "; ".join(f"{p} answered HTTP {a.status}"
                                             for p, a in answers.items() if a.status != 200))


# --------------------------------------------------------------------------- bucket

def ensure_bucket(storage, env: Environment, result: MinioResult) -> None:
    bucket = result.bucket
    if storage.bucket_exists(bucket):
        result.add("bucket", PASS, f"{bucket} exists (unchanged)")
    else:
        storage.make_bucket(bucket)
        result.add("bucket", PASS, f"{bucket} created")
    if env.minio_versioning is not None:
        current = storage.get_versioning(bucket)
        wanted = "Enabled" if env.minio_versioning else "Suspended"
        if current == wanted or (current == "Off" and not env.minio_versioning):
            result.add("versioning", PASS, f"{current.lower()} (unchanged)")
        else:
            storage.set_versioning(bucket, env.minio_versioning)
            result.add("versioning", PASS, f"{current.lower()} -> {wanted.lower()}")
    if env.minio_lifecycle_days:
        _ensure_lifecycle(storage, bucket, env.minio_lifecycle_days, result)


def _ensure_lifecycle(storage, bucket: str, days: int, result: MinioResult) -> None:
    """One rule of ours (other rules kept): noncurrent versions and unfinished multipart
    uploads expire after ``days``. Current objects never expire (Kestra's data lives there)."""
    from minio.commonconfig import ENABLED, Filter
    from minio.lifecycleconfig import (AbortIncompleteMultipartUpload, LifecycleConfig,
                                       NoncurrentVersionExpiration, Rule)

    config = storage.get_lifecycle(bucket)
    rules = list(config.rules) if config else []
    ours = [r for r in rules if r.rule_id == LIFECYCLE_RULE]
    if ours and ours[0].noncurrent_version_expiration is not None and \
            ours[0].noncurrent_version_expiration.noncurrent_days == days:
        result.add("lifecycle", PASS, f"noncurrent versions expire after {days} days (unchanged)")
        return
    rule = Rule(ENABLED, rule_filter=Filter(prefix=""), rule_id=LIFECYCLE_RULE,
                noncurrent_version_expiration=NoncurrentVersionExpiration(noncurrent_days=days),
                abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(
                    days_after_initiation=days))
    storage.set_lifecycle(bucket, LifecycleConfig(
        [r for r in rules if r.rule_id != LIFECYCLE_RULE] + [rule]))
    result.add("lifecycle", PASS, f"noncurrent versions and unfinished uploads expire after "
               f"{days} days ({'updated' if ours else 'created'})")


# --------------------------------------------------------------------------- entry points

def setup_minio(env: Environment, *, environ: Mapping[str, str] | None = None, kube=None,
                show_secret: bool = False, confirm: Callable[[str], bool] | None = None,
                progress=None) -> MinioResult:
    """Idempotent: health, bucket (+ versioning, lifecycle), policy + key into the Secret.
    ConfigError (before anything is done) without the root credentials."""
    import os
    from contextlib import nullcontext

    from kestra_ops.adapters.storage import root_credentials
    from kestra_ops.workflows.minio_key import ensure_key

    environ = os.environ if environ is None else environ
    storage = _storage(env, environ, root=True)
    user, password, _ = root_credentials(environ)
    result = MinioResult(env.name, storage.url, env.minio_bucket)

    def step(name):
        return progress.step(name) if progress else nullcontext()

    with step("health"):
        check_health(storage, result)
    if not result.ok:
        return result
    with step(f"bucket {result.bucket}"):
        ensure_bucket(storage, env, result)
    owned = kube is None and not show_secret
    if owned:
        from kestra_ops.adapters.kube import connect

        kube = connect(env)
    try:
        with step("bucket-scoped access key"):
            ensure_key(storage, env, result, (user, password), kube=kube,
                       show_secret=show_secret, confirm=confirm)
    finally:
        if owned:
            kube.close()
    return result


def check_minio(env: Environment, *, environ: Mapping[str, str] | None = None) -> MinioResult:
    """Health plus a write/read/delete probe of a unique object in the env's bucket, with
    Kestra's bucket-scoped key (KESTRA_OPS_MINIO_ACCESS_KEY / _SECRET_KEY)."""
    storage = _storage(env, environ)
    result = MinioResult(env.name, storage.url, env.minio_bucket)
    try:
        check_health(storage, result)
    except Unreachable as err:
        result.add("health", FAIL, str(err))
        return result
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    payload = f"kestra-ops probe {key}".encode()
    where = f"s3://{result.bucket}/{key}"
    try:
        if not storage.bucket_exists(result.bucket):
            result.add("probe", FAIL, f"bucket {result.bucket} does not exist (create it with "
                       f"`kestra-ops minio setup --env {env.name}`)")
            return result
        storage.put_bytes(result.bucket, key, payload, "text/plain")
        try:
            if storage.get_bytes(result.bucket, key) != payload:
                result.add("probe", FAIL, f"{where}: read back different bytes")
                return result
        finally:
            storage.remove_object(result.bucket, key)
        if storage.stat_object(result.bucket, key) is not None:
            result.add("probe", FAIL, f"{where}: still there after delete")
            return result
    except KestraOpsError as err:
        result.add("probe", FAIL, str(err))
        return result
    result.add("probe", PASS, f"wrote, read back and deleted {where}")
    return result
