"""The per-namespace deploy lock: a ``coordination.k8s.io/v1`` Lease named ``kestra-ops-deploy``.

Two changes to one environment (deploy, rollback, release, repair) never overlap: each takes the
Lease first. It names its holder (``user@host:pid``), its operation (annotation
``kestra-ops/operation``), when it was taken and renewed, and how long it stays valid unrenewed
(``leaseDurationSeconds``, :data:`LEASE_SECONDS`). While held, a daemon thread renews it every
third of that, so a holder that dies (killed, crashed, an API outage, Ctrl-C twice) stops renewing
and its Lease expires within a minute, however long its operation could have run. Taking it:

* no Lease: create it (a concurrent creator gets 409 and loses);
* a Lease past its expiry (``renewTime + leaseDurationSeconds < now``): take it over by replacing it
  with the resourceVersion that was read, so of two contenders only one wins;
* otherwise: :class:`Conflict` naming the holder, since when, and when it expires.

A renewal that fails (API unreachable, a server error) does not stop the operation: it is recorded
in :attr:`DeployLock.warnings` and retried sooner. A Lease found deleted or held by someone else
stops the renewals and sets :attr:`DeployLock.lost` (callers can check it before a next step).

Times are MicroTime (microseconds, UTC) in the API server's clock (its ``Date`` header; a local
clock more than :data:`ClockSkew.TOLERANCE` s off is corrected), so a holder or a reader with a
wrong clock cannot make a live lock look expired.

Releasing stops the renewals, then deletes the Lease only while we still hold it (a precondition
on its resourceVersion): a lock taken over after expiry is never deleted by its previous holder.
:func:`deploy_lock` releases on success, error and Ctrl-C. ``kestra-ops lock status|break``
(:mod:`kestra_ops.workflows.deploy.lock_admin`) show and remove a lock whose holder stopped renewing.
The Lease API calls are :mod:`kestra_ops.adapters.kube_leases`'s (typed, one-line errors); the
logic is here.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from kestra_ops import chart
from kestra_ops.adapters import kube_leases
from kestra_ops.errors import Conflict, KestraOpsError, NotFound
from kestra_ops.workflows.deploy.lock_clock import ClockSkew, _micro, _now  # noqa: F401 - re-exported

LEASE_NAME = chart.LEASE
LEASE_SECONDS = 60  # leaseDurationSeconds: how long a holder that stopped renewing keeps others out
RENEWALS_PER_DURATION = 3  # renewed every duration / 3 while held
RETRY_SECONDS = 2.0  # after a failed renewal, the next try comes sooner
OPERATION_ANNOTATION = "kestra-ops/operation"


class LockLost(Conflict):
    """The Lease we held was deleted, or is now someone else's."""


def identity() -> str:
    """``user@host:pid``: who holds the lock, readable by the next person refused."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


def parse_holder(holder: str) -> tuple[str, str, int | None]:
    """``user@host:pid`` -> (user, host, pid); a foreign holder string gives what it has."""
    user, _, rest = holder.rpartition("@")  # a user name may hold "@", a host name never
    host, colon, pid = rest.rpartition(":")
    if colon and pid.isdigit():
        return user, host, int(pid)
    return user, rest, None


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

    def expired(self, now: dt.datetime | None = None) -> bool:
        """Past ``renewTime + leaseDurationSeconds``: the next taker takes it over."""
        expires = self.expires
        return expires is None or expires < (now or _now())

    def stale(self, now: dt.datetime | None = None) -> bool:
        """Its holder stopped renewing: not renewed within its duration, at most
        :data:`LEASE_SECONDS` (a longer Lease, from an older kestra-ops or another tool, is stale
        after a minute without renewal; only an expired one is taken over automatically)."""
        start = self.renewed or self.acquired
        if start is None:
            return True
        limit = min(self.duration, LEASE_SECONDS) if self.duration > 0 else 0
        return start + dt.timedelta(seconds=limit) < (now or _now())

    @property
    def host(self) -> str:
        return parse_holder(self.holder)[1]

    @property
    def pid(self) -> int | None:
        return parse_holder(self.holder)[2]

    def describe(self) -> str:
        since = _fmt(self.acquired) if self.acquired else "an unknown time"
        what = f" ({self.operation})" if self.operation else ""
        return f"{self.holder}{what} since {since}, expires {_fmt(self.expires)}"

    def to_dict(self) -> dict:
        return {"holder": self.holder, **dict(zip(("user", "host", "pid"),
                                                  parse_holder(self.holder))),
                "operation": self.operation, "acquired": _fmt(self.acquired),
                "renewed": _fmt(self.renewed), "duration": self.duration,
                "expires": _fmt(self.expires)}


def _fmt(when: dt.datetime | None) -> str | None:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if when else None


def _info(lease: kube_leases.Lease) -> LeaseInfo:
    return LeaseInfo(holder=lease.holder, acquired=lease.acquired, renewed=lease.renewed,
                     duration=lease.duration,
                     operation=lease.annotations.get(OPERATION_ANNOTATION, ""),
                     resource_version=lease.resource_version, transitions=lease.transitions)


def read_lease(kube, namespace: str, clock: ClockSkew | None = None,
               timeout: float | None = None) -> LeaseInfo | None:
    """The deploy lock of ``namespace`` as it is now (None when free); ``clock`` learns the
    server's time from the answer (a 404's too: the Lease about to be created needs it)."""
    lease, headers = kube_leases.read(kube, namespace, LEASE_NAME, timeout=timeout)
    (clock or ClockSkew()).observe(headers)
    return _info(lease) if lease is not None else None


def delete_lease(kube, namespace: str, resource_version: str) -> None:
    """Delete the deploy lock of ``namespace`` only while it is at ``resource_version``
    (:class:`Conflict` when it changed since, :class:`NotFound` when it is gone)."""
    kube_leases.delete(kube, namespace, LEASE_NAME, resource_version=resource_version)


class DeployLock:
    """The deploy lock of one namespace, for one holder. Use :func:`deploy_lock` to scope it.

    ``duration``: ``leaseDurationSeconds``, at most :data:`LEASE_SECONDS` (however long the
    operation runs: the lock is renewed while held). ``renew_interval``: seconds between
    renewals (default ``duration / 3``)."""

    def __init__(self, kube, namespace: str, *, duration: int = LEASE_SECONDS,
                 holder: str | None = None, operation: str = "deploy",
                 renew_interval: float | None = None):
        self.kube = kube
        self.namespace = namespace
        self.duration = max(1, min(int(duration), LEASE_SECONDS))
        self.renew_interval = float(renew_interval or self.duration / RENEWALS_PER_DURATION)
        self.holder = holder or identity()
        self.operation = operation
        self.held: LeaseInfo | None = None
        self.lost: str | None = None  # why the lock was lost while held (renewals stopped)
        self.warnings: list[str] = []  # renewals that failed (the last few)
        self.renewals = 0
        self.clock = ClockSkew()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._renewing = threading.Lock()  # one renewal at a time (the thread's or a caller's)

    def current(self) -> LeaseInfo | None:
        """The Lease as it is now (None when nobody holds it)."""
        return read_lease(self.kube, self.namespace, self.clock)

    def _write(self, method: str, body: dict, timeout: float | None = None) -> LeaseInfo:
        """``method``: ``create`` or ``replace`` (:mod:`kestra_ops.adapters.kube_leases`)."""
        lease, headers = getattr(kube_leases, method)(self.kube, self.namespace, body,
                                                      timeout=timeout)
        self.clock.observe(headers)
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
        """Take the lock and start renewing it, or raise :class:`Conflict` naming whoever holds
        it. Ctrl-C while the API server answers: the Lease it may have written is deleted (if
        ours) before it goes on."""
        try:
            self.held = self._take()
        except KeyboardInterrupt:
            try:
                self.release()
            except KestraOpsError:
                pass  # it expires by itself
            raise
        self.lost = None
        self._start_renewing()
        return self.held

    def _take(self) -> LeaseInfo:
        existing = self.current()
        now = self.clock.now()
        if existing is None:
            try:
                return self._write("create",
                                   self._body(acquired=now, renewed=now, transitions=0))
            except Conflict:  # created by someone else between our read and our create
                raise self._refused(self.current()) from None
        if existing.expired(now) and existing.holder != self.holder:
            body = self._body(acquired=now, renewed=now, transitions=existing.transitions + 1,
                              resource_version=existing.resource_version)
            try:
                return self._write("replace", body)
            except Conflict:  # another contender took it over first
                raise self._refused(self.current()) from None
        raise self._refused(existing)

    def _refused(self, holder: LeaseInfo | None) -> Conflict:
        if holder is None:
            return Conflict(f"the deploy lock of {self.namespace} changed hands while taking it; "
                            "try again")
        mine = " (this process already holds it)" if holder.holder == self.holder else ""
        stale, now, renewed = "", self.clock.now(), holder.renewed or holder.acquired
        if not mine and holder.stale(now):
            stale = (f"; it stopped renewing {(now - renewed).total_seconds():.0f} s ago"
                     if renewed else "; it has no renewal time")
        return Conflict(
            f"another change is running in {self.namespace}: the deploy lock is held by "
            f"{holder.describe()}{mine}{stale}",
            hint=("if its holder is gone, `kestra-ops lock break --env ENV` removes the lock "
                  "(`kestra-ops lock status --env ENV` shows it)" if stale else
                  f"wait for it to finish; a lock whose holder stopped renewing is taken over "
                  f"automatically once it expires (lease {LEASE_NAME}; `kestra-ops lock "
                  f"status` shows it)"))

    def renew(self, *, timeout: float | None = None,
              stop: threading.Event | None = None) -> LeaseInfo:
        """Push the expiry forward; :class:`LockLost` when the lock is no longer ours. ``stop``
        set (the renewal thread's, by a release) before the write: nothing is written."""
        with self._renewing:
            return self._renew(timeout, stop)

    def _renew(self, timeout: float | None, stop: threading.Event | None) -> LeaseInfo:
        current = read_lease(self.kube, self.namespace, self.clock, timeout)
        if current is None:
            raise LockLost(f"the deploy lock of {self.namespace} was lost: its Lease was "
                           "deleted")
        if current.holder != self.holder:
            raise LockLost(f"the deploy lock of {self.namespace} was lost to "
                           f"{current.describe()}")
        if stop is not None and stop.is_set():
            return current  # released meanwhile: no write after the release began
        now = self.clock.now()
        if current.expired(now):
            self._warn(f"the deploy lock of {self.namespace} had expired for "
                       f"{(now - current.expires).total_seconds():.0f} s before this renewal "
                       "(nobody took it meanwhile)")
        body = self._body(acquired=current.acquired or now, renewed=now,
                          transitions=current.transitions,
                          resource_version=current.resource_version)
        self.held = self._write("replace", body, timeout)
        self.renewals += 1
        return self.held

    def _warn(self, message: str) -> None:
        self.warnings = [*self.warnings[-9:], message]

    def _start_renewing(self) -> None:
        kube_leases.prepare(self.kube)  # before another thread shares the client
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew_loop, daemon=True,
                                         name=f"kestra-ops lock renewal ({self.namespace})")
        self._renewer.start()

    def _renew_loop(self) -> None:
        stop, wait = self._stop, self.renew_interval
        timeout = max(1.0, min(10.0, self.renew_interval))
        while not stop.wait(wait):
            try:
                self.renew(timeout=timeout, stop=stop)
            except LockLost as err:
                self.lost = str(err)
                self._warn(f"{err}: renewals stopped")
                return
            except Exception as err:  # noqa: BLE001 - a failed renewal never ends the operation
                self._warn(f"renewing the deploy lock of {self.namespace} failed "
                           f"({err if isinstance(err, KestraOpsError) else _words(err)}); "
                           "retrying")
                wait = min(self.renew_interval, RETRY_SECONDS)
                continue
            wait = self.renew_interval

    def _stop_renewing(self) -> None:
        self._stop.set()
        renewer, self._renewer = self._renewer, None
        if renewer is not None and renewer is not threading.current_thread():
            renewer.join(timeout=2 * max(1.0, min(10.0, self.renew_interval)) + 1)

    def release(self) -> bool:
        """Stop renewing; delete the Lease if we still hold it; False when it was not ours (or
        already gone)."""
        self._stop_renewing()
        self.held = None
        for _attempt in range(2):  # once more if a last renewal moved the resourceVersion
            current = self.current()
            if current is None or current.holder != self.holder:
                return False
            try:
                delete_lease(self.kube, self.namespace, current.resource_version)
            except NotFound:
                return False
            except Conflict:  # changed since read: re-read (ours: retry; taken over: not ours)
                continue
            return True
        return False

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
def deploy_lock(kube, env, *, duration: int = LEASE_SECONDS,
                operation: str = "deploy") -> Iterator[DeployLock]:
    """``with deploy_lock(kube, env): ...``: held (and renewed) for the block, released on error
    and Ctrl-C. ``duration`` is at most :data:`LEASE_SECONDS` (see :class:`DeployLock`)."""
    with DeployLock(kube, env.namespace, duration=duration, operation=operation) as lock:
        yield lock


def take_recorded(lock: DeployLock, rec, *, held: bool = False) -> None:
    """The recorded step "take the deploy lock" (``rec``: a :class:`~kestra_ops.results.
    Recorder`): ``lock`` acquired, unless the caller already ``held`` it (Ctrl-C while taking
    it leaves no Lease behind)."""
    with rec.step("take the deploy lock") as step:
        if not held:
            lock.acquire()
        step.detail = (f"lease {LEASE_NAME} held by {lock.holder}"
                       + (" (the caller's)" if held else ""))


def release_recorded(lock: DeployLock, warnings: list[str], what: str = "the operation"
                     ) -> None:
    """Release ``lock`` after a recorded operation: its renewal warnings, a lease lost during
    ``what`` and a release that failed go to ``warnings`` (never raised: the Lease expires by
    itself, and the operation's own outcome is what the report says)."""
    warnings += [f"deploy lock: {w}" for w in getattr(lock, "warnings", [])]
    if getattr(lock, "lost", None):
        warnings.append(f"the deploy lock was lost during {what}: {lock.lost}")
    try:
        lock.release()
    except KestraOpsError as err:
        warnings.append(f"the deploy lock could not be released ({err}); it expires by itself")


@contextmanager
def recorded_lock(kube, namespace: str, operation: str, rec, warnings: list[str]
                  ) -> Iterator[DeployLock]:
    """``with recorded_lock(...) as lock:`` the deploy lock taken as a recorded step
    (:func:`take_recorded`), held for the block, released as :func:`release_recorded` says."""
    lock = DeployLock(kube, namespace, operation=operation)
    take_recorded(lock, rec)
    try:
        yield lock
    finally:
        release_recorded(lock, warnings, f"the {operation}")


def _words(err: BaseException) -> str:
    from kestra_ops.adapters.neterr import describe

    return describe(err)
