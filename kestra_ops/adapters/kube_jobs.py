"""``batch/v1`` Jobs: create one, read it, list its pods, delete it, as plain JSON.

The upgrade workflow runs Kestra's manual migrations (``kestra migrate ...``) as Jobs
(:mod:`kestra_ops.workflows.upgrade.jobs` builds and watches them); this module only talks to the
API server. Requests go through the :class:`~kestra_ops.adapters.kube.Kube` client's connection
and credentials, JSON in and out (no client models). Every write names kestra-ops's field
manager (:data:`~kestra_ops.adapters.kube.FIELD_MANAGER`). Errors are typed and one line,
naming the verb and the resource: 401/403 -> :class:`PermissionDenied`, 404 -> :class:`NotFound`
(``read_job`` and ``delete_job`` answer it instead), 409 -> :class:`Conflict`, a lost connection
-> :class:`Unreachable`, anything else -> :class:`OperationFailed`. The API server's own message
is passed through the log-line redaction (a refused Job may echo a literal ``env`` value).
"""

from __future__ import annotations

from urllib.parse import quote

from kestra_ops.adapters.kube import FIELD_MANAGER
from kestra_ops.errors import Conflict, NotFound, OperationFailed, PermissionDenied

# the label the Job controller puts on its pods (Kubernetes 1.27+), and the older one it keeps
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")


def request(kube, method: str, path: str, *, query: list[tuple[str, str]] | None = None,
            body: dict | None = None, timeout: float = 30.0) -> tuple[int, dict]:
    """One JSON request through :func:`kestra_ops.adapters.kube_objects.request`."""
    from kestra_ops.adapters.kube_objects import request as send

    return send(kube, method, path, query=query, body=body, timeout=timeout,
                content_type="application/json" if body is not None else None)


def _jobs(namespace: str) -> str:
    return f"/apis/batch/v1/namespaces/{quote(namespace, safe='')}/jobs"


def _what(name: str, namespace: str) -> str:
    return f"job {name} in namespace {namespace}"


def create_job(kube, namespace: str, body: dict) -> dict:
    """Create the Job ``body`` describes; the created Job (with its uid). :class:`Conflict` when
    one of that name exists."""
    name = str((body.get("metadata") or {}).get("name") or "?")
    status, data = request(kube, "POST", _jobs(namespace),
                           query=[("fieldManager", FIELD_MANAGER)], body=body)
    _raise_for(status, data, "create", _what(name, namespace))
    return data


def read_job(kube, namespace: str, name: str) -> dict | None:
    """The Job, or None when there is none."""
    status, data = request(kube, "GET", f"{_jobs(namespace)}/{quote(name, safe='')}")
    if status == 404:
        return None
    _raise_for(status, data, "get", _what(name, namespace))
    return data


def job_pods(kube, namespace: str, name: str) -> list[dict]:
    """The pods of Job ``name``, found by the label the Job controller puts on them
    (``batch.kubernetes.io/job-name``, else the older ``job-name``)."""
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods"
    for key in JOB_NAME_LABELS:
        status, data = request(kube, "GET", path, query=[("labelSelector", f"{key}={name}")])
        _raise_for(status, data, "list", f"pods of job {name} in namespace {namespace}")
        items = [p for p in data.get("items") or [] if isinstance(p, dict)]
        if items:
            return items
    return []


def delete_job(kube, namespace: str, name: str) -> bool:
    """Delete the Job and (in the background) its pods; False when it was already gone."""
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
    status, data = request(kube, "DELETE", f"{_jobs(namespace)}/{quote(name, safe='')}",
                           query=[("propagationPolicy", "Background")], body=body)
    if status == 404:
        return False
    _raise_for(status, data, "delete", _what(name, namespace))
    return True


def _raise_for(status: int, data: dict, verb: str, what: str) -> None:
    if 200 <= status < 300:
        return
    from kestra_ops.redact import mask_line

    message = str(data.get("message") or data.get("reason") or f"HTTP {status}")
    message = mask_line(" ".join(message.split()))[:500]  # one line, bounded
    if status == 401:
        raise PermissionDenied(f"{verb} {what}: unauthorized: check the kubeconfig credentials")
    if status == 403:
        raise PermissionDenied(f"{verb} {what}: forbidden: {message}")
    if status == 404:
        raise NotFound(f"{verb} {what}: not found")
    if status == 409:
        raise Conflict(f"{verb} {what}: conflict: {message}")
    if status == 422:
        raise OperationFailed(f"{verb} {what}: the API server refuses it: {message}")
    raise OperationFailed(f"{verb} {what}: API server answered {status}: {message}")
