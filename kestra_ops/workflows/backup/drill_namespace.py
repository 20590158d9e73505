"""``backup drill``: a whole disaster recovery of the newest usable set into SCRATCH places.

The drill (its scratch database: :mod:`kestra_ops.workflows.backup.drill`) runs
:func:`kestra_ops.workflows.backup.recover.recover` into:

* a scratch namespace ``kestra-drill-<UTC time>-<random>`` that must not exist (the drill
  never uses an existing namespace) and is deleted at the end, on success, failure and Ctrl-C;
* a scratch bucket on the env's object storage: ``kestra-drill-<random>``, created and emptied
  and deleted at the end, or a given ``--scratch-bucket`` that must exist and be empty (kept);
* values that point the drill's Kestra at the scratch database and bucket, never the live ones
  (every datasource URL names the scratch database on the source's PostgreSQL service, as the
  pods reach it; the storage bucket is the scratch bucket), with the chart's own PostgreSQL and
  the backup CronJob off.

It then reports the recovery time (RTO: the recovery's steps, end to end), the age of the set
(RPO), the counts and the canary flow's result, and stores the drill report (JSON, no secret)
beside the set as ``drills/<UTC time>.json``.

Caveat: for the few minutes it runs, the drill's Kestra is a Kestra: the restored flows'
schedules and triggers may fire. Run drills where the drill namespace's egress is restricted.
"""

from __future__ import annotations

import datetime
import json
import secrets
import time

from kestra_ops.adapters import kube_namespaces as kns
from kestra_ops.errors import InvalidInput, KestraOpsError
from kestra_ops.results import Step
from kestra_ops.workflows.backup import recover as rv
from kestra_ops.workflows.backup import restore as br
from kestra_ops.workflows.backup import sets as bs


def scratch_namespace(now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return f"kestra-drill-{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


def scratch_values(env, values: dict, database: str, bucket: str) -> dict:
    """Values that point the drill's Kestra at the scratch database and bucket only."""
    from urllib.parse import urlsplit

    url = (((values.get("datasources") or {}).get("postgres") or {}).get("url") or
           "jdbc:postgresql://kestra-postgres:5432/kestra")
    parts = urlsplit(url[len("jdbc:"):] if url.startswith("jdbc:") else url)
    host = parts.hostname or "kestra-postgres"
    if "." not in host:  # a Service of the live namespace, reached from the scratch one
        host = f"{host}.{env.namespace}.svc"
    jdbc = f"jdbc:postgresql://{host}:{parts.port or 5432}/{database}"
    # the bucket of the store type Kestra reads (kestra.storage.<type>: minio or s3)
    kind = str(((values.get("kestra") or {}).get("storage") or {}).get("type") or "minio")
    return {"postgres": {"enabled": False}, "backup": {"enabled": False},
            "datasources": {"default": {"url": jdbc}, "postgres": {"url": jdbc}},
            "kestra": {"datasources": {"postgres": {"url": jdbc}},
                       "storage": {kind: {"bucket": bucket}}}}


def run(env, s, report, database, *, storage, bucket, identity, scratch_bucket, kestra_url,
        insecure, timeout, kube, helm, data_storage, progress, check_wait: float = 120.0):
    """Recover ``s`` into scratch places (module doc); returns the drill's report."""
    if kube is None:
        from kestra_ops.wiring import kube as connect

        kube = connect(env)
    if data_storage is None:
        data_storage = rv._data_storage(env)
    namespace = scratch_namespace()
    if kns.exists(kube, namespace):
        raise InvalidInput(f"namespace {namespace} exists: a drill never uses an existing "
                           "namespace; nothing changed")
    made_bucket = None
    if scratch_bucket:
        if not data_storage.bucket_exists(scratch_bucket):
            raise InvalidInput(f"--scratch-bucket {scratch_bucket} does not exist at "
                               f"{data_storage.url}")
        if next(iter(data_storage.iter_entries(scratch_bucket)), None) is not None:
            raise InvalidInput(f"--scratch-bucket {scratch_bucket} is not empty: a drill "
                               "copies into an empty bucket only; nothing changed")
        target_bucket = scratch_bucket
    else:
        target_bucket = made_bucket = f"kestra-drill-{secrets.token_hex(6)}"
        data_storage.make_bucket(made_bucket)
        report.details.append(f"scratch bucket {made_bucket} created")
    values = rv._set_values(s, env, storage, bucket)[1]
    target = rv.Target(namespace, database, target_bucket, kestra_url, insecure,
                       scratch_values(env, values, database.dbname, target_bucket),
                       {"kestra-ops/drill": "true"}, check_wait)
    report.data["scratch"].update({"namespace": namespace, "bucket": target_bucket,
                                   "bucket_created": made_bucket is not None})
    started = time.monotonic()
    try:
        result = rv.recover(env, s.name, target, identity=identity, timeout=timeout,
                            storage=storage, data_storage=data_storage, kube=kube, helm=helm,
                            progress=progress, command="backup drill")
    finally:
        _cleanup(report, kube, namespace, data_storage, made_bucket)
    report.steps = result.steps + report.steps
    report.items = result.items
    report.details = result.details + report.details
    report.warnings += result.warnings
    report.data.update({k: result.data.get(k) for k in ("rto_seconds", "rpo_seconds")})
    report.data["ok"] = report.data["ok"] and result.exit_code == 0
    report.data["elapsed_seconds"] = round(time.monotonic() - started, 1)
    _store(report, storage, bucket, env, s)
    return report


def _cleanup(report, kube, namespace, data_storage, made_bucket) -> None:
    """Delete what the drill made; what cannot be deleted is said (with how), never hidden."""
    t0 = time.monotonic()
    left = []
    try:
        if kns.delete(kube, namespace):
            report.details.append(f"scratch namespace {namespace} deleted")
    except KestraOpsError as err:
        left.append(f"scratch namespace {namespace} NOT deleted ({err}): kubectl delete "
                    f"namespace {namespace}")
    if made_bucket:
        try:
            for obj in data_storage.list_objects(made_bucket):
                data_storage.remove_object(made_bucket, obj.name)
            data_storage.call(f"bucket {made_bucket}", data_storage.client.remove_bucket,
                              made_bucket)
            report.details.append(f"scratch bucket {made_bucket} emptied and deleted")
        except KestraOpsError as err:
            left.append(f"scratch bucket {made_bucket} NOT deleted ({err})")
    report.details += left
    if left:
        report.data["ok"] = False
    report.steps.append(Step("cleanup", "fail" if left else "pass",
                             "; ".join(left) or "scratch namespace and bucket removed",
                             time.monotonic() - t0))


def _store(report, storage, bucket, env, s) -> None:
    """The drill report beside the set (``drills/<time>.json``); a failure to store is a
    warning (the drill's verdict stands)."""
    stamp = bs.stamp()
    key = bs.key(env.name, s.name, f"drills/{stamp}.json")
    body = {"drill": stamp, "set": s.name, "env": env.name, "ok": report.data.get("ok"),
            "rto_seconds": report.data.get("rto_seconds"),
            "rpo_seconds": report.data.get("rpo_seconds"),
            "steps": [st.to_dict() for st in report.steps],
            "checks": [i.to_dict() for i in report.items]}
    try:
        bs.put_bytes(storage, bucket, key, json.dumps(body, indent=2).encode(),
                     "application/json")
        report.data["stored"] = f"s3://{bucket}/{key}"
    except KestraOpsError as err:
        report.warnings.append(f"the drill report could not be stored beside the set: {err}")


def finish(report, verdict: str):
    report = br.finish(report, verdict)
    rto, rpo = report.data.get("rto_seconds"), report.data.get("rpo_seconds")
    if rto is not None and rpo is not None:
        report.message += f" (RTO {rto:.0f}s, RPO {rpo / 3600:.1f}h)"
    return report
