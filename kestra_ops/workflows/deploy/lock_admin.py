"""``kestra-ops lock status`` and ``lock break``: an environment's deploy lock as it is, and the
removal of one whose holder stopped renewing it (a dead process).

:func:`lock_status` reads the Lease once and says whether it is ``free``, ``held`` (renewed
within its duration) or ``stale`` (its holder stopped renewing: a live kestra-ops renews every
``duration / 3``), with holder, host, pid, operation and ages in the API server's clock. When the
holder is on this host, whether its process is still running is said too.

:func:`break_lock` removes a stale lock after the caller's confirmation (``--force`` also breaks
one still being renewed), with a precondition on the resourceVersion that was shown, so it never
deletes a lock that was renewed or changed hands meanwhile; the break is logged in
``backups/changes.jsonl`` (holder, operation, ages; nothing secret).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass
from typing import Callable

from kestra_ops.errors import Aborted, Conflict, NotFound
from kestra_ops.results import FAIL, PASS, Report
from kestra_ops.workflows.deploy.lock import (LEASE_NAME, LEASE_SECONDS, ClockSkew, LeaseInfo, _fmt,
                                       delete_lease, read_lease)


def ago(seconds: float) -> str:
    """``42 s``, ``2m05s``, ``3h07m``, ``2d04h``."""
    seconds = int(max(0, seconds))
    if seconds < 90:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def process_running(pid: int | None) -> bool | None:
    """Whether process ``pid`` exists on this host (None: cannot tell)."""
    if pid is None or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return None
    return True


@dataclass
class LockStatus:
    env: str
    namespace: str
    lease: LeaseInfo | None
    now: dt.datetime  # the API server's clock
    clock_offset: float = 0.0  # this host's clock, seconds behind the server's
    this_host: bool = False
    running: bool | None = None  # the holder's process (only known on its own host)

    @property
    def state(self) -> str:
        if self.lease is None:
            return "free"
        return "stale" if self.lease.stale(self.now) else "held"

    @property
    def exit_code(self) -> int:
        """0 free, or held by a holder that renews it; 1 stale, or its process is gone."""
        return 1 if self.state == "stale" or self.running is False else 0

    def _since(self, when: dt.datetime | None) -> float | None:
        return (self.now - when).total_seconds() if when else None

    @property
    def age(self) -> float | None:
        return self._since(self.lease.acquired) if self.lease else None

    @property
    def since_renewal(self) -> float | None:
        return self._since(self.lease.renewed or self.lease.acquired) if self.lease else None

    @property
    def expires_in(self) -> float | None:
        expires = self.lease.expires if self.lease else None
        return (expires - self.now).total_seconds() if expires else None

    def process(self) -> str:
        """What is known of the holder's process."""
        lease = self.lease
        if lease is None or lease.pid is None:
            return "unknown process"
        if not self.this_host:
            return f"process {lease.pid} on another host"
        return {True: f"process {lease.pid} is running on this host",
                False: f"process {lease.pid} is NOT running on this host",
                None: f"process {lease.pid} on this host (cannot tell whether it runs)"
                }[self.running]

    def summary(self) -> str:
        where = f"deploy lock of {self.env} (lease {LEASE_NAME} in {self.namespace})"
        lease = self.lease
        if lease is None:
            return f"{where}: free"
        if self.state == "stale":
            since = self.since_renewal
            return (f"{where}: STALE, its holder {lease.holder} stopped renewing "
                    + (f"{ago(since)} ago" if since is not None else "(no renewal time)"))
        return f"{where}: held by {lease.holder}"

    def lines(self, advice: bool = True) -> list[str]:
        """A summary, then one indented line per fact and (``advice``) what to do."""
        return [self.summary(), *(f"  {line}" for line in self.facts(advice))]

    def text(self, advice: bool = False) -> str:
        """:meth:`lines` as one text (what a confirmation prompt shows first)."""
        return "\n".join(self.lines(advice))

    def facts(self, advice: bool = True) -> list[str]:
        """One line per fact of a held lock (holder, operation, host, times), a note when this
        host's clock is off, then (``advice``) what to do; none for a free lock."""
        out: list[str] = []
        lease = self.lease
        if lease is None:
            return out
        rows = [("holder", lease.holder), ("operation", lease.operation or "-"),
                ("host", f"{lease.host or '?'} ({self.process()})"),
                ("acquired", _when(lease.acquired, self.age, "ago")),
                ("renewed", _when(lease.renewed, self._since(lease.renewed), "ago")),
                ("expires", _when(lease.expires, self.expires_in, "from now")
                 + (" unless renewed" if self.state == "held" else "")),
                ("duration", f"{lease.duration} s")]
        out += [f"{key:<10} {value}" for key, value in rows]
        if abs(self.clock_offset) > ClockSkew.TOLERANCE:
            out.append(f"note: this host's clock is {abs(self.clock_offset):.0f} s "
                       f"{'behind' if self.clock_offset > 0 else 'ahead of'} the API "
                       "server's; the times above are the server's")
        if not advice:
            return out
        if self.state == "stale":
            out.append(f"the next deploy, release or rollback takes it over once it expires; "
                       f"to remove it now: kestra-ops lock break --env {self.env}")
        elif self.running is False:
            limit = min(lease.duration, LEASE_SECONDS)
            out.append("its holder's process is gone: the lock goes stale within "
                       f"{ago(max(0, limit - (self.since_renewal or 0)))}; "
                       f"kestra-ops lock break --env {self.env} --force removes it now")
        return out

    def to_report(self) -> Report:
        """``lock status``: the facts, then the summary as the last line; exit 0 free or held by
        a holder that renews it, 1 stale or its process gone."""
        return Report("lock status", self.env, status=FAIL if self.exit_code else PASS,
                      outcome=self.state, message=self.summary(), exit_code=self.exit_code,
                      details=self.facts(), data=self.to_dict())

    def to_dict(self) -> dict:
        out = {"env": self.env, "namespace": self.namespace, "lease": LEASE_NAME,
               "state": self.state, "exit_code": self.exit_code}
        if self.lease is not None:
            out.update(self.lease.to_dict())
            out.update({"age_seconds": _round(self.age),
                        "seconds_since_renewal": _round(self.since_renewal),
                        "expires_in_seconds": _round(self.expires_in),
                        "this_host": self.this_host, "process_running": self.running,
                        "resource_version": self.lease.resource_version,
                        "server_time": _fmt(self.now),
                        "clock_offset_seconds": round(self.clock_offset, 1)})
        return out


def _round(seconds: float | None) -> float | None:
    return round(seconds, 1) if seconds is not None else None


def _when(when: dt.datetime | None, seconds: float | None, direction: str) -> str:
    if when is None:
        return "-"
    if seconds is None:
        return _fmt(when)
    if direction == "from now" and seconds < 0:
        return f"{_fmt(when)} ({ago(-seconds)} ago)"
    return f"{_fmt(when)} ({ago(seconds)} {direction})"


def lock_status(env, kube) -> LockStatus:
    """The deploy lock of ``env`` as it is now (one read)."""
    clock = ClockSkew()
    lease = read_lease(kube, env.namespace, clock)
    status = LockStatus(env.name, env.namespace, lease, clock.now(), clock.offset)
    if lease is not None and lease.host and lease.host == socket.gethostname():
        status.this_host = True
        status.running = process_running(lease.pid)
    return status


@dataclass
class BreakResult:
    status: LockStatus  # the lock as shown before the break
    outcome: str  # broken | free (nothing to break) | gone (released before the delete)
    forced: bool = False

    @property
    def message(self) -> str:
        where = f"deploy lock of {self.status.env} (lease {LEASE_NAME} in {self.status.namespace})"
        lease = self.status.lease
        if self.outcome == "free":
            return f"{where} is free: nothing to break"
        if self.outcome == "gone":
            return f"{where} was released meanwhile: nothing to break"
        forced = " (forced: it was still being renewed)" if self.forced else ""
        return (f"broke the {where} held by {lease.holder}"
                f"{f' ({lease.operation})' if lease.operation else ''}{forced}; logged in "
                "backups/changes.jsonl")

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "forced": self.forced, "message": self.message,
                "lock": self.status.to_dict()}

    def to_report(self) -> Report:
        """``lock break``: the lock as it was (holder, operation, host, times), then what was
        done; exit 0 (broken, or nothing to break)."""
        held = self.status.lease is not None
        return Report("lock break", self.status.env, outcome=self.outcome,
                      title=self.status.summary() if held else "", message=self.message,
                      details=self.status.facts(advice=False), data=self.to_dict())


def break_lock(env, kube, *, force: bool = False,
               confirm: Callable[[LockStatus], bool] | None = None) -> BreakResult:
    """Delete ``env``'s deploy lock when its holder stopped renewing (or with ``force``), after
    ``confirm(status)``: False raises :class:`Aborted` (nothing changed). Raises
    :class:`Conflict` for a live holder without ``force`` and for a lock that changed since it
    was read (renewed, released and retaken): nothing is deleted then."""
    from kestra_ops.audit import log_change

    status = lock_status(env, kube)
    lease = status.lease
    if lease is None:
        return BreakResult(status, "free")
    live = status.state != "stale"
    if live and not force:
        renewed = status.since_renewal
        raise Conflict(
            f"not breaking the deploy lock of {env.name}: {lease.holder}"
            f"{f' ({lease.operation})' if lease.operation else ''} on {lease.host or '?'} "
            f"renewed it {ago(renewed) + ' ago' if renewed is not None else 'recently'}, so its "
            "holder is alive; nothing changed",
            hint="wait for its operation to finish; --force breaks it anyway (only when you "
                 "know that process is gone or hung)")
    if confirm is not None and not confirm(status):
        raise Aborted("not breaking the deploy lock; nothing changed")
    what = f"lease {LEASE_NAME} in {env.namespace}"
    entry = {"action": "lock-break", "env": env.name, "target": what, "before": lease.holder,
             "after": None, "namespace": env.namespace, "operation": lease.operation,
             "host": lease.host, "pid": lease.pid, "acquired": _fmt(lease.acquired),
             "renewed": _fmt(lease.renewed), "age_seconds": _round(status.age),
             "seconds_since_renewal": _round(status.since_renewal), "state": status.state,
             "forced": live}
    try:
        delete_lease(kube, env.namespace, lease.resource_version)
    except NotFound:
        return BreakResult(status, "gone")
    except Conflict:
        now = read_lease(kube, env.namespace)
        raise Conflict(
            f"the deploy lock of {env.name} changed since it was shown "
            + (f"(now held by {now.describe()})" if now else "(now free)")
            + "; nothing deleted",
            hint=f"look again: kestra-ops lock status --env {env.name}") from None
    except KeyboardInterrupt:  # the delete may or may not have happened: say so in the log
        log_change(env.root, **{**entry, "status": "interrupted"})
        raise
    log_change(env.root, **{**entry, "status": "broken"})
    return BreakResult(status, "broken", forced=live)


def status_report(env) -> Report:
    """``kestra-ops lock status``: :func:`lock_status` on the env's cluster, as a report."""
    from kestra_ops import wiring

    kube = wiring.kube(env)
    try:
        return lock_status(env, kube).to_report()
    finally:
        kube.close()


def break_report(env, *, force: bool = False,
                 confirm: Callable[[LockStatus], bool] | None = None) -> Report:
    """``kestra-ops lock break``: :func:`break_lock` on the env's cluster, as a report."""
    from kestra_ops import wiring

    kube = wiring.kube(env)
    try:
        return break_lock(env, kube, force=force, confirm=confirm).to_report()
    finally:
        kube.close()
