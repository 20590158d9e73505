"""release: one guarded release of an environment.

1. values validate + chart lint (stop on any error);
2. preflight (stop on a missing permission or a stuck release, unless ``repair``);
3. the diff against the live release, confirmed by the caller (no changes: done, nothing written);
4. a pre-release backup in ``backups/releases/<env>/<UTC>/`` (mode 0600): the live ConfigMap and
   ``helm get values`` of the current revision; and a backup set in the bucket when the env has
   object storage and a database configured (``skip_backup`` skips it, and the report says so);
5. the upgrade (:func:`~kestra_ops.workflows.deploy.deploy`);
6. the full checklist with ``wait`` (``check_timeout``), the end-to-end test flow included;
7. when it fails: ``helm rollback`` to the revision live before (with its own timeout), the
   ConfigMap restored from step 4 when it had changed outside Helm, the checklist again;
8. the report (:mod:`kestra_ops.workflows.release_report`).

One deploy lock (the Lease) is held from before the preflight to after the rollback. Ctrl-C at any
step: the report says where it stopped, a release moved off its previous revision is rolled back to
it, and the lock is released.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from kestra_ops.errors import KestraOpsError, NotFound
from kestra_ops.settings import Environment
from kestra_ops.workflows.plan import Step
from kestra_ops.workflows.release_report import ReleaseReport, explain, stamp, store


class _Recorder:
    """Wraps the progress output: every top-level ``progress.step`` becomes a report step (ok,
    failed or interrupted, with its time), and the step running now is known for Ctrl-C."""

    def __init__(self, progress, report: ReleaseReport):
        self.progress, self.report = progress, report
        self.depth = 0
        self.current: str | None = None
        self.tty, self.quiet = progress.tty, progress.quiet

    def info(self, message: str) -> None:
        self.progress.info(message)

    def update(self, message: str) -> None:
        self.progress.update(message)

    @contextmanager
    def step(self, name: str):
        top = self.depth == 0
        self.depth += 1
        if top:
            self.current = name
        started = time.perf_counter()
        try:
            with self.progress.step(name) as status:
                yield status
        except BaseException as err:
            if top:
                state = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
                detail = str(err) if isinstance(err, KestraOpsError) else ""
                self.report.steps.append(Step(name, state, detail,
                                              time.perf_counter() - started))
            raise
        else:
            if top:
                self.report.steps.append(Step(name, status.status, "",
                                              time.perf_counter() - started))
        finally:
            self.depth -= 1
            if top:
                self.current = None


def release(env: Environment, *, timeout: str = "10m", check_timeout: str = "5m",
            rollback_timeout: str | None = None, rollback: bool = True,
            skip_backup: bool = False, repair: bool = False,
            confirm: Callable | None = None, kestra_url: str | None = None,
            insecure: bool = False, progress=None, kube=None, helm=None,
            check_bucket: bool = True, storage=None) -> ReleaseReport:
    """Release ``env`` (see the module doc). Never raises for a failed step: the outcome says
    what happened (``report.exit_code``); Ctrl-C ends with outcome ``interrupted``."""
    from kestra_ops.adapters.helm import Helm, parse_duration
    from kestra_ops.output.progress import Progress

    parse_duration(timeout)  # bad durations are refused before anything else
    check_seconds = parse_duration(check_timeout)
    parse_duration(rollback_timeout or timeout)
    started = time.perf_counter()
    report = ReleaseReport(env.name, env.release, env.namespace, stamp())
    rec = _Recorder(progress or Progress(quiet=True), report)
    folder = Path(env.root) / "backups" / "releases" / env.name / report.started
    helm = helm or Helm.for_env(env)
    own_kube = kube is None
    opts = dict(timeout=timeout, check_seconds=check_seconds, rollback=rollback,
                rollback_timeout=rollback_timeout or timeout, skip_backup=skip_backup,
                repair=repair, confirm=confirm, kestra_url=kestra_url, insecure=insecure,
                check_bucket=check_bucket, folder=folder)
    try:
        if _lint(env, rec, report, helm):
            if own_kube:
                from kestra_ops.adapters.kube import connect

                kube = connect(env)
            _locked(env, rec, report, kube, helm, **opts)
    except KeyboardInterrupt:
        _interrupted(report, rec, "before the deploy lock was taken")
    except KestraOpsError as err:
        report.outcome, report.message = "failed", f"{rec.current or 'release'}: {err}"
    finally:
        if own_kube and kube is not None:
            kube.close()
        report.seconds = time.perf_counter() - started
        store(report, folder, env, storage=storage)
    return report


def _lint(env, rec, report: ReleaseReport, helm) -> bool:
    from kestra_ops.workflows.chart_lint import lint_chart

    with rec.step("chart lint"):
        lint = lint_chart(env, helm=helm.executable)
    report.steps[-1].detail = (f"{len(lint.manifests)} manifests; {lint.report.errors} "
                               f"error(s), {lint.report.warnings} warning(s)")
    if lint.report.errors:
        report.outcome, report.message = "invalid", \
            f"chart lint found {lint.report.errors} error(s)"
        report.details = [f"{f.location}: {f.rule}: {f.message}" for f in lint.report.findings
                          if f.severity == "error"]
        return False
    return True


def _interrupted(report: ReleaseReport, rec, where: str) -> None:
    report.outcome = "interrupted"
    stopped = next((s.name for s in reversed(report.steps) if s.status == "interrupted"), None)
    report.stopped_at = stopped or where
    report.message = f"interrupted at {report.stopped_at}"


def _locked(env, rec, report: ReleaseReport, kube, helm, *, timeout, check_seconds, rollback,
            rollback_timeout, skip_backup, repair, confirm, kestra_url, insecure, check_bucket,
            folder) -> None:
    from kestra_ops.adapters.helm import parse_duration
    from kestra_ops.workflows.deploy import deploy
    from kestra_ops.workflows.lock import DEFAULT_DURATION, DeployLock

    duration = max(DEFAULT_DURATION, int(2 * parse_duration(timeout) + 2 * check_seconds
                                          + parse_duration(rollback_timeout)) + 300)
    lock = DeployLock(kube, env.namespace, duration=duration, operation="release")
    with rec.step("take the deploy lock"):
        lock.acquire()  # Ctrl-C while taking it leaves no Lease behind
    report.steps[-1].detail = f"lease kestra-ops-deploy held by {lock.holder}"
    try:
        report.before = report.final = _current(helm, env)

        def gate(diff) -> bool:  # called by deploy after the diff, before the upgrade
            report.diff = diff.summary()
            report.drift = list(diff.drift)
            report.force_conflicts = bool(diff.drift) and helm.version[0] >= 4
            if confirm is not None:
                try:
                    accepted = confirm(diff)
                except KeyboardInterrupt:  # Ctrl-C at the prompt: the report names it
                    report.steps.append(Step("confirm the diff", "interrupted", ""))
                    raise
                if not accepted:
                    return False
            from kestra_ops.workflows.release_backup import backup

            backup(env, rec, report, kube, helm, folder, skip_backup)
            return True

        result = deploy(env, timeout=timeout, repair=repair, confirm=gate, progress=rec,
                        kube=kube, helm=helm, check_bucket=check_bucket, lock=lock,
                        rollback_on_failure=False, undo_on_interrupt=False)
        for step in result.steps:  # deploy's own descriptions of its steps
            mine = next((s for s in report.steps if s.name == step.name and not s.detail), None)
            if mine is not None:
                mine.detail = step.detail
        report.before, report.after, report.details = result.before, result.after, result.details
        report.final = result.after if result.after is not None else result.before
        if result.repair:
            report.warnings.append(result.repair)
        if result.outcome != "deployed":
            report.outcome = {"unchanged": "unchanged", "aborted": "aborted",
                              "invalid": "invalid", "preflight-failed": "preflight-failed"
                              }.get(result.outcome, "failed")
            report.message = result.message
            report.explanation = result.evidence  # read before anything was rolled back
            moved = result.after is not None and result.after != result.before
            if result.outcome == "failed" and moved:
                _roll_back(env, rec, report, kube, helm, failing=f"the upgrade failed: "
                           f"{result.message}", rollback=rollback,
                           rollback_timeout=rollback_timeout, check_seconds=check_seconds,
                           kestra_url=kestra_url, insecure=insecure)
            return
        _verify(env, rec, report, kube, helm, check_seconds=check_seconds, rollback=rollback,
                rollback_timeout=rollback_timeout, kestra_url=kestra_url, insecure=insecure,
                folder=folder)
    except KeyboardInterrupt:
        _interrupted(report, rec, "the release")
        if rollback:
            _undo(env, rec, report, helm, kube, rollback_timeout)
    finally:
        _release_lock(lock, report)


def _release_lock(lock, report: ReleaseReport) -> None:
    report.warnings += [f"deploy lock: {w}" for w in getattr(lock, "warnings", [])]
    if getattr(lock, "lost", None):
        report.warnings.append(f"the deploy lock was lost during the release: {lock.lost}")
    try:
        lock.release()
    except KestraOpsError as err:
        report.warnings.append(f"the deploy lock could not be released ({err}); it expires "
                               "by itself")


def _current(helm, env) -> int | None:
    try:
        history = helm.history(env.release, env.namespace)
    except NotFound:
        return None
    return history[-1].revision if history else None


def _run_check(env, rec, kube, *, seconds: float, kestra_url, insecure, only=None):
    from kestra_ops.workflows import check

    return check.run_check(env, only=only, wait=seconds, timeout=max(min(seconds, 60.0), 10.0),
                           kestra_url=kestra_url, insecure=insecure, progress=rec, kube=kube)


def _verify(env, rec, report: ReleaseReport, kube, helm, *, check_seconds, rollback,
            rollback_timeout, kestra_url, insecure, folder) -> None:
    with rec.step(f"check (wait {check_seconds:g}s, e2e flow included)") as status:
        checked = _run_check(env, rec, kube, seconds=check_seconds, kestra_url=kestra_url,
                             insecure=insecure)
        if not checked.ok:
            status.fail()
    report.check = checked.to_dict()
    if checked.ok:
        report.steps[-1].detail = "every item passed"
        report.outcome = "released"
        report.message = (f"released revision {report.after} (was "
                          f"{report.before if report.before is not None else 'not installed'})")
        return
    report.explanation = explain(checked)
    failing = ", ".join(item["id"] for item in report.explanation)
    report.steps[-1].detail = f"failing: {failing}"
    report.outcome = "failed"
    _roll_back(env, rec, report, kube, helm, failing=f"check failed ({failing})",
               rollback=rollback, rollback_timeout=rollback_timeout,
               check_seconds=check_seconds, kestra_url=kestra_url, insecure=insecure)


def _roll_back(env, rec, report: ReleaseReport, kube, helm, *, failing: str, rollback,
               rollback_timeout, check_seconds, kestra_url, insecure) -> None:
    """The new revision failed (``failing`` says how; its evidence is in the report already):
    helm rollback to the revision live before, the ConfigMap restored, the checklist again."""
    from kestra_ops.audit import log_change

    report.outcome = "failed"
    if not rollback or report.before is None:
        why = "--no-rollback" if not rollback else "first install, no revision to roll back to"
        report.message = (f"{failing}; not rolled back ({why}): release stays at revision "
                          f"{report.after}")
        return
    new = _rollback(env, rec, report, helm, rollback_timeout)
    log_change(env.root, action="rollback", env=env.name, target=f"release {env.release}",
               before=report.after, after=new, to=report.before,
               reason=f"release failed: {failing}")
    _restore_configmap(env, rec, report, kube)
    with rec.step(f"check after the rollback (wait {check_seconds:g}s)") as status:
        again = _run_check(env, rec, kube, seconds=check_seconds, kestra_url=kestra_url,
                           insecure=insecure)
        if not again.ok:
            status.fail()
    report.recheck = again.to_dict()
    verdict = "passes" if again.ok else "still fails: " + ", ".join(
        r.id for r in again.results if r.status == "fail")
    report.steps[-1].detail = verdict
    report.outcome = "rolled-back"
    report.message = (f"{failing}; rolled back to revision {report.before} (now revision "
                      f"{new}); the checklist after the rollback {verdict}")


def _rollback(env, rec, report: ReleaseReport, helm, timeout) -> int:
    with rec.step(f"helm rollback to revision {report.before} (wait {timeout})"):
        new = helm.rollback(env.release, env.namespace, report.before, timeout=timeout,
                            force_conflicts=report.force_conflicts)
    report.steps[-1].detail = f"revision {new.revision} {new.status}"
    report.final, report.rolled_back_to = new.revision, report.before
    return new.revision


def _restore_configmap(env, rec, report: ReleaseReport, kube) -> None:
    """Put back the pre-release ConfigMap data when the rollback did not (it had been changed
    outside Helm, e.g. by ``config patch``)."""
    from kestra_ops.workflows.configmap import CONFIGMAP, _replace
    from kestra_ops.workflows.rollout import read_json

    saved = report.configmap_before
    if saved is None:
        return
    live = read_json(kube, f"configmap {CONFIGMAP}", kube.core.read_namespaced_config_map,
                     CONFIGMAP, env.namespace)
    if (live.get("data") or {}) == saved:
        report.steps.append(Step("restore ConfigMap", "skipped", "unchanged by the release"))
        return
    with rec.step(f"restore ConfigMap {CONFIGMAP} from the pre-release backup"):
        _replace(kube, env, live, saved, None,
                 conflict=f"configmap {CONFIGMAP} changed while restoring it")


def _undo(env, rec, report: ReleaseReport, helm, kube, timeout) -> None:
    """After Ctrl-C: roll a release moved off its previous revision back to it."""
    try:
        now = _current(helm, env)
        if report.rolled_back_to is not None and now == report.final:  # rolled back already
            report.message += (f"; already rolled back to revision {report.before} (now {now})"
                               + _configmap_hint(env, report, kube))
            return
        report.final = now
        if report.before is None or now is None or now == report.before:
            report.message += "; nothing was changed"
            return
        if helm.killed:  # the second Ctrl-C: leave it as it is
            report.message += (f"; helm was stopped by a second Ctrl-C: the release is left at "
                               f"revision {now}; repair it with: kestra-ops rollback --env "
                               f"{env.name}" + _configmap_hint(env, report, kube))
            return
        rec.info(f"interrupted: rolling back to revision {report.before} (Ctrl-C again to "
                 "leave it as it is)")
        _rollback(env, rec, report, helm, timeout)
        report.message += (f"; rolled back to revision {report.before} (now {report.final})"
                           + _configmap_hint(env, report, kube))
    except KeyboardInterrupt:
        report.message += f"; the rollback to revision {report.before} was interrupted too"
    except KestraOpsError as err:
        report.message += f"; the rollback to revision {report.before} failed: {err}"


def _configmap_hint(env, report: ReleaseReport, kube) -> str:
    """After Ctrl-C past the upgrade, when the ConfigMap restore (step 7) did not run to its end
    and the live data differs from the pre-release backup: the command that puts it back."""
    from kestra_ops.workflows.configmap import CONFIGMAP
    from kestra_ops.workflows.rollout import read_json

    path = (report.backup.get("files") or {}).get("configmap")
    if path is None or any(s.name.startswith("restore ConfigMap") and s.status in ("ok", "skipped")
                           for s in report.steps):
        return ""
    try:
        live = read_json(kube, f"configmap {CONFIGMAP}", kube.core.read_namespaced_config_map,
                         CONFIGMAP, env.namespace)
        if (live.get("data") or {}) == report.configmap_before:
            return ""
    except (KestraOpsError, KeyboardInterrupt):
        pass  # cannot tell: say how to put it back
    return (f"; ConfigMap {CONFIGMAP} differs from its pre-release backup: put it back with "
            f"kestra-ops config restore --env {env.name} {path}")
