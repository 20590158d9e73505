"""history and rollback of an environment's Helm release.

``rollback`` reads the history, picks the target (by default the last ``deployed``/``superseded``
revision before the current one), compares the target's manifest with the live objects (fields
changed outside Helm, e.g. by ``config patch``, are named: the rollback reverts them), asks the
caller to confirm, takes the deploy lock, checks that the release did not move while waiting for
the answer, runs ``helm rollback --wait`` (on Helm 4 with ``--force-conflicts`` when such fields
exist: its server-side apply refuses them otherwise), reads the new revision back and logs the
change (``backups/changes.jsonl``). The lock is released however it ends (success, failure,
Ctrl-C).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from kestra_ops.adapters.helm import GOOD_STATUSES, Helm, Revision
from kestra_ops.errors import Aborted, Conflict, InvalidInput, KestraOpsError, NotFound
from kestra_ops.settings import Environment


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

    @property
    def ok(self) -> bool:
        return self.new.status == "deployed"

    def to_dict(self) -> dict:
        return {**self.plan.to_dict(), "ok": self.ok, "new": self.new.to_dict(),
                "from_revision": self.plan.current.revision,
                "to_revision": self.plan.target.revision, "new_revision": self.new.revision,
                "seconds": round(self.seconds, 3), "lock_holder": self.lock_holder}


def release_history(env: Environment, *, helm: Helm | None = None) -> History:
    """The release's revisions, oldest first (:class:`NotFound` when it was never installed)."""
    helm = helm or Helm.for_env(env)
    return History(env.name, env.release, env.namespace,
                   helm.history(env.release, env.namespace))


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
             helm: Helm | None = None, progress=None, lock_duration: int | None = None,
             on_interrupt: Callable[[], None] | None = None) -> RollbackResult:
    """Roll ``env``'s release back (see the module docstring). ``confirm(plan)`` returning False
    raises :class:`Aborted` before anything changes; ``kube`` defaults to ``connect(env)``."""
    from kestra_ops.adapters.helm import parse_duration
    from kestra_ops.audit import log_change
    from kestra_ops.output.progress import Progress
    from kestra_ops.workflows.lock import DEFAULT_DURATION, deploy_lock

    seconds = parse_duration(timeout)  # a bad --timeout is refused before anything else
    helm = helm or Helm.for_env(env)
    progress = progress or Progress(quiet=True)
    with progress.step(f"helm history {env.release}"):
        plan = plan_rollback(release_history(env, helm=helm), to)
    own_kube = kube is None
    if own_kube:
        from kestra_ops.adapters.kube import connect

        kube = connect(env)
    try:
        with progress.step(f"compare revision {plan.target.revision} with the live objects"):
            plan = _with_drift(env, plan, helm, kube)
    except BaseException:
        if own_kube:
            kube.close()
        raise
    if confirm is not None and not confirm(plan):
        if own_kube:
            kube.close()
        raise Aborted("aborted, nothing changed")
    started = time.monotonic()
    duration = lock_duration or max(DEFAULT_DURATION, int(seconds) + 300)
    try:
        with deploy_lock(kube, env, duration=duration, operation="rollback") as lock:
            progress.info(f"  deploy lock: lease kestra-ops-deploy in {env.namespace}, "
                          f"held by {lock.holder}")
            now = release_history(env, helm=helm).current
            if now is None or now.revision != plan.current.revision:
                raise Conflict(f"release {env.release} changed while waiting (now revision "
                               f"{now.revision if now else '?'}, was {plan.current.revision}); "
                               "nothing changed: run the rollback again")
            new = _run(env, plan, helm, timeout, progress, on_interrupt,
                       force_conflicts=bool(plan.drift))
    finally:
        if own_kube:
            kube.close()
    log_change(env.root, action="rollback", env=env.name, target=f"release {env.release}",
               before=plan.current.revision, after=new.revision, to=plan.target.revision,
               namespace=env.namespace, status=new.status, reverted=list(plan.drift))
    return RollbackResult(plan, new, time.monotonic() - started, lock_holder=lock.holder)


def _with_drift(env, plan: RollbackPlan, helm: Helm, kube) -> RollbackPlan:
    """The plan with the fields the rollback takes back from other writers. A rollback is a
    way out: when the comparison itself fails, the plan says so and the rollback goes on."""
    from dataclasses import replace

    from kestra_ops.workflows.live_diff import live_diff

    try:
        target = helm.manifest(env.release, env.namespace, plan.target.revision)
        current = helm.manifest(env.release, env.namespace)
        diff = live_diff(kube, target, current, release=env.release, namespace=env.namespace)
    except KestraOpsError as err:
        return replace(plan, notes=(f"could not compare revision {plan.target.revision} with "
                                    f"the live objects: {err}",))
    return replace(plan, drift=tuple(diff.drift), notes=tuple(diff.notes))


def _run(env, plan: RollbackPlan, helm: Helm, timeout, progress, on_interrupt, *,
         force_conflicts: bool = False) -> Revision:
    from kestra_ops.audit import log_change

    step = f"helm rollback {env.release} to revision {plan.target.revision} (wait {timeout})"
    try:
        with progress.step(step):
            return helm.rollback(env.release, env.namespace, plan.target.revision,
                                 timeout=timeout, on_interrupt=on_interrupt,
                                 force_conflicts=force_conflicts)
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
