"""Restart a Deployment the way ``kubectl rollout restart`` does and wait for the rollout, naming
the pod, container, reason and restart count when it fails (never a bare "timed out waiting for
the condition").

The wait follows ``kubectl rollout status``: the controller must have observed the new
generation, every replica must be updated and available, and no old pod may be left. It gives up
early on states that do not heal by waiting: a container in CrashLoopBackOff for
``crashloop_restarts`` restarts, an image that cannot be pulled, a container that cannot be
created, or the Deployment's own progress deadline.
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass
from typing import Any, Callable

from kestra_ops.errors import OperationFailed

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"
# waiting reasons that waiting will not fix
FATAL_WAITING = ("ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                 "CreateContainerConfigError", "CreateContainerError", "RunContainerError")
CRASHLOOP = "CrashLoopBackOff"


def read_json(kube, what: str, fn: Callable[..., Any], *args, **kwargs) -> dict:
    """One API call through :meth:`Kube.call`, answered as plain JSON (no client models)."""
    response = kube.call(what, fn, *args, _preload_content=False, **kwargs)
    return json.loads(response.data or b"{}")


def restart_deployment(kube, namespace: str, name: str) -> dict:
    """``kubectl rollout restart deployment/NAME``: stamp the pod template with restartedAt.

    Returns the patched Deployment. The stamp has sub-second precision so two restarts within
    one second (a patch, then its automatic restore) still roll out a new ReplicaSet each.
    """
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    return read_json(kube, f"deployment {name}", kube.apps.patch_namespaced_deployment, name,
                     namespace, body, _content_type="application/strategic-merge-patch+json")


@dataclass
class PodProblem:
    """Why one pod of the new ReplicaSet is not ready."""

    pod: str
    container: str | None
    reason: str
    restarts: int = 0
    detail: str = ""
    fatal: bool = False

    def describe(self) -> str:
        where = f"pod {self.pod}" + (f" container {self.container}" if self.container else "")
        text = f"{where}: {self.reason} ({self.restarts} restart{'s' * (self.restarts != 1)})"
        return text + (f"; {self.detail}" if self.detail else "")


def wait_for_rollout(kube, namespace: str, name: str, timeout: float, progress, *,
                     crashloop_restarts: int = 3, poll: float = 0.05,
                     max_poll: float = 2.0) -> None:
    """Wait until Deployment ``name`` has rolled out; raise :class:`OperationFailed` naming the
    failing pod, container, reason and restart count otherwise."""
    deadline = time.monotonic() + timeout
    last_state = None
    while True:
        dep = read_json(kube, f"deployment {name}", kube.apps.read_namespaced_deployment, name,
                        namespace)
        done, state = _status(dep)
        problems: list[PodProblem] = []
        if not done and _observed(dep):
            problems = _pod_problems(kube, namespace, dep, crashloop_restarts)
            if problems:
                state += "; " + problems[0].describe()
        if state != last_state:
            if progress is not None:
                if progress.tty:
                    progress.update(state)
                else:
                    progress.info(f"  {state}")
            last_state = state
        if done:
            return
        fatal = next((p for p in problems if p.fatal), None)
        if fatal is not None:
            raise OperationFailed(f"deployment {name}: {_with_event(kube, namespace, fatal)}")
        stalled = _condition(dep, "Progressing") if _observed(dep) else {}
        if stalled.get("reason") == "ProgressDeadlineExceeded":
            raise OperationFailed(f"deployment {name}: progress deadline exceeded: "
                                  f"{_timeout_reason(kube, namespace, dep, problems)}")
        if time.monotonic() >= deadline:
            raise OperationFailed(f"deployment {name}: not ready after {timeout:g}s: "
                                  f"{_timeout_reason(kube, namespace, dep, problems)}")
        time.sleep(min(poll, max(deadline - time.monotonic(), 0.01)))
        poll = min(poll * 1.5, max_poll)


def _observed(dep: dict) -> bool:
    generation = dep["metadata"].get("generation", 0)
    return (dep.get("status") or {}).get("observedGeneration", 0) >= generation


def _status(dep: dict) -> tuple[bool, str]:
    """(rolled out?, one-line state) as ``kubectl rollout status`` judges it."""
    name, st = dep["metadata"]["name"], dep.get("status") or {}
    want = (dep.get("spec") or {}).get("replicas", 1)
    if not _observed(dep):
        return False, f"{name}: waiting for the controller to see the restart"
    updated, replicas = st.get("updatedReplicas", 0), st.get("replicas", 0)
    available = st.get("availableReplicas", 0)
    if updated < want:
        return False, f"{name}: {updated} of {want} new replica(s) created"
    if replicas > updated:
        return False, f"{name}: {replicas - updated} old replica(s) pending termination"
    if available < updated:
        return False, f"{name}: {available} of {updated} new replica(s) available"
    return True, f"{name}: {available} of {want} replica(s) ready"


def _condition(obj: dict, kind: str) -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c.get("type") == kind), {})


def _new_pods(kube, namespace: str, dep: dict) -> list[dict]:
    """Pods of the Deployment's current ReplicaSet (the one with its revision)."""
    revision = (dep["metadata"].get("annotations") or {}).get(REVISION)
    labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    sets = read_json(kube, "replicasets", kube.apps.list_namespaced_replica_set, namespace,
                     label_selector=selector)["items"]
    uid = dep["metadata"].get("uid")
    owned = [rs for rs in sets if any(r.get("uid") == uid for r in
                                      rs["metadata"].get("ownerReferences") or [])]
    current = next((rs for rs in owned if (rs["metadata"].get("annotations") or {})
                    .get(REVISION) == revision), None)
    if current is None:
        return []
    pod_hash = (current["metadata"].get("labels") or {}).get("pod-template-hash")
    if pod_hash:
        selector = f"{selector},pod-template-hash={pod_hash}" if selector else \
            f"pod-template-hash={pod_hash}"
    pods = read_json(kube, "pods", kube.core.list_namespaced_pod, namespace,
                     label_selector=selector)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _pod_problems(kube, namespace: str, dep: dict, crashloop_restarts: int) -> list[PodProblem]:
    problems = []
    for pod in _new_pods(kube, namespace, dep):
        problem = _pod_problem(pod, crashloop_restarts)
        if problem is not None:
            problems.append(problem)
    problems.sort(key=lambda p: (not p.fatal, -p.restarts))
    return problems


def _pod_problem(pod: dict, crashloop_restarts: int) -> PodProblem | None:
    name, st = pod["metadata"]["name"], pod.get("status") or {}
    scheduled = next((c for c in st.get("conditions") or [] if c.get("type") == "PodScheduled"),
                     {})
    if scheduled.get("status") == "False":
        return PodProblem(name, None, scheduled.get("reason") or "Unschedulable",
                          detail=scheduled.get("message", ""))
    statuses = (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or [])
    worst = None
    for cs in statuses:
        restarts = cs.get("restartCount", 0)
        state, last = cs.get("state") or {}, (cs.get("lastState") or {}).get("terminated") or {}
        waiting = state.get("waiting") or {}
        reason = waiting.get("reason")
        detail = (f"last exit {last.get('exitCode')} {last.get('reason', '')}".rstrip()
                  if last else waiting.get("message", ""))
        if reason == CRASHLOOP or (reason in FATAL_WAITING) or reason == "ErrImagePull":
            fatal = reason in FATAL_WAITING or (reason == CRASHLOOP
                                                and restarts >= crashloop_restarts)
            problem = PodProblem(name, cs["name"], reason, restarts, detail, fatal)
        elif state.get("running") and not cs.get("ready"):
            problem = PodProblem(name, cs["name"], "running but not ready", restarts, detail)
        elif state.get("terminated") and state["terminated"].get("exitCode"):
            term = state["terminated"]
            problem = PodProblem(name, cs["name"], term.get("reason") or "Error", restarts,
                                 f"exit {term.get('exitCode')}")
        elif reason and reason not in ("ContainerCreating", "PodInitializing"):
            problem = PodProblem(name, cs["name"], reason, restarts, waiting.get("message", ""))
        else:
            continue
        if worst is None or (problem.fatal, problem.restarts) > (worst.fatal, worst.restarts):
            worst = problem
    return worst


def _last_warning(kube, namespace: str, pod: str) -> str:
    """The pod's most recent Warning event, as "Reason: message" ("" when none or not allowed)."""
    try:
        events = read_json(kube, "events", kube.core.list_namespaced_event, namespace,
                           field_selector=f"involvedObject.name={pod},type=Warning")["items"]
    except OperationFailed:
        return ""
    if not events:
        return ""
    latest = max(events, key=lambda e: (e.get("lastTimestamp") or e.get("eventTime") or "",
                                        e.get("count", 1)))
    return f"{latest.get('reason')}: {latest.get('message', '').strip()}"


def _with_event(kube, namespace: str, problem: PodProblem) -> str:
    text = problem.describe()
    if problem.pod != "-":
        event = _last_warning(kube, namespace, problem.pod)
        if event:
            text += f"; last event {event}"
    return text


def _timeout_reason(kube, namespace: str, dep: dict, problems: list[PodProblem]) -> str:
    if problems:
        problem = problems[0]
        if problem.reason == "running but not ready":
            problem.reason = "never ready"
        return _with_event(kube, namespace, problem)
    done, state = _status(dep)
    for kind in ("ReplicaFailure", "Progressing"):
        cond = _condition(dep, kind)
        if cond.get("status") == "False" or (kind == "ReplicaFailure" and cond):
            return f"{state}; {kind} {cond.get('reason')}: {cond.get('message', '')}"
    if _observed(dep) and not _new_pods(kube, namespace, dep):
        return f"{state}; no pod of the new ReplicaSet exists"
    return state
