"""minio setup / minio check: the environment's bucket, its options and a bucket-scoped key.

Bucket work uses the plain S3 API (any S3 store). MinIO's admin API (policies, service accounts)
is optional: when the server has none (404/405/501, another S3 store) the least-privilege policy
is returned for the operator to apply by hand, and the key step is skipped with a warning
(:mod:`kestra_ops.workflows.storage.minio_key`). ``minio setup`` signs with MinIO's root credentials,
``minio check`` with Kestra's bucket-scoped key (both found by :mod:`kestra_ops.credentials`,
never shown, the root's never written to a Secret). The new key is written to the env's Secret
(existingSecrets.minio), or returned for printing with ``show_secret``.

Both also set up / check the backup bucket (backup.bucket: object lock, versioning,
governance retention; :mod:`kestra_ops.workflows.storage.backup_bucket`).

Each returns a :class:`kestra_ops.results.Report`: one step per thing set up or checked (health,
bucket, versioning, lifecycle, backup-bucket, backup-versioning, backup-lock, policy,
access-key, secret, probe), exit 1 when one fails. JSON: env, endpoint, bucket, backup_bucket,
backup_lock (setup: "governance", "absent" or "unsupported"), ok, steps, policy_name, policy
(when it must be applied by hand) and credentials (only with ``show_secret``).
"""

from __future__ import annotations

import json
import uuid
from typing import Callable, Mapping

from kestra_ops.errors import KestraOpsError, Unreachable
from kestra_ops.results import FAIL, Recorder, Report, Section, worst
from kestra_ops.settings import Environment

HEALTH = ("/minio/health/live", "/minio/health/ready")
LIFECYCLE_RULE = "kestra-ops-noncurrent"
PROBE_PREFIX = "kestra-ops-probe/"


def _storage(env: Environment, environ: Mapping[str, str] | None, *, root: bool = False):
    from kestra_ops.errors import ConfigError
    from kestra_ops.wiring import storage_for_env

    storage, why = storage_for_env(env, environ=environ, root=root)
    if storage is None:
        raise ConfigError(f"minio {'setup' if root else 'check'} for {env.name}: {why}; "
                          "nothing was changed")
    return storage


def _not_minio(answer) -> bool:
    """An answer from a store without MinIO's health endpoints: 404, or another server's 4xx/501
    (SeaweedFS takes /minio/health/live for an object and answers 403 AccessDenied)."""
    return answer.status == 404 or (answer.status in (400, 403, 405, 501)
                                    and not answer.from_minio)


def check_health(storage, step) -> bool:
    """live and ready: 200 pass; "not there" from both = not MinIO (warn); anything else
    (503, a 5xx, MinIO refusing) fails. Returns False when it failed."""
    answers = {path: storage.health(path) for path in HEALTH}
    if all(a.status == 200 for a in answers.values()):
        step.detail = f"{storage.url} is live and ready"
    elif all(_not_minio(a) for a in answers.values()):
        a = answers[HEALTH[0]]
        server = f" from {a.server}" if a.server else ""
        step.warn(f"not MinIO, health endpoints unavailable at {storage.url} (HTTP {a.status}"
                  f"{f' {a.code}' if a.code else ''}{server}); continuing with the plain S3 API")
    else:
        step.fail("; ".join(f"{p} answered HTTP {a.status}" for p, a in answers.items()
                            if a.status != 200))
        return False
    return True


def ensure_bucket(storage, env: Environment, rec: Recorder) -> None:
    bucket = env.minio_bucket
    with rec.step("bucket") as step:
        if storage.bucket_exists(bucket):
            step.detail = f"{bucket} exists (unchanged)"
        else:
            storage.make_bucket(bucket)
            step.detail = f"{bucket} created"
    if env.minio_versioning is not None:
        with rec.step("versioning") as step:
            current = storage.get_versioning(bucket)
            wanted = "Enabled" if env.minio_versioning else "Suspended"
            if current == wanted or (current == "Off" and not env.minio_versioning):
                step.detail = f"{current.lower()} (unchanged)"
            else:
                storage.set_versioning(bucket, env.minio_versioning)
                step.detail = f"{current.lower()} -> {wanted.lower()}"
    days = env.minio_lifecycle_days
    if days:  # current objects never expire (Kestra's data lives there)
        with rec.step("lifecycle") as step:
            done = storage.ensure_noncurrent_expiry(bucket, LIFECYCLE_RULE, days)
            step.detail = (f"noncurrent versions expire after {days} days (unchanged)"
                           if done == "unchanged" else
                           f"noncurrent versions and unfinished uploads expire after {days} "
                           f"days ({done})")


# --------------------------------------------------------------------------- entry points

def setup_minio(env: Environment, *, environ: Mapping[str, str] | None = None, kube=None,
                show_secret: bool = False, confirm: Callable[[str], bool] | None = None,
                progress=None) -> Report:
    """Idempotent: health, bucket (+ versioning, lifecycle), policy + key into the Secret.
    ConfigError (before anything is done) without the root credentials."""
    from kestra_ops import credentials
    from kestra_ops.workflows.storage.minio_key import ensure_key

    storage = _storage(env, environ, root=True)
    user, password, _ = credentials.minio_root(credentials.Resolver(environ=environ))
    report = _report("minio setup", env, storage)
    rec = Recorder(report, progress)
    _header(rec, report, env, storage)
    with rec.step("health") as step:
        healthy = check_health(storage, step)
    if not healthy:
        return _finish(report)
    ensure_bucket(storage, env, rec)
    from kestra_ops.workflows.storage.backup_bucket import ensure_backup_bucket, root_storage

    ensure_backup_bucket(root_storage(env, storage, user, password), env, rec)
    owned = kube is None and not show_secret
    if owned:
        from kestra_ops.wiring import kube as connect

        kube = connect(env)
    try:
        ensure_key(storage, env, rec, (user, password), kube=kube, show_secret=show_secret,
                   confirm=confirm)
    finally:
        if owned:
            kube.close()
    return _finish(report)


def check_minio(env: Environment, *, environ: Mapping[str, str] | None = None,
                progress=None) -> Report:
    """Health plus a write/read/delete probe of a unique object in the env's bucket, with
    Kestra's bucket-scoped key."""
    storage = _storage(env, environ)
    report = _report("minio check", env, storage)
    rec = Recorder(report, progress)
    _header(rec, report, env, storage)
    try:
        with rec.step("health") as step:
            check_health(storage, step)
    except Unreachable:
        return _finish(report)
    bucket = env.minio_bucket
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    payload = f"kestra-ops probe {key}".encode()
    where = f"s3://{bucket}/{key}"
    try:
        with rec.step("probe") as step:
            _probe(storage, env, bucket, key, payload, where, step)
    except KestraOpsError:
        pass  # recorded as the probe's failure
    from kestra_ops.workflows.storage.backup_bucket import check_backup_bucket

    try:
        check_backup_bucket(env, rec, environ=environ)
    except KestraOpsError:
        pass  # recorded as the backup-bucket step's failure
    return _finish(report)


def _probe(storage, env: Environment, bucket: str, key: str, payload: bytes, where: str,
           step) -> None:
    if not storage.bucket_exists(bucket):
        step.fail(f"bucket {bucket} does not exist (create it with `kestra-ops minio setup "
                  f"--env {env.name}`)")
        return
    storage.put_bytes(bucket, key, payload, "text/plain")
    try:
        if storage.get_bytes(bucket, key) != payload:
            step.fail(f"{where}: read back different bytes")
            return
    finally:
        storage.remove_object(bucket, key)
    if storage.stat_object(bucket, key) is not None:
        step.fail(f"{where}: still there after delete")
        return
    step.detail = f"wrote, read back and deleted {where}"


def _header(rec: Recorder, report: Report, env: Environment, storage) -> None:
    """The progress starts with what is looked at, as deploy's and release's do: the steps'
    lines (a FAIL among them) never come before the command's own first line."""
    rec.info(f"{report.command} {env.name}: {storage.url}, bucket {env.minio_bucket}")


def _report(command: str, env: Environment, storage) -> Report:
    return Report(command, env.name, title=f"{command} {env.name} ({storage.url}, bucket "
                  f"{env.minio_bucket})",
                  data={"env": env.name, "endpoint": storage.url, "bucket": env.minio_bucket,
                        "ok": True, "policy_name": None, "policy": None})


def _finish(report: Report) -> Report:
    data = report.data
    ok = all(s.status != FAIL for s in report.steps)
    data["ok"] = ok
    report.status = worst(s.status for s in report.steps)
    report.exit_code = 0 if ok else 1
    if data.get("policy") is not None:
        report.sections.append(Section(f"policy {data['policy_name']} (apply it by hand)",
                                       json.dumps(data["policy"], indent=2).splitlines()))
    if data.get("credentials") is not None:
        report.sections.append(Section("new service account (not written to the Secret)", [
            f"access key: {data['credentials']['access_key']}",
            f"secret key: {data['credentials']['secret_key']}"]))
    report.outcome = "ok" if ok else "failed"
    report.message = (f"{report.command} {report.env} ({data['endpoint']}, bucket "
                      f"{data['bucket']}): {'ok' if ok else 'FAILED'}")
    return report
