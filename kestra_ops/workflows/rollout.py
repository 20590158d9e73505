"""Restart a Deployment the way ``kubectl rollout restart`` does and wait for the rollout, naming
the pod, container, reason and restart count when it fails (never a bare "timed out waiting for
the condition").

The wait follows ``kubectl rollout status``: the controller must have observed the new
generation, every replica must be updated and available, and no old pod may be left. It gives up
early on states that do not heal by waiting (the pod judge's :meth:`Problem.gives_up
<kestra_ops.checks.pods.Problem.gives_up>`: a container in CrashLoopBackOff for
``crashloop_restarts`` restarts, an image that cannot be pulled, a container that cannot be
created), or on the Deployment's own progress deadline. The pods are judged by
:func:`kestra_ops.checks.pods.pod_problems`, as the checklist judges them; the reads and the
restart itself are :mod:`kestra_ops.adapters.kube_read`'s.
"""

from __future__ import annotations

import time

from kestra_ops.adapters.kube_read import RESTARTED_AT, KubeReader, read_json, restart_deployment
from kestra_ops.checks.pods import UNREADY, Problem, live, pod_problems
from kestra_ops.errors import KestraOpsError, OperationFailed

__all__ = ["read_json", "restart_deployment", "wait_for_rollout", "RESTARTED_AT"]

REVISION = "deployment.kubernetes.io/revision"
NEVER_READY = "never ready"


def wait_for_rollout(kube, namespace: str, name: str, timeout: float, progress, *,
                     crashloop_restarts: int = 3, poll: float = 0.05,
                     max_poll: float = 2.0) -> None:
    """Wait until Deployment ``name`` has rolled out; raise :class:`OperationFailed` naming the
    failing pod, container, reason and restart count otherwise."""
    reader = KubeReader(kube)
    deadline = time.monotonic() + timeout
    last_state = None
    while True:
        dep = reader.read("deployments", namespace, name, group_version="apps/v1")
        done, state = _status(dep)
        problems: list[Problem] = []
        if not done and _observed(dep):
            problems = _problems(reader, namespace, dep, crashloop_restarts)
            if problems:
                state += "; " + problems[0].line()
        if state != last_state:
            if progress is not None:
                if progress.tty:
                    progress.update(state)
                else:
                    progress.info(f"  {state}")
            last_state = state
        if done:
            return
        fatal = next((p for p in problems if p.gives_up(crashloop_restarts)), None)
        if fatal is not None:
            raise OperationFailed(f"deployment {name}: {_with_event(reader, namespace, fatal)}")
        stalled = _condition(dep, "Progressing") if _observed(dep) else {}
        if stalled.get("reason") == "ProgressDeadlineExceeded":
            raise OperationFailed(f"deployment {name}: progress deadline exceeded: "
                                  f"{_timeout_reason(reader, namespace, dep, problems)}")
        if time.monotonic() >= deadline:
            raise OperationFailed(f"deployment {name}: not ready after {timeout:g}s: "
                                  f"{_timeout_reason(reader, namespace, dep, problems)}")
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


def _new_pods(reader: KubeReader, namespace: str, dep: dict) -> list[dict]:
    """Pods of the Deployment's current ReplicaSet (the one with its revision)."""
    revision = (dep["metadata"].get("annotations") or {}).get(REVISION)
    labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    sets = reader.objects("replicasets", namespace, group_version="apps/v1",
                          label_selector=selector or None)
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
    return live(reader.pods(namespace, label_selector=selector or None))


def _problems(reader: KubeReader, namespace: str, dep: dict,
              crashloop_restarts: int) -> list[Problem]:
    """The worst problem of each pod of the new ReplicaSet (one that waiting will not heal
    first, then the most restarted)."""
    def rank(p: Problem):
        return p.gives_up(crashloop_restarts), p.restarts

    worst = []
    for pod in _new_pods(reader, namespace, dep):
        failing = [p for p in pod_problems(pod, unready=True) if p.status == "fail"]
        if failing:
            worst.append(max(failing, key=rank))
    return sorted(worst, key=rank, reverse=True)


def _last_warning(reader: KubeReader, namespace: str, pod: str) -> str:
    """The pod's most recent Warning event, as "Reason: message" ("" when none or not allowed)."""
    try:
        events = reader.events(namespace,
                               field_selector=f"involvedObject.name={pod},type=Warning")
    except KestraOpsError:
        return ""
    if not events:
        return ""
    latest = max(events, key=lambda e: (e.get("lastTimestamp") or e.get("eventTime") or "",
                                        e.get("count", 1)))
    return f"{latest.get('reason')}: {latest.get('message', '').strip()}"


def _with_event(reader: KubeReader, namespace: str, problem: Problem) -> str:
    text = problem.line()
    event = _last_warning(reader, namespace, problem.pod)
    return text + (f"; last event {event}" if event else "")


def _timeout_reason(reader: KubeReader, namespace: str, dep: dict,
                    problems: list[Problem]) -> str:
    if problems:
        problem = problems[0]
        if problem.reason == UNREADY:
            problem.reason = NEVER_READY
        return _with_event(reader, namespace, problem)
    done, state = _status(dep)
    for kind in ("ReplicaFailure", "Progressing"):
        cond = _condition(dep, kind)
        if cond.get("status") == "False" or (kind == "ReplicaFailure" and cond):
            return f"{state}; {kind} {cond.get('reason')}: {cond.get('message', '')}"
    if _observed(dep) and not _new_pods(reader, namespace, dep):
        return f"{state}; no pod of the new ReplicaSet exists"
    return state
