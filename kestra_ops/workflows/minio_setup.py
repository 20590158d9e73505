"""minio setup / minio check: the environment's bucket, its options and a bucket-scoped key.

Bucket work uses the plain S3 API (any S3 store). MinIO's admin API (policies, service accounts)
is optional: when the server has none (404, another S3 store) the least-privilege policy is
returned for the operator to apply by hand, and the key step is skipped with a warning.
Root/admin credentials come from KESTRA_OPS_MINIO_ACCESS_KEY / _SECRET_KEY and are never shown.
The new key is written to the env's Secret (existingSecrets.minio, through the write path of
:mod:`kestra_ops.workflows.secrets`), or returned for printing with ``show_secret``.
"""

from __future__ import annotations

import json
import secrets as _random
import uuid
from dataclasses import dataclass, field
from typing import Callable, Mapping

from kestra_ops.errors import (Aborted, ConfigError, KestraOpsError, NotFound,
                               OperationFailed, PermissionDenied, Unreachable)
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


def _storage(env: Environment, environ: Mapping[str, str] | None):
    from kestra_ops.adapters.storage import for_env

    storage, why = for_env(env, environ=environ)
    if storage is None:
        raise ConfigError(f"minio for {env.name}: {why}")
    return storage


def check_health(storage, result: MinioResult) -> None:
    """live and ready: 200 pass; 404 from both = not MinIO (warn); anything else fails."""
    codes = {path: storage.health(path) for path in HEALTH}
    if all(c == 404 for c in codes.values()):
        result.add("health", WARN, f"not MinIO, health endpoints unavailable at {storage.url} "
                   "(HTTP 404); continuing with the plain S3 API")
        return
    bad = {p: c for p, c in codes.items() if c != 200}
    if bad:
        result.add("health", FAIL, "; ".join(f"{p} answered HTTP {c}" for p, c in bad.items()))
    else:
        result.add("health", PASS, f"{storage.url} is live and ready")


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


# --------------------------------------------------------------------------- admin

class _Admin:
    """MinioAdmin with typed errors; ``available()`` tells a MinIO admin API from none."""

    def __init__(self, storage, access_key: str, secret_key: str):
        from minio import MinioAdmin
        from minio.credentials import StaticProvider

        self.url = storage.url
        self.admin = MinioAdmin(endpoint=storage.endpoint, secure=storage.secure,
                                credentials=StaticProvider(access_key, secret_key),
                                http_client=storage.http)

    def call(self, what: str, fn, *args, **kwargs):
        from minio.error import MinioAdminException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except MinioAdminException as err:
            code = getattr(err, "_code", "?")
            if code in ("401", "403"):
                raise PermissionDenied(f"MinIO admin {what} at {self.url}: HTTP {code} (are "
                                       "KESTRA_OPS_MINIO_* admin credentials?)") from None
            if code == "404":
                raise NotFound(f"MinIO admin {what} at {self.url}: HTTP 404") from None
            raise OperationFailed(f"MinIO admin {what} at {self.url}: HTTP {code}") from None
        except HTTPError as err:
            raise Unreachable(f"MinIO admin {what} at {self.url}: {type(err).__name__}") \
                from None

    def available(self) -> tuple[dict | None, str]:
        """(existing policies, "") or (None, why the admin API cannot be used)."""
        try:
            text = self.call("list policies", self.admin.policy_list)
        except (NotFound, OperationFailed) as err:
            return None, f"no MinIO admin API ({err})"
        try:
            return json.loads(text or "{}"), ""
        except ValueError:
            return None, f"no MinIO admin API at {self.url} (list policies is not JSON)"

    def account_exists(self, access_key: str) -> bool:
        try:
            self.call("service account info", self.admin.get_service_account, access_key)
        except NotFound:
            return False
        return True


def ensure_key(storage, env: Environment, result: MinioResult, environ: Mapping[str, str], *,
               kube=None, show_secret: bool = False,
               confirm: Callable[[str], bool] | None = None) -> None:
    """Policy + service account through the admin API, the key into the env's Secret."""
    from kestra_ops.adapters.storage import ACCESS_KEY_VAR, SECRET_KEY_VAR

    policy = bucket_policy(result.bucket)
    result.policy_name = f"kestra-{env.name}-bucket"
    admin = _Admin(storage, environ[ACCESS_KEY_VAR], environ[SECRET_KEY_VAR])
    existing, why = admin.available()
    if existing is None:
        result.policy = policy
        result.add("access-key", WARN, f"skipped: {why}; apply the policy below by hand "
                   "(mc admin policy create / an IAM policy) and put a key scoped by it in the "
                   "Secret with `kestra-ops secrets apply`")
        return
    if existing.get(result.policy_name) == policy:
        result.add("policy", PASS, f"{result.policy_name} (unchanged)")
    else:
        admin.call("add policy", admin.admin.policy_add, result.policy_name, policy=policy)
        result.add("policy", PASS, f"{result.policy_name} "
                   f"{'updated' if result.policy_name in existing else 'created'}")
    if show_secret:
        access, secret = _create_account(admin, env, policy)
        result.credentials = {"access_key": access, "secret_key": secret}
        result.add("access-key", PASS, f"service account created for {result.bucket} (shown "
                   "below, not written to the Secret)")
        return
    _key_into_secret(admin, env, result, policy, kube, confirm)


def _minio_specs(env: Environment):
    from kestra_ops.values.merge import load_layers
    from kestra_ops.workflows.secrets import secret_specs

    specs = [s for s in secret_specs(load_layers(env.values_paths).plain)
             if s.source.startswith("existingSecrets.minio.")]
    return sorted(specs, key=lambda s: s.variable)  # ACCESS_KEY, SECRET_KEY


def _key_into_secret(admin: _Admin, env: Environment, result: MinioResult, policy: dict,
                     kube, confirm) -> None:
    from kestra_ops.adapters.storage import ACCESS_KEY_VAR
    from kestra_ops.audit import log_change
    from kestra_ops.workflows.secrets import _check_write_permissions, _decode, _write, \
        plan_changes

    specs = _minio_specs(env)
    name = specs[0].secret
    access_spec = next(s for s in specs if s.variable == ACCESS_KEY_VAR)
    try:
        live = kube.call(f"secret {name}", kube.core.read_namespaced_secret, name, env.namespace)
        data = kube.api_client.sanitize_for_serialization(live).get("data") or {}
    except NotFound:
        data = {}
    current = (_decode(data.get(access_spec.key)) or b"").decode("utf-8", "replace")
    if current and admin.account_exists(current):
        result.add("access-key", PASS, f"Secret {name} holds a live service account "
                   "(unchanged)")
        return
    if confirm is not None and not confirm(f"create a service account for {result.bucket} and "
                                           f"write it to Secret {env.namespace}/{name}"):
        raise Aborted("declined: no service account created, no Secret written")
    probe = plan_changes(kube, env.namespace, specs, {s.variable: "x" for s in specs})
    _check_write_permissions(kube, env.namespace, probe)
    access, secret = _create_account(admin, env, policy)
    values = {s.variable: access if s.variable == ACCESS_KEY_VAR else secret for s in specs}
    try:
        for change in plan_changes(kube, env.namespace, specs, values):
            change.written_version = _write(kube, env.namespace, change)
            log_change(env.root, action=f"secret {change.action}", env=env.name,
                       target=f"secret {env.namespace}/{change.name}",
                       before=change.resource_version, after=change.written_version,
                       keys=dict(change.keys), reason="minio setup: new service account")
    except KestraOpsError:
        admin.call("delete service account", admin.admin.delete_service_account, access)
        raise
    result.add("access-key", PASS, f"service account created; written to Secret "
               f"{env.namespace}/{name} (keys {', '.join(s.key for s in specs)})")


def _create_account(admin: _Admin, env: Environment, policy: dict) -> tuple[str, str]:
    access = "kestra" + _random.token_hex(7)  # 20 characters: MinIO's access-key limit
    secret = _random.token_urlsafe(30)
    admin.call("add service account", admin.admin.add_service_account, access_key=access,
               secret_key=secret, name=f"kestra-{env.name}"[:32],
               description=f"kestra-ops: Kestra storage on bucket {env.minio_bucket}",
               policy=policy)
    return access, secret


# --------------------------------------------------------------------------- entry points

def setup_minio(env: Environment, *, environ: Mapping[str, str] | None = None, kube=None,
                show_secret: bool = False, confirm: Callable[[str], bool] | None = None,
                progress=None) -> MinioResult:
    """Idempotent: health, bucket (+ versioning, lifecycle), policy + key into the Secret."""
    import os
    from contextlib import nullcontext

    environ = os.environ if environ is None else environ
    storage = _storage(env, environ)
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
            ensure_key(storage, env, result, environ, kube=kube, show_secret=show_secret,
                       confirm=confirm)
    finally:
        if owned:
            kube.close()
    return result


def check_minio(env: Environment, *, environ: Mapping[str, str] | None = None) -> MinioResult:
    """Health plus a write/read/delete probe of a unique object in the env's bucket."""
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
