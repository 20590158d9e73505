"""doctor: walk the troubleshooting guide against a live environment; every problem found comes
with its evidence and its fix.

What is looked at (concurrently; each source that cannot be read is named in ``not_checked``,
never silently skipped): the pods and their containers' logs (the previous, crashed instance
too), ConfigMap kestra-config, the permissions a deploy needs (preflight's RBAC check), the
Helm release (preflight's release check), MinIO's health, and through Kestra's API: basic-auth
state, every flow (exported in one ZIP, checked against the live ``kestra.plugins.blacklist``
and the server's validate endpoint) and the RUNNING executions. The rules themselves are pure
functions in :mod:`kestra_ops.checks.doctor_rules`.
"""

from __future__ import annotations

import io
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from kestra_ops.checks import SIDECAR
from kestra_ops.checks.doctor_rules import UNKNOWN_TYPE_RE, Finding, Snapshot, diagnose
from kestra_ops.errors import KestraOpsError, PermissionDenied
from kestra_ops.settings import Environment

LOG_LINES = 50


@dataclass
class DoctorReport:
    env: str
    namespace: str
    findings: list[Finding] = field(default_factory=list)
    not_checked: dict[str, str] = field(default_factory=dict)
    looked_at: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict:
        return {"env": self.env, "namespace": self.namespace, "ok": self.ok,
                "exit_code": self.exit_code, "seconds": round(self.seconds, 3),
                "findings": [f.to_dict() for f in self.findings],
                "not_checked": dict(self.not_checked), "looked_at": list(self.looked_at)}


# --------------------------------------------------------------------------- fetchers

def _logs_to_read(pods: list[dict]) -> list[tuple[str, str, bool]]:
    """(pod, container, previous) for every non-sidecar container that ran."""
    wanted = []
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs["name"] == SIDECAR:
                continue
            state = cs.get("state") or {}
            if (cs.get("lastState") or {}).get("terminated"):
                wanted.append((pod["metadata"]["name"], cs["name"], True))
            elif state.get("running") or state.get("terminated"):
                wanted.append((pod["metadata"]["name"], cs["name"], False))
    return wanted


def _cluster(snap: Snapshot, env: Environment, kube) -> None:
    from kestra_ops.checks import configmap, pods

    try:
        snap.pods = pods.live(pods.fetch_pods(kube, env.namespace))
        snap.logs = pods.fetch_logs(kube, env.namespace, _logs_to_read(snap.pods),
                                    lines=LOG_LINES)
    except KestraOpsError as err:
        snap.errors["pods"] = str(err)
    try:
        app, why = configmap.parse_application(configmap.fetch_configmap(kube, env.namespace))
        snap.application = app
        if app is None:
            snap.errors["configmap"] = why
    except KestraOpsError as err:
        snap.errors["configmap"] = str(err)


def _minio(snap: Snapshot, env: Environment, insecure: bool) -> None:
    from kestra_ops.checks import storage

    url, live, cluster, why = storage.fetch_minio(env, insecure=insecure)
    snap.minio_url = url
    if url is None:
        snap.errors["minio"] = why
        return
    result = storage.check_minio(url, live, cluster)
    snap.minio_health = "" if result.status != "fail" else result.reason


def _kestra(snap: Snapshot, env: Environment, kube, kestra_url, insecure: bool) -> None:
    from kestra_ops.wiring import client_for_env

    try:
        client = client_for_env(env, kube=kube, kestra_url=kestra_url, insecure=insecure,
                                retries=1)
    except KestraOpsError as err:
        snap.kestra_error = str(err)
        return
    with client:
        try:
            snap.auth_configs = client.configs()
        except KestraOpsError as err:
            snap.kestra_error = str(err)
            return
        try:
            snap.auth_errors = client.basic_auth_validation_errors()
        except PermissionDenied as err:
            snap.login_error = str(err)
            snap.errors["flows"] = snap.errors["executions"] = "login failed"
            return
        except KestraOpsError as err:
            snap.errors["basic-auth"] = str(err)
        try:
            _flows(snap, client)
        except KestraOpsError as err:
            snap.errors["flows"] = str(err)
        try:
            snap.running = list(client.search_executions(state="RUNNING"))
        except KestraOpsError as err:
            snap.errors["executions"] = str(err)


def _flows(snap: Snapshot, client) -> None:
    """Every flow's source (one ZIP), its plugin types against the blacklist, and the server's
    own validation (one request)."""
    from kestra_ops.workflows.flows_local import parse_flow, plugin_types

    sources: list[tuple[str, str]] = []
    with zipfile.ZipFile(io.BytesIO(client.export_flows())) as archive:
        for name in sorted(archive.namelist()):
            if name.endswith((".yml", ".yaml")):
                sources.append((name, archive.read(name).decode("utf-8", errors="replace")))
    names = []
    for file, text in sources:
        try:
            flow = parse_flow(text, file)
        except KestraOpsError as err:
            snap.errors[f"flow {file}"] = str(err)
            names.append(file)
            continue
        names.append(f"{flow.namespace}.{flow.id}")
        snap.flows.append({"name": names[-1], "types": list(plugin_types(flow.data))})
    if not sources:
        return
    for result in client.validate_flows("\n---\n".join(text for _, text in sources)):
        constraint = str(result.get("constraints") or "")
        if constraint and UNKNOWN_TYPE_RE.search(constraint):
            index = int(result.get("index") or 0)
            name = f"{result['namespace']}.{result['flow']}" if result.get("flow") and \
                result.get("namespace") else names[index] if index < len(names) else f"#{index}"
            snap.invalid.append((name, constraint))


def _blacklisted(snap: Snapshot) -> None:
    """Every plugin type of every flow against the live ``kestra.plugins.blacklist`` (once both
    the ConfigMap and the flows are read)."""
    from kestra_ops.checks.configmap import get_path
    from kestra_ops.workflows.flows_local import Blacklist

    if snap.application is None:
        return
    patterns = get_path(snap.application, ("kestra", "plugins", "blacklist"))
    snap.blacklist = tuple(p for p in patterns or [] if isinstance(p, str))
    if not snap.blacklist:
        snap.errors["blacklist"] = "kestra.plugins.blacklist is empty or not set in configmap " \
                                   "kestra-config"
    blacklist = Blacklist(snap.blacklist, "configmap kestra-config")
    for flow in snap.flows:
        for path, plugin_type in flow["types"]:
            pattern = blacklist.match(plugin_type, prefix=path[0] in ("pluginDefaults",
                                                                      "taskDefaults"))
            if pattern:
                snap.blacklisted.append((flow["name"], _path(path), plugin_type, pattern))


def _path(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --------------------------------------------------------------------------- workflow

def run_doctor(env: Environment, *, kestra_url: str | None = None, insecure: bool = False,
               stuck_after: float = 3600.0, kube=None, helm: str | None = None,
               progress=None) -> DoctorReport:
    """Gather the snapshot (concurrently) and apply every rule (see the module doc)."""
    from kestra_ops.workflows.preflight import check_rbac, check_release

    started = time.perf_counter()
    snap = Snapshot(env.name, env.namespace, stuck_after=stuck_after, now=time.time())
    owned = kube is None
    if kube is None:
        from kestra_ops.adapters.kube import connect

        try:
            kube = connect(env)
        except KestraOpsError as err:
            snap.errors["kubernetes"] = str(err)
    note = (lambda m: progress.update(m)) if progress is not None else (lambda m: None)
    from kestra_ops.concurrency import preload

    preload("requests", "yaml")  # the rules' fetchers run in threads and share these
    try:
        with ThreadPoolExecutor(max_workers=5, thread_name_prefix="doctor") as pool:
            jobs = {"minio": pool.submit(_minio, snap, env, insecure),
                    "kestra": pool.submit(_kestra, snap, env, kube, kestra_url, insecure),
                    "release": pool.submit(check_release, env, helm=helm)}
            if kube is not None:
                jobs["cluster"] = pool.submit(_cluster, snap, env, kube)
                jobs["rbac"] = pool.submit(check_rbac, kube, env.namespace, env.chart_path)
            for name, job in jobs.items():
                note(f"looking at {name}")
                value = job.result()
                if name in ("release", "rbac"):
                    _judged(snap, name, value)
    finally:
        if owned and kube is not None:
            kube.close()
    _blacklisted(snap)
    report = DoctorReport(env.name, env.namespace, diagnose(snap), dict(snap.errors))
    report.looked_at = _looked_at(snap)
    report.seconds = time.perf_counter() - started
    return report


def _judged(snap: Snapshot, name: str, check) -> None:
    """Keep a preflight check that judged something; one that could not run is not_checked
    (helm missing is not a stuck release, an unreachable API not a missing permission)."""
    judged = check.status != "fail" or (name == "rbac" and check.details) or \
        (name == "release" and "pending-" in check.reason)
    if judged:
        setattr(snap, name, check)
    else:
        snap.errors[name] = check.reason


def _looked_at(snap: Snapshot) -> list[str]:
    seen = []
    if snap.pods is not None:
        seen.append(f"{len(snap.pods)} pod(s), {len(snap.logs)} container log(s)")
    if snap.application is not None:
        seen.append("configmap kestra-config")
    if snap.rbac is not None:
        seen.append(f"permissions ({snap.rbac.reason})")
    if snap.release is not None:
        seen.append(f"release ({snap.release.reason})")
    if snap.minio_url:
        seen.append(f"MinIO health at {snap.minio_url}")
    if snap.auth_configs is not None:
        seen.append("Kestra basic-auth state")
    if "flows" not in snap.errors and snap.auth_configs is not None:
        seen.append(f"{len(snap.flows)} flow(s) (blacklist: "
                    f"{', '.join(snap.blacklist) or 'none'})")
    if snap.running is not None:
        seen.append(f"{len(snap.running)} RUNNING execution(s)")
    return seen
