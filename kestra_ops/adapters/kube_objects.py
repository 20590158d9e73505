"""Any Kubernetes object by its manifest: find its REST path (API discovery), read it, and run a
server-side apply as a dry run, as ``kubectl diff --server-side`` does.

The dry-run apply answers two questions before a deploy changes anything:

* what the object will look like once the render is applied (the server merges it with what is
  live, applies defaults and validation, and returns the result without storing it);
* who else owns the fields the render would change: a non-forced apply that meets a field owned by
  another field manager is refused (409) with one cause per field (``conflict with "kestra-ops"
  using v1``, field ``.data.application.yml``). Helm 4 applies server-side as manager ``helm``
  and fails on exactly these conflicts unless ``--force-conflicts``.

Requests go through the :class:`~kestra_ops.adapters.kube.Kube` client's connection and
credentials, as plain JSON (no client models). Errors are typed and one line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from kestra_ops.errors import (InvalidInput, NotFound, OperationFailed, PermissionDenied,
                               Unreachable)

APPLY = "application/apply-patch+yaml"  # a JSON body is valid YAML
_CONFLICT = re.compile(r'conflict with "(?P<manager>[^"]*)"(?: with subresource "[^"]*")?'
                       r'(?: using (?P<api>\S+))?')


@dataclass(frozen=True)
class FieldConflict:
    """A field the apply would change that another field manager owns."""

    field: str  # ".data.application.yml"
    manager: str  # "kestra-ops", "OpenAPI-Generator", "kubectl-edit"
    operation: str = ""  # "Update" / "Apply" (from the live object's managedFields)
    time: str = ""  # when that manager last wrote the object

    def describe(self) -> str:
        how = ", ".join(x for x in (self.operation, self.time) if x)
        return f"{self.field} changed by {self.manager}" + (f" ({how})" if how else "")

    def to_dict(self) -> dict:
        return {"field": self.field, "manager": self.manager, "operation": self.operation,
                "time": self.time}


@dataclass
class ApplyPreview:
    """The object as it would be after the apply (None when refused), and the conflicts."""

    merged: dict | None
    conflicts: list[FieldConflict] = field(default_factory=list)


def request(kube, method: str, path: str, *, query: list[tuple[str, str]] | None = None,
            body: Any = None, content_type: str | None = None,
            timeout: float = 30.0) -> tuple[int, dict]:
    """One request; (HTTP status, JSON body). Only a lost connection raises (:class:`Unreachable`)."""
    from urllib3.exceptions import HTTPError

    api = kube.api_client
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    # JSON bodies are serialized once, by the client; other content types (apply) as text here
    payload = body if body is None or isinstance(body, str) or content_type == \
        "application/json" else json.dumps(body)
    try:
        serialized = api.param_serialize(method, path, query_params=query or [],
                                         header_params=headers, body=payload,
                                         auth_settings=["BearerToken"])
        response = api.call_api(*serialized, _request_timeout=timeout)
        response.read()
    except HTTPError as err:
        from kestra_ops.adapters.neterr import describe

        raise Unreachable(f"cannot reach the Kubernetes API at {kube.host}: "
                          f"{describe(err)}") from None
    try:
        data = json.loads(response.data or b"{}")
    except ValueError:
        data = {"message": (response.data or b"")[:200].decode("utf-8", "replace")}
    return response.status, data if isinstance(data, dict) else {}


class Resources:
    """kind -> (plural, namespaced) per group/version, from API discovery (cached)."""

    def __init__(self, kube):
        self.kube = kube
        self._known: dict[str, dict[str, tuple[str, bool]]] = {}

    def lookup(self, api_version: str, kind: str) -> tuple[str, bool]:
        if api_version not in self._known:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            status, data = request(self.kube, "GET", base)
            if status == 404:
                raise InvalidInput(f"the cluster does not serve {api_version} (needed for {kind})")
            _raise_for(status, data, f"API discovery of {api_version}")
            self._known[api_version] = {
                r["kind"]: (r["name"], bool(r.get("namespaced")))
                for r in data.get("resources") or [] if "/" not in r.get("name", "/")}
        found = self._known[api_version].get(kind)
        if found is None:
            raise InvalidInput(f"the cluster does not serve kind {kind} in {api_version}")
        return found

    def path(self, obj: dict, namespace: str) -> str:
        api_version, kind = obj.get("apiVersion") or "", obj.get("kind") or ""
        name = (obj.get("metadata") or {}).get("name") or ""
        plural, namespaced = self.lookup(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        ns = (obj.get("metadata") or {}).get("namespace") or namespace
        return (f"{base}/namespaces/{ns}/{plural}/{name}" if namespaced
                else f"{base}/{plural}/{name}")


def label(obj: dict) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def read(kube, resources: Resources, obj: dict, namespace: str) -> dict | None:
    """The live object named like ``obj`` (None when it does not exist)."""
    status, data = request(kube, "GET", resources.path(obj, namespace))
    if status == 404:
        return None
    _raise_for(status, data, label(obj))
    return data


def preview_apply(kube, resources: Resources, obj: dict, namespace: str, *, manager: str,
                  force: bool) -> ApplyPreview:
    """Server-side apply of ``obj`` as ``manager``, dry run (nothing is stored)."""
    query = [("dryRun", "All"), ("fieldManager", manager)]
    if force:
        query.append(("force", "true"))
    status, data = request(kube, "PATCH", resources.path(obj, namespace), query=query, body=obj,
                           content_type=APPLY)
    if status == 409 and data.get("reason") == "Conflict":
        causes = (data.get("details") or {}).get("causes") or []
        conflicts = []
        for cause in causes:
            m = _CONFLICT.search(cause.get("message") or "")
            if m:
                conflicts.append(FieldConflict(cause.get("field") or "?", m["manager"]))
        if conflicts or not force:
            return ApplyPreview(None, conflicts)
    if status == 422:
        raise OperationFailed(f"{label(obj)}: the API server refuses the change: "
                              f"{data.get('message') or 'invalid'}")
    _raise_for(status, data, label(obj))
    return ApplyPreview(data)


def with_writers(conflicts: list[FieldConflict], live: dict | None) -> list[FieldConflict]:
    """The conflicts with the operation and time the live object's managedFields record for each
    manager (the latest entry of that manager)."""
    entries = {}
    for entry in ((live or {}).get("metadata") or {}).get("managedFields") or []:
        entries[entry.get("manager")] = entry
    out = []
    for c in conflicts:
        entry = entries.get(c.manager) or {}
        out.append(FieldConflict(c.field, c.manager, entry.get("operation") or "",
                                 entry.get("time") or ""))
    return out


def _raise_for(status: int, data: dict, what: str) -> None:
    if 200 <= status < 300:
        return
    message = data.get("message") or data.get("reason") or f"HTTP {status}"
    if status in (401, 403):
        raise PermissionDenied(f"{what}: {'forbidden' if status == 403 else 'unauthorized'}: "
                               f"{message}")
    if status == 404:
        raise NotFound(f"{what}: not found")
    if status == 415:
        raise OperationFailed(f"{what}: the API server does not support server-side apply "
                              "(Kubernetes 1.22 or newer is needed)")
    raise OperationFailed(f"{what}: API server answered {status}: {message}")
