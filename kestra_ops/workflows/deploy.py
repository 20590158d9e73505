"""deploy: validate -> preflight -> (repair) -> dependency update -> diff -> upgrade -> summary.

Everything that changes the cluster happens under the deploy lock (a Lease in the namespace),
which is released on success, failure and Ctrl-C. The diff compares what ``helm template``
renders with the LIVE objects (:mod:`kestra_ops.workflows.live_diff`: a server-side dry-run
apply per object, Secret values masked), so a change made outside Helm (``config patch``,
``kubectl edit``) shows, with who made it. Taking such fields back is part of what is confirmed;
on Helm 4, whose server-side apply refuses them otherwise, the upgrade then runs with
``--force-conflicts`` (Helm 3's three-way merge reverts them by itself).

A release whose latest revision is ``failed`` is never "no changes": the deploy writes a new
revision, which repairs it (a ``pending-*`` one is stopped by preflight; ``--repair`` rolls it
back first).

The upgrade is ``helm upgrade --install --wait``. When it fails, the evidence (pods, container
states and reasons, Warning events, last log lines) is gathered first, while the failing pods
still exist, then the release is rolled back to its last good revision
(:mod:`kestra_ops.workflows.deploy_recover`). Ctrl-C stops helm (SIGINT), then rolls back the
same way; a second Ctrl-C leaves the release as it is. Each change is logged in
``backups/changes.jsonl``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from kestra_ops.errors import Conflict, KestraOpsError, NotFound, OperationFailed
from kestra_ops.settings import Environment
from kestra_ops.workflows.diff import ManifestDiff
from kestra_ops.workflows.plan import Step

# outcome -> exit code (3 with --detailed-exitcode when there were changes)
OUTCOMES = {"deployed": 0, "unchanged": 0, "dry-run": 0, "aborted": 1, "invalid": 1,
            "preflight-failed": 1, "failed": 1}


@dataclass
class DeployResult:
    env: str
    release: str
    namespace: str
    outcome: str = "failed"
    message: str = ""
    steps: list[Step] = field(default_factory=list)
    diff: ManifestDiff | None = None
    before: int | None = None
    after: int | None = None
    details: list[str] = field(default_factory=list)  # findings / failing checks, one per line
    status_before: str | None = None  # helm's status of the latest revision before the deploy
    repair: str | None = None  # why a deploy is needed without object changes (failed release)
    force_conflicts: bool = False  # the upgrade took fields back from other writers (Helm 4)
    evidence: list[dict] = field(default_factory=list)  # why the upgrade failed (before rollback)
    rolled_back_to: int | None = None
    final: int | None = None  # the revision live at the end

    @property
    def changes_found(self) -> bool:
        return bool(self.repair) or (self.diff is not None and self.diff.changed)

    def exit_code(self, detailed: bool = False) -> int:
        code = OUTCOMES[self.outcome]
        if detailed and code == 0 and self.changes_found:
            return 3
        return code

    def to_dict(self) -> dict:
        return {"env": self.env, "release": self.release, "namespace": self.namespace,
                "outcome": self.outcome, "message": self.message,
                "revision_before": self.before, "revision_after": self.after,
                "revision_final": self.final, "release_status_before": self.status_before,
                "repair": self.repair, "force_conflicts": self.force_conflicts,
                "rolled_back_to": self.rolled_back_to,
                "steps": [s.to_dict() for s in self.steps], "details": self.details,
                "evidence": self.evidence, "diff": self.diff.to_dict() if self.diff else None}


class _Steps:
    """Times each step into the result and mirrors it on the progress output."""

    def __init__(self, result: DeployResult, progress):
        self.result, self.progress = result, progress

    def run(self, name: str, fn: Callable, describe: Callable = lambda value: "",
            failed: Callable = lambda value: False):
        """Run ``fn`` as step ``name``; ``failed(value)`` marks a step whose work ran but whose
        verdict is a failure (FAILED on the progress line and in the result)."""
        started = time.perf_counter()
        try:
            with self.progress.step(name) as status:
                value = fn()
                if failed(value):
                    status.fail()
        except BaseException as err:
            detail = (str(err) if isinstance(err, KestraOpsError) else
                      "interrupted (Ctrl-C)" if isinstance(err, KeyboardInterrupt) else
                      "internal error")
            self.result.steps.append(Step(name, "failed", detail, time.perf_counter() - started))
            raise
        self.result.steps.append(Step(name, status.status, describe(value),
                                      time.perf_counter() - started))
        return value


def deploy(env: Environment, *, timeout: str = "10m", dry_run: bool = False,
           repair: bool = False, confirm: Callable[[ManifestDiff], bool] | None = None,
           progress=None, kube=None, helm=None, check_bucket: bool = True,
           lock=None, rollback_on_failure: bool = True, undo_on_interrupt: bool = True,
           rollback_timeout: str | None = None) -> DeployResult:
    """Deploy ``env``. Returns the result; raises only for errors that stop it mid-way (the
    lock is released by then). ``confirm(diff)`` False ends with outcome ``aborted``.
    ``lock``: a :class:`~kestra_ops.workflows.lock.DeployLock` the caller already holds (and
    releases): the deploy then runs under it instead of taking its own. ``release``, which
    holds one lock across deploy, check and rollback, also rolls back itself
    (``rollback_on_failure=False``, ``undo_on_interrupt=False``); the evidence of a failed
    upgrade is gathered either way."""
    from kestra_ops.adapters.helm import Helm, parse_duration
    from kestra_ops.output.progress import Progress
    from kestra_ops.workflows.preflight import run_preflight
    from kestra_ops.workflows.values import validate_env

    parse_duration(timeout)  # a bad --timeout is refused before anything else
    parse_duration(rollback_timeout or timeout)
    progress = progress or Progress(quiet=True)
    result = DeployResult(env.name, env.release, env.namespace)
    steps = _Steps(result, progress)

    report = steps.run("validate values", lambda: validate_env(env),
                       lambda r: f"{r.errors} error(s), {r.warnings} warning(s)",
                       lambda r: bool(r.errors or r.unreadable))
    if report.errors or report.unreadable:
        result.outcome, result.message = "invalid", f"values have {report.errors} error(s)"
        result.details = [f"{f.location}: {f.rule}: {f.message}" for f in report.findings
                          if f.severity == "error"]
        return result

    own_kube = kube is None
    if own_kube:
        from kestra_ops.adapters.kube import connect

        kube = connect(env)
    helm = helm or Helm.for_env(env)
    try:
        checks = steps.run("preflight", lambda: run_preflight(
            env, kube=kube, progress=progress, check_bucket=check_bucket,
            helm=helm.executable), lambda p: f"{len(p.checks)} checks",
            lambda p: not p.ok)
        failing = [c for c in checks.checks if c.status == "fail"]
        stuck = any(c.code == "stuck" for c in failing)
        if failing and not (repair and stuck and len(failing) == 1):
            result.outcome = "preflight-failed"
            result.message = "preflight failed: " + "; ".join(f"{c.name}: {c.reason}"
                                                              for c in failing)
            result.details = [f"{c.name}: {d}" for c in failing for d in (c.details or [c.reason])]
            if stuck and not repair:
                result.details.append("rerun with --repair to roll the stuck release back first")
            return result
        _locked_deploy(env, result, steps, kube, helm, timeout=timeout, dry_run=dry_run,
                       repair=repair and stuck, confirm=confirm, progress=progress, lock=lock,
                       rollback=rollback_on_failure, undo=undo_on_interrupt,
                       rollback_timeout=rollback_timeout or timeout)
    finally:
        if own_kube:
            kube.close()
    return result


def _locked_deploy(env, result: DeployResult, steps: _Steps, kube, helm, *, timeout, dry_run,
                   repair, confirm, progress, lock, rollback, undo, rollback_timeout) -> None:
    from contextlib import nullcontext

    from kestra_ops.adapters.helm import parse_duration
    from kestra_ops.audit import log_change
    from kestra_ops.workflows import deploy_recover as recover
    from kestra_ops.workflows.lock import DEFAULT_DURATION, deploy_lock

    duration = max(DEFAULT_DURATION, int(parse_duration(timeout) * 2) + 300)
    held = (nullcontext(lock) if lock is not None else
            deploy_lock(kube, env, duration=duration, operation="deploy"))
    with held as lock:
        progress.info(f"  deploy lock: lease kestra-ops-deploy in {env.namespace}, held by "
                      f"{lock.holder}")
        history = _history(helm, env)
        if repair:
            good = [r for r in history if r.status in ("deployed", "superseded")]
            if not good:
                raise OperationFailed(f"release {env.release} is stuck and has no deployed "
                                      "revision to roll back to")
            new = steps.run(f"repair: roll back to revision {good[-1].revision}",
                            lambda: helm.rollback(env.release, env.namespace, good[-1].revision,
                                                  timeout=timeout),
                            lambda r: f"revision {r.revision} {r.status}")
            log_change(env.root, action="repair", env=env.name, target=f"release {env.release}",
                       before=history[-1].revision, after=new.revision, to=good[-1].revision)
            history = _history(helm, env)
        latest = history[-1] if history else None
        result.before = result.final = latest.revision if latest else None
        result.status_before = latest.status if latest else None
        steps.run("helm dependency update", lambda: helm.dependency_update(env.chart_path),
                  lambda updated: "updated" if updated else "no dependencies")
        result.diff = steps.run("diff against the live objects",
                                lambda: _render_diff(env, kube, helm, bool(history), progress),
                                lambda d: d.summary())
        if latest is not None and latest.status != "deployed":
            description = " ".join(latest.description.split())
            result.repair = (f"release {env.release} is {latest.status} at revision "
                             f"{latest.revision} ({description}): this deploy writes a new "
                             "revision to repair it")
            result.diff.notes.insert(0, result.repair)
        if history and not result.changes_found:
            result.outcome = "unchanged"
            result.message = f"no changes: release {env.release} stays at revision {result.before}"
            return
        if dry_run:
            result.outcome, result.message = "dry-run", f"dry run: {_summary(result)}"
            return
        if confirm is not None and not confirm(result.diff):
            result.outcome, result.message = "aborted", "aborted, nothing changed"
            return
        _still_held(lock, env)
        result.force_conflicts = bool(result.diff.drift) and helm.version[0] >= 4
        if result.diff.drift:
            progress.info(f"  taking back {len(result.diff.drift)} field(s) changed outside "
                          "Helm" + (" (--force-conflicts)" if result.force_conflicts else ""))
        try:
            new = steps.run(f"helm upgrade --install (wait {timeout})",
                            lambda: helm.upgrade_install(
                                env.release, env.chart_path, env.namespace,
                                list(env.values_paths), timeout=timeout,
                                rollback_on_failure=False,
                                force_conflicts=result.force_conflicts),
                            lambda r: f"revision {r.revision} {r.status}")
        except KeyboardInterrupt:
            if undo:
                recover.undo_interrupted(env, result, helm, progress, rollback_timeout)
            raise
        except KestraOpsError as err:
            recover.upgrade_failed(env, result, steps, kube, helm, err, rollback=rollback,
                                   timeout=rollback_timeout, history=history)
            return
        result.after = result.final = new.revision
        result.outcome = "deployed"
        result.message = (f"deployed revision {new.revision} ({_summary(result)}); was "
                          f"{result.before if result.before is not None else 'not installed'}")
        log_change(env.root, action="deploy", env=env.name, target=f"release {env.release}",
                   before=result.before, after=new.revision, status=new.status,
                   changes=[f"{c.action} {c.kind}/{c.name}" for c in result.diff.changes],
                   reverted=result.diff.drift)


def _still_held(lock, env) -> None:
    """The Lease is still ours (a prompt may have waited while someone broke it, or longer than
    a lock whose renewals failed lives): else nothing is changed."""
    if not hasattr(lock, "current"):
        return
    held = lock.current()
    if getattr(lock, "lost", None):
        lost = lock.lost
    elif held is None:
        lost = "the Lease is gone"
    elif held.holder != lock.holder:
        lost = f"now held by {held.holder}"
    else:
        return
    raise Conflict(f"the deploy lock of {env.namespace} was lost before the upgrade ({lost}); "
                   "nothing was changed: run the deploy again")


def _render_diff(env, kube, helm, installed: bool, progress) -> ManifestDiff:
    from kestra_ops.adapters import helm_cli
    from kestra_ops.workflows.live_diff import live_diff

    stored = helm.manifest(env.release, env.namespace) if installed else ""
    rendered = helm_cli.template(env.chart_path, list(env.values_paths), release=env.release,
                                 namespace=env.namespace, helm=helm.executable)
    if not rendered.ok:
        lines = rendered.stderr.strip().splitlines() or ["failed without a message"]
        raise OperationFailed(f"helm template: {lines[-1]}")
    return live_diff(kube, rendered.stdout, stored, release=env.release,
                     namespace=env.namespace, progress=progress)


def _summary(result: DeployResult) -> str:
    summary = result.diff.summary() if result.diff is not None else "no diff"
    if result.diff is not None and result.diff.drift:
        summary += f"; {len(result.diff.drift)} field(s) changed outside Helm reverted"
    if result.repair:
        summary += f"; repairs the {result.status_before} revision {result.before}"
    return summary


def _history(helm, env) -> list:
    try:
        return helm.history(env.release, env.namespace)
    except NotFound:
        return []
