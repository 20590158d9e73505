"""history and rollback of an environment's Helm release.

``rollback`` reads the history, picks the target (by default the last ``deployed``/``superseded``
revision before the current one), compares the target's manifest with the live objects (fields
changed outside Helm, e.g. by ``config patch``, are named: the rollback reverts them), asks the
caller to confirm, takes the deploy lock, checks that the release did not move while waiting for
the answer, runs ``helm rollback --wait`` (on Helm 4 with ``--force-conflicts`` when such fields
exist: its server-side apply refuses them otherwise), reads the new revision back and logs the
change (``backups/changes.jsonl``). The lock is released however it ends (success, failure,
Ctrl-C). Its steps are recorded (:class:`~kestra_ops.results.Recorder`);
:meth:`RollbackResult.to_report` and :func:`history_report` are the commands' reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from kestra_ops import chart
from kestra_ops.adapters.helm import GOOD_STATUSES, Helm, Revision
from kestra_ops.errors import Aborted, Conflict, InvalidInput, KestraOpsError, NotFound
from kestra_ops.results import FAIL, PASS, Recorder, Report, Section, Table
from kestra_ops.settings import Environment

COLUMNS = ["", "REVISION", "UPDATED (UTC)", "STATUS", "CHART", "APP VERSION", "DESCRIPTION"]


@dataclass
class History:
    env: str
    release: str
    namespace: str
    revisions: list[Revision]

    @property
    def current(self) -> Revision | None:
        return self.revisions[-1] if self.revisions else None

    def to_dict(self) -> dict:
        return {"env": self.env, "release": self.release, "namespace": self.namespace,
                "current": self.current.revision if self.current else None,
                "revisions": [r.to_dict() for r in self.revisions]}

    def to_report(self) -> Report:
        """``history``: one row per revision, oldest first, the current one marked ``*`` (the
        table shows the start of helm's description on one line; JSON keeps all of it); a
        warning when the current revision is pending-*."""
        current = self.current
        rows = [["*" if rev is current else "", rev.revision, _when(rev.updated), rev.status,
                 rev.chart, rev.app_version, rev.description] for rev in self.revisions]
        warnings = []
        if current is not None and current.pending:
            warnings.append(f"revision {current.revision} is {current.status}: an interrupted "
                            f"helm left it; `kestra-ops rollback --env {self.env}` repairs it")
        return Report("history", self.env, title=f"release {self.release} in {self.namespace} "
                      f"({self.env})", tables=[Table(list(COLUMNS), rows)], warnings=warnings,
                      data=self.to_dict())


def _when(updated: str) -> str:
    """helm's RFC 3339 (nanoseconds, any offset) -> ``2026-11-24 01:02:03``."""
    return updated[:19].replace("T", " ") if updated else "-"


@dataclass(frozen=True)
class RollbackPlan:
    env: str
    release: str
    namespace: str
    current: Revision
    target: Revision
    drift: tuple[str, ...] = ()  # fields changed outside Helm that the rollback reverts
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        c, t = self.current, self.target
        text = (f"roll back release {self.release} in {self.namespace} ({self.env}): revision "
                f"{c.revision} ({c.status}, {c.chart}, app {c.app_version or '?'}) -> revision "
                f"{t.revision} ({t.status}, {t.chart}, app {t.app_version or '?'})")
        if self.drift:
            text += "\n  changed outside Helm, reverted by the rollback:" + "".join(
                f"\n    {line}" for line in self.drift)
        return text + "".join(f"\n  note: {n}" for n in self.notes)

    def text(self) -> str:
        """What the confirmation shows (:func:`kestra_ops.cli.common.confirm_diff`)."""
        return self.describe()

    def summary(self) -> str:
        return (f"revision {self.current.revision} ({self.current.status}) -> revision "
                f"{self.target.revision} ({self.target.status})")

    def to_dict(self) -> dict:
        return {"env": self.env, "release": self.release, "namespace": self.namespace,
                "current": self.current.to_dict(), "target": self.target.to_dict(),
                "drift": list(self.drift), "notes": list(self.notes)}


@dataclass
class RollbackResult:
    plan: RollbackPlan
    new: Revision
    seconds: float
    lock_holder: str = ""
    report: Report | None = None  # the recorder's (its steps)
    context: str = ""  # the kube context in use, by name (the title says it)

    @property
    def ok(self) -> bool:
        return self.new.status == "deployed"

    def to_dict(self) -> dict:
        return {**self.plan.to_dict(), "ok": self.ok, "new": self.new.to_dict(),
                "from_revision": self.plan.current.revision,
                "to_revision": self.plan.target.revision, "new_revision": self.new.revision,
                "seconds": round(self.seconds, 3), "lock_holder": self.lock_holder}

    def to_report(self) -> Report:
        """``rollback``: the steps, the fields it took back from other writers, then what it
        did. Exit 0 when the new revision is deployed, else 1."""
        plan, new = self.plan, self.new
        report = self.report or Report("rollback", plan.env)
        from kestra_ops.workflows.target import in_context

        report.title = (f"rollback {plan.env} (release {plan.release} in {plan.namespace}"
                        f"{in_context(self.context)})")
        report.status, report.exit_code = (PASS, 0) if self.ok else (FAIL, 1)
        report.outcome = "rolled-back" if self.ok else "failed"
        report.message = (f"rolled back {plan.release} ({plan.env}) from revision "
                          f"{plan.current.revision} to {plan.target.revision}: new revision "
                          f"{new.revision}, {new.status} ({self.seconds:.1f}s)")
        report.sections = ([Section("changed outside Helm, reverted by the rollback",
                                    list(plan.drift))] if plan.drift else [])
        report.details = [f"note: {n}" for n in plan.notes]
        report.data = self.to_dict()
        return report


def release_history(env: Environment, *, helm=None) -> History:
    """The release's revisions, oldest first (:class:`NotFound` when it was never installed)."""
    from kestra_ops import wiring

    return History(env.name, env.release, env.namespace,
                   wiring.helm(env, helm=helm).history(env.release, env.namespace))


def history_report(env: Environment, *, helm=None) -> Report:
    """``kestra-ops history``: :func:`release_history` as a report (no kubeconfig for helm:
    :class:`InvalidInput`, exit 2)."""
    from kestra_ops.adapters.kube import require_config

    require_config(env)
    return release_history(env, helm=helm).to_report()


def plan_rollback(history: History, to: int | None = None) -> RollbackPlan:
    """The target: ``to`` when given (it must exist, be deployed or superseded, and not be the
    current revision), else the last deployed/superseded revision before the current one."""
    current = history.current
    if current is None:
        raise NotFound(f"release {history.release} in {history.namespace} has no revisions")
    good = [r for r in history.revisions[:-1] if r.status in GOOD_STATUSES]
    if to is None:
        if not good:
            raise NotFound(f"release {history.release} has no deployed or superseded revision "
                           f"before revision {current.revision} to roll back to")
        target = good[-1]
    else:
        known = {r.revision: r for r in history.revisions}
        target = known.get(to)
        usable = ", ".join(str(r.revision) for r in good) or "none"
        if target is None:
            raise InvalidInput(f"release {history.release} has no revision {to} (revisions "
                               f"{history.revisions[0].revision}-{current.revision} are kept; "
                               f"rollback targets: {usable})")
        if target is current:
            raise InvalidInput(f"revision {to} is the current revision of {history.release}; "
                               f"nothing to roll back (rollback targets: {usable})")
        if target.status not in GOOD_STATUSES:
            raise InvalidInput(f"revision {to} of {history.release} is {target.status}: only a "
                               f"deployed or superseded revision is a rollback target "
                               f"(rollback targets: {usable})")
    return RollbackPlan(history.env, history.release, history.namespace, current, target)


def rollback(env: Environment, *, to: int | None = None, timeout: str = "10m",
             confirm: Callable[[RollbackPlan], bool] | None = None, kube=None,
             helm=None, progress=None,
             on_interrupt: Callable[[], None] | None = None) -> RollbackResult:
    """Roll ``env``'s release back (see the module docstring). ``confirm(plan)`` returning False
    raises :class:`Aborted` before anything changes; ``kube`` defaults to the env's cluster,
    ``helm`` (a :class:`Helm`, a binary's path or None) to the env's helm. ``progress`` mirrors
    the steps; ``on_interrupt`` runs at the first Ctrl-C during helm (default: say so)."""
    from kestra_ops import durations
    from kestra_ops.audit import log_change
    from kestra_ops.workflows.deploy.lock import deploy_lock

    durations.parse(timeout)  # a bad --timeout is refused before anything else
    from kestra_ops import wiring

    if kube is None:  # no kubeconfig: invalid input (exit 2), before helm is asked anything
        from kestra_ops.adapters.kube import require_config

        require_config(env)
    helm = wiring.helm(env, helm=helm)
    rec = Recorder(Report("rollback", env.name), progress)
    from kestra_ops.workflows.target import context_name, target

    context = context_name(env)  # the title names it too (a CI log has no progress)
    rec.info(f"rollback {env.name}: {target(env, context)}")
    if on_interrupt is None:
        def on_interrupt() -> None:
            rec.info("interrupted: letting helm stop cleanly (Ctrl-C again to kill it)")
    with rec.step(f"helm history {env.release}") as step:
        plan = plan_rollback(release_history(env, helm=helm), to)
        step.detail = plan.summary()
    own_kube = kube is None
    if own_kube:
        kube = wiring.kube(env)
    try:
        with rec.step(f"compare revision {plan.target.revision} with the live objects") as step:
            plan = _with_drift(env, plan, helm, kube)
            step.detail = (f"{len(plan.drift)} field(s) changed outside Helm"
                           if plan.drift else "nothing changed outside Helm")
            if plan.notes and not plan.drift:
                step.warn()
        if confirm is not None and not confirm(plan):
            raise Aborted("aborted, nothing changed")
        started = time.monotonic()
        with deploy_lock(kube, env, operation="rollback") as lock:
            rec.info(f"  deploy lock: lease {chart.LEASE} in {env.namespace}, held by "
                     f"{lock.holder}")
            now = release_history(env, helm=helm).current
            if now is None or now.revision != plan.current.revision:
                raise Conflict(f"release {env.release} changed while waiting (now revision "
                               f"{now.revision if now else '?'}, was {plan.current.revision}); "
                               "nothing changed: run the rollback again")
            new = _run(env, plan, helm, timeout, rec, on_interrupt,
                       force_conflicts=bool(plan.drift))
    finally:
        if own_kube:
            kube.close()
    log_change(env.root, action="rollback", env=env.name, target=f"release {env.release}",
               before=plan.current.revision, after=new.revision, to=plan.target.revision,
               namespace=env.namespace, status=new.status, reverted=list(plan.drift))
    return RollbackResult(plan, new, time.monotonic() - started, lock_holder=lock.holder,
                          report=rec.report, context=context)


def _with_drift(env, plan: RollbackPlan, helm: Helm, kube) -> RollbackPlan:
    """The plan with the fields the rollback takes back from other writers. A rollback is a
    way out: when the comparison itself fails, the plan says so and the rollback goes on."""
    from dataclasses import replace

    from kestra_ops.workflows.deploy.live_diff import live_diff

    try:
        target = helm.manifest(env.release, env.namespace, plan.target.revision)
        current = helm.manifest(env.release, env.namespace)
        diff = live_diff(kube, target, current, release=env.release, namespace=env.namespace)
    except KestraOpsError as err:
        return replace(plan, notes=(f"could not compare revision {plan.target.revision} with "
                                    f"the live objects: {err}",))
    return replace(plan, drift=tuple(diff.drift), notes=tuple(diff.notes))


def _run(env, plan: RollbackPlan, helm: Helm, timeout, rec: Recorder, on_interrupt, *,
         force_conflicts: bool = False) -> Revision:
    from kestra_ops.audit import log_change

    step = f"helm rollback {env.release} to revision {plan.target.revision} (wait {timeout})"
    try:
        return rec.run(step, lambda: helm.rollback(
            env.release, env.namespace, plan.target.revision, timeout=timeout,
            on_interrupt=on_interrupt, force_conflicts=force_conflicts),
            lambda r: f"revision {r.revision} {r.status}", lambda r: r.status != "deployed")
    except KestraOpsError as err:  # helm may have written a failed revision: log what it left
        try:
            after = helm.history(env.release, env.namespace)[-1]
        except KestraOpsError:
            after = None
        if after is not None and after.revision != plan.current.revision:
            log_change(env.root, action="rollback", env=env.name, target=f"release {env.release}",
                       before=plan.current.revision, after=after.revision,
                       to=plan.target.revision, namespace=env.namespace, status=after.status,
                       error=str(err))
        raise
