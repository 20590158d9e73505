"""minio setup's key step: a least-privilege policy and a service account through MinIO's admin
API, the new key into the env's Secret (existingSecrets.minio).

The admin API is optional. Its first call is a read-only GET (list policies): a store without
MinIO's admin API may take ``/minio/admin/v3/...`` for a bucket named ``minio`` and a PUT there
for an object upload (SeaweedFS creates the bucket). An answer meaning "not here" (HTTP 404, 405
or 501; a 4xx carrying an S3 code such as NotImplemented or NoSuchBucket; a 200 that is not a
JSON object) skips the key step: the policy is returned for the operator to apply by hand and
nothing is written. Anything else is a failure naming the endpoint: 401/403 (not the root
credentials) PermissionDenied, other answers OperationFailed, no answer Unreachable.

The root credentials (KESTRA_OPS_MINIO_ROOT_USER / _PASSWORD) only sign admin calls. The only key
ever written is a service account created here; a Secret found holding the root key is replaced
(with the admin API) or reported as a failure (without one).
"""

from __future__ import annotations

import json
import secrets as _random
from typing import Callable

from kestra_ops.errors import (Aborted, KestraOpsError, NotFound, OperationFailed,
                               PermissionDenied, Unreachable)
from kestra_ops.settings import Environment

PASS, WARN, FAIL = "pass", "warn", "fail"
ABSENT_STATUS = frozenset({404, 405, 501})
# S3 / MinIO error codes that mean "no such API here", whatever the 4xx status
ABSENT_CODES = frozenset({"NotImplemented", "XMinioNotImplemented", "XMinioAdminNotImplemented",
                          "MethodNotAllowed", "UnsupportedOperation", "NoSuchBucket",
                          "NoSuchKey", "InvalidBucketName"})


def answer_kind(status: int, code: str | None) -> str:
    """What an admin API error answer means: "absent", "denied" or "failed"."""
    if status in (401, 403):
        return "denied"
    if status in ABSENT_STATUS or (400 <= status < 500 and code in ABSENT_CODES):
        return "absent"
    return "failed"


class _Absent(OperationFailed):
    """The server has no MinIO admin API (only raised for the first, read-only call)."""


class Admin:
    """MinioAdmin with typed one-line errors (never the answer's body, never a credential)."""

    def __init__(self, storage, root_user: str, root_password: str):
        from minio import MinioAdmin
        from minio.credentials import StaticProvider

        self.url = storage.url
        self.admin = MinioAdmin(endpoint=storage.endpoint, secure=storage.secure,
                                credentials=StaticProvider(root_user, root_password),
                                http_client=storage.http)

    def call(self, what: str, fn, *args, probe: bool = False, **kwargs):
        from minio.error import MinioAdminException
        from urllib3.exceptions import HTTPError, ResponseError

        from kestra_ops.adapters.neterr import describe
        from kestra_ops.adapters.storage import error_code

        try:
            return fn(*args, **kwargs)
        except MinioAdminException as err:
            try:
                status = int(getattr(err, "_code", 0))
            except ValueError:
                status = 0
            code = error_code(getattr(err, "_body", None))
            answer = f"HTTP {status or '?'}{f' {code}' if code else ''}"
            where = f"MinIO admin {what} at {self.url}"
            kind = answer_kind(status, code)
            if probe and kind == "absent":
                raise _Absent(f"no MinIO admin API at {self.url} ({what}: {answer})") from None
            if kind == "denied":
                raise PermissionDenied(f"{where}: {answer} (are KESTRA_OPS_MINIO_ROOT_USER / "
                                       "KESTRA_OPS_MINIO_ROOT_PASSWORD the root credentials?)"
                                       ) from None
            if status == 404:
                raise NotFound(f"{where}: {answer}") from None
            raise OperationFailed(f"{where}: {answer}") from None
        except HTTPError as err:
            reason = getattr(err, "reason", None)
            cause = reason if isinstance(reason, BaseException) else err
            if isinstance(cause, ResponseError):  # 5xx answers, retried (the Storage's pool)
                raise OperationFailed(f"MinIO admin {what} at {self.url}: {cause}") from None
            raise Unreachable(f"MinIO admin {what} at {self.url}: {describe(err)}") from None

    def available(self) -> tuple[dict | None, str]:
        """(existing policies, "") or (None, why there is no admin API to use)."""
        try:
            text = self.call("list policies", self.admin.policy_list, probe=True)
        except _Absent as err:
            return None, str(err)
        try:
            policies = json.loads(text or "{}")
        except ValueError:
            policies = None
        if not isinstance(policies, dict):
            return None, f"no MinIO admin API at {self.url} (list policies is not a JSON object)"
        return policies, ""

    def account_exists(self, access_key: str) -> bool:
        try:
            self.call("service account info", self.admin.get_service_account, access_key)
        except NotFound:
            return False
        return True


def ensure_key(storage, env: Environment, result, root: tuple[str, str], *, kube=None,
               show_secret: bool = False,
               confirm: Callable[[str], bool] | None = None) -> None:
    """Policy + service account through the admin API, the key into the env's Secret."""
    from kestra_ops.workflows.minio_setup import bucket_policy

    policy = bucket_policy(result.bucket)
    result.policy_name = f"kestra-{env.name}-bucket"
    admin = Admin(storage, *root)
    existing, why = admin.available()
    if existing is None:
        result.policy = policy
        result.add("access-key", WARN, f"skipped, nothing written: {why}; apply the policy "
                   "below by hand (an IAM policy, or `mc admin policy create`), create a key "
                   "limited by it, and store that key with `kestra-ops secrets apply --env "
                   f"{env.name}` (KESTRA_OPS_MINIO_ACCESS_KEY / KESTRA_OPS_MINIO_SECRET_KEY; "
                   "never the root credentials)")
        if kube is not None:
            _flag_root_in_secret(env, result, root, kube)
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
    _key_into_secret(admin, env, result, policy, root, kube, confirm)


def _minio_specs(env: Environment):
    from kestra_ops.values.merge import load_layers
    from kestra_ops.workflows.secrets import secret_specs

    specs = [s for s in secret_specs(load_layers(env.values_paths).plain)
             if s.source.startswith("existingSecrets.minio.")]
    return sorted(specs, key=lambda s: s.variable)  # ACCESS_KEY, SECRET_KEY


def _live_key(kube, env: Environment, specs) -> tuple[str, str]:
    """(access key, secret key) in the env's Secret now ("" when absent)."""
    from kestra_ops.adapters.storage import ACCESS_KEY_VAR
    from kestra_ops.workflows.secrets import _decode

    name = specs[0].secret
    try:
        live = kube.call(f"secret {name}", kube.core.read_namespaced_secret, name, env.namespace)
        data = kube.api_client.sanitize_for_serialization(live).get("data") or {}
    except NotFound:
        data = {}
    found = {s.variable: (_decode(data.get(s.key)) or b"").decode("utf-8", "replace")
             for s in specs}
    secret_var = next(v for v in found if v != ACCESS_KEY_VAR)
    return found[ACCESS_KEY_VAR], found[secret_var]


def _holds_root(live: tuple[str, str], root: tuple[str, str]) -> bool:
    from kestra_ops.workflows.secrets import same_secret

    return same_secret(live[0], root[0]) or same_secret(live[1], root[1])


def _flag_root_in_secret(env: Environment, result, root: tuple[str, str], kube) -> None:
    """Without an admin API nothing is written; a Secret holding the root key still fails."""
    try:
        specs = _minio_specs(env)
        where = f"Secret {env.namespace}/{specs[0].secret}"
        live = _live_key(kube, env, specs)
    except KestraOpsError as err:
        result.add("secret", WARN, f"could not check the MinIO Secret for the root key: {err}")
        return
    if _holds_root(live, root):
        result.add("secret", FAIL, f"{where} holds the MinIO root credentials: replace them "
                   f"with a bucket-scoped key (`kestra-ops secrets apply --env {env.name}`)")


def _key_into_secret(admin: Admin, env: Environment, result, policy: dict,
                     root: tuple[str, str], kube, confirm) -> None:
    from kestra_ops.adapters.storage import ACCESS_KEY_VAR
    from kestra_ops.audit import log_change
    from kestra_ops.workflows.secrets import _check_write_permissions, _write, plan_changes

    specs = _minio_specs(env)
    name = specs[0].secret
    live = _live_key(kube, env, specs)
    replacing_root = _holds_root(live, root)
    if live[0] and not replacing_root and admin.account_exists(live[0]):
        result.add("access-key", PASS, f"Secret {name} holds a live service account "
                   "(unchanged)")
        return
    what = (f"replace the MinIO root key in Secret {env.namespace}/{name} with a new service "
            f"account for {result.bucket}" if replacing_root else
            f"create a service account for {result.bucket} and write it to Secret "
            f"{env.namespace}/{name}")
    if confirm is not None and not confirm(what):
        raise Aborted("declined: no service account created, no Secret written")
    probe = plan_changes(kube, env.namespace, specs, {s.variable: "x" for s in specs})
    _check_write_permissions(kube, env.namespace, probe)
    access, secret = _create_account(admin, env, policy)
    values = {s.variable: access if s.variable == ACCESS_KEY_VAR else secret for s in specs}
    try:
        if _holds_root((access, secret), root):  # never the root key, whatever happened
            raise OperationFailed("refusing to write the MinIO root key to Secret "
                                  f"{env.namespace}/{name}; nothing was written")
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
               f"{env.namespace}/{name} (keys {', '.join(s.key for s in specs)})"
               + ("; the root key it held is gone" if replacing_root else ""))


def _create_account(admin: Admin, env: Environment, policy: dict) -> tuple[str, str]:
    access = "kestra" + _random.token_hex(7)  # 20 characters: MinIO's access-key limit
    secret = _random.token_urlsafe(30)
    admin.call("add service account", admin.admin.add_service_account, access_key=access,
               secret_key=secret, name=f"kestra-{env.name}"[:32],
               description=f"kestra-ops: Kestra storage on bucket {env.minio_bucket}",
               policy=policy)
    return access, secret

