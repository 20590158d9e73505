"""Kestra's manual migrations (``kestra migrate metadata kv`` ...) as Kubernetes Jobs.

A migration must run with the TARGET version's code against the env's own database, storage and
secrets, so the Job is built from the live Deployment ``kestra-standalone``
(:func:`build_job`): its ``kestra`` container's env, envFrom, volume mounts, resources and
security context, and the pod's volumes (the ``kestra-config`` ConfigMap mounted as
``application.yml``), security context, service account, image pull Secrets and scheduling;
only the image (the target's) and the arguments (the migration's) change. The image's entrypoint
stays: it runs ``/app/kestra "$@"`` (kestra-io/kestra: docker/usr/local/bin/docker-entrypoint.sh),
so the arguments are the CLI's (``migrate`` -> ``metadata`` -> ``kv``: kestra-io/kestra:
cli/src/main/java/io/kestra/cli/commands/migrations/MigrationCommand.java and
migrations/metadata/KvMetadataMigrationCommand.java, which exits 1 when the migration fails).

Left out on purpose: the probes and ports (a migration serves nothing; a liveness probe would
kill it), the Deployment's pod labels (its selector labels would put the Job's pod behind the
``kestra`` Service and among the checked ``standalone`` pods), its annotations (``checksum/config``
and the Istio proxy settings), other containers and init containers. An Istio sidecar would keep
the pod running after the migration has exited, so injection is switched off, by annotation and
label, as the chart's backup CronJob does (charts/kestra/templates/backup-cronjob.yaml).

:func:`run_job` creates the Job, waits for its ``Complete`` or ``Failed`` condition (deleting it
on a timeout, on a pod stuck in a state that waiting will not fix, and on Ctrl-C), and reads
the end of the ``kestra`` container's log, masked. A finished Job is left for its TTL
(:data:`TTL_SECONDS`) so an operator can inspect it. The API calls are
:mod:`kestra_ops.adapters.kube_jobs`' and :class:`~kestra_ops.adapters.kube_read.KubeReader`'s.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import time
from dataclasses import dataclass, field
from typing import Callable

from kestra_ops.errors import InvalidInput, KestraOpsError, PermissionDenied

CONTAINER = "kestra"
TTL_SECONDS = 7 * 24 * 3600  # a finished Job (and its pod and log) stays a week
MAX_LINE = 2000  # characters kept of one log line
ISTIO_INJECT = "sidecar.istio.io/inject"
INSTANCE = "app.kubernetes.io/instance"
PREFIX = "kestra-migrate-"
# what the migration's container keeps of the Deployment's ``kestra`` container
_CONTAINER_KEYS = ("command", "workingDir", "imagePullPolicy", "env", "envFrom", "volumeMounts",
                   "volumeDevices", "resources", "securityContext")
# ... and of its pod: identity, Secrets, configuration volumes, scheduling, name resolution
_POD_KEYS = ("serviceAccountName", "automountServiceAccountToken", "imagePullSecrets",
             "securityContext", "volumes", "nodeSelector", "tolerations", "affinity",
             "dnsPolicy", "dnsConfig", "hostAliases")
# waiting reasons whose message adds nothing (a back-off countdown)
_SELF_EXPLAINED = ("ContainerCreating", "PodInitializing", "CrashLoopBackOff")
_EXECUTABLES = ("/app/kestra", "kestra", "./kestra")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def job_name(slug: str, now: dt.datetime | None = None) -> str:
    """``kestra-migrate-<slug>-<UTC yyyymmddHHMMSS>``, a valid DNS-1123 label (at most 63
    characters): the slug lower-cased, every run of other characters than ``a-z0-9`` made one
    ``-``, and cut to fit."""
    when = now or dt.datetime.now(dt.timezone.utc)
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc)
    stamp = when.strftime("%Y%m%d%H%M%S")
    room = 63 - len(PREFIX) - len(stamp) - 1
    clean = re.sub(r"[^a-z0-9]+", "-", str(slug).lower()).strip("-")[:room].strip("-")
    return f"{PREFIX}{clean}-{stamp}" if clean else f"{PREFIX}{stamp}"


def kestra_args(command: list[str]) -> list[str]:
    """A catalogue command (``["/app/kestra", "migrate", "metadata", "kv"]``, or ``kestra ...``)
    as the Job's arguments: without the executable, which the image's entrypoint runs itself
    (see the module doc)."""
    args = [str(a) for a in command]
    return args[1:] if args and args[0] in _EXECUTABLES else args


def build_job(deployment: dict, *, name: str, image: str, args: list[str],
              annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None,
              deadline_seconds: int = 1800) -> dict:
    """The Job (a ``batch/v1`` manifest) running ``image`` with ``args`` in a pod made like the
    live ``deployment``'s (see the module doc). Pure: nothing is read or sent. A Deployment
    without a ``kestra`` container, a name that is not a DNS-1123 label, an empty image or
    arguments that are not strings are :class:`InvalidInput`."""
    meta = deployment.get("metadata") or {}
    what = f"deployment {meta.get('name') or '?'}"
    template = (deployment.get("spec") or {}).get("template") or {}
    pod = template.get("spec") or {}
    containers = [c for c in pod.get("containers") or [] if isinstance(c, dict)]
    source = next((c for c in containers if c.get("name") == CONTAINER), None)
    if source is None:
        found = ", ".join(str(c.get("name")) for c in containers) or "none"
        raise InvalidInput(f"{what} has no container named {CONTAINER} (containers: {found}): "
                           "the migration Job is built from it")
    _validate(name, image, args, deadline_seconds)

    container: dict = {"name": CONTAINER, "image": image, "args": list(args)}
    for key in _CONTAINER_KEYS:
        if key in source:
            container[key] = copy.deepcopy(source[key])
    spec: dict = {key: copy.deepcopy(pod[key]) for key in _POD_KEYS if key in pod}
    spec["restartPolicy"] = "Never"
    spec["containers"] = [container]

    own = {"app.kubernetes.io/managed-by": "kestra-ops",
           "app.kubernetes.io/component": "migration"}
    instance = (meta.get("labels") or {}).get(INSTANCE) or \
        ((template.get("metadata") or {}).get("labels") or {}).get(INSTANCE)
    if instance:
        own[INSTANCE] = str(instance)
    own.update({str(k): str(v) for k, v in (labels or {}).items()})
    pod_annotations = {ISTIO_INJECT: "false",
                       **{str(k): str(v) for k, v in (annotations or {}).items()}}
    # Istio reads the label before the annotation: both say the same
    pod_labels = {**own, ISTIO_INJECT: pod_annotations[ISTIO_INJECT]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": own},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": int(deadline_seconds),
            "ttlSecondsAfterFinished": TTL_SECONDS,
            "template": {"metadata": {"labels": pod_labels, "annotations": pod_annotations},
                         "spec": spec},
        },
    }


def _validate(name: str, image: str, args: list[str], deadline_seconds: int) -> None:
    if not isinstance(name, str) or len(name) > 63 or not _DNS_LABEL.match(name):
        raise InvalidInput(f"job name {name!r} is not a DNS-1123 label (lower-case letters, "
                           "digits and '-', at most 63 characters)")
    if not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image):
        raise InvalidInput(f"job {name}: image {image!r} is not an image reference")
    if isinstance(args, (str, bytes)) or not all(isinstance(a, str) for a in args or []):
        raise InvalidInput(f"job {name}: the arguments must be a list of strings")
    if args and args[0] in _EXECUTABLES:  # the entrypoint would run `/app/kestra /app/kestra ...`
        raise InvalidInput(f"job {name}: the arguments start with {args[0]!r}, which the "
                           "image's entrypoint runs itself: pass the CLI's arguments "
                           "(kestra_args(command))")
    if isinstance(deadline_seconds, bool) or not isinstance(deadline_seconds, int) \
            or deadline_seconds <= 0:
        raise InvalidInput(f"job {name}: deadline_seconds must be a positive whole number")


# ---------------------------------------------------------------------------------- running


@dataclass
class JobResult:
    """How one Job ended: ``reason`` says why in one line; ``logs`` are the end of the
    ``kestra`` container's log, masked (empty, with ``logs_note`` saying why, when unread);
    ``deleted`` when kestra-ops deleted the Job (a timeout)."""

    name: str
    succeeded: bool
    reason: str
    seconds: float
    logs: list[str] = field(default_factory=list)
    logs_note: str | None = None
    deleted: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "succeeded": self.succeeded, "reason": self.reason,
                "seconds": round(self.seconds, 3), "logs": list(self.logs),
                "logs_note": self.logs_note, "deleted": self.deleted}


def run_job(kube, namespace: str, body: dict, *, timeout: float, rec=None,
            log_lines: int = 200, mask: Callable[[str], str] | None = None,
            poll: float = 1.0) -> JobResult:
    """Create the Job ``body`` in ``namespace`` and wait, at most ``timeout`` seconds, for it to
    complete or fail; then read its log (see :class:`JobResult`). On a timeout, or when its pod
    waits in a state that waiting will not fix (ImagePullBackOff, CreateContainerConfigError...),
    the Job is deleted; on Ctrl-C it is deleted and the KeyboardInterrupt raised again. A Job
    that cannot be created or watched (forbidden, unreachable) raises the typed error, after a
    best-effort delete of what was created. ``mask`` is applied to the log lines and to the
    reason. ``rec`` (a :class:`~kestra_ops.results.Recorder`, or None)
    shows each change of state."""
    from kestra_ops.adapters import kube_jobs

    name = str((body.get("metadata") or {}).get("name") or "")
    if not name:
        raise InvalidInput("the migration Job has no metadata.name")
    started = time.monotonic()
    try:
        created = kube_jobs.create_job(kube, namespace, body)
    except KeyboardInterrupt:  # the request may have been answered: ours goes, no other one
        _delete_quietly(kube, namespace, name, only_ours=body)
        raise
    uid = (created.get("metadata") or {}).get("uid")
    _show(rec, f"job {name}: created in namespace {namespace}")
    try:
        succeeded, reason, pod, stop = _wait(kube, namespace, name, uid, timeout, rec, poll)
    except (KeyboardInterrupt, KestraOpsError):
        _delete_quietly(kube, namespace, name)
        raise
    try:
        logs, note = _logs(kube, namespace, pod, log_lines, mask)
    except KeyboardInterrupt:
        if stop is not None:
            _delete_quietly(kube, namespace, name)
        raise
    deleted = False
    if stop is not None:  # timed out or stuck: the evidence is read, the Job goes
        deleted, reason = _delete_stopped(kube, namespace, name, stop)
    seconds = time.monotonic() - started
    reason = mask(reason) if mask is not None else reason
    _show(rec, f"job {name}: {'succeeded' if succeeded else 'failed'}: {reason}")
    return JobResult(name, succeeded, reason, seconds, logs, note, deleted)


def _show(rec, message: str) -> None:
    if rec is None:
        return
    if getattr(rec, "tty", False):
        rec.update(message)
    else:
        rec.info(f"  {message}")


def _wait(kube, namespace: str, name: str, uid: str | None, timeout: float, rec,
          poll: float) -> tuple[bool, str, dict | None, tuple[str, str] | None]:
    """(succeeded, reason, the Job's latest pod, why kestra-ops stops it): the last is None when
    the Job ended by itself, else (why, evidence): ``timed out after Ns`` (and the last read's
    error or the pod's state), or ``stopped`` (and the state of a pod that waiting will not
    fix: an image that cannot be pulled, a Secret key that is missing; see
    :data:`kestra_ops.checks.pods.HOPELESS`). A read that fails (not a refusal) is tried again
    until the deadline."""
    from kestra_ops.adapters import kube_jobs
    from kestra_ops.checks.pods import HOPELESS

    deadline = time.monotonic() + max(float(timeout), 0.0)
    last_state, pod, error = None, None, None
    while True:
        try:
            job = kube_jobs.read_job(kube, namespace, name)
            if job is None or (uid and (job.get("metadata") or {}).get("uid") != uid):
                return False, "the job was deleted while it ran (not by kestra-ops)", pod, None
            pod = _latest(_own(kube_jobs.job_pods(kube, namespace, name), uid)) or pod
            error = None
        except PermissionDenied:
            raise
        except KestraOpsError as err:
            job, error = None, str(err)
        state = _pod_state(pod)
        if job is not None:
            finished = _finished(job)
            if finished is not None:
                ok, why = finished
                return ok, why + (f" ({state})" if state and not ok else ""), pod, None
            if _waiting(pod) in HOPELESS:
                return False, "", pod, ("stopped", state)
        shown = f"job {name}: " + (f"cannot read it: {error}" if error else
                                   state or "waiting for its pod")
        if shown != last_state:
            _show(rec, shown)
            last_state = shown
        left = deadline - time.monotonic()
        if left <= 0:
            after = f"timed out after {timeout:g}s"
            return False, "", pod, (after, f"last read failed: {error}" if error else
                                    f"last state: {state}" if state else "")
        time.sleep(min(max(poll, 0.01), left))


def _finished(job: dict) -> tuple[bool, str] | None:
    """(succeeded, reason) from a terminal condition; None while the Job runs."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return True, "completed"
        if cond.get("type") == "Failed":
            reason = cond.get("reason") or "Failed"
            message = cond.get("message") or ""
            return False, reason + (f": {message}" if message else "")
    return None


def _waiting(pod: dict | None) -> str:
    """The ``kestra`` container's waiting reason ("" when it is not waiting)."""
    for cs in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == CONTAINER:
            return str(((cs.get("state") or {}).get("waiting") or {}).get("reason") or "")
    return ""


def _own(pods: list[dict], uid: str | None) -> list[dict]:
    """The pods that Job ``uid`` owns (an older Job of the same name may leave pods behind)."""
    if not uid:
        return pods
    return [p for p in pods
            if any(r.get("uid") == uid for r in (p.get("metadata") or {}).get(
                "ownerReferences") or [])] or [
        p for p in pods if not (p.get("metadata") or {}).get("ownerReferences")]


def _latest(pods: list[dict]) -> dict | None:
    return max(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "",
               default=None)


def _pod_state(pod: dict | None) -> str:
    """``pod NAME Failed: container kestra terminated: Error (exit code 1)`` and the like."""
    if not pod:
        return ""
    status = pod.get("status") or {}
    text = f"pod {(pod.get('metadata') or {}).get('name')} {status.get('phase') or 'Pending'}"
    cs = next((c for c in status.get("containerStatuses") or [] if c.get("name") == CONTAINER),
              None)
    if cs:
        state = cs.get("state") or {}
        ended = state.get("terminated") or (cs.get("lastState") or {}).get("terminated")
        if ended:
            text += (f": container {CONTAINER} terminated: {ended.get('reason') or 'unknown'} "
                     f"(exit code {ended.get('exitCode', '?')})")
        elif (state.get("waiting") or {}).get("reason"):
            waiting = state["waiting"]
            text += f": container {CONTAINER} waiting: {waiting['reason']}"
            if waiting.get("message") and waiting["reason"] not in _SELF_EXPLAINED:
                from kestra_ops.redact import mask_line

                text += f" ({mask_line(' '.join(str(waiting['message']).split()))[:300]})"
    elif status.get("reason"):
        text += f": {status['reason']}"
    else:
        unscheduled = next((c for c in status.get("conditions") or []
                            if c.get("type") == "PodScheduled" and c.get("status") == "False"),
                           None)
        if unscheduled:
            text += f": {unscheduled.get('reason') or 'not scheduled'}"
            if unscheduled.get("message"):
                text += f" ({' '.join(str(unscheduled['message']).split())[:300]})"
    return text


def _logs(kube, namespace: str, pod: dict | None, lines: int,
          mask: Callable[[str], str] | None) -> tuple[list[str], str | None]:
    """The last ``lines`` of the pod's ``kestra`` container log, each line masked (``mask``,
    then the credential patterns of :func:`kestra_ops.redact.mask_line`); never raises."""
    from kestra_ops.redact import mask_line

    def clean(text: str) -> str:
        text = mask(text) if mask is not None else text
        return mask_line(text)[:MAX_LINE]

    if lines <= 0:
        return [], "logs not read (0 lines asked for)"
    if not pod:
        return [], "no log: the job created no pod"
    pod_name = (pod.get("metadata") or {}).get("name")
    try:
        from kestra_ops.adapters.kube_read import KubeReader

        raw = KubeReader(kube).log(namespace, pod_name, CONTAINER, lines=int(lines))
    except Exception as err:  # noqa: BLE001 - evidence, never the verdict: say why it is missing
        where = f"log of pod {pod_name} container {CONTAINER}"
        why = " ".join(str(err).split()).removeprefix(f"{where}: ") or type(err).__name__
        return [], clean(f"{where} not read: {why}")[:400]
    return [clean(line) for line in raw[-int(lines):]], None


def _delete_stopped(kube, namespace: str, name: str,
                    why: tuple[str, str]) -> tuple[bool, str]:
    """Delete a Job kestra-ops stops (``why``: timed out, or stuck, and the evidence);
    (deleted, reason)."""
    from kestra_ops.adapters import kube_jobs

    head, tail = why
    try:
        kube_jobs.delete_job(kube, namespace, name)
    except KestraOpsError as err:
        return False, f"{head}; deleting the job failed: {err}" + (f"; {tail}" if tail else "")
    return True, f"{head}; job deleted" + (f"; {tail}" if tail else "")


def _delete_quietly(kube, namespace: str, name: str, *, only_ours: dict | None = None) -> None:
    """Best effort (after Ctrl-C or an error): the original exception is what counts. With
    ``only_ours`` (the body sent), a Job is deleted only when it carries that body's labels."""
    from kestra_ops.adapters import kube_jobs

    try:
        if only_ours is not None:
            live = kube_jobs.read_job(kube, namespace, name)
            want = (only_ours.get("metadata") or {}).get("labels") or {}
            have = ((live or {}).get("metadata") or {}).get("labels") or {}
            if live is None or not want or any(have.get(k) != v for k, v in want.items()):
                return
        kube_jobs.delete_job(kube, namespace, name)
    except KestraOpsError:
        pass
