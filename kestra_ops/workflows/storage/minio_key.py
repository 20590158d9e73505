"""minio setup's key step: a least-privilege policy and a service account through MinIO's admin
API (:mod:`kestra_ops.adapters.storage_admin`), the new key into the env's Secret
(existingSecrets.minio, through the write path of :mod:`kestra_ops.workflows.secrets`).

The admin API is optional: a server without it (404, 405, 501, an S3 NotImplemented-like
error) skips the key step with a warning, the policy is returned for the operator to apply by
hand and nothing is written. Anything else is a failure naming the endpoint.

The root credentials only sign admin calls. The only key ever written is a service account
created here; a Secret found holding the root key is replaced (with the admin API) or reported as
a failure (without one).
"""

from __future__ import annotations

import secrets as _random
from typing import Callable

from kestra_ops import credentials as creds
from kestra_ops.adapters import kube_config
from kestra_ops.adapters.storage_admin import Admin
from kestra_ops.errors import Aborted, InvalidInput, KestraOpsError, OperationFailed
from kestra_ops.settings import Environment


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


def ensure_key(storage, env: Environment, rec, root: tuple[str, str], *, kube=None,
               show_secret: bool = False,
               confirm: Callable[[str], bool] | None = None) -> None:
    """Policy + service account through the admin API, the key into the env's Secret; steps
    recorded with ``rec`` (policy, access-key, secret), what to show in ``rec.report.data``."""
    data = rec.report.data
    bucket = data["bucket"]
    policy = bucket_policy(bucket)
    data["policy_name"] = name = f"kestra-{env.name}-bucket"
    admin = Admin(storage, *root)
    existing, why = admin.available()  # a read-only probe first
    if existing is None:
        data["policy"] = policy
        with rec.step("access-key") as step:
            step.warn(f"skipped, nothing written: {why}")
        rec.report.details.append(
            f"apply policy {name} (shown) by hand (an IAM policy, or `mc admin policy create`), "
            "create a key limited by it, and store that key with `kestra-ops secrets apply "
            f"--env {env.name}` (KESTRA_OPS_MINIO_ACCESS_KEY / KESTRA_OPS_MINIO_SECRET_KEY; "
            "never the root credentials)")
        if kube is not None:
            _flag_root_in_secret(env, rec, root, kube)
        return
    with rec.step("policy") as step:
        if existing.get(name) == policy:
            step.detail = f"{name} (unchanged)"
        else:
            admin.add_policy(name, policy)
            step.detail = f"{name} {'updated' if name in existing else 'created'}"
    if show_secret:
        with rec.step("access-key") as step:
            access, secret = _create_account(admin, env, policy)
            data["credentials"] = {"access_key": access, "secret_key": secret}
            step.detail = (f"service account created for {bucket} (shown below, not written to "
                           "the Secret)")
        return
    _key_into_secret(admin, env, rec, policy, root, kube, confirm)


def _minio_specs(env: Environment):
    from kestra_ops.values.merge import load_layers
    from kestra_ops.workflows.secrets import secret_specs

    specs = [s for s in secret_specs(load_layers(env.values_paths).plain)
             if s.source.startswith("existingSecrets.minio.")]
    return sorted(specs, key=lambda s: s.variable)  # ACCESS_KEY, SECRET_KEY


def _live_key(kube, env: Environment, specs) -> tuple[str, str]:
    """(access key, secret key) in the env's Secret now ("" when absent)."""
    body = kube_config.read_secret(kube, env.namespace, specs[0].secret) or {}
    data = body.get("data") or {}
    found = {s.variable: (kube_config.decode(data.get(s.key)) or b"").decode("utf-8", "replace")
             for s in specs}
    access_var = creds.MINIO_ACCESS_KEY.variable
    secret_var = next(v for v in found if v != access_var)
    return found[access_var], found[secret_var]


def _holds_root(live: tuple[str, str], root: tuple[str, str]) -> bool:
    return creds.same_secret(live[0], root[0]) or creds.same_secret(live[1], root[1])


def _flag_root_in_secret(env: Environment, rec, root: tuple[str, str], kube) -> None:
    """Without an admin API nothing is written; a Secret holding the root key still fails."""
    try:
        specs = _minio_specs(env)
        where = f"Secret {env.namespace}/{specs[0].secret}"
        live = _live_key(kube, env, specs)
    except KestraOpsError as err:
        with rec.step("secret") as step:
            step.warn(f"could not check the MinIO Secret for the root key: {err}")
        return
    if _holds_root(live, root):
        with rec.step("secret") as step:
            step.fail(f"{where} holds the MinIO root credentials: replace them with a "
                      f"bucket-scoped key (`kestra-ops secrets apply --env {env.name}`)")


def _key_into_secret(admin, env: Environment, rec, policy: dict, root: tuple[str, str], kube,
                     confirm) -> None:
    from kestra_ops.audit import log_change
    from kestra_ops.workflows.secrets import check_write_permissions, plan_changes, write_change

    bucket = rec.report.data["bucket"]
    specs = _minio_specs(env)
    name = specs[0].secret
    live = _live_key(kube, env, specs)
    replacing_root = _holds_root(live, root)
    if live[0] and not replacing_root and admin.account_exists(live[0]):
        with rec.step("access-key") as step:
            step.detail = f"Secret {name} holds a live service account (unchanged)"
        return
    what = (f"replace the MinIO root key in Secret {env.namespace}/{name} with a new service "
            f"account for {bucket}" if replacing_root else
            f"create a service account for {bucket} and write it to Secret "
            f"{env.namespace}/{name}")
    if confirm is not None and not _ask(confirm, what):
        raise Aborted("declined: no service account created, no Secret written")
    with rec.step("access-key") as step:
        probe = plan_changes(kube, env.namespace, specs, {s.variable: "x" for s in specs})
        check_write_permissions(kube, env.namespace, probe)
        access, secret = _create_account(admin, env, policy)
        access_var = creds.MINIO_ACCESS_KEY.variable
        values = {s.variable: access if s.variable == access_var else secret for s in specs}
        try:
            if _holds_root((access, secret), root):  # never the root key, whatever happened
                raise OperationFailed("refusing to write the MinIO root key to Secret "
                                      f"{env.namespace}/{name}; nothing was written")
            for change in plan_changes(kube, env.namespace, specs, values):
                change.written_version = write_change(kube, env.namespace, change)
                log_change(env.root, action=f"secret {change.action}", env=env.name,
                           target=f"secret {env.namespace}/{change.name}",
                           before=change.resource_version, after=change.written_version,
                           keys=dict(change.keys), reason="minio setup: new service account")
        except KestraOpsError:
            admin.delete_service_account(access)
            raise
        step.detail = (f"service account created; written to Secret {env.namespace}/{name} "
                       f"(keys {', '.join(s.key for s in specs)})"
                       + ("; the root key it held is gone" if replacing_root else ""))


def _ask(confirm, what: str) -> bool:
    """The confirm policy, saying truthfully what was already done when it refuses."""
    try:
        return confirm(what)
    except InvalidInput:
        raise InvalidInput(f"refusing to {what} without --yes (stdin is not a terminal); the "
                           "bucket steps are done, no service account was created, no Secret "
                           "written") from None


def _create_account(admin, env: Environment, policy: dict) -> tuple[str, str]:
    access = "kestra" + _random.token_hex(7)  # 20 characters: MinIO's access-key limit
    secret = _random.token_urlsafe(30)
    admin.add_service_account(access, secret, name=f"kestra-{env.name}"[:32],
                              description=f"kestra-ops: Kestra storage on bucket "
                                          f"{env.minio_bucket}", policy=policy)
    return access, secret
