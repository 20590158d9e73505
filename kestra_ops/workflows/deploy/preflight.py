"""preflight: can a deploy to this environment succeed? Checked before anything changes.

Each check is a small function returning a :class:`Check` (a :class:`~kestra_ops.results.Item`:
pass / warn / fail and why); :func:`run_preflight` returns them in a
:class:`~kestra_ops.results.Report`:

* ``api-server``: the Kubernetes API answers, and its version;
* ``namespace``: the environment's namespace exists;
* ``rbac``: one SelfSubjectAccessReview per (verb, resource) the deploy needs in the namespace,
  run concurrently; every missing permission is named ("cannot create secrets in ns") — the
  runbook's "CI service account lacks secret access" failure, caught before anything changes.
  ``watch`` on the chart's kinds and ``list`` on ReplicaSets are among them: Helm 4's ``--wait``
  (kstatus) lists and watches every kind of the release, and reads a Deployment's ReplicaSets
  and a StatefulSet's or ReplicaSet's pods; without them it fails at once ("cannot watch
  services") or waits its whole timeout for a status it cannot read (checked against helm
  v4.1.4 and kube-apiserver 1.35). They are required whatever the helm version: Helm 3 also
  watches its hooks (Jobs) and lists ReplicaSets for ``--wait``, and a CI account that may
  list may as well watch, so one list serves every deployer and needs no helm at preflight;
* ``bucket``: the MinIO bucket exists (Kestra never creates it);
* ``release``: the Helm release is not stuck in ``pending-*`` (an interrupted helm client).

Nothing here writes to the cluster: an SSAR is a question, not a change. The questions are
:mod:`kestra_ops.adapters.kube_access`'s; helm's history is the :class:`Helm` adapter's.
"""

from __future__ import annotations

import functools
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from kestra_ops.adapters import kube_access
from kestra_ops.errors import KestraOpsError, NotFound, PermissionDenied
from kestra_ops.results import FAIL, PASS, WARN, Item, Report, worst
from kestra_ops.settings import Environment

# Every verb Helm uses on the objects it owns (install, upgrade, rollback, uninstall; ``watch``:
# the --wait of Helm 4 watches every kind of the release, Helm 3's watches the hooks).
HELM_VERBS = ("get", "list", "watch", "create", "patch", "update", "delete")
# kind -> (group, plural) for the kinds a chart template may declare.
KIND_RESOURCES = {
    "ConfigMap": ("", "configmaps"), "Service": ("", "services"),
    "ServiceAccount": ("", "serviceaccounts"), "Secret": ("", "secrets"),
    "PersistentVolumeClaim": ("", "persistentvolumeclaims"),
    "Deployment": ("apps", "deployments"), "StatefulSet": ("apps", "statefulsets"),
    "DaemonSet": ("apps", "daemonsets"), "Job": ("batch", "jobs"), "CronJob": ("batch", "cronjobs"),
    "Role": ("rbac.authorization.k8s.io", "roles"),
    "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings"),
    "Ingress": ("networking.k8s.io", "ingresses"),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
    "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "ServiceMonitor": ("monitoring.coreos.com", "servicemonitors"),
    "Cluster": ("postgresql.cnpg.io", "clusters"),  # database.mode cloudnativepg only
}
# Kinds of another operator's API (a CRD most namespaces' roles do not cover) that the chart
# renders only when the values ask: their permissions are asked only then. Dropping one later is
# safe without them too: helm keeps the CNPG Cluster (helm.sh/resource-policy: keep), and a
# ServiceMonitor helm may not delete fails that release, which the guarded release rolls back.
# The other kinds (PodDisruptionBudget, HorizontalPodAutoscaler, NetworkPolicy: in the built-in
# admin and edit roles) are always asked: helm deletes them when a scale back to standalone or
# a switch turns them off.
VALUE_KINDS = {
    "Cluster": ("database.mode cloudnativepg",
                lambda v: _get(v, "database", "mode") == "cloudnativepg"),
    "ServiceMonitor": ("serviceMonitor.enabled",
                       lambda v: _get(v, "serviceMonitor", "enabled") is True),
}
# What our chart creates today: the fallback when the chart's templates cannot be read.
CHART_KINDS = ("ConfigMap", "Service", "Deployment", "StatefulSet", "Job", "CronJob",
               "ServiceAccount", "Role", "RoleBinding")
_KIND_LINE = re.compile(r"^kind:\s*[\"']?([A-Za-z]+)", re.M)


@dataclass(frozen=True)
class Permission:
    verb: str
    resource: str  # plural
    group: str = ""
    subresource: str = ""

    @property
    def qualified(self) -> str:
        name = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{name}/{self.subresource}" if self.subresource else name

    def missing(self, namespace: str) -> str:
        return f"cannot {self.verb} {self.qualified} in {namespace}"


@dataclass
class Check(Item):
    """One preflight check: an :class:`Item` (``code`` "stuck": a release in pending-*) whose
    JSON also carries ``name`` and ``code``, the keys scripts read."""

    @property
    def name(self) -> str:
        return self.id

    def to_dict(self) -> dict:
        return {"name": self.id, **super().to_dict(), "code": self.code}


def _check(name: str):
    """Decorator: the check's time, and any adapter error as a failed check with its one line."""
    def wrap(fn: Callable[..., Check]) -> Callable[..., Check]:
        @functools.wraps(fn)
        def run(*args, **kwargs) -> Check:
            started = time.perf_counter()
            try:
                check = fn(*args, **kwargs)
            except KestraOpsError as err:
                check = Check(name, FAIL, str(err))
            check.seconds = time.perf_counter() - started
            return check
        return run
    return wrap


# --------------------------------------------------------------------------- checks

@_check("api-server")
def check_api(kube) -> Check:
    version = kube.server_version()
    return Check("api-server", PASS, f"Kubernetes {version} at {kube.host} ({kube.source})")


@_check("namespace")
def check_namespace(kube, namespace: str) -> Check:
    try:
        kube_access.read_namespace(kube, namespace)
    except NotFound:
        return Check("namespace", FAIL, f"namespace {namespace} does not exist (create it, or "
                     "set namespace in kestra-ops.yaml / KESTRA_OPS_NAMESPACE)")
    except PermissionDenied:  # cluster-scoped: a namespaced CI account may not read namespaces
        return Check("namespace", WARN, f"cannot read namespace {namespace} (not allowed to get "
                     "namespaces); the rbac check covers what the deploy needs inside it")
    return Check("namespace", PASS, f"namespace {namespace} exists")


def chart_kinds(chart: Path) -> tuple[list[str], bool]:
    """The kinds the chart's templates declare (top-level ``kind:`` lines, in the manifests and
    in the ``.tpl`` helpers that render them: the Deployments come from one helper), and
    whether they came from the chart (False: unreadable templates, so :data:`CHART_KINDS`)."""
    templates = chart / "templates"
    files = [p for pattern in ("*.yaml", "*.yml", "*.tpl")
             for p in sorted(templates.glob(pattern))] if templates.is_dir() else []
    kinds: dict[str, None] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        kinds.update(dict.fromkeys(_KIND_LINE.findall(text)))
    return (list(kinds), True) if kinds else (list(CHART_KINDS), False)


def _get(values, *path):
    for key in path:
        values = values.get(key) if isinstance(values, dict) else None
    return values


def required_permissions(chart: Path, database_mode: str = "bundled", *,
                         values: Mapping | None = None) -> tuple[list[Permission], list[str]]:
    """What a deploy needs in the namespace, and the chart kinds we cannot map to a resource.
    ``values`` (the env's merged values; else only ``database_mode`` is known) turn the
    :data:`VALUE_KINDS` on or off."""
    kinds, _ = chart_kinds(chart)
    if values is None:
        values = {"database": {"mode": database_mode}}
    kinds = [k for k in kinds if k not in VALUE_KINDS or VALUE_KINDS[k][1](values)]
    perms: dict[Permission, None] = {}
    resources = [KIND_RESOURCES[k] for k in kinds if k in KIND_RESOURCES]
    unknown = [k for k in kinds if k not in KIND_RESOURCES]
    if "StatefulSet" in kinds:  # volumeClaimTemplates: restores and resizes handle the PVCs
        resources.append(("", "persistentvolumeclaims"))
    for group, plural in resources:
        if plural == "secrets":
            continue  # below, with the verbs our own writes and Helm's storage need
        perms.update(dict.fromkeys(Permission(v, plural, group) for v in HELM_VERBS))
    if "Deployment" in kinds:  # helm --wait reads a Deployment's ReplicaSets (so does `check`)
        perms[Permission("list", "replicasets", "apps")] = None
    # the deploy lock
    perms.update(dict.fromkeys(Permission(v, "leases", "coordination.k8s.io")
                               for v in ("get", "create", "update", "delete")))
    # watching the rollout (helm --wait lists a StatefulSet's and a ReplicaSet's pods) and
    # explaining failures; the release's checklist asks each Kestra pod's /health through the
    # API server's pod proxy (the ``components`` item: kestra_ops/checks/components.py)
    perms.update(dict.fromkeys([Permission("get", "pods"), Permission("list", "pods"),
                                Permission("get", "pods", subresource="log"),
                                Permission("get", "pods", subresource="proxy"),
                                Permission("list", "events")]))
    # `secrets apply` (get/create/update) and Helm's release storage (list/delete old revisions)
    perms.update(dict.fromkeys(Permission(v, "secrets")
                               for v in ("get", "list", "create", "update", "delete")))
    return list(perms), unknown


def missing_permissions(kube, namespace: str, permissions: Iterable[Permission], *,
                        on_done: Callable[[int, int], None] | None = None,
                        workers: int = 16) -> list[str]:
    """One SelfSubjectAccessReview per permission, concurrently; the missing ones, in order."""
    permissions = list(permissions)
    kube_access.prepare(kube)  # once, before the threads share it
    pool_size = kube_access.pool_size(kube, workers)
    done = 0

    def ask(perm: Permission) -> bool:
        return kube_access.allowed(kube, namespace, perm.verb, perm.resource, perm.group,
                                   perm.subresource)

    allowed: list[bool] = []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, pool_size, len(permissions) or 1)),
                            thread_name_prefix="ssar") as pool:
        for ok in pool.map(ask, permissions):
            allowed.append(ok)
            done += 1
            if on_done:
                on_done(done, len(permissions))
    return [p.missing(namespace) for p, ok in zip(permissions, allowed) if not ok]


@_check("rbac")
def check_rbac(kube, namespace: str, chart: Path, *,
               on_done: Callable[[int, int], None] | None = None,
               database_mode: str = "bundled", values: Mapping | None = None) -> Check:
    perms, unknown = required_permissions(chart, database_mode, values=values)
    missing = missing_permissions(kube, namespace, perms, on_done=on_done)
    if missing:
        return Check("rbac", FAIL, f"{len(missing)} of {len(perms)} permissions missing in "
                     f"{namespace}", details=missing)
    if not chart_kinds(chart)[1]:
        return Check("rbac", WARN, f"{len(perms)} permissions granted in {namespace}, for the "
                     f"kinds our chart creates: no templates found under {chart}")
    if unknown:
        return Check("rbac", WARN, f"{len(perms)} permissions granted in {namespace}; chart kinds "
                     f"not checked (unknown resource): {', '.join(unknown)}")
    return Check("rbac", PASS, f"all {len(perms)} permissions granted in {namespace}")


@_check("bucket")
def check_bucket_exists(env: Environment, *, environ: Mapping[str, str] | None = None,
                 region: str | None = None) -> Check:
    from kestra_ops.wiring import storage_for_env as for_env

    storage, why_not = for_env(env, environ=environ, region=region, timeout=5.0)
    if storage is None:
        return Check("bucket", WARN, f"skipped: {why_not}")
    if not storage.bucket_exists(env.minio_bucket):
        return Check("bucket", FAIL, f"bucket {env.minio_bucket} does not exist at {storage.url} "
                     "(Kestra never creates it: create it before deploying)")
    return Check("bucket", PASS, f"bucket {env.minio_bucket} exists at {storage.url}")


@_check("release")
def check_release(env: Environment, *, helm=None) -> Check:
    """The release's latest revision through the :class:`Helm` adapter (``helm``: one, a helm
    binary's path, or None for the default)."""
    from kestra_ops import wiring

    helm = wiring.helm(env, helm=helm)
    where = f"release {env.release} in {env.namespace}"
    try:
        revisions = helm.history(env.release, env.namespace)
    except NotFound:
        return Check("release", PASS, f"no {where} yet (first install)")
    latest = revisions[-1] if revisions else None
    if latest is None:
        return Check("release", PASS, f"no {where} yet (first install)")
    if latest.pending:
        return Check("release", FAIL, f"{where} is stuck in {latest.status} at revision "
                     f"{latest.revision} (updated {latest.updated or '?'}): an interrupted helm "
                     "client left it, and it blocks the next upgrade until rolled back to the "
                     "last deployed revision", code="stuck")
    if latest.status == "failed":
        return Check("release", WARN, f"{where}: revision {latest.revision} failed "
                     f"({latest.description or 'no description'}); the next deploy replaces it")
    return Check("release", PASS, f"{where}: revision {latest.revision} {latest.status} "
                 f"({latest.chart or '?'})")


def _values_region(values: dict) -> str | None:
    """kestra.storage.minio.region of the merged values (None: unset, or a placeholder)."""
    region = _get(values, "kestra", "storage", "minio", "region")
    return region if isinstance(region, str) and region and "${" not in region else None


def _database_values(env: Environment) -> tuple[dict, str, str]:
    """The env's merged values, database.mode and, when they cannot be read, why ("bundled"
    is then assumed for the permissions; ``values validate`` and the render say more)."""
    from kestra_ops.workflows.backup.database_target import database_mode, load_values

    try:
        values = load_values(env)
        return values, database_mode(values), ""
    except (KestraOpsError, OSError) as err:
        return {}, "bundled", str(err).splitlines()[0] if str(err) else type(err).__name__


# --------------------------------------------------------------------------- runner

def run_preflight(env: Environment, *, kube=None, progress=None, check_bucket: bool = True,
                  helm=None, environ: Mapping[str, str] | None = None,
                  database_reachable: bool = False) -> Report:
    """Run every check (bucket and release alongside the API checks); never raises for a
    failed check: each ends as a :class:`Check` among the report's items. Exit 0 when none
    fails (warnings allowed), 1 otherwise. ``helm``: a :class:`Helm`, a helm binary's path or
    None."""
    if kube is None:  # no kubeconfig is invalid input (exit 2), not a failed check
        from kestra_ops.adapters.kube import require_config

        require_config(env)
    from kestra_ops.workflows.target import context_name

    context = context_name(env)
    result = Report("preflight", env.name, items_key="checks",
                    title=f"preflight {env.name} (namespace {env.namespace}, release "
                          f"{env.release}, context {context})")
    if hasattr(progress, "clear"):  # the command's own progress (not deploy's Recorder)
        progress.info(f"preflight {env.name}: release {env.release} in {env.namespace} "
                      f"(context {context})")
    missing: list[str] = []
    owned = kube is None
    values, mode, unread = _database_values(env)  # read once: the bucket's region, the mode

    def note(message: str) -> None:
        if progress is not None:
            progress.update(message)

    def bucket() -> Check:
        if not check_bucket:
            return Check("bucket", WARN, "skipped: not asked for (--skip-bucket)")
        return check_bucket_exists(env, environ=environ, region=_values_region(values))

    from kestra_ops.concurrency import preload

    preload("urllib3")  # the bucket check (minio) and the main thread (kubernetes) share it
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="preflight") as pool:
        side = [pool.submit(bucket), pool.submit(check_release, env, helm=helm)]
        note("checking the Kubernetes API")
        started = time.perf_counter()
        if kube is None:
            try:
                from kestra_ops import wiring

                kube = wiring.kube(env)
            except KestraOpsError as err:
                result.items.append(Check("api-server", FAIL, str(err),
                                          seconds=time.perf_counter() - started))
        try:
            if kube is not None:
                result.items.append(check_api(kube))
            if result.items[-1].status == FAIL:
                skipped = "skipped: the Kubernetes API cannot be used"
                result.items += [Check("namespace", WARN, skipped), Check("rbac", WARN, skipped)]
            else:
                note("checking the namespace")
                result.items.append(check_namespace(kube, env.namespace))
                rbac = check_rbac(kube, env.namespace, env.chart_path, database_mode=mode,
                                  values=values if not unread else None,
                                  on_done=lambda n, t: note(f"checking permissions {n}/{t}"))
                result.items.append(rbac)
                missing = list(rbac.details) if rbac.status == FAIL else []
                note("checking the database")
                from kestra_ops.workflows.deploy.preflight_database import check_database

                try:
                    database = ((WARN, f"database.mode not checked: the values cannot be read "
                                       f"({unread})") if unread else
                                check_database(env, kube, values, reachable=database_reachable))
                except KestraOpsError as err:  # the API refused or vanished: one line
                    database = (FAIL, str(err))
                if database is not None:
                    result.items.append(Check("database", *database))
        finally:
            if owned and kube is not None:
                kube.close()
        note("checking the bucket and the release")
        result.items += [f.result() for f in side]
    if hasattr(progress, "clear"):
        progress.clear()  # the transient status line, before the result is printed
    ok = not any(c.status == FAIL for c in result.items)
    result.status, result.exit_code = worst(c.status for c in result.items), 0 if ok else 1
    result.message = f"preflight {env.name}: {'ok' if ok else 'FAILED'}"
    result.data = {"namespace": env.namespace, "ok": ok, "missing_permissions": missing}
    return result
