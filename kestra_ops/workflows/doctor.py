"""doctor: walk the troubleshooting guide against a live environment; every problem found comes
with its evidence and its fix.

What is looked at (concurrently; each source that cannot be read is named in ``not_checked``,
never silently skipped, with the findings it leaves unchecked): the pods and their containers'
logs (the previous, crashed instance too), ConfigMap kestra-config, the permissions a deploy
needs (preflight's RBAC check), the Helm release (preflight's release check), MinIO's health,
and through Kestra's API: basic-auth state, every flow (exported in one ZIP, checked against
the live ``kestra.plugins.blacklist`` and the server's validate endpoint) and the RUNNING
executions. The rules themselves are pure functions declared in
:mod:`kestra_ops.checks.doctor_rules` (the registry gathers them). :func:`run_doctor` returns
the command's :class:`~kestra_ops.results.Report`: the findings as items (``findings`` in
JSON), each source looked at as a step (``skip`` when it could not be read).
"""

from __future__ import annotations

import io
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

from kestra_ops.chart import CONFIGMAP, SIDECAR
from kestra_ops.checks import registry
from kestra_ops.checks.doctor_rules import UNKNOWN_TYPE_RE, Snapshot, diagnose
from kestra_ops.errors import KestraOpsError, PermissionDenied
from kestra_ops.results import FAIL, PASS, SKIP, WARN, Report, Step, worst
from kestra_ops.settings import Environment

LOG_LINES = 50
doctor_help = registry.doctor_help  # the command's help lists the findings from here


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
    from kestra_ops.adapters.kube_read import KubeReader
    from kestra_ops.checks import configmap, pods

    reader = KubeReader(kube)
    try:
        snap.pods = pods.live(reader.pods(env.namespace))
        snap.logs = pods.fetch_logs(reader, env.namespace, _logs_to_read(snap.pods),
                                    lines=LOG_LINES)
    except KestraOpsError as err:
        snap.errors["pods"] = str(err)
    try:
        snap.deployments = reader.objects("deployments", env.namespace, group_version="apps/v1")
        snap.hpas = _optional(reader, env, "horizontalpodautoscalers", "autoscaling/v2")
        snap.pdbs = _optional(reader, env, "poddisruptionbudgets", "policy/v1")
    except KestraOpsError as err:
        snap.errors["workloads"] = str(err)
    try:
        app, why = configmap.parse_application(configmap.fetch_configmap(reader, env.namespace))
        snap.application = app
        if app is None:
            snap.errors["configmap"] = why
    except KestraOpsError as err:
        snap.errors["configmap"] = str(err)


def _minio(snap: Snapshot, env: Environment, insecure: bool) -> None:
    from kestra_ops.adapters.minio_health import HealthProbe, base_url
    from kestra_ops.checks import storage

    snap.minio_url = url = base_url(env.minio_endpoint, env.minio_secure)
    if url is None:
        snap.errors["minio"] = storage.NO_ENDPOINT
        return
    from kestra_ops.workflows.check import kestra_bucket

    result = storage.minio_verdict(HealthProbe(url, verify=not insecure,
                                               ca_file=env.minio_ca_file), "",
                                   lambda: kestra_bucket(env, insecure, 10.0))
    snap.minio_health = "" if result.status != FAIL else result.reason


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
    from kestra_ops.workflows.flows.local import parse_flow, plugin_types

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
    from kestra_ops.workflows.flows.local import Blacklist

    if snap.application is None:
        return
    patterns = get_path(snap.application, ("kestra", "plugins", "blacklist"))
    snap.blacklist = tuple(p for p in patterns or [] if isinstance(p, str))
    if not snap.blacklist:
        snap.errors["blacklist"] = ("kestra.plugins.blacklist is empty or not set in configmap "
                                    f"{CONFIGMAP}")
    blacklist = Blacklist(snap.blacklist, f"configmap {CONFIGMAP}")
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
               progress=None) -> Report:
    """Gather the snapshot (concurrently), apply every rule, and report (see the module doc).
    Exit 0 when every source was read and no problem is found; 1 when one is (a warning too),
    or when a source could not be read (the verdict then says "not checked", never "no
    problems found")."""
    from kestra_ops.workflows.deploy.preflight import check_rbac, check_release

    started = time.perf_counter()
    snap = Snapshot(env.name, env.namespace, stuck_after=stuck_after, now=time.time())
    owned = kube is None
    if kube is None:
        from kestra_ops import wiring
        from kestra_ops.adapters.kube import require_config

        require_config(env)  # no kubeconfig is invalid input (exit 2), not a "not checked"
        try:
            kube = wiring.kube(env)
        except KestraOpsError as err:
            snap.errors["kubernetes"] = str(err)
    note = (lambda m: progress.update(m)) if progress is not None else (lambda m: None)
    from kestra_ops.concurrency import preload

    preload("requests", "yaml")  # the rules' fetchers run in threads and share these
    seconds: dict[str, float] = {}
    try:
        with ThreadPoolExecutor(max_workers=5, thread_name_prefix="doctor") as pool:
            jobs = {"minio": pool.submit(_timed, seconds, "minio", _minio, snap, env, insecure),
                    "kestra": pool.submit(_timed, seconds, "kestra", _kestra, snap, env, kube,
                                          kestra_url, insecure),
                    "release": pool.submit(_timed, seconds, "release", check_release, env,
                                           helm=helm)}
            if kube is not None:
                jobs["cluster"] = pool.submit(_timed, seconds, "cluster", _cluster, snap, env,
                                              kube)
                jobs["rbac"] = pool.submit(_timed, seconds, "rbac", check_rbac, kube,
                                           env.namespace, env.chart_path)
            for name, job in jobs.items():
                note(f"looking at {name}")
                value = job.result()
                if name in ("release", "rbac"):
                    _judged(snap, name, value)
    finally:
        if owned and kube is not None:
            kube.close()
    if progress is not None and hasattr(progress, "clear"):  # the transient status line off
        progress.clear()
    _blacklisted(snap)
    return _report(env, snap, diagnose(snap), seconds, time.perf_counter() - started)


def _timed(seconds: dict, name: str, fn, *args, **kwargs):
    started = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        seconds[name] = time.perf_counter() - started


def _judged(snap: Snapshot, name: str, check) -> None:
    """Keep a preflight check that judged something; one that could not run is not_checked
    (helm missing is not a stuck release, an unreachable API not a missing permission)."""
    judged = check.status != FAIL or (name == "rbac" and check.details) or \
        (name == "release" and "pending-" in check.reason)
    if judged:
        setattr(snap, name, check)
    else:
        snap.errors[name] = check.reason


# source -> the job that reads it (for its time)
def _optional(reader, env: Environment, plural: str, group_version: str) -> list[dict]:
    """The objects of a kind whose API the cluster may not serve (404: none)."""
    from kestra_ops.errors import NotFound

    try:
        return reader.objects(plural, env.namespace, group_version=group_version)
    except NotFound:
        return []


_JOBS = {"pods": "cluster", "configmap": "cluster", "workloads": "cluster", "rbac": "rbac",
         "release": "release",
         "minio": "minio", "kestra": "kestra", "basic-auth": "kestra", "flows": "kestra",
         "blacklist": "kestra", "executions": "kestra"}


def _sources(snap: Snapshot) -> list[tuple[str, str | None, str | None]]:
    """(source, what was read there, its ``looked_at`` line) for every source, in order;
    (source, None, None) when it was not read (snap.errors or _unread say why)."""
    out: list[tuple[str, str | None, str | None]] = []

    def seen(source: str, what: str | None, line: str | None = None) -> None:
        out.append((source, what, line or what))

    seen("pods", None if snap.pods is None else
         f"{len(snap.pods)} pod(s), {len(snap.logs)} container log(s)")
    seen("configmap", None if snap.application is None else f"configmap {CONFIGMAP}")
    seen("workloads", None if snap.deployments is None else
         f"{len(snap.deployments)} deployment(s), {len(snap.hpas or [])} autoscaler(s), "
         f"{len(snap.pdbs or [])} disruption budget(s)")
    for source, check, label in (("rbac", snap.rbac, "permissions"),
                                 ("release", snap.release, "release")):
        seen(source, None if check is None else check.reason,
             None if check is None else f"{label} ({check.reason})")
    seen("minio", f"health at {snap.minio_url}" if snap.minio_url else None,
         f"MinIO health at {snap.minio_url}")
    seen("kestra", None if snap.auth_configs is None else "Kestra basic-auth state")
    flows = "flows" not in snap.errors and snap.auth_configs is not None
    seen("flows", f"{len(snap.flows)} flow(s) (blacklist: {', '.join(snap.blacklist) or 'none'})"
         if flows else None)
    seen("executions", None if snap.running is None else
         f"{len(snap.running)} RUNNING execution(s)")
    return [(source, what, line if what is not None else None) for source, what, line in out]


def _unread(snap: Snapshot) -> dict[str, str]:
    """source -> why it was not read (a source behind an unreadable one included)."""
    why = dict(snap.errors)
    if "kubernetes" in why:
        for source in ("pods", "configmap", "workloads", "rbac"):
            why.setdefault(source, why["kubernetes"])
    if snap.kestra_error:
        for source in ("kestra", "basic-auth", "flows", "blacklist", "executions"):
            why.setdefault(source, f"Kestra's API cannot be used: {snap.kestra_error}")
    return why


def _report(env: Environment, snap: Snapshot, found: list, seconds: dict,
            total: float) -> Report:
    sources = _sources(snap)
    looked_at = [line for _, _, line in sources if line is not None]
    report = Report("doctor", env.name, title=f"doctor {env.name} (namespace {env.namespace})",
                    items=found, items_key="findings")
    unread = _unread(snap)
    for source, what, _ in sources:
        took = seconds.get(_JOBS[source], 0.0)
        if what is not None:
            report.steps.append(Step(source, PASS, what, took))
        elif source in unread:
            report.steps.append(Step(source, SKIP, unread[source], took))
    for key, why in snap.errors.items():  # what else was not read (a flow's file, kubernetes)
        if key not in {source for source, _, _ in sources}:
            report.steps.append(Step(key, SKIP, why, seconds.get(_JOBS.get(key, ""), 0.0)))
    for rule in registry.rules():
        missing = [s for s in rule.needs if s in unread]
        if missing:
            report.details.append(f"not checked: {', '.join(rule.ids)} ({missing[0]}: "
                                  f"{unread[missing[0]]})")
    errors = sum(f.status == FAIL for f in found)
    names = {source for source, _, _ in sources}
    skipped = [source for source, _, _ in sources if source in unread] + \
        [key for key in snap.errors if key not in names]
    # a source not read is not a clean bill of health: it is named in the verdict, exit 1
    report.status = worst([*(f.status for f in found), *([WARN] if skipped else [])])
    report.exit_code = 1 if found or skipped else 0
    gap = (f"not checked: {', '.join(skipped)} ({skipped[0]}: {unread[skipped[0]]})"
           if skipped else "")
    if found:
        report.message = (f"doctor {env.name}: {len(found)} problem(s) found ({errors} "
                          f"error(s), {len(found) - errors} warning(s))"
                          + (f"; {gap}" if gap else ""))
    elif skipped:
        report.message = (f"doctor {env.name}: {gap}; no problem found in what could be read")
    else:
        report.message = f"doctor {env.name}: no problems found"
    report.data = {"namespace": env.namespace, "ok": not found and not skipped,
                   "seconds": round(total, 3), "not_checked": dict(snap.errors),
                   "looked_at": looked_at}
    if not found:  # scripts read the key even when empty (the items fill it otherwise)
        report.data["findings"] = []
    return report
