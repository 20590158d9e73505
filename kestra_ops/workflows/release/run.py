"""release: one guarded release of an environment.

1. values validate + chart lint (stop on any error);
2. preflight (stop on a missing permission or a stuck release, unless ``repair``);
3. the diff against the live release, confirmed by the caller (no changes: done, nothing written);
4. a pre-release backup in ``backups/releases/<env>/<UTC>/`` (mode 0600): the live ConfigMap and
   ``helm get values`` of the current revision; and a backup set in the bucket when the env has
   object storage and a database configured (``skip_backup`` skips it, and the report says so);
5. the upgrade (:func:`~kestra_ops.workflows.deploy.upgrade.deploy`);
6. the full checklist with ``wait`` (``check_timeout``), the end-to-end test flow included;
7. when it fails: ``helm rollback`` to the revision live before (with its own timeout), the
   ConfigMap restored from step 4 when it had changed outside Helm, the checklist again;
8. the report (:mod:`kestra_ops.workflows.release.report`).

One deploy lock (the Lease) is held from before the preflight to after the rollback. Ctrl-C at any
step: the report says where it stopped, a release moved off its previous revision is rolled back to
it, and the lock is released. One :class:`~kestra_ops.results.Recorder` records every step, the
deploy's included; the chart is rendered once (the lint's render is the diff's).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from kestra_ops import chart
from kestra_ops.errors import InvalidInput, KestraOpsError, NotFound
from kestra_ops.results import FAIL, INTERRUPTED, SKIP, Recorder, Report, Step
from kestra_ops.settings import Environment
from kestra_ops.workflows.release.report import ReleaseReport, stamp, store


def release(env: Environment, *, timeout: str = "10m", check_timeout: str = "5m",
            rollback_timeout: str | None = None, rollback: bool = True,
            skip_backup: bool = False, repair: bool = False,
            confirm: Callable | None = None, kestra_url: str | None = None,
            insecure: bool = False, progress=None, kube=None, helm=None,
            check_bucket: bool = True, storage=None, lock=None) -> Report:
    """Release ``env`` (see the module doc). ``lock``: a deploy lock the caller already holds
    (``upgrade run``): used as it is, neither taken nor released here. Never raises for a failed step: the outcome says
    what happened (``report.exit_code``); Ctrl-C ends with outcome ``interrupted``; a
    confirmation refused for want of a terminal (:class:`InvalidInput`) with ``refused``
    (exit 2). ``helm``: a :class:`Helm`, a helm binary's path or None."""
    from kestra_ops import durations, wiring

    durations.parse(timeout)  # bad durations are refused before anything else
    check_seconds = durations.parse(check_timeout)
    durations.parse(rollback_timeout or timeout)
    started = time.perf_counter()
    report = ReleaseReport(env.name, env.release, env.namespace, stamp())
    rec = Recorder(report.result, progress)
    folder = Path(env.root) / "backups" / "releases" / env.name / report.started
    own_kube = kube is None
    opts = dict(timeout=timeout, check_seconds=check_seconds, rollback=rollback,
                rollback_timeout=rollback_timeout or timeout, skip_backup=skip_backup,
                repair=repair, confirm=confirm, kestra_url=kestra_url, insecure=insecure,
                check_bucket=check_bucket, folder=folder, held=lock)
    try:  # from the first line shown on: a Ctrl-C anywhere after it is reported and stored
        from kestra_ops.workflows.target import context_name, target

        report.context = context_name(env)  # the title names it too (a CI log has no progress)
        report.image = _image(env)
        rec.info(f"release {env.name}: {target(env, report.context)}")
        helm = wiring.helm(env, helm=helm)
        rendered = _lint(env, rec, report, helm)
        if rendered is not None:
            if own_kube:
                kube = wiring.kube(env)
            _locked(env, rec, report, kube, helm, rendered=rendered, **opts)
    except KeyboardInterrupt:
        _interrupted(report, _between(report))
        if not _locked_yet(report):
            report.message += "; nothing was changed"
    except InvalidInput as err:  # no terminal to confirm on, and no --yes
        report.outcome, report.message = "refused", str(err)
    except KestraOpsError as err:
        report.outcome, report.stopped_at = "failed", _failed_at(rec, report)
        report.message = f"failed at {report.stopped_at}: {err}"
        if not _locked_yet(report):
            report.message += "; nothing was changed"
    finally:
        if own_kube and kube is not None:
            kube.close()
        report.seconds = time.perf_counter() - started
    result = report.to_report()
    store(result, folder, env, storage=storage)
    result.sections = report.sections(result)  # with where it was stored
    return result


def _image(env) -> str | None:
    """The Kestra image the env's values name (the report keeps it: upgrade gates read it)."""
    from kestra_ops.values.merge import load_layers
    from kestra_ops.yamlio import YamlLoadError

    try:
        image = (load_layers(env.values_paths, [], fast=True).plain or {}).get("image") or {}
    except (YamlLoadError, KestraOpsError, OSError):
        return None  # the lint says what is wrong with the values
    if not isinstance(image, dict) or not image.get("repository"):
        return None
    return f"{image['repository']}:{image.get('tag') or ''}".rstrip(":")


def _lint(env, rec, report: ReleaseReport, helm) -> str | None:
    """The chart lint; its rendered manifests (None: it found errors, the release stops)."""
    from kestra_ops.workflows.deploy.chart_lint import lint_chart

    with rec.step("chart lint") as step:
        lint = lint_chart(env, helm=helm)
        step.detail = (f"{len(lint.manifests)} manifests; {lint.report.errors} error(s), "
                       f"{lint.report.warnings} warning(s)")
        if lint.report.errors:
            step.fail()
    if lint.report.errors or lint.rendered is None:
        report.outcome, report.message = "invalid", \
            f"chart lint found {lint.report.errors} error(s)"
        report.details = [f"{f.location}: {f.rule}: {f.message}" for f in lint.report.findings
                          if f.severity == "error"]
        return None
    return lint.rendered


def _interrupted(report: ReleaseReport, where: str) -> None:
    report.outcome = "interrupted"
    stopped = next((s.name for s in reversed(report.steps) if s.status == INTERRUPTED), None)
    report.stopped_at = stopped or where
    between = stopped is None and where.startswith("after ")  # between two steps
    report.message = f"interrupted {'' if between else 'at '}{report.stopped_at}"


def _between(report: ReleaseReport) -> str:
    """Where a Ctrl-C outside any step came: "the start", or after the last step that ended."""
    return f"after {report.steps[-1].name}" if report.steps else "the start"


def _failed_at(rec, report: ReleaseReport) -> str:
    """The step a failure stopped: the running one, else the last failed one, else where the
    release was between steps."""
    if rec.current:
        return rec.current
    failed = next((s.name for s in reversed(report.steps) if s.status == FAIL), None)
    return failed or _between(report)


def _locked_yet(report: ReleaseReport) -> bool:
    """The deploy lock was taken (so something may have changed after it); before it, nothing
    the release does changes the cluster."""
    return any(s.name == "take the deploy lock" and s.status not in (FAIL, INTERRUPTED)
               for s in report.steps)


def _locked(env, rec, report: ReleaseReport, kube, helm, *, timeout, check_seconds, rollback,
            rollback_timeout, skip_backup, repair, confirm, kestra_url, insecure, check_bucket,
            folder, rendered, held=None) -> None:
    from kestra_ops.workflows.deploy.upgrade import deploy
    from kestra_ops.workflows.deploy.lock import DeployLock, release_recorded, take_recorded

    lock = held or DeployLock(kube, env.namespace, operation="release")
    take_recorded(lock, rec, held=held is not None)
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
                    report.steps.append(Step("confirm the diff", INTERRUPTED, ""))
                    raise
                except InvalidInput as err:  # no terminal to answer on: nothing changes
                    report.steps.append(Step("confirm the diff", FAIL, str(err)))
                    raise
                if not accepted:
                    return False
            from kestra_ops.workflows.release.backup import backup

            backup(env, rec, report, kube, helm, folder, skip_backup)
            return True

        result = deploy(env, timeout=timeout, repair=repair, confirm=gate, rec=rec,
                        kube=kube, helm=helm, check_bucket=check_bucket, lock=lock,
                        rollback_on_failure=False, undo_on_interrupt=False, rendered=rendered)
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
                rollback_timeout=rollback_timeout, kestra_url=kestra_url, insecure=insecure)
    except KeyboardInterrupt:
        _interrupted(report, "the release")
        if rollback:
            _undo(env, rec, report, helm, kube, rollback_timeout)
    finally:
        if held is None:
            release_recorded(lock, report.warnings, "the release")


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
            rollback_timeout, kestra_url, insecure) -> None:
    from kestra_ops.workflows.deploy.evidence import explain

    with rec.step(f"check (wait {check_seconds:g}s, e2e flow included)") as step:
        checked = _run_check(env, rec, kube, seconds=check_seconds, kestra_url=kestra_url,
                             insecure=insecure)
        if checked.ok:
            step.detail = "every item passed"
        else:
            report.explanation = explain(checked)
            step.fail("failing: " + ", ".join(item.id for item in report.explanation))
    report.check = checked.to_dict()
    if checked.ok:
        report.outcome = "released"
        report.message = (f"released revision {report.after} (was "
                          f"{report.before if report.before is not None else 'not installed'})")
        return
    report.outcome = "failed"
    _roll_back(env, rec, report, kube, helm,
               failing=f"check failed ({', '.join(i.id for i in report.explanation)})",
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
    with rec.step(f"check after the rollback (wait {check_seconds:g}s)") as step:
        again = _run_check(env, rec, kube, seconds=check_seconds, kestra_url=kestra_url,
                           insecure=insecure)
        verdict = "passes" if again.ok else "still fails: " + ", ".join(
            r.id for r in again.results if r.status == FAIL)
        step.detail = verdict
        if not again.ok:
            step.fail()
    report.recheck = again.to_dict()
    report.outcome = "rolled-back"
    report.message = (f"{failing}; rolled back to revision {report.before} (now revision "
                      f"{new}); the checklist after the rollback {verdict}")


def _rollback(env, rec, report: ReleaseReport, helm, timeout) -> int:
    with rec.step(f"helm rollback to revision {report.before} (wait {timeout})") as step:
        new = helm.rollback(env.release, env.namespace, report.before, timeout=timeout,
                            force_conflicts=report.force_conflicts)
        step.detail = f"revision {new.revision} {new.status}"
    report.final, report.rolled_back_to = new.revision, report.before
    return new.revision


def _live_configmap(env, kube) -> dict | None:
    from kestra_ops.adapters import kube_config

    try:
        return kube_config.read_configmap(kube, env.namespace, chart.CONFIGMAP)
    except NotFound:
        return None


def _restore_configmap(env, rec, report: ReleaseReport, kube) -> None:
    """Put back the pre-release ConfigMap data when the rollback did not (it had been changed
    outside Helm, e.g. by ``config patch``)."""
    from kestra_ops.workflows.configmap import patch as configmap

    from kestra_ops.adapters import kube_config

    saved = report.configmap_before
    if saved is None:
        return
    live = kube_config.read_configmap(kube, env.namespace, chart.CONFIGMAP)
    if (live.get("data") or {}) == saved:
        report.steps.append(Step("restore ConfigMap", SKIP, "unchanged by the release"))
        return
    with rec.step(f"restore ConfigMap {chart.CONFIGMAP} from the pre-release backup"):
        configmap._replace(kube, env, live, saved, None,
                           conflict=f"configmap {chart.CONFIGMAP} changed while restoring it")


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
    path = (report.backup.get("files") or {}).get("configmap")
    if path is None or any(s.name.startswith("restore ConfigMap") and s.status in ("pass", SKIP)
                           for s in report.steps):
        return ""
    try:
        if ((_live_configmap(env, kube) or {}).get("data") or {}) == report.configmap_before:
            return ""
    except (KestraOpsError, KeyboardInterrupt):
        pass  # cannot tell: say how to put it back
    return (f"; ConfigMap {chart.CONFIGMAP} differs from its pre-release backup: put it back "
            f"with kestra-ops config restore --env {env.name} {path}")
