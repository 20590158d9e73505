"""The per-namespace deploy lock: a ``coordination.k8s.io/v1`` Lease named ``kestra-ops-deploy``.

Two changes to one environment (deploy, rollback, repair) never overlap: each takes the Lease
first. The Lease names its holder (``user@host:pid``), when it was taken and renewed, and for how
long it is valid (``leaseDurationSeconds``). Taking it:

* no Lease: create it (a concurrent creator gets 409 and loses);
* a Lease past its expiry (``renewTime + leaseDurationSeconds < now``): take it over by replacing it
  with the resourceVersion that was read, so of two contenders only one wins;
* otherwise: :class:`Conflict` naming the holder, since when, and when it expires.

Releasing deletes the Lease only while we still hold it (a precondition on its resourceVersion), so
a lock taken over after expiry is never deleted by its previous holder. :func:`deploy_lock`
releases on success, on error and on Ctrl-C. Times are MicroTime (microseconds, UTC).

Every API call goes through :meth:`Kube.call` (typed, one-line errors).
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from kestra_ops.errors import Conflict, KestraOpsError, NotFound

LEASE_NAME = "kestra-ops-deploy"
DEFAULT_DURATION = 900  # seconds; a deploy renews it if it runs longer
OPERATION_ANNOTATION = "kestra-ops/operation"


def identity() -> str:
    """``user@host:pid``: who holds the lock, readable by the next person refused."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _micro(when: dt.datetime) -> dt.datetime:
    """A time the client serialises as MicroTime: it writes datetimes with isoformat(), which
    drops a zero fraction, and the API server needs all six digits (so 0 µs becomes 1 µs)."""
    when = when.astimezone(dt.timezone.utc)
    return when if when.microsecond else when.replace(microsecond=1)


@dataclass(frozen=True)
class LeaseInfo:
    """The Lease as read: who holds it, since when, until when."""

    holder: str
    acquired: dt.datetime | None
    renewed: dt.datetime | None
    duration: int
    operation: str
    resource_version: str
    transitions: int = 0

    @property
    def expires(self) -> dt.datetime | None:
        start = self.renewed or self.acquired
        return start + dt.timedelta(seconds=self.duration) if start else None

    def stale(self, now: dt.datetime | None = None) -> bool:
        expires = self.expires
        return expires is None or expires < (now or dt.datetime.now(dt.timezone.utc))

    def describe(self) -> str:
        since = _fmt(self.acquired) if self.acquired else "an unknown time"
        what = f" ({self.operation})" if self.operation else ""
        return f"{self.holder}{what} since {since}, expires {_fmt(self.expires)}"

    def to_dict(self) -> dict:
        return {"holder": self.holder, "operation": self.operation,
                "acquired": _fmt(self.acquired), "renewed": _fmt(self.renewed),
                "duration": self.duration, "expires": _fmt(self.expires)}


def _fmt(when: dt.datetime | None) -> str | None:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if when else None


def _info(lease) -> LeaseInfo:
    spec = lease.spec
    annotations = lease.metadata.annotations or {}
    return LeaseInfo(holder=spec.holder_identity or "", acquired=spec.acquire_time,
                     renewed=spec.renew_time, duration=int(spec.lease_duration_seconds or 0),
                     operation=annotations.get(OPERATION_ANNOTATION, ""),
                     resource_version=lease.metadata.resource_version,
                     transitions=int(spec.lease_transitions or 0))


class DeployLock:
    """The deploy lock of one namespace, for one holder. Use :func:`deploy_lock` to scope it."""

    def __init__(self, kube, namespace: str, *, duration: int = DEFAULT_DURATION,
                 holder: str | None = None, operation: str = "deploy"):
        self.kube = kube
        self.namespace = namespace
        self.duration = int(duration)
        self.holder = holder or identity()
        self.operation = operation
        self.held: LeaseInfo | None = None
        self._what = f"lease {LEASE_NAME} in {namespace}"

    def current(self) -> LeaseInfo | None:
        """The Lease as it is now (None when nobody holds it)."""
        try:
            lease = self.kube.call(self._what, self.kube.coordination.read_namespaced_lease,
                                   LEASE_NAME, self.namespace)
        except NotFound:
            return None
        return _info(lease)

    def _body(self, *, acquired: dt.datetime, renewed: dt.datetime, transitions: int,
              resource_version: str | None = None) -> dict:
        metadata = {"name": LEASE_NAME, "namespace": self.namespace,
                    "labels": {"app.kubernetes.io/managed-by": "kestra-ops"},
                    "annotations": {OPERATION_ANNOTATION: self.operation}}
        if resource_version:
            metadata["resourceVersion"] = resource_version
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
                "spec": {"holderIdentity": self.holder, "leaseDurationSeconds": self.duration,
                         "acquireTime": _micro(acquired), "renewTime": _micro(renewed),
                         "leaseTransitions": transitions}}

    def acquire(self) -> LeaseInfo:
        """Take the lock, or raise :class:`Conflict` naming whoever holds it. Ctrl-C while the
        API server answers: the Lease it may have written is deleted (if ours) before it goes on."""
        try:
            self.held = self._take()
        except KeyboardInterrupt:
            try:
                self.release()
            except KestraOpsError:
                pass  # it expires by itself
            raise
        return self.held

    def _take(self) -> LeaseInfo:
        now = _now()
        coordination = self.kube.coordination
        existing = self.current()
        if existing is None:
            try:
                lease = self.kube.call(self._what, coordination.create_namespaced_lease,
                                       self.namespace,
                                       self._body(acquired=now, renewed=now, transitions=0))
            except Conflict:  # created by someone else between our read and our create
                raise self._refused(self.current()) from None
        elif existing.stale(now) and existing.holder != self.holder:
            body = self._body(acquired=now, renewed=now, transitions=existing.transitions + 1,
                              resource_version=existing.resource_version)
            try:
                lease = self.kube.call(self._what, coordination.replace_namespaced_lease,
                                       LEASE_NAME, self.namespace, body)
            except Conflict:  # another contender took it over first
                raise self._refused(self.current()) from None
        else:
            raise self._refused(existing)
        return _info(lease)

    def _refused(self, holder: LeaseInfo | None) -> Conflict:
        if holder is None:
            return Conflict(f"the deploy lock of {self.namespace} changed hands while taking it; "
                            "try again")
        mine = " (this process already holds it)" if holder.holder == self.holder else ""
        return Conflict(
            f"another change is running in {self.namespace}: the deploy lock is held by "
            f"{holder.describe()}{mine}",
            hint=f"wait for it to finish; a lock past its expiry is taken over automatically "
                 f"(lease {LEASE_NAME})")

    def renew(self) -> LeaseInfo:
        """Push the expiry forward; :class:`Conflict` when the lock is no longer ours."""
        current = self.current()
        if current is None or current.holder != self.holder:
            raise Conflict(f"the deploy lock of {self.namespace} was lost"
                           + (f" to {current.describe()}" if current else ""))
        body = self._body(acquired=current.acquired or _now(), renewed=_now(),
                          transitions=current.transitions,
                          resource_version=current.resource_version)
        self.held = _info(self.kube.call(self._what,
                                         self.kube.coordination.replace_namespaced_lease,
                                         LEASE_NAME, self.namespace, body))
        return self.held

    def release(self) -> bool:
        """Delete the Lease if we still hold it; False when it was not ours (or already gone)."""
        from kubernetes import client

        current = self.current()
        self.held = None
        if current is None or current.holder != self.holder:
            return False
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(resource_version=current.resource_version))
        try:
            self.kube.call(self._what, self.kube.coordination.delete_namespaced_lease,
                           LEASE_NAME, self.namespace, body=options)
        except (NotFound, Conflict):  # gone, or taken over after expiry: not ours to delete
            return False
        return True

    def __enter__(self) -> "DeployLock":
        self.acquire()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.release()
        except KestraOpsError as err:
            if exc is None:
                raise
            exc.add_note(f"the deploy lock of {self.namespace} could not be released ({err}); "
                         "it expires by itself")


@contextmanager
def deploy_lock(kube, env, *, duration: int = DEFAULT_DURATION,
                operation: str = "deploy") -> Iterator[DeployLock]:
    """``with deploy_lock(kube, env): ...``: held for the block, released on error and Ctrl-C."""
    with DeployLock(kube, env.namespace, duration=duration, operation=operation) as lock:
        yield lock
