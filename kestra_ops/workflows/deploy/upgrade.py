"""deploy: validate -> preflight -> (repair) -> dependency update -> diff -> upgrade -> summary.

Everything that changes the cluster happens under the deploy lock (a Lease in the namespace),
which is released on success, failure and Ctrl-C. The diff compares what ``helm template``
renders with the LIVE objects (:mod:`kestra_ops.workflows.deploy.live_diff`: a server-side dry-run
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
(:mod:`kestra_ops.workflows.deploy.recover`). Ctrl-C stops helm (SIGINT), then rolls back the
same way; a second Ctrl-C leaves the release as it is. Each change is logged in
``backups/changes.jsonl``.

Its steps are recorded by a :class:`~kestra_ops.results.Recorder`: its own, or the one of the
release that runs it (the release's report then holds them). :meth:`DeployResult.to_report` is the
command's report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from kestra_ops import chart
from kestra_ops.errors import Conflict, KestraOpsError, NotFound, OperationFailed
from kestra_ops.results import FAIL, PASS, Item, Recorder, Report, Section
from kestra_ops.settings import Environment
from kestra_ops.workflows.deploy.diff import ManifestDiff

# outcome -> exit code (3 with --detailed-exitcode when there were changes)
OUTCOMES = {"deployed": 0, "unchanged": 0, "dry-run": 0, "aborted": 1, "invalid": 1,
            "preflight-failed": 1, "failed": 1}


@dataclass
class DeployResult:
    env: str
    release: str
    namespace: str
    report: Report  # the recorder's: this deploy's steps (or the release's, sharing it)
    outcome: str = "failed"
    message: str = ""
    diff: ManifestDiff | None = None
    before: int | None = None
    after: int | None = None
    details: list[str] = field(default_factory=list)  # findings / failing checks, one per line
    status_before: str | None = None  # helm's status of the latest revision before the deploy
    repair: str | None = None  # why a deploy is needed without object changes (failed release)
    context: str = ""  # the kube context in use, by name (the title says it)
    force_conflicts: bool = False  # the upgrade took fields back from other writers (Helm 4)
    evidence: list[Item] = field(default_factory=list)  # why the upgrade failed (read first)
    rolled_back_to: int | None = None
    final: int | None = None  # the revision live at the end

    @property
    def steps(self):
        return self.report.steps

    @property
    def changes_found(self) -> bool:
        return bool(self.repair) or (self.diff is not None and self.diff.changed)

    def exit_code(self, detailed: bool = False) -> int:
        code = OUTCOMES[self.outcome]
        if detailed and code == 0 and self.changes_found:
            return 3
        return code

    def to_dict(self) -> dict:
        """The command's own JSON fields (kept for scripts)."""
        return {"release": self.release, "namespace": self.namespace,
                "revision_before": self.before, "revision_after": self.after,
                "revision_final": self.final, "release_status_before": self.status_before,
                "repair": self.repair, "force_conflicts": self.force_conflicts,
                "rolled_back_to": self.rolled_back_to, "details": list(self.details),
                "evidence": [], "diff": self.diff.to_dict() if self.diff else None}

    def to_report(self, *, detailed: bool = False, show_diff: bool = False) -> Report:
        """``deploy``: the steps, the evidence of a failed upgrade (items), the diff (whole with
        ``show_diff`` or a dry run; else the fields changed outside Helm), then ``deploy ENV:
        MESSAGE``. Exit :data:`OUTCOMES` (3 for changes with ``detailed``)."""
        report, diff = self.report, self.diff
        from kestra_ops.workflows.target import in_context

        report.title = (f"deploy {self.env} (release {self.release} in {self.namespace}"
                        f"{in_context(self.context)})")
        report.outcome, report.exit_code = self.outcome, self.exit_code(detailed)
        report.status = PASS if OUTCOMES[self.outcome] == 0 else FAIL
        report.message = f"deploy {self.env}: {self.message}"
        report.items, report.items_key = list(self.evidence), "evidence"
        report.details, report.sections = list(self.details), []
        if diff is not None and (show_diff or self.outcome == "dry-run") and (
                diff.changed or diff.notes):
            report.sections.append(Section(f"diff against {diff.against}",
                                           diff.text().splitlines()))
        elif diff is not None:
            if diff.drift:
                done = "reverted" if self.outcome == "deployed" else "the deploy reverts it"
                report.sections.append(Section(f"changed outside Helm ({done})", diff.drift))
            report.details += [f"note: {note}" for note in diff.notes]
        report.data = self.to_dict()
        return report


def deploy(env: Environment, *, timeout: str = "10m", dry_run: bool = False,
           repair: bool = False, confirm: Callable[[ManifestDiff], bool] | None = None,
           progress=None, kube=None, helm=None, check_bucket: bool = True,
           lock=None, rollback_on_failure: bool = True, undo_on_interrupt: bool = True,
           rollback_timeout: str | None = None, rec: Recorder | None = None,
           rendered: str | None = None) -> DeployResult:
    """Deploy ``env``. Returns the result; raises only for errors that stop it mid-way (the
    lock is released by then). ``confirm(diff)`` False ends with outcome ``aborted``.
    ``lock``: a :class:`~kestra_ops.workflows.deploy.lock.DeployLock` the caller already holds (and
    releases): the deploy then runs under it instead of taking its own. ``release``, which
    holds one lock across deploy, check and rollback, also rolls back itself
    (``rollback_on_failure=False``, ``undo_on_interrupt=False``), records the steps with its
    own ``rec``, and passes the chart lint's ``rendered`` manifests (``helm template``'s
    output) so the chart is rendered once; the evidence of a failed upgrade is gathered either
    way. ``helm``: a :class:`Helm`, a helm binary's path or None."""
    from kestra_ops import durations
    from kestra_ops.workflows.deploy.preflight import run_preflight
    from kestra_ops.workflows.values import validate_env

    durations.parse(timeout)  # a bad --timeout is refused before anything else
    durations.parse(rollback_timeout or timeout)
    from kestra_ops.workflows.target import context_name, target

    context = context_name(env)  # the title names it too (a CI log has no progress)
    if rec is None:
        rec = Recorder(Report("deploy", env.name), progress)
        rec.info(f"deploy {env.name}: {target(env, context)}")
    result = DeployResult(env.name, env.release, env.namespace, rec.report, context=context)

    report = rec.run("validate values", lambda: validate_env(env),
                     lambda r: f"{r.errors} error(s), {r.warnings} warning(s)",
                     lambda r: bool(r.errors or r.unreadable))
    if report.errors or report.unreadable:
        result.outcome, result.message = "invalid", f"values have {report.errors} error(s)"
        result.details = [f"{f.location}: {f.rule}: {f.message}" for f in report.findings
                          if f.severity == "error"]
        return result

    from kestra_ops import wiring

    own_kube = kube is None
    if own_kube:
        kube = wiring.kube(env)
    helm = wiring.helm(env, helm=helm)
    try:
        checks = rec.run("preflight", lambda: run_preflight(
            env, kube=kube, progress=rec, check_bucket=check_bucket, helm=helm),
            lambda p: f"{len(p.items)} checks", lambda p: p.exit_code != 0)
        failing = [c for c in checks.items if c.status == FAIL]
        stuck = any(c.code == "stuck" for c in failing)
        if failing and not (repair and stuck and len(failing) == 1):
            result.outcome = "preflight-failed"
            result.message = "preflight failed: " + "; ".join(f"{c.id}: {c.reason}"
                                                              for c in failing)
            result.details = [f"{c.id}: {d}" for c in failing for d in (c.details or [c.reason])]
            if stuck and not repair:
                result.details.append("rerun with --repair to roll the stuck release back first")
            return result
        _locked_deploy(env, result, rec, kube, helm, timeout=timeout, dry_run=dry_run,
                       repair=repair and stuck, confirm=confirm, lock=lock,
                       rollback=rollback_on_failure, undo=undo_on_interrupt,
                       rollback_timeout=rollback_timeout or timeout, rendered=rendered)
    finally:
        if own_kube:
            kube.close()
    return result


def _locked_deploy(env, result: DeployResult, rec: Recorder, kube, helm, *, timeout, dry_run,
                   repair, confirm, lock, rollback, undo, rollback_timeout, rendered) -> None:
    from contextlib import nullcontext

    from kestra_ops.audit import log_change
    from kestra_ops.workflows.deploy import recover as recover
    from kestra_ops.workflows.deploy.lock import deploy_lock

    own_lock = lock is None
    held = nullcontext(lock) if not own_lock else deploy_lock(kube, env, operation="deploy")
    with held as lock:
        if own_lock:
            rec.info(f"  deploy lock: lease {chart.LEASE} in {env.namespace}, held by "
                     f"{lock.holder}")
        history = _history(helm, env)
        if repair:
            good = [r for r in history if r.status in ("deployed", "superseded")]
            if not good:
                raise OperationFailed(f"release {env.release} is stuck and has no deployed "
                                      "revision to roll back to")
            new = rec.run(f"repair: roll back to revision {good[-1].revision}",
                          lambda: helm.rollback(env.release, env.namespace, good[-1].revision,
                                                timeout=timeout),
                          lambda r: f"revision {r.revision} {r.status}")
            log_change(env.root, action="repair", env=env.name, target=f"release {env.release}",
                       before=history[-1].revision, after=new.revision, to=good[-1].revision)
            history = _history(helm, env)
        latest = history[-1] if history else None
        result.before = result.final = latest.revision if latest else None
        result.status_before = latest.status if latest else None
        rec.run("helm dependency update", lambda: helm.dependency_update(env.chart_path),
                lambda updated: "updated" if updated else "no dependencies")
        result.diff = rec.run("diff against the live objects",
                              lambda: _render_diff(env, kube, helm, bool(history), rec, rendered),
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
            rec.info(f"  taking back {len(result.diff.drift)} field(s) changed outside Helm"
                     + (" (--force-conflicts)" if result.force_conflicts else ""))
        try:
            new = rec.run(f"helm upgrade --install (wait {timeout})",
                          lambda: helm.upgrade_install(
                              env.release, env.chart_path, env.namespace,
                              list(env.values_paths), timeout=timeout,
                              rollback_on_failure=False,
                              force_conflicts=result.force_conflicts),
                          lambda r: f"revision {r.revision} {r.status}")
        except KeyboardInterrupt:
            if undo:
                recover.undo_interrupted(env, result, helm, rec, rollback_timeout)
            raise
        except KestraOpsError as err:
            recover.upgrade_failed(env, result, rec, kube, helm, err, rollback=rollback,
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


def _render_diff(env, kube, helm, installed: bool, progress, rendered: str | None
                 ) -> ManifestDiff:
    """The render (``rendered`` when the caller has it already, else ``helm template``)
    against the live objects. The chart renders some objects only where the cluster serves an
    API (chart.CAPABILITY_APIS: the ServiceMonitor, the workers' custom-metrics autoscaler),
    which helm upgrade sees and an offline render does not: when the cluster serves any of them
    the chart is rendered again, told so, or the diff would miss those objects (and call a
    deploy that creates them "no changes")."""
    from kestra_ops.adapters.kube_read import served_apis
    from kestra_ops.chart import CAPABILITY_APIS
    from kestra_ops.workflows.deploy.live_diff import live_diff

    stored = helm.manifest(env.release, env.namespace) if installed else ""
    apis = served_apis(kube, CAPABILITY_APIS)
    if rendered is None or apis:
        from kestra_ops.workflows.deploy.preflight_database import offline_api_versions

        # the served APIs, and in database.mode cloudnativepg the Cluster API as chart lint
        # assumed it (preflight checks the cluster serves it)
        apis = list(dict.fromkeys([*apis, *offline_api_versions(env)]))
        done = helm.template(env.chart_path, list(env.values_paths), release=env.release,
                             namespace=env.namespace, api_versions=apis)
        if not done.ok:  # helm's own error, not its "Use --debug" advice
            from kestra_ops.workflows.deploy.chart_lint import helm_error

            raise OperationFailed(f"helm template: {helm_error(done)}")
        rendered = done.stdout
    return live_diff(kube, rendered, stored, release=env.release, namespace=env.namespace,
                     progress=progress)


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
