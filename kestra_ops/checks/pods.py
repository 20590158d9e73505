"""Pods and readiness, judged per pod the way Argo CD's pod health does: the one pod judge of
kestra-ops (the checklist, the doctor and the rollout wait of ``config patch`` all use
:func:`pod_problems`).

``pods``: every pod Running or Succeeded (Completed); a container waiting in CrashLoopBackOff,
ImagePullBackOff, ErrImagePull (or another state waiting will not fix), a container terminated
with an error or OOMKilled, a Failed or unschedulable pod fails the check. Each problem names the
pod, the container, the reason, the restart count and the container's last log lines (of the
previous, crashed instance when there is one). A container that restarted but runs now is a
warning.

``readiness``: every container ready (``2/2`` with the Istio sidecar). A Job pod whose work is
done (every other container terminated with exit 0) while ``istio-proxy`` keeps running is the
runbook's normal ``1/2 Completed`` and passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from kestra_ops.chart import SIDECAR
from kestra_ops.checks.declare import Check
from kestra_ops.results import FAIL, PASS, WARN, Item

ORDER = 10  # the runbook's first items
# waiting reasons that waiting will not fix
BAD_WAITING = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
               "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError",
               "RunContainerError")
# ... of which a rollout gives up on at once (an ErrImagePull is retried; a crash loop is
# given a few restarts: see Problem.gives_up)
HOPELESS = tuple(r for r in BAD_WAITING if r not in ("CrashLoopBackOff", "ErrImagePull"))
# waiting reasons of a container that never started: no log to read
NEVER_STARTED = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull",
                 "CreateContainerConfigError", "CreateContainerError", "ContainerCreating",
                 "PodInitializing")
UNREADY = "running but not ready"
LOG_LINES = 20


@dataclass
class Problem:
    """Why one pod (or one of its containers) is not healthy."""

    pod: str
    container: str | None
    reason: str
    status: str = FAIL
    restarts: int = 0
    message: str = ""
    log_previous: bool | None = None  # None: no log worth reading
    log: list[str] = field(default_factory=list)
    waiting: str = ""  # the container's waiting reason, as the kubelet gives it

    def short(self) -> str:
        where = f"pod {self.pod}" + (f" container {self.container}" if self.container else "")
        text = f"{where}: {self.reason}"
        if self.container:
            text += f" ({self.restarts} restart{'s' * (self.restarts != 1)})"
        return text

    def line(self) -> str:
        return self.short() + (f"; {self.message}" if self.message else "")

    def gives_up(self, crashloop_restarts: int = 3) -> bool:
        """Waiting longer will not heal it: an image that cannot be pulled, a container that
        cannot be created, or a crash loop past ``crashloop_restarts`` restarts."""
        return self.waiting in HOPELESS or (self.waiting == "CrashLoopBackOff"
                                            and self.restarts >= crashloop_restarts)

    def to_dict(self) -> dict:
        return {"pod": self.pod, "container": self.container, "reason": self.reason,
                "status": self.status, "restarts": self.restarts, "message": self.message,
                "log": list(self.log)}


def _name(pod: dict) -> str:
    return pod["metadata"]["name"]


def live(pods: list[dict]) -> list[dict]:
    """Pods that are not being deleted (an old ReplicaSet's pods during a rollout)."""
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _statuses(pod: dict) -> list[dict]:
    status = pod.get("status") or {}
    return (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])


def _last_exit(cs: dict) -> str:
    last = (cs.get("lastState") or {}).get("terminated") or {}
    if not last:
        return ""
    return f"last exit {last.get('exitCode')} {last.get('reason') or ''}".rstrip()


def pod_problems(pod: dict, *, unready: bool = False) -> list[Problem]:
    """Everything wrong with one pod (empty when it is Running or Completed and healthy).
    ``unready`` also names a container that runs but is not ready (``running but not ready``:
    a rollout waits for readiness; the ``readiness`` item judges it apart)."""
    name, status = _name(pod), pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase == "Succeeded":
        return []
    scheduled = next((c for c in status.get("conditions") or []
                      if c.get("type") == "PodScheduled"), {})
    if scheduled.get("status") == "False":
        return [Problem(name, None, scheduled.get("reason") or "Unschedulable",
                        message=scheduled.get("message", ""))]
    problems: list[Problem] = []
    for cs in _statuses(pod):
        state = cs.get("state") or {}
        restarts = int(cs.get("restartCount") or 0)
        waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        reason = waiting.get("reason")
        if reason in BAD_WAITING:
            oom = reason == "CrashLoopBackOff" and last.get("reason") == "OOMKilled"
            shown = f"{reason} (OOMKilled)" if oom else reason  # (a crash loop's cause)
            message = "; ".join(filter(None, [_last_exit(cs), waiting.get("message", "")]))
            problems.append(Problem(name, cs["name"], shown, FAIL, restarts, message,
                                    None if reason in NEVER_STARTED else bool(last),
                                    waiting=reason))
        elif terminated and terminated.get("exitCode"):
            problems.append(Problem(name, cs["name"], terminated.get("reason") or "Error", FAIL,
                                    restarts, f"exit {terminated.get('exitCode')}", False))
        elif unready and state.get("running") and not cs.get("ready"):
            problems.append(Problem(name, cs["name"], UNREADY, FAIL, restarts, _last_exit(cs),
                                    bool(last) if last else None))
        elif state.get("running") and restarts:
            problems.append(Problem(name, cs["name"], f"restarted ({last.get('reason') or '?'})",
                                    WARN, restarts, _last_exit(cs), bool(last)))
        elif reason and phase == "Pending":
            problems.append(Problem(name, cs["name"], f"Pending: {reason}", FAIL, restarts,
                                    waiting.get("message", ""), waiting=reason))
    if phase == "Failed" and not any(p.status == FAIL for p in problems):
        problems.append(Problem(name, None, status.get("reason") or "Failed",
                                message=status.get("message", "")))
    if phase == "Pending" and not problems:
        problems.append(Problem(name, None, "Pending", message="no container started yet"))
    return problems


def wanted_logs(pods: list[dict]) -> list[tuple[str, str, bool]]:
    """(pod, container, previous) of every problem container whose log explains it."""
    return [(p.pod, p.container, bool(p.log_previous)) for pod in live(pods)
            for p in pod_problems(pod) if p.container and p.log_previous is not None]


def check_pods(pods: list[dict], logs: Mapping[tuple[str, str], list[str]] | None = None,
               namespace: str = "") -> Item:
    """The ``pods`` item. ``logs``: (pod, container) -> last lines (see :func:`wanted_logs`)."""
    pods = live(pods)
    where = f" in {namespace}" if namespace else ""
    if not pods:
        return Item("pods", FAIL, f"no pods{where}: is Kestra deployed?")
    problems = [p for pod in pods for p in pod_problems(pod)]
    for p in problems:
        p.log = list((logs or {}).get((p.pod, p.container or ""), []))
    details = []
    for p in problems:
        details.append(p.line())
        details += [f"  | {line}" for line in p.log]
    data = [p.to_dict() for p in problems]
    failing = sorted({p.pod for p in problems if p.status == FAIL})
    phases = _phase_counts(pods)
    if failing:
        first = next(p for p in problems if p.status == FAIL)
        return Item("pods", FAIL, f"{len(failing)} of {len(pods)} pod(s){where} failing: "
                    f"{first.short()}", details, data=data)
    if problems:
        return Item("pods", WARN, f"{len(pods)} pod(s){where}: {phases}; "
                    f"{len(problems)} container(s) restarted", details, data=data)
    return Item("pods", PASS, f"{len(pods)} pod(s){where}: {phases}")


def _phase_counts(pods: list[dict]) -> str:
    done = sum("Completed" in pod_readiness(p)[1] for p in pods)
    return f"{len(pods) - done} Running, {done} Completed"


def _container_state(cs: dict | None) -> str:
    if not cs:
        return "no status"
    state = cs.get("state") or {}
    if state.get("running"):
        return "running, readiness probe failing"
    if state.get("waiting"):
        return f"waiting: {state['waiting'].get('reason') or '?'}"
    term = state.get("terminated") or {}
    return f"terminated: {term.get('reason') or '?'} exit {term.get('exitCode')}"


def pod_readiness(pod: dict) -> tuple[bool, str]:
    """(ready?, ``2/2`` / ``1/2 Completed, istio-proxy still running`` / why not)."""
    status = pod.get("status") or {}
    containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    by_name = {cs["name"]: cs for cs in status.get("containerStatuses") or []}
    ready = [n for n in containers if (by_name.get(n) or {}).get("ready")]
    count = f"{len(ready)}/{len(containers)}"
    if status.get("phase") == "Succeeded":
        return True, f"{count} Completed"
    if len(ready) == len(containers) and containers:
        return True, count + (f" (with {SIDECAR})" if SIDECAR in containers else "")
    others = [n for n in containers if n != SIDECAR]
    done = all(((by_name.get(n) or {}).get("state") or {}).get("terminated", {})
               .get("exitCode", 1) == 0 for n in others)
    sidecar_runs = bool(((by_name.get(SIDECAR) or {}).get("state") or {}).get("running"))
    if others and done and sidecar_runs and SIDECAR in containers:
        return True, f"{count} Completed ({SIDECAR} still running: normal for a Job pod)"
    unready = [f"{n} ({_container_state(by_name.get(n))})" for n in containers if n not in ready]
    return False, f"{count} ready; not ready: {', '.join(unready) or 'no containers'}"


def check_readiness(pods: list[dict], namespace: str = "") -> Item:
    """The ``readiness`` item."""
    pods = live(pods)
    where = f" in {namespace}" if namespace else ""
    if not pods:
        return Item("readiness", FAIL, f"no pods{where}")
    rows = [(_name(p), *pod_readiness(p)) for p in pods]
    details = [f"pod {name}: {text}" for name, ok, text in rows]
    data = [{"pod": name, "ready": ok, "state": text} for name, ok, text in rows]
    bad = [(name, text) for name, ok, text in rows if not ok]
    if bad:
        return Item("readiness", FAIL, f"{len(bad)} of {len(rows)} pod(s){where} not "
                    f"ready: pod {bad[0][0]} {bad[0][1]}", details, data=data)
    completed = sum("Completed" in text for _, _, text in rows)
    return Item("readiness", PASS, f"{len(rows)} pod(s){where} ready"
                + (f" ({completed} Completed)" if completed else ""), details, data=data)


# --------------------------------------------------------------------------- fetchers

def fetch_logs(kube, namespace: str, wanted: list[tuple[str, str, bool]], *,
               lines: int = LOG_LINES, timeout: float = 10.0) -> dict[tuple[str, str], list[str]]:
    """The log tail of each wanted container through ``kube`` (a KubeReader), the secrets of
    the environment variables masked; an unreadable log becomes one explaining line."""
    import os

    from kestra_ops.errors import KestraOpsError
    from kestra_ops.redact import environment_secrets, mask_line

    secrets = environment_secrets(os.environ)
    logs = {}
    for pod, container, previous in wanted:
        try:
            logs[(pod, container)] = [
                mask_line(line, secrets) for line in kube.log(
                    namespace, pod, container, previous=previous, lines=lines, timeout=timeout)]
        except KestraOpsError as err:
            logs[(pod, container)] = [f"(log not available: {err})"]
    return logs


def pods_item(ctx) -> Item:
    found = ctx.kube.pods(ctx.namespace, timeout=ctx.timeout)
    logs = fetch_logs(ctx.kube, ctx.namespace, wanted_logs(found), timeout=ctx.timeout)
    return check_pods(found, logs, ctx.namespace)


def readiness_item(ctx) -> Item:
    return check_readiness(ctx.kube.pods(ctx.namespace, timeout=ctx.timeout), ctx.namespace)


CHECKS = [
    Check("pods", "every pod Running or Completed; none CrashLoopBackOff, ImagePullBackOff, "
          "ErrImagePull, OOMKilled or Error (pod, container, reason, restarts, last log lines)",
          pods_item, needs=("kube",)),
    Check("readiness", f"every container ready (2/2 with the Istio sidecar; a Completed Job pod "
          f"whose only running container is {SIDECAR}, \"1/2 Completed\", passes)",
          readiness_item, needs=("kube",)),
]
