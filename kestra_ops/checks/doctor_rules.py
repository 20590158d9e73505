"""The troubleshooting guide as rules: each a small pure function from the fetched
:class:`Snapshot` to findings, each an :class:`~kestra_ops.results.Item` (what is wrong as its
reason, the evidence as its details, and the fix). Every rule is declared once in :data:`FINDINGS`
with the finding ids it reports, what each means (the doctor's help) and the snapshot sources
it reads."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from kestra_ops.chart import CONFIGMAP, POSTGRES_POD
from kestra_ops.checks import age
from kestra_ops.checks.configmap import get_path, missing_sections
from kestra_ops.checks.declare import Rule
from kestra_ops.checks.pods import pod_problems, pod_readiness
from kestra_ops.results import FAIL, WARN, Item

ORDER = 100
DATASOURCE_RE = re.compile(r"datasource|io\.micronaut\.\S*exceptions|BeanInstantiationException|"
                           r"NoSuchBeanException|Flyway", re.I)
PG_AUTH_RE = re.compile(r"password authentication failed", re.I)
UNKNOWN_TYPE_RE = re.compile(r"(invalid|unknown|unrecognized) (plugin )?type", re.I)


def finding(id: str, status: str, summary: str, evidence: list[str], fix: str) -> Item:
    """A problem found: ``summary`` is the item's reason, ``evidence`` its details."""
    return Item(id, status, summary, list(evidence), fix=fix)


@dataclass
class Snapshot:
    """What the doctor looked at. ``None`` means not fetched; ``errors`` says why."""

    env: str
    namespace: str
    pods: list[dict] | None = None
    logs: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    application: dict | None = None  # application.yml of ConfigMap kestra-config
    kestra_error: str | None = None  # why Kestra's API could not be used at all
    auth_configs: dict | None = None
    auth_errors: list[str] | None = None
    login_error: str | None = None
    rbac: Any = None  # preflight Check
    release: Any = None  # preflight Check
    minio_url: str | None = None
    minio_health: str | None = None  # why MinIO's health failed ("" when live)
    flows: list[dict] = field(default_factory=list)  # {namespace, id, types: [(path, type)]}
    blacklist: tuple[str, ...] = ()
    blacklisted: list[tuple[str, str, str, str]] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (flow, constraint)
    running: list[dict] | None = None  # RUNNING executions
    deployments: list[dict] | None = None  # the namespace's (source "workloads")
    hpas: list[dict] | None = None
    pdbs: list[dict] | None = None
    stuck_after: float = 3600.0
    now: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)

    def log(self, pod: str, container: str) -> list[str]:
        return self.logs.get((pod, container), [])


def _matching(lines: list[str], rx: re.Pattern, limit: int = 5) -> list[str]:
    return [f"  | {line.strip()}" for line in lines if rx.search(line)][:limit]


def crashing(snap: Snapshot) -> Iterator[tuple[Any, list[str]]]:
    """(problem, its log lines) for every failing pod or container."""
    for pod in snap.pods or []:
        for p in pod_problems(pod):
            if p.status == "fail":
                yield p, snap.log(p.pod, p.container or "")


def datasource_missing(snap: Snapshot) -> Iterator[Item]:
    evidence = []
    for p, lines in crashing(snap):
        hits = _matching(lines, DATASOURCE_RE)
        if hits and not _matching(lines, PG_AUTH_RE):
            evidence += [p.line()] + hits
    missing = missing_sections(snap.application) if snap.application is not None else []
    if "datasources.default" in missing:
        evidence.append("configmap kestra-config: application.yml has no datasources.default")
    if evidence:
        yield finding("datasource-missing", FAIL, "Kestra fails on its DataSource (Micronaut): "
                      "the datasources.default section is missing or wrong", evidence,
                      "carry all three sections (datasources.default, datasources.postgres and "
                      "kestra.datasources.postgres, same url/username/password) in the values "
                      f"and redeploy: `kestra-ops deploy --env {snap.env}`; to fix the running "
                      f"server first: `kestra-ops config patch --env {snap.env} --file "
                      "PATCH.yaml --persist`")
    other = [m for m in missing if m != "datasources.default"]
    if other:
        yield finding("configmap-sections", FAIL, f"configmap kestra-config lacks "
                      f"{', '.join(other)}", [f"missing: {m}" for m in other],
                      f"add the missing sections to the values, then `kestra-ops deploy --env "
                      f"{snap.env}`")


def crashloop(snap: Snapshot) -> Iterator[Item]:
    """Failing pods no other rule explains (PostgreSQL's own pod: see :func:`postgres`)."""
    for p, lines in crashing(snap):
        if p.pod == POSTGRES_POD or _matching(lines, DATASOURCE_RE) or \
                _matching(lines, PG_AUTH_RE):
            continue
        kind = "crashloop" if "CrashLoopBackOff" in p.reason else "pod-failing"
        yield finding(kind, FAIL, p.line(), [f"  | {line}" for line in lines[-10:]],
                      f"read the container's log (above); `kestra-ops check --env {snap.env} "
                      "--only pods,events` shows every pod and Warning event")


def basic_auth(snap: Snapshot) -> Iterator[Item]:
    evidence = list(snap.auth_errors or [])
    if snap.auth_configs is not None and snap.auth_configs.get("isBasicAuthInitialized") is False:
        evidence.append("GET /api/v1/configs: isBasicAuthInitialized is false")
    if snap.login_error:
        evidence.append(snap.login_error)
    if evidence:
        yield finding("basic-auth", FAIL, "login to Kestra fails (basic auth)", evidence,
                      "the username (kestra.server.basic-auth.username) must be an e-mail "
                      "address; the password 8+ characters with an upper-case letter, a "
                      "lower-case letter and a digit (256 at most). Fix the values or the "
                      f"Secret (`kestra-ops secrets apply --env {snap.env}`), then redeploy "
                      f"(`kestra-ops deploy --env {snap.env}`); kestra-ops itself logs in with "
                      "KESTRA_OPS_BASIC_AUTH_USERNAME / KESTRA_OPS_BASIC_AUTH_PASSWORD")


def rbac(snap: Snapshot) -> Iterator[Item]:
    if snap.rbac is not None and snap.rbac.status == "fail":
        yield finding("rbac", FAIL, f"missing permissions: {snap.rbac.reason}",
                      list(snap.rbac.details) or [snap.rbac.reason],
                      "grant them to the deploying service account (a Role and RoleBinding in "
                      "the namespace; cross-namespace Secret access for CI accounts), then "
                      f"check again with `kestra-ops preflight --env {snap.env}`")


def minio_dns(snap: Snapshot) -> Iterator[Item]:
    from kestra_ops.values.rules import CLUSTER_DNS_RE

    endpoint = get_path(snap.application, ("kestra", "storage", "minio", "endpoint")) \
        if snap.application is not None else None
    if isinstance(endpoint, str):
        host = endpoint.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
        if not CLUSTER_DNS_RE.match(host):
            yield finding("minio-dns", FAIL, f"Kestra reaches MinIO at {endpoint!r}, not by "
                          "cluster-internal DNS", [f"configmap kestra-config: kestra.storage."
                                                   f"minio.endpoint = {endpoint}"],
                          "use the shared MinIO's service name (e.g. minio.hyperplane-minio."
                          "svc.cluster.local, port 9000) in kestra.storage.minio.endpoint and "
                          f"redeploy: `kestra-ops deploy --env {snap.env}`")


def minio_health(snap: Snapshot) -> Iterator[Item]:
    if snap.minio_health:
        yield finding("minio-health", FAIL, f"MinIO health fails at {snap.minio_url}",
                      [snap.minio_health],
                      "check the MinIO service and its pods in the MinIO namespace, and "
                      f"minio.endpoint of this environment; `kestra-ops check --env {snap.env} "
                      "--only minio` checks again")


def postgres(snap: Snapshot) -> Iterator[Item]:
    if snap.pods is not None:
        pod = next((p for p in snap.pods if p["metadata"]["name"] == POSTGRES_POD), None)
        ready, state = pod_readiness(pod) if pod else (False, "does not exist")
        if not ready:
            lines = [f"  | {line}" for line in snap.log(POSTGRES_POD, "postgres")[-10:]]
            yield finding("postgres-pod", FAIL, f"PostgreSQL pod {POSTGRES_POD} is not "
                          "ready", [f"pod {POSTGRES_POD}: {state}"] + lines,
                          "look at the StatefulSet kestra-postgres, its PersistentVolumeClaim "
                          f"and events (`kestra-ops check --env {snap.env} --only events`); "
                          "Kestra cannot start without its database")
    evidence = []
    for (pod, container), lines in sorted(snap.logs.items()):
        hits = _matching(lines, PG_AUTH_RE, 3)
        if hits:
            evidence += [f"pod {pod} container {container}:"] + hits
    if evidence:
        yield finding("postgres-auth", FAIL, "PostgreSQL refuses Kestra's password", evidence,
                      "the database Secret (existingSecrets.database) must hold the password "
                      "PostgreSQL was initialised with (it keeps its first password in the "
                      "volume); set it back with `kestra-ops secrets apply --env "
                      f"{snap.env}`, then restart with `kestra-ops deploy --env {snap.env}`")


def blacklisted(snap: Snapshot) -> Iterator[Item]:
    if snap.blacklisted:
        yield finding("blacklisted-plugin", FAIL, f"{len({b[0] for b in snap.blacklisted})} "
                      "flow(s) use a blacklisted plugin type",
                      [f"{flow}: {path}: {ptype} (blacklisted by {pattern!r})"
                       for flow, path, ptype, pattern in snap.blacklisted],
                      "OSS Kestra does not enforce kestra.plugins.blacklist: replace these "
                      "tasks (e.g. a script task with the process task runner) or delete the "
                      "flows, and refuse them before deploy with `kestra-ops flows validate "
                      f"flows/ --env {snap.env}`")


def unknown_plugins(snap: Snapshot) -> Iterator[Item]:
    if snap.invalid:
        yield finding("unknown-plugin", FAIL, f"{len({f for f, _ in snap.invalid})} flow(s) "
                      "use a plugin type this server does not know",
                      [f"{flow}: {constraint}" for flow, constraint in snap.invalid],
                      "install the plugin on the server (or fix the type); these flows fail "
                      "at run time")


def stuck_executions(snap: Snapshot) -> Iterator[Item]:
    from kestra_ops.checks import parse_time

    stuck = []
    for ex in snap.running or []:
        started = parse_time((ex.get("state") or {}).get("startDate"))
        if started is not None and snap.now - started.timestamp() > snap.stuck_after:
            stuck.append(f"{ex.get('namespace')}.{ex.get('flowId')} execution {ex.get('id')} "
                         f"RUNNING for {age(snap.now - started.timestamp())}")
    if stuck:
        yield finding("stuck-executions", WARN, f"{len(stuck)} execution(s) RUNNING for more "
                      f"than {age(snap.stuck_after)}", stuck,
                      "look at their logs in the UI; kill the ones that hang (UI or DELETE "
                      "/api/v1/main/executions/ID/kill); many at once usually mean the worker "
                      "is saturated (raise standalone.workerThreads) or was restarted "
                      "mid-task")


def release(snap: Snapshot) -> Iterator[Item]:
    if snap.release is not None and "pending-" in snap.release.reason:
        yield finding("release-pending", FAIL, "the Helm release is stuck in pending-* and "
                      "blocks the next upgrade", [snap.release.reason],
                      f"roll back to the last deployed revision: `kestra-ops rollback --env "
                      f"{snap.env}` (or `kestra-ops deploy --env {snap.env} --repair`)")


def unreachable(snap: Snapshot) -> Iterator[Item]:
    if snap.kestra_error:
        yield finding("kestra-unreachable", FAIL, "Kestra's API cannot be used",
                      [snap.kestra_error],
                      "check the kestra pods and Service (`kestra-ops check --env "
                      f"{snap.env} --only pods,readiness,kestra-api`), or pass --kestra-url")


FINDINGS = [
    Rule((("datasource-missing", "a pod crash-loops with DataSource / Micronaut errors in its "
           f"log, or ConfigMap {CONFIGMAP} has no datasources.default"),
          ("configmap-sections", f"ConfigMap {CONFIGMAP} lacks datasources.postgres or "
           "kestra.datasources.postgres")), datasource_missing, needs=("pods", "configmap")),
    Rule((("crashloop", "any other crash-looping pod (with its last log lines)"),
          ("pod-failing", "any other failing pod: an image that cannot be pulled, an error "
           "exit, not schedulable")), crashloop, needs=("pods",)),
    Rule((("postgres-pod", f"{POSTGRES_POD} missing or not ready"),
          ("postgres-auth", "\"password authentication failed\" in PostgreSQL's or Kestra's "
           "log")), postgres, needs=("pods",)),
    Rule((("basic-auth", "login fails, or basicAuthValidationErrors is not empty"),),
         basic_auth, needs=("kestra", "basic-auth")),
    Rule((("rbac", "a permission the deploy needs is missing"),), rbac, needs=("rbac",)),
    Rule((("minio-dns", "Kestra reaches MinIO by something else than a cluster-internal "
           "name"),), minio_dns, needs=("configmap",)),
    Rule((("minio-health", "MinIO's /minio/health/live (or /cluster) fails"),), minio_health,
         needs=("minio",)),
    Rule((("blacklisted-plugin", "a flow uses a type of kestra.plugins.blacklist (live "
           "ConfigMap)"),), blacklisted, needs=("flows", "configmap", "blacklist")),
    Rule((("unknown-plugin", "the server's validation does not know a flow's plugin type"),),
         unknown_plugins, needs=("flows",)),
    Rule((("stuck-executions", "executions RUNNING for longer than --stuck-after"),),
         stuck_executions, needs=("executions",)),
    Rule((("release-pending", "the Helm release is stuck in pending-*"),), release,
         needs=("release",)),
    Rule((("kestra-unreachable", "Kestra's API cannot be used at all"),), unreachable,
         needs=()),
]


def diagnose(snap: Snapshot, rules=None) -> list[Item]:
    """Every problem the rules find (``rules``: the registry's, by default)."""
    if rules is None:
        from kestra_ops.checks.registry import rules as registered

        rules = registered()
    return [found for rule in rules for found in rule.run(snap)]
