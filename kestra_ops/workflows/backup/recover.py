"""``backup restore --to-namespace NS``: a whole Kestra from one backup set, in an EMPTY namespace.

Steps, each shown and timed, in this order::

    namespace   create NS (labels: managed-by kestra-ops, the env and set restored) and the state
    secrets     unseal the set's Secrets with --identity and create them in NS
    chart       helm upgrade --install the set's values into NS with Kestra scaled to 0
    database    pg_restore the set's dump into --to-database (an EMPTY database)
    storage     copy the set's internal-storage objects back into the target bucket
    scale-up    helm upgrade again with the set's own replicas, waiting for Kestra
    check       counts and the canary flow (:mod:`kestra_ops.workflows.backup.canary`), then the
                checklist of ``kestra-ops check`` against NS

Nothing is written before every precondition holds: the set is complete and has a database;
NS does not exist, or holds nothing a Kestra install would collide with
(:func:`kestra_ops.adapters.kube_namespaces.contents`), or is the unfinished recovery of the
same env and set; the database is empty; the target bucket exists and holds no object of the
tenant; sealed Secrets come with an identity that opens them (or, for a set without sealed
Secrets, the Secrets the chart reads already exist in NS).

Resuming: after each step the state ConfigMap ``kestra-ops-recovery`` in NS records it; the same
command again (after Ctrl-C, a timeout, a fixed cause) skips the steps done. The database step is
one transaction (pg_restore --single-transaction) and the storage copy skips objects already
copied, so a step cut short is simply redone.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
import time
from pathlib import Path

from kestra_ops.adapters import kube_namespaces as kns
from kestra_ops.adapters import postgres as pg
from kestra_ops.errors import Aborted, InvalidInput, NotFound
from kestra_ops.results import FAIL, Recorder, Report, worst
from kestra_ops.workflows.backup import restore as br
from kestra_ops.workflows.backup import sets as bs

STEPS = ("namespace", "secrets", "chart", "database", "storage", "scale-up", "check")
TENANT = "main"  # Kestra OSS's only tenant: storage objects live under main/ (see objects.py)


@dataclasses.dataclass
class Target:
    """Where a set is brought back (the drill gives its scratch ones)."""

    namespace: str
    database: pg.DatabaseURL  # (a postgresql:// URL as text is parsed by recover())
    bucket: str | None = None  # None: the env's Kestra bucket
    kestra_url: str | None = None  # None: the Kubernetes API service proxy in ``namespace``
    insecure: bool = False
    values: dict = dataclasses.field(default_factory=dict)  # extra values (the drill's)
    labels: dict = dataclasses.field(default_factory=dict)
    check_wait: float = 120.0  # failing checks of the restored Kestra are retried this long


def recover(env, name: str, target: Target, *, identity: str | None = None,
            timeout: str = "10m", confirm=None, progress=None, storage=None,
            data_storage=None, kube=None, helm=None, command: str = "backup restore") -> Report:
    """Bring set ``name`` of ``env`` back as a whole Kestra in ``target`` (see the module doc)."""
    from kestra_ops.config_schema import DNS_LABEL

    if isinstance(target.database, str):
        target = dataclasses.replace(target, database=pg.DatabaseURL.parse(target.database))
    if not DNS_LABEL.match(target.namespace) or len(target.namespace) > 63:
        raise InvalidInput(f"--to-namespace {target.namespace!r} is not a namespace name (a "
                           "DNS label)")
    from kestra_ops.workflows.backup.locations import find_set

    if kube is None:
        from kestra_ops.wiring import kube as connect

        kube = connect(env)
    if name == "latest" and kns.exists(kube, target.namespace):
        state = kns.read_state(kube, target.namespace) or {}
        if state.get("env") == env.name and state.get("set"):
            name = state["set"]  # resuming: the set this recovery started with, not a newer one
    place, s = find_set(env, name, storage=storage)  # the destination, or the legacy location
    storage, bucket = place.storage, place.bucket
    for artefact, what in ((bs.DB, "database dump"), (bs.VALUES, "values (values.yaml)")):
        if artefact not in s.manifest["artefacts"]:
            raise NotFound(f"backup set {s.name} has no {what} (it included "
                           f"{', '.join(s.included) or 'nothing'}): it cannot bring back a "
                           "Kestra; pick a set taken with the default --what")
    if data_storage is None:
        data_storage = _data_storage(env)
    target_bucket = target.bucket or env.minio_bucket
    report = br.report_for(command, env, s)
    report.title = f"{command} {env.name} {s.name} -> namespace {target.namespace}"
    rpo = max(0.0, time.time() - s.time.timestamp())
    if place.warning:
        report.warnings.append(place.warning)
    report.data.update({"namespace": target.namespace, "bucket": target_bucket,
                        "database": str(target.database), "resumed": False,
                        "rpo_seconds": round(rpo), "steps_done": []})
    state = _preflight(env, s, target, target_bucket, kube, data_storage, identity, storage,
                       bucket)
    done = list(state.get("done") or []) if state else []
    report.data["resumed"] = bool(done)
    if done:
        report.details.append(f"resuming the recovery in {target.namespace}: "
                              f"{', '.join(done)} already done")
    if confirm is not None and not confirm(
            f"restore {s.name} of {env.name} as a whole Kestra into namespace "
            f"{target.namespace}, database {target.database.dbname!r}, bucket {target_bucket}"):
        raise Aborted("recovery declined; nothing changed")
    begun = list((state or {}).get("begun") or [])
    state = {"env": env.name, "set": s.name, "done": done, "begun": begun,
             "started": time.time()}
    rec = Recorder(report, progress)
    started = time.monotonic()
    ctx = _Context(env, s, target, target_bucket, storage, bucket, data_storage, kube, helm,
                   identity, timeout, rec)
    for step in STEPS:
        if step in done and step != "check":  # the check always runs again
            continue
        if step != "namespace" and step not in begun:  # the namespace holds the state
            begun.append(step)  # a rerun then knows what this step may have left
            kns.write_state(kube, target.namespace, state)
        with rec.step(f"{step}") as outcome:
            outcome.detail = getattr(ctx, step.replace("-", "_"))() or ""
            if step == "check" and not ctx.checked_ok:
                outcome.fail()
        if step == "check":
            break
        done.append(step)
        kns.write_state(kube, target.namespace, state)
    report.data["steps_done"] = done
    report.data["rto_seconds"] = round(time.monotonic() - started, 1)
    report.items = ctx.items
    ok = ctx.checked_ok
    if ok:
        if "check" not in done:
            done.append("check")
        kns.write_state(kube, target.namespace, {**state, "finished": time.time()})
    report.status = worst([i.status for i in report.items] or ["pass"])
    report.exit_code = 0 if ok else 1
    report.outcome = "restored" if ok else "check-failed"
    report.message = (f"{env.name} {s.name} restored into namespace {target.namespace} in "
                      f"{report.data['rto_seconds']:.0f}s (set age {rpo / 3600:.1f}h)" +
                      ("" if ok else ": the restored Kestra FAILED its checks (see above)"))
    return report


def _data_storage(env):
    """Kestra's object storage (the env's MinIO, Kestra's key): where the objects go back."""
    from kestra_ops.workflows.backup.locations import data_storage_for

    return data_storage_for(env)[0]


def _preflight(env, s, target: Target, bucket: str, kube, data_storage, identity, set_storage,
               set_bucket):
    """Every precondition (module doc), read-only; returns the state to resume, or None."""
    state = None
    if kns.exists(kube, target.namespace):
        state = kns.read_state(kube, target.namespace)
        if state is not None and (state.get("env"), state.get("set")) != (env.name, s.name):
            raise InvalidInput(f"namespace {target.namespace} holds the recovery of "
                               f"{state.get('env')} set {state.get('set')}, not {env.name} "
                               f"{s.name}: refusing; nothing changed")
        if state is None:
            found = kns.contents(kube, target.namespace)
            if found:
                raise InvalidInput(f"namespace {target.namespace} is not empty "
                                   f"({', '.join(found)}): a recovery goes into a new or empty "
                                   "namespace only; nothing changed",
                                   hint="pick another --to-namespace")
    done = set((state or {}).get("done") or [])
    begun = set((state or {}).get("begun") or [])
    sealed = (s.manifest.get("secrets") or {}).get("sealed")
    if "secrets" not in done:
        if sealed and not identity:
            raise InvalidInput(f"backup set {s.name} holds sealed Secrets: give --identity FILE "
                               "(an age identity of one of its recipients)")
        if sealed:
            from kestra_ops.workflows.backup.sealed import unseal

            unseal(set_storage, set_bucket, env.name, s.name, identity)  # opens, or refuses
        else:
            _require_secrets(env, s, target, kube, set_storage, set_bucket)
    if "database" not in done and "database" in begun and not pg.is_empty(target.database):
        # pg_restore runs in one transaction into a database that was empty when the step
        # began: a database that is not empty now holds the whole restore (interrupted before
        # the state was written)
        state["done"] = [*(state.get("done") or []), "database"]
        done.add("database")
    if "database" not in done and not pg.is_empty(target.database):
        raise InvalidInput(f"database {target.database.dbname!r} at {target.database} is not "
                           "empty: a recovery restores into an empty database only; nothing "
                           "changed")
    if not data_storage.bucket_exists(bucket):
        raise NotFound(f"bucket {bucket} does not exist at {data_storage.url}",
                       hint=f"create it with: kestra-ops minio setup --env {env.name}")
    if "storage" not in begun and next(iter(data_storage.iter_entries(bucket, f"{TENANT}/")),
                                       None) is not None:
        raise InvalidInput(f"bucket {bucket} already holds Kestra objects (under {TENANT}/): a "
                           "recovery copies into an empty bucket only; nothing changed")
    return state


def _require_secrets(env, s, target: Target, kube, storage, bucket) -> None:
    """A set without sealed Secrets: the Secrets the chart reads must exist in NS already."""
    from kestra_ops.adapters.kube_config import read_secret
    from kestra_ops.workflows.secrets import secret_specs

    values = _set_values(s, env, storage, bucket)[1]
    missing = [name for name in sorted({spec.secret for spec in secret_specs(values)})
               if read_secret(kube, target.namespace, name) is None]
    if missing:
        reason = (s.manifest.get("secrets") or {}).get("reason") or "secrets not included"
        raise InvalidInput(f"backup set {s.name} holds no sealed Secrets ({reason}) and "
                           f"namespace {target.namespace} lacks {', '.join(missing)}",
                           hint=f"create them first: kestra-ops secrets apply --env {env.name} "
                                f"-n {target.namespace}")


def _set_values(s, env, storage, bucket) -> tuple[bytes, dict]:
    """The set's values.yaml (checked against its manifest) and its parsed form."""
    import yaml

    data = br._read_checked(storage, bucket, env.name, s, bs.VALUES)
    values = yaml.safe_load(data) or {}
    if not isinstance(values, dict):
        raise InvalidInput(f"backup set {s.name}: values.yaml is not a mapping")
    return data, values


class _Context:
    """The steps (one method each, returning the step's detail)."""

    def __init__(self, env, s, target, bucket, storage, set_bucket, data_storage, kube, helm,
                 identity, timeout, rec):
        self.env, self.s, self.target, self.bucket = env, s, target, bucket
        self.set_storage, self.set_bucket, self.data_storage = storage, set_bucket, data_storage
        self.kube, self.helm, self.identity, self.timeout, self.rec = (
            kube, helm, identity, timeout, rec)
        self.items: list = []
        self.checked_ok = False

    def namespace(self) -> str:
        if kns.exists(self.kube, self.target.namespace):
            return f"namespace {self.target.namespace} exists (empty)"
        kns.create(self.kube, self.target.namespace, {
            "kestra-ops/recovery-of": self.env.name, "kestra-ops/set": self.s.name.lower(),
            **self.target.labels})
        kns.write_state(self.kube, self.target.namespace,
                        {"env": self.env.name, "set": self.s.name, "done": []})
        return f"namespace {self.target.namespace} created"

    def secrets(self) -> str:
        if not (self.s.manifest.get("secrets") or {}).get("sealed"):
            return "the set holds no sealed Secrets; the namespace has the chart's Secrets"
        from kestra_ops.workflows.backup.sealed import create_secrets, unseal

        opened = unseal(self.set_storage, self.set_bucket, self.env.name, self.s.name,
                        self.identity)
        made = create_secrets(self.kube, self.target.namespace, opened)
        return f"{len(opened)} Secret(s) unsealed; created: {', '.join(made) or 'none new'}"

    def _install(self, replicas: int | None) -> str:
        """helm upgrade --install with the set's values, then the target's (the drill's scratch
        places), then ``replicas``: helm merges the files in that order, maps deeply."""
        import yaml

        from kestra_ops.fileio import write_private
        from kestra_ops.wiring import helm as connect

        helm = self.helm or connect(self.env)
        layers = [("set-values.yaml", self.values_text)]
        if self.target.values:
            layers.append(("recovery.yaml", yaml.safe_dump(self.target.values)))
        if replicas is not None:
            layers.append(("replicas.yaml",
                           yaml.safe_dump({"standalone": {"replicas": replicas}})))
        with tempfile.TemporaryDirectory(prefix="kestra-ops-recover-") as tmp:
            files = [write_private(Path(tmp) / name, text) for name, text in layers]
            revision = helm.upgrade_install(self.env.release, self.env.chart_path,
                                            self.target.namespace, files, timeout=self.timeout,
                                            wait=True, rollback_on_failure=False)
        return (f"release {self.env.release} revision {revision.revision} "
                f"({revision.chart}) in {self.target.namespace}")

    @functools.cached_property
    def values_text(self) -> str:
        """The set's values.yaml, read (and checked against the manifest) once."""
        return _set_values(self.s, self.env, self.set_storage, self.set_bucket)[0].decode(
            "utf-8")

    def chart(self) -> str:
        return self._install(0) + ", Kestra scaled to 0"

    def database(self) -> str:
        return br.restore_db(self.set_storage, self.set_bucket, self.env.name, self.s,
                             self.target.database, clean=False)

    def storage(self) -> str:
        from kestra_ops.workflows.backup.objects import restore_objects

        if not self.s.manifest.get("storage"):
            missing = (f"backup set {self.s.name} holds no storage objects: KV values, namespace "
                       "files and execution files are NOT restored")
            self.rec.report.warnings.append(missing)
            return missing
        done = restore_objects(self.set_storage, self.set_bucket, self.env.name, self.s,
                               self.data_storage, self.bucket, progress=self.rec)
        return done.describe() if hasattr(done, "describe") else str(done)

    def scale_up(self) -> str:
        return self._install(None) + ", Kestra scaled up"

    def check(self) -> str:
        from kestra_ops.errors import KestraOpsError
        from kestra_ops.results import Item
        from kestra_ops.workflows.backup import canary
        from kestra_ops.workflows.check import run_check
        from kestra_ops.wiring import client_for_env

        env = dataclasses.replace(self.env, namespace=self.target.namespace)
        refs = _refs(self)
        self.items = []  # (a step run again replaces its verdicts)
        client = None
        try:  # counts first: the canary adds an execution
            client = client_for_env(env, kube=self.kube, kestra_url=self.target.kestra_url,
                                    insecure=self.target.insecure)
            self.items.append(canary.compare(self.s.manifest.get("counts"),
                                             canary.counts(client, refs)))
            self.items.append(canary.run_canary(client, refs))
        except KestraOpsError as err:
            self.items.append(Item("counts", FAIL, f"the restored Kestra: {err}"))
        finally:
            if client is not None:
                client.close()
        checked = run_check(env, kestra_url=self.target.kestra_url, insecure=self.target.insecure,
                            kube=self.kube, wait=self.target.check_wait or None)
        self.items += checked.results
        self.checked_ok = not any(i.status == FAIL or not i.ok for i in self.items)
        failed = [i.id for i in self.items if not i.ok]
        return (f"{len(self.items)} item(s) checked" +
                (f"; failed: {', '.join(failed)}" if failed else ""))


def _refs(ctx: _Context) -> dict | None:
    """The set's storage references (what the metadata rows point at), None without them."""
    import json

    if bs.STORAGE_REFS not in ctx.s.manifest["artefacts"]:
        return None
    return json.loads(br._read_checked(ctx.set_storage, ctx.set_bucket, ctx.env.name, ctx.s,
                                       bs.STORAGE_REFS))

