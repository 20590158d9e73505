"""After a failed or interrupted upgrade: the evidence first, then back to the last good revision.

``helm upgrade`` runs without ``--atomic``/``--rollback-on-failure``, because helm's own rollback
starts the moment its wait gives up and takes the failing pods (and the reason they failed) with
it. Here the evidence is read first (:func:`kestra_ops.workflows.deploy.evidence.gather`), then
``helm rollback --wait`` returns the release to the last ``deployed``/``superseded`` revision
before the failed one, with ``--force-conflicts`` on Helm 4 when the upgrade took fields back from
other writers. A failed first install has nothing to roll back to: it stays ``failed``, and the
next deploy replaces it.
"""

from __future__ import annotations

from kestra_ops.adapters.helm import GOOD_STATUSES
from kestra_ops.errors import KestraOpsError, NotFound


def target(history: list) -> int | None:
    """The revision to return to: the last deployed or superseded one (None: none)."""
    good = [r.revision for r in history if r.status in GOOD_STATUSES]
    return good[-1] if good else None


def upgrade_failed(env, result, rec, kube, helm, err: KestraOpsError, *, rollback: bool,
                   timeout: str, history: list) -> None:
    """The upgrade raised ``err``: record what helm left, gather the evidence, roll back
    (``rec``: the :class:`~kestra_ops.results.Recorder` of the deploy's steps)."""
    from kestra_ops.audit import log_change
    from kestra_ops.workflows.deploy import evidence

    now = _history(helm, env)
    result.after = result.final = now[-1].revision if now else None
    result.outcome = "failed"
    message = str(err)
    result.evidence = rec.run("evidence: pods, containers, Warning events (before any "
                              "rollback)", lambda: evidence.gather(env, kube),
                              lambda found: f"{len(found)} failing item(s)")
    log_change(env.root, action="deploy", env=env.name, target=f"release {env.release}",
               before=result.before, after=result.after, status="failed", error=str(err))
    back_to = target(history)
    moved = result.after is not None and result.after != result.before
    if not rollback or not moved:
        result.message = message
        return
    if back_to is None:
        result.message = (f"{message}; first install: nothing to roll back to (revision "
                          f"{result.after} stays failed; the next deploy replaces it)")
        return
    try:
        new = rec.run(f"helm rollback to revision {back_to} (wait {timeout})",
                      lambda: helm.rollback(env.release, env.namespace, back_to,
                                            timeout=timeout,
                                            force_conflicts=result.force_conflicts),
                      lambda r: f"revision {r.revision} {r.status}")
    except KestraOpsError as rb_err:
        result.message = (f"{message}; the rollback to revision {back_to} failed too: {rb_err}"
                          f" (see `kestra-ops history --env {env.name}`)")
        return
    result.rolled_back_to, result.final = back_to, new.revision
    log_change(env.root, action="rollback", env=env.name, target=f"release {env.release}",
               before=result.after, after=new.revision, to=back_to,
               reason="automatic: the upgrade failed")
    result.message = f"{message}; rolled back to revision {back_to} (now revision {new.revision})"


def undo_interrupted(env, result, helm, progress, timeout: str) -> None:
    """Ctrl-C stopped the upgrade: roll a release moved off its revision back (unless helm had
    to be killed by a second Ctrl-C: then say how to repair it). Never raises."""
    try:
        now = _history(helm, env)
        current = now[-1] if now else None
        result.final = current.revision if current else None
        if current is None or current.revision == result.before:
            progress.info("interrupted: nothing was changed")
            return
        back_to = target(now[:-1])
        if helm.killed or back_to is None:
            why = "helm was stopped by a second Ctrl-C" if helm.killed else \
                "there is no earlier good revision"
            fix = f"; repair it with: kestra-ops rollback --env {env.name}" if back_to else ""
            progress.info(f"interrupted: {why}; release {env.release} is {current.status} at "
                          f"revision {current.revision}{fix}")
            return
        progress.info(f"interrupted: rolling back to revision {back_to} (Ctrl-C again to "
                      "leave it as it is)")
        new = helm.rollback(env.release, env.namespace, back_to, timeout=timeout,
                            force_conflicts=result.force_conflicts)
        result.rolled_back_to, result.final = back_to, new.revision
        progress.info(f"rolled back to revision {back_to} (now revision {new.revision})")
    except KeyboardInterrupt:
        progress.info(f"the rollback was interrupted too: see `kestra-ops history --env "
                      f"{env.name}` and run `kestra-ops rollback --env {env.name}`")
    except KestraOpsError as err:
        progress.info(f"the rollback after the interrupt failed: {err}")


def _history(helm, env) -> list:
    try:
        return helm.history(env.release, env.namespace)
    except NotFound:
        return []
