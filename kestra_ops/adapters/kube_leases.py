"""``coordination.k8s.io/v1`` Leases: read, create, replace and delete one, as plain records.

The deploy lock (:mod:`kestra_ops.workflows.deploy.lock`) keeps the logic (who may take it, when it
expires, the renewals); this module only talks to the API server, through
:meth:`~kestra_ops.adapters.kube.Kube.call` (typed, one-line errors; writes name the field manager).
Every call also returns the answer's headers: the lock reads the API server's clock from their
``Date`` (a 404's too: a Lease about to be created needs it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Lease:
    """A Lease as the API server returned it."""

    holder: str
    acquired: dt.datetime | None
    renewed: dt.datetime | None
    duration: int
    resource_version: str
    transitions: int = 0
    annotations: Mapping[str, str] = field(default_factory=dict)


def _what(name: str, namespace: str) -> str:
    return f"lease {name} in {namespace}"


def _record(lease) -> Lease:
    spec, meta = lease.spec, lease.metadata
    return Lease(holder=spec.holder_identity or "", acquired=spec.acquire_time,
                 renewed=spec.renew_time, duration=int(spec.lease_duration_seconds or 0),
                 resource_version=meta.resource_version,
                 transitions=int(spec.lease_transitions or 0),
                 annotations=dict(meta.annotations or {}))


def _timeout(timeout: float | None) -> dict[str, Any]:
    return {"_request_timeout": timeout} if timeout else {}


def prepare(kube) -> None:
    """Build the client's Lease API now, before threads (a renewal thread) share it."""
    kube.coordination  # noqa: B018 - a cached property: built once, here


def read(kube, namespace: str, name: str, *,
         timeout: float | None = None) -> tuple[Lease | None, Mapping[str, str]]:
    """The Lease (None when there is none) and the answer's headers."""
    from kubernetes.client.exceptions import ApiException

    def read_namespaced_lease_or_none():
        try:
            return kube.coordination.read_namespaced_lease_with_http_info(
                name, namespace, **_timeout(timeout))
        except ApiException as err:
            if err.status != 404:
                raise
            return None, 404, err.headers

    lease, _status, headers = kube.call(_what(name, namespace), read_namespaced_lease_or_none)
    return (_record(lease) if lease is not None else None), headers or {}


def create(kube, namespace: str, body: dict, *,
           timeout: float | None = None) -> tuple[Lease, Mapping[str, str]]:
    """Create the Lease ``body`` describes (:class:`Conflict` when it exists already)."""
    name = body["metadata"]["name"]
    lease, _status, headers = kube.call(
        _what(name, namespace), kube.coordination.create_namespaced_lease_with_http_info,
        namespace, body, **_timeout(timeout))
    return _record(lease), headers or {}


def replace(kube, namespace: str, body: dict, *,
            timeout: float | None = None) -> tuple[Lease, Mapping[str, str]]:
    """Replace the Lease; ``body``'s ``metadata.resourceVersion`` makes it conditional
    (:class:`Conflict` when the Lease changed since)."""
    name = body["metadata"]["name"]
    lease, _status, headers = kube.call(
        _what(name, namespace), kube.coordination.replace_namespaced_lease_with_http_info,
        name, namespace, body, **_timeout(timeout))
    return _record(lease), headers or {}


def delete(kube, namespace: str, name: str, *, resource_version: str) -> None:
    """Delete the Lease only while it is at ``resource_version`` (:class:`Conflict` when it
    changed since, :class:`NotFound` when it is gone)."""
    from kubernetes import client

    options = client.V1DeleteOptions(
        preconditions=client.V1Preconditions(resource_version=resource_version))
    kube.call(_what(name, namespace), kube.coordination.delete_namespaced_lease, name,
              namespace, body=options)
