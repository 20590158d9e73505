"""deploy: validate -> preflight -> (repair) -> dependency update -> diff -> upgrade -> summary.

Everything that changes the cluster happens under the deploy lock (a Lease in the namespace),
which is released on success, failure and Ctrl-C. The diff compares what ``helm template``
renders now with ``helm get manifest`` of the live release, Secret values masked. The upgrade is
``helm upgrade --install --wait`` with rollback on failure (``--atomic`` on Helm 3,
``--rollback-on-failure`` on Helm 4). Each change is logged in ``backups/changes.jsonl``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from kestra_ops.errors import KestraOpsError, NotFound, OperationFailed
from kestra_ops.settings import Environment
from kestra_ops.workflows.diff import ManifestDiff
from kestra_ops.workflows.plan import Step

# outcome -> exit code (``changes`` becomes 3 with --detailed-exitcode when something changed)
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

    def exit_code(self, detailed: bool = False) -> int:
        code = OUTCOMES[self.outcome]
        if detailed and code == 0 and self.diff is not None and self.diff.changed:
            return 3
        return code

    def to_dict(self) -> dict:
        return {"env": self.env, "release": self.release, "namespace": self.namespace,
                "outcome": self.outcome, "message": self.message,
                "revision_before": self.before, "revision_after": self.after,
                "steps": [s.to_dict() for s in self.steps], "details": self.details,
                "diff": self.diff.to_dict() if self.diff else None}


class _Steps:
    """Times each step into the result and mirrors it on the progress output."""

    def __init__(self, result: DeployResult, progress):
        self.result, self.progress = result, progress

    def run(self, name: str, fn: Callable, describe: Callable = lambda value: "") :
        started = time.perf_counter()
        try:
            with self.progress.step(name):
                value = fn()
        except BaseException as err:
            detail = str(err) if isinstance(err, KestraOpsError) else type(err).__name__
            self.result.steps.append(Step(name, "failed", detail, time.perf_counter() - started))
            raise
        self.result.steps.append(Step(name, "ok", describe(value), time.perf_counter() - started))
        return value


def deploy(env: Environment, *, timeout: str = "10m", dry_run: bool = False,
           repair: bool = False, confirm: Callable[[ManifestDiff], bool] | None = None,
           progress=None, kube=None, helm=None, check_bucket: bool = True,
           lock=None) -> DeployResult:
    """Deploy ``env``. Returns the result; raises only for errors that stop it mid-way (the
    lock is released by then). ``confirm(diff)`` False ends with outcome ``aborted``.
    ``lock``: a :class:`~kestra_ops.workflows.lock.DeployLock` the caller already holds (and
    releases): the deploy then runs under it instead of taking its own (``release`` holds one
    lock across deploy, check and rollback)."""
    from kestra_ops.adapters.helm import Helm, parse_duration
    from kestra_ops.output.progress import Progress
    from kestra_ops.workflows.preflight import run_preflight
    from kestra_ops.workflows.values import validate_env

    parse_duration(timeout)  # a bad --timeout is refused before anything else
    progress = progress or Progress(quiet=True)
    result = DeployResult(env.name, env.release, env.namespace)
    steps = _Steps(result, progress)

    report = steps.run("validate values", lambda: validate_env(env),
                       lambda r: f"{r.errors} error(s), {r.warnings} warning(s)")
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
            helm=helm.executable), lambda p: f"{len(p.checks)} checks")
        failing = [c for c in checks.checks if c.status == "fail"]
        stuck = any(c.name == "release" for c in failing)
        if failing and not (repair and stuck and len(failing) == 1):
            result.outcome = "preflight-failed"
            result.message = "preflight failed: " + "; ".join(f"{c.name}: {c.reason}"
                                                              for c in failing)
            result.details = [f"{c.name}: {d}" for c in failing for d in (c.details or [c.reason])]
            if stuck and not repair:
                result.details.append("rerun with --repair to roll the stuck release back first")
            return result
        _locked_deploy(env, result, steps, kube, helm, timeout=timeout, dry_run=dry_run,
                       repair=repair and stuck, confirm=confirm, progress=progress, lock=lock)
    finally:
        if own_kube:
            kube.close()
    return result


def _locked_deploy(env, result: DeployResult, steps: _Steps, kube, helm, *, timeout, dry_run,
                   repair, confirm, progress, lock=None) -> None:
    from contextlib import nullcontext

    from kestra_ops.adapters import helm_cli
    from kestra_ops.adapters.helm import parse_duration
    from kestra_ops.audit import log_change
    from kestra_ops.workflows.diff import diff_manifests
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
        result.before = history[-1].revision if history else None
        steps.run("helm dependency update", lambda: helm.dependency_update(env.chart_path),
                  lambda updated: "updated" if updated else "no dependencies")

        def render_diff() -> ManifestDiff:
            live = helm.manifest(env.release, env.namespace) if history else ""
            rendered = helm_cli.template(env.chart_path, list(env.values_paths),
                                         release=env.release, namespace=env.namespace,
                                         helm=helm.executable)
            if not rendered.ok:
                raise OperationFailed(f"helm template: {rendered.stderr.strip().splitlines()[-1]}")
            return diff_manifests(live, rendered.stdout)

        result.diff = steps.run("diff against the live release", render_diff,
                                lambda d: d.summary())
        if history and not result.diff.changed:
            result.outcome = "unchanged"
            result.message = f"no changes: release {env.release} stays at revision {result.before}"
            return
        if dry_run:
            result.outcome, result.message = "dry-run", f"dry run: {result.diff.summary()}"
            return
        if confirm is not None and not confirm(result.diff):
            result.outcome, result.message = "aborted", "aborted, nothing changed"
            return
        try:
            new = steps.run(f"helm upgrade --install (wait {timeout})",
                            lambda: helm.upgrade_install(env.release, env.chart_path,
                                                         env.namespace, list(env.values_paths),
                                                         timeout=timeout),
                            lambda r: f"revision {r.revision} {r.status}")
        except KestraOpsError as err:
            after = _history(helm, env)
            result.after = after[-1].revision if after else None
            result.outcome = "failed"
            rolled = getattr(err, "rolled_back", False)
            result.message = str(err) + (f"; helm rolled back (release now at revision "
                                         f"{result.after})" if rolled else "")
            log_change(env.root, action="deploy", env=env.name, target=f"release {env.release}",
                       before=result.before, after=result.after, status="failed",
                       error=str(err))
            return
        result.after = new.revision
        result.outcome = "deployed"
        result.message = (f"deployed revision {new.revision} ({result.diff.summary()}); was "
                          f"{result.before if result.before is not None else 'not installed'}")
        log_change(env.root, action="deploy", env=env.name, target=f"release {env.release}",
                   before=result.before, after=new.revision, status=new.status,
                   changes=[f"{c.action} {c.kind}/{c.name}" for c in result.diff.changes])


def _history(helm, env) -> list:
    try:
        return helm.history(env.release, env.namespace)
    except NotFound:
        return []
