"""Each Kestra server component on its own (``components``): the standalone server, or each
Deployment of a distributed install (webserver, executor, scheduler, worker), recognised as the
doctor recognises them (:func:`kestra_ops.checks.workloads.component_of`). Per component:

* **rollout**: the Deployment's generation observed by its controller, every replica updated
  and ready (``readyReplicas`` of ``spec.replicas``), no old pod left, the progress deadline
  not exceeded (what ``kubectl rollout status`` waits for); a distributed install missing one
  of its four Deployments fails; a component scaled to 0 is a warning;
* **restarts since the last deploy**: each pod judged by the pods family's own judge
  (:func:`kestra_ops.checks.pods.pod_problems`: a crash loop, an image that cannot be pulled,
  an error exit fail; a container that restarted and runs again warns), a restart whose last
  termination ended before the last deploy (the Helm revision's time, as the ``events`` item
  finds it) being history;
* **health**: ``GET /health`` on the management port of every running pod, through the API
  server's pod proxy (no port-forward, no ClusterIP). Kestra's management server listens on
  ``endpoints.all.port`` 8081 (kestra-io/kestra cli/src/main/resources/application.yml) and
  answers ``/health`` without credentials (../shared/kestra-facts.md, "Management port 8081
  (no basic auth)"); the port is read from the pod's container port named ``management``
  (the chart's, charts/kestra/templates/_helpers.tpl), 8081 when none is named. The pod proxy
  needs a numeric port: ``service.managementPort`` is the Service's port, not the pod's.
  An answer that is not 200 with ``"status": "UP"`` fails the component. No answer from the
  pod (the API server could not reach it, or refused us ``get`` on ``pods/proxy``) is a
  warning that says why: a NetworkPolicy or a mesh in STRICT mTLS may keep the API server
  from the pod while the kubelet's own probes pass, and the ``readiness`` item judges those.

Kestra's own view of its running servers is not judged: the OSS API has no endpoint for it.
../shared/kestra-openapi.yml (Kestra 1.3.0) has none; the Enterprise API lists them at
``GET /api/v1/instance/services/active`` ("Requires a role with the INFRASTRUCTURE permission
(Superadmin-only)": kestra-io/client-sdk python-sdk/docs/InstanceApi.md), which kestra-ops does
not call. The item says so in its details.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from kestra_ops.chart import DISTRIBUTED_DEPLOYMENTS
from kestra_ops.checks import parse_time
from kestra_ops.checks.declare import Check
from kestra_ops.checks.pods import live, pod_problems
from kestra_ops.checks.workloads import kestra_deployments
from kestra_ops.results import FAIL, PASS, WARN, Item, worst

ORDER = 15  # after the pods and their readiness, before the events
MANAGEMENT_PORT = 8081  # Kestra's endpoints.all.port (see the module doc)
HEALTH_PATH = "/health"
SERVERS_VIEW = ("Kestra's own view of its servers: not in the OSS API (the Enterprise "
                "GET /api/v1/instance/services/active is Superadmin-only); not judged")


@dataclass(frozen=True)
class Health:
    """One pod's answer to ``GET /health`` through the pod proxy: the HTTP status and body, or
    ``error`` when nothing answered."""

    code: int | None = None
    body: bytes = b""
    error: str = ""


@dataclass
class Verdict:
    """One component judged: its status, its one line, and its evidence as data."""

    component: str
    deployment: str
    status: str
    line: str
    data: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- judges

def _json(body: bytes) -> dict | None:
    try:
        value = json.loads(body.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def judge_health(answer: Health) -> tuple[str, str]:
    """(status, why) of one pod's health answer: PASS for 200 + UP, FAIL for any other answer
    from the pod, WARN when the pod was not reached (the API server's own Status object: its
    refusal or a pod it could not dial) or nothing answered."""
    if answer.code is None:
        return WARN, f"no answer ({answer.error or 'unknown error'})"
    doc = _json(answer.body) or {}
    if doc.get("kind") == "Status" and doc.get("apiVersion") == "v1":  # the API server's
        message = str(doc.get("message") or doc.get("reason") or answer.code)
        if answer.code == 403:
            return WARN, f"not checked: needs get on pods/proxy ({message})"
        if doc.get("status") == "Failure":
            return WARN, f"not reached through the API server's pod proxy ({message})"
    state = doc.get("status")
    if answer.code == 200 and state == "UP":
        return PASS, "UP"
    shown = state if isinstance(state, str) else "no health status in the answer"
    return FAIL, f"{shown} (HTTP {answer.code})"


def judge_rollout(dep: dict) -> tuple[str, str, dict]:
    """(status, why, numbers) of a Deployment's rollout, as ``kubectl rollout status`` waits
    for it: generation observed, every replica updated and ready, no old pod left."""
    meta, spec, status = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
    desired = spec.get("replicas", 1)
    desired = desired if isinstance(desired, int) else 1
    ready = status.get("readyReplicas") or 0
    updated = status.get("updatedReplicas") or 0
    total = status.get("replicas") or 0
    generation, observed = meta.get("generation") or 0, status.get("observedGeneration") or 0
    numbers = {"desired": desired, "ready": ready, "updated": updated,
               "generation": generation, "observed_generation": observed}
    stuck = next((c for c in status.get("conditions") or [] if c.get("type") == "Progressing"
                  and c.get("reason") == "ProgressDeadlineExceeded"), None)
    if observed < generation:
        return FAIL, f"generation {generation} not yet observed (observed {observed})", numbers
    if stuck is not None:
        return FAIL, f"progress deadline exceeded: {stuck.get('message') or '?'}", numbers
    if updated < desired:
        return FAIL, f"{updated} of {desired} replicas updated, {ready} ready", numbers
    if total > updated:
        return FAIL, f"{total - updated} old replica(s) still terminating", numbers
    if ready < desired:
        return FAIL, f"{ready} of {desired} ready", numbers
    if desired == 0:
        return WARN, "scaled to 0 replicas", numbers
    return PASS, f"{ready}/{desired} ready", numbers


def _last_finished(pod: dict, container: str | None):
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == container:
            return parse_time(((cs.get("lastState") or {}).get("terminated") or {})
                              .get("finishedAt"))
    return None


def judge_restarts(pods: list[dict], since) -> tuple[str, list[str], int]:
    """(status, problem lines, restarts since ``since``) of a component's pods, each judged by
    :func:`~kestra_ops.checks.pods.pod_problems`; a restart that ended before ``since`` (the
    last deploy; None: every restart counts) is history."""
    status, lines, restarts = PASS, [], 0
    for pod in pods:
        for problem in pod_problems(pod):
            if problem.status == FAIL:
                status = FAIL
                lines.append(problem.line())
                restarts += problem.restarts
                continue
            ended = _last_finished(pod, problem.container)
            if since is not None and ended is not None and ended < since:
                continue  # restarted before the last deploy: history
            status = worst([status, WARN])
            lines.append(problem.line() + " since the last deploy")
            restarts += problem.restarts
    return status, lines, restarts


def management_port(pod: dict) -> int:
    """The pod's container port named ``management`` (8081, Kestra's, when none is named)."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == "management" and isinstance(port.get("containerPort"), int):
                return port["containerPort"]
    return MANAGEMENT_PORT


def health_targets(pods: list[dict]) -> list[tuple[str, int]]:
    """(pod, port) of every pod whose health can be asked: running, with an IP, not deleted."""
    return [(p["metadata"]["name"], management_port(p)) for p in live(pods)
            if (p.get("status") or {}).get("phase") == "Running"
            and (p.get("status") or {}).get("podIP")]


def selects(dep: dict, pod: dict) -> bool:
    """Whether the Deployment's selector (matchLabels) selects the pod."""
    wanted = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def expected(deployments: list[dict]) -> list[tuple[str, str, dict | None]]:
    """(component, Deployment name, Deployment or None when missing) to judge: every Kestra
    server Deployment found, and when any distributed component is there, the four of them."""
    found = {(dep.get("metadata") or {}).get("name"): (component, dep)
             for component, dep in kestra_deployments(deployments)}
    out = [(component, name, dep) for name, (component, dep) in found.items()]
    if any(component != "standalone" for component, _ in found.values()):
        out += [(name.split("-", 1)[1], name, None) for name in DISTRIBUTED_DEPLOYMENTS
                if name not in found]
    order = {name: i for i, name in enumerate(("kestra-standalone", *DISTRIBUTED_DEPLOYMENTS))}
    return sorted(out, key=lambda row: (order.get(row[1], len(order)), row[1]))


def judge_component(component: str, name: str, dep: dict | None, pods: list[dict],
                    health: dict[str, Health], since) -> Verdict:
    """One component: its rollout, the restarts of its pods since ``since`` and each running
    pod's health answer (``health``: pod name -> answer)."""
    if dep is None:
        return Verdict(component, name, FAIL, f"{component} (deployment {name}): missing (the "
                       "other components of the distributed install are there)",
                       {"component": component, "deployment": name, "status": FAIL,
                        "desired": None, "ready": 0, "updated": 0, "generation": None,
                        "observed_generation": None, "restarts": 0, "pods": [], "health": [],
                        "reason": "deployment missing"})
    mine = [p for p in live(pods) if selects(dep, p)]
    rollout, why, numbers = judge_rollout(dep)
    restarts, restart_lines, count = judge_restarts(mine, since)
    answers = []
    for pod, _port in health_targets(mine):
        answer = health.get(pod, Health(error="not asked"))
        verdict, text = judge_health(answer)
        answers.append({"pod": pod, "status": verdict, "code": answer.code, "health": text})
    status = worst([rollout, restarts, *(a["status"] for a in answers)])
    parts = [why]
    if restart_lines:
        parts.append("; ".join(restart_lines))
    else:
        parts.append("no restart since the last deploy")
    bad: dict[str, list[str]] = {}
    for a in answers:
        if a["status"] != PASS:
            bad.setdefault(a["health"], []).append(a["pod"])
    for text, names in bad.items():
        if len(names) == 1:
            parts.append(f"health of pod {names[0]}: {text}")
        else:
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            parts.append(f"health of {len(names)} of {len(answers)} pods: {text} ({shown})")
    if not answers:
        parts.append("no running pod to ask for its health")
    elif not bad:
        parts.append(f"health UP on {len(answers)} pod(s)")
    data = {"component": component, "deployment": name, "status": status, **numbers,
            "restarts": count, "pods": [p["metadata"]["name"] for p in mine], "health": answers,
            "reason": "; ".join(parts)}
    return Verdict(component, name, status, f"{component} (deployment {name}): "
                   + "; ".join(parts), data)


def check_components(deployments: list[dict], pods: list[dict], health: dict[str, Health],
                     since=None, since_label: str = "", namespace: str = "") -> Item:
    """The ``components`` item: one detail line (and one data row) per component."""
    where = f" in {namespace}" if namespace else ""
    rows = expected(deployments)
    if not rows:
        return Item("components", FAIL, f"no Kestra server Deployment{where} (kestra-standalone "
                    "or kestra-webserver/-executor/-scheduler/-worker): is Kestra deployed?",
                    [SERVERS_VIEW])
    verdicts = [judge_component(c, n, d, pods, health, since) for c, n, d in rows]
    details = [v.line for v in verdicts]
    if since_label:
        details.append(f"restarts counted since {since_label}")
    details.append(SERVERS_VIEW)
    data = [v.data for v in verdicts]
    status = worst(v.status for v in verdicts)
    names = ", ".join(v.component for v in verdicts)
    if status == PASS:
        return Item("components", PASS, f"{len(verdicts)} component(s){where} ready and "
                    f"healthy: {names}", details, data=data, always_details=True)
    first = next(v for v in verdicts if v.status == status)
    count = sum(v.status == status for v in verdicts)
    word = "failing" if status == FAIL else "with warnings"
    return Item("components", status, f"{count} of {len(verdicts)} component(s){where} {word}: "
                f"{first.line}", details, data=data, always_details=True)


# --------------------------------------------------------------------------- fetchers

def fetch_health(kube, namespace: str, targets: list[tuple[str, int]], *,
                 timeout: float = 5.0, budget: float = 30.0,
                 workers: int = 8) -> dict[str, Health]:
    """Each target's ``/health`` answer through the pod proxy, ``workers`` at a time, each
    within ``timeout`` and all within ``budget`` seconds (a pod not asked in time: a
    :class:`Health` saying so, never a stalled item); an error that is not an HTTP answer
    becomes a :class:`Health` with its one line."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from kestra_ops.errors import KestraOpsError

    deadline = time.monotonic() + budget

    def ask(target: tuple[str, int]) -> Health:
        pod, port = target
        left = deadline - time.monotonic()
        if left < 0.5:
            return Health(error=f"not asked: the {budget:g}s for the health calls ran out")
        try:
            code, body = kube.pod_proxy_get(namespace, pod, port, HEALTH_PATH,
                                            timeout=min(timeout, left))
        except KestraOpsError as err:
            return Health(error=str(err))
        return Health(code, body)

    if not targets:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(targets))),
                            thread_name_prefix="health") as pool:
        return dict(zip((pod for pod, _ in targets), pool.map(ask, targets)))


def components_item(ctx) -> Item:
    from kestra_ops.checks.events import deploy_time

    deployments = ctx.kube.objects("deployments", ctx.namespace, group_version="apps/v1",
                                   timeout=ctx.timeout)
    pods = ctx.kube.pods(ctx.namespace, timeout=ctx.timeout)
    wanted = [d for _, _, d in expected(deployments) if d is not None]
    targets = [t for dep in wanted
               for t in health_targets([p for p in pods if selects(dep, p)])]
    # within the item's budget, leaving time for the rest; no more threads than the
    # client's connection pool holds (beyond it urllib3 discards connections, and says so)
    pool = getattr(getattr(getattr(ctx.kube, "kube", None), "api_client", None),
                   "configuration", None)
    health = fetch_health(ctx.kube, ctx.namespace, targets,
                          timeout=max(min(ctx.timeout / 3, 5.0), 1.0),
                          budget=max(ctx.timeout * 0.6, 1.0),
                          workers=min(8, getattr(pool, "connection_pool_maxsize", 8) or 1))
    since, label = deploy_time(ctx.env.release, ctx.namespace, ctx.kube, ctx.helm,
                               timeout=ctx.timeout)
    return check_components(deployments, pods, health, since, label, ctx.namespace)


CHECKS = [
    Check("components", "each Kestra component (kestra-standalone, or kestra-webserver, "
          "-executor, -scheduler, -worker): its Deployment's generation observed and every "
          "replica updated and ready; no restart since the last deploy; GET /health on each "
          "pod's management port (8081) through the API server's pod proxy answers 200 UP "
          "(not reached, or no get on pods/proxy: a warning)", components_item,
          needs=("kube", "helm")),
]
