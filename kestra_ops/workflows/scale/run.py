"""``scale``: change Kestra's mode (standalone / distributed) or its workers as a guarded
release, and prove nothing was lost.

1. the plan (:mod:`.plan`): the overlay's new ``mode`` / workers, its masked diff, the values
   after the change validated (a schema or rule error blocks: nothing written);
   ``dry_run`` ends here (nothing read from the cluster, nothing written);
2. the confirmation (the changes and the diff);
3. the deploy lock (held to the end), then Kestra's counts of flows, executions and triggers
   (:mod:`.counts`; Kestra unreadable: stop, nothing changed);
4. the overlay written (conflict-safe), then the guarded release
   (:func:`kestra_ops.workflows.release.run.release` with the lock: lint, diff, backup, helm
   upgrade --wait, which waits for every component's Deployment, the checklist, rollback);
5. on a failed or interrupted release: the release rolls helm back and the overlay is put back,
   unless someone edited it meanwhile (then it is left alone, and the report says so);
6. after a release that passed: the components the cluster runs (:mod:`.components`) and the
   counts again; fewer flows, executions or triggers than before fail the scale (exit 1) with
   both numbers; the overlay stays (the cluster runs it).

The database and the object storage are not touched by a mode change: every component uses the
same ones as the standalone server. Ctrl-C: the release's own handling (a moved release is rolled
back), the overlay put back, the lock released, the report stored.
"""

from __future__ import annotations

import time
from typing import Callable

from kestra_ops.errors import Aborted, InvalidInput, KestraOpsError
from kestra_ops.results import FAIL, PASS, Step


def scale(env, *, mode: str | None = None, workers: int | None = None, dry_run: bool = False,
          confirm: Callable[[str, list[str]], bool] | None = None, timeout: str = "10m",
          check_timeout: str = "5m", skip_backup: bool = False, check_bucket: bool = True,
          kestra_url: str | None = None, insecure: bool = False, progress=None, kube=None,
          helm=None, storage=None, shared_with: tuple | list = ()):
    """Scale ``env`` (see the module doc); never raises for a failed step: the report's
    outcome and exit code say how it ended. ``confirm(question, lines)``: None goes ahead."""
    from kestra_ops import durations
    from kestra_ops.results import Recorder
    from kestra_ops.workflows.release.report import stamp
    from kestra_ops.workflows.scale.report import ScaleReport, store

    durations.parse(timeout)
    check_seconds = durations.parse(check_timeout)
    started = time.perf_counter()
    report = ScaleReport(env.name, stamp(), dry_run=dry_run)
    rec = Recorder(report.result, progress)
    ctx = _Ctx(env, rec, report, timeout=timeout, check_seconds=check_seconds,
               skip_backup=skip_backup, check_bucket=check_bucket, kestra_url=kestra_url,
               insecure=insecure, storage=storage, helm=helm, shared_with=tuple(shared_with))
    own_kube = kube is None
    try:
        plan = _plan(ctx, mode, workers)
        if plan is not None and not dry_run and _confirmed(ctx, plan, confirm):
            ctx.kube = kube or _connect(env)
            _locked(ctx, plan)
    except KeyboardInterrupt:
        report.outcome = "interrupted"
        report.message = f"interrupted at {_where(rec)}" + _after(ctx)
    except InvalidInput as err:
        report.outcome, report.message = "refused", f"{_said(err)}; nothing was changed"
    except Aborted as err:
        report.outcome, report.message = "aborted", str(err)
    except KestraOpsError as err:
        report.outcome = "failed"
        report.message = f"failed at {_where(rec)}: {_said(err)}" + _after(ctx)
    finally:
        if (ctx.overlay_written or ctx.writing) and not ctx.released:
            _put_back(ctx)
        if own_kube and ctx.kube is not None:
            ctx.kube.close()
        if ctx.client is not None:
            ctx.client.close()
        report.seconds = time.perf_counter() - started
    result = report.to_report()
    if not dry_run:
        store(result, env, report.started, storage=storage)
        result.sections = report.sections(result)
    return result


def _where(rec) -> str:
    """The step a failure or Ctrl-C stopped: the running one, else the last that failed."""
    from kestra_ops.results import INTERRUPTED

    last = next((s.name for s in reversed(rec.report.steps)
                 if s.status in (FAIL, INTERRUPTED)), None)
    return rec.current or last or "the start"


def _said(err: KestraOpsError) -> str:
    return f"{err} ({err.hint})" if err.hint else str(err)


def _connect(env):
    from kestra_ops import wiring

    return wiring.kube(env)


class _Ctx:
    def __init__(self, env, rec, report, **opts):
        self.env, self.rec, self.report = env, rec, report
        self.kube = self.client = self.plan = None
        self.overlay_written = self.writing = False
        self.released = False  # the release passed: the cluster runs the new values
        self.__dict__.update(opts)


def _plan(ctx: _Ctx, mode, workers):
    from kestra_ops.workflows.scale.plan import plan_scale

    rep = ctx.report
    with ctx.rec.step("plan the values change") as step:
        plan = plan_scale(ctx.env, mode=mode, workers=workers, shared_with=ctx.shared_with)
        ctx.plan = plan
        rep.mode_before, rep.mode_after = plan.mode_before, plan.mode_after
        rep.workers_key = ".".join(plan.workers_key)
        rep.workers_before, rep.workers_after = plan.workers_before, plan.workers_after
        rep.changes = plan.describe()
        if plan.changed:
            rep.overlay, rep.values_diff = plan.overlay.shown, plan.overlay.diff()
        step.detail = "; ".join(rep.changes) or "nothing to change"
    if not plan.changed:
        rep.outcome = "unchanged"
        rep.message = (f"{ctx.env.name}'s values already say mode {plan.mode_after}"
                       + (f" with {rep.workers_key} {plan.workers_after}"
                          if plan.mode_after == "distributed" else "")
                       + f"; nothing to change (kestra-ops release --env {ctx.env.name} "
                         "applies values the cluster does not run yet)")
        return None
    with ctx.rec.step(f"values validate ({plan.overlay.shown} as changed)") as step:
        findings = plan.values
        step.detail = f"{findings.errors} error(s), {findings.warnings} warning(s)"
        if findings.errors:
            step.fail()
    if findings.errors:
        rep.result.findings = [findings]
        rep.outcome = "refused" if findings.unreadable else "blocked"
        rep.message = (f"the values after the change fail {findings.errors} rule(s): "
                       + "; ".join(f"{f.location}: {f.rule}: {f.message}"
                                   for f in findings.findings if f.severity == "error")
                       + "; nothing was written")
        return None
    if ctx.report.dry_run:
        rep.outcome = "planned"
        rep.message = ("dry run: " + "; ".join(rep.changes) + f" in {plan.overlay.shown}; "
                       "nothing was written (without --dry-run: the overlay is written, then a "
                       "guarded release)")
        return None
    return plan


def _confirmed(ctx: _Ctx, plan, confirm) -> bool:
    if confirm is None:
        return True
    lines = [f"scale {ctx.env.name}: " + "; ".join(plan.describe()),
             "  then a guarded release (lint, diff, backup, helm upgrade --wait, check, "
             "rollback on failure); the database and object storage are not touched"]
    lines += (plan.overlay.diff() or "").splitlines()
    if not confirm(f"scale {ctx.env.name}?", lines):
        raise Aborted("scale declined; nothing changed")
    return True


def _locked(ctx: _Ctx, plan) -> None:
    from kestra_ops.workflows.deploy.lock import recorded_lock

    with recorded_lock(ctx.kube, ctx.env.namespace, "scale", ctx.rec,
                       ctx.report.warnings) as lock:
        _scale(ctx, plan, lock)


def _counts(ctx: _Ctx, when: str):
    from kestra_ops.workflows.scale.counts import read_counts

    with ctx.rec.step(f"Kestra's counts {when}") as step:
        if ctx.client is None:
            from kestra_ops.wiring import client_for_env

            ctx.client = client_for_env(ctx.env, kube=ctx.kube, kestra_url=ctx.kestra_url,
                                        insecure=ctx.insecure)
        counts = read_counts(ctx.client)
        step.detail = counts.line()
    return counts


def _scale(ctx: _Ctx, plan, lock) -> None:
    from kestra_ops.workflows.overlay_edit import write
    from kestra_ops.workflows.release.run import release

    rep, env = ctx.report, ctx.env
    before = _counts(ctx, "before the change")
    rep.counts_before = before.to_dict()
    with ctx.rec.step(f"values: {'; '.join(plan.describe())} in {plan.overlay.shown}"):
        ctx.writing = True  # a Ctrl-C right after the rename still puts it back
        write(plan.overlay, redo=f"run kestra-ops scale --env {env.name} again")
        ctx.overlay_written = True
    with ctx.rec.step(f"guarded release of mode {plan.mode_after}") as s:
        rel = release(env, timeout=ctx.timeout, check_timeout=f"{ctx.check_seconds:g}s",
                      skip_backup=ctx.skip_backup, check_bucket=ctx.check_bucket,
                      kestra_url=ctx.kestra_url, insecure=ctx.insecure, progress=ctx.rec,
                      kube=ctx.kube, helm=ctx.helm, lock=lock, storage=ctx.storage)
        rep.release = {"outcome": rel.outcome, "message": rel.message,
                       "revision_before": rel.data.get("revision_before"),
                       "revision_after": rel.data.get("revision_after"),
                       "revision_final": rel.data.get("revision_final"),
                       "stored": rel.data.get("stored"),
                       "explanation": [i.to_dict() for i in rel.items],
                       "steps": [x.to_dict() for x in rel.steps]}
        rep.check = rel.data.get("check")
        s.detail = f"{rel.outcome}: {rel.message}"
        if rel.exit_code:
            s.fail()
    if rel.outcome == "interrupted":
        rep.outcome = "interrupted"
        rep.message = f"interrupted during the release: {rel.message}"
        return
    if rel.exit_code:
        rep.outcome = {"rolled-back": "rolled-back", "refused": "refused"}.get(rel.outcome,
                                                                              "failed")
        rep.message = (f"the release of mode {plan.mode_after} failed: {rel.message}; "
                       f"{env.name} stays {plan.mode_before}")
        return
    ctx.released = True
    _verify(ctx, plan, before)


def _verify(ctx: _Ctx, plan, before) -> None:
    from kestra_ops.workflows.scale.components import read_components
    from kestra_ops.workflows.scale.counts import lost

    rep, env = ctx.report, ctx.env
    with ctx.rec.step(f"components of mode {plan.mode_after}") as step:
        found = read_components(ctx.kube, env, plan.mode_after)
        rep.components = found.to_dict()
        step.detail = "; ".join(found.problems or found.ready)
        if not found.ok:
            step.fail()
    after = _counts(ctx, "after the release")
    rep.counts_after = after.to_dict()
    rep.lost = lost(before, after)
    done = "; ".join(plan.describe())
    if rep.lost:
        rep.outcome = "lost"
        rep.message = (f"{done}, but Kestra counts fewer after than before: "
                       f"{', '.join(rep.lost)} (before: {before.line()}; after: {after.line()}). "
                       "A mode change does not touch the database: find what deleted them "
                       "(a purge flow, someone's delete) before anything else; the cluster runs "
                       f"mode {plan.mode_after}")
        return
    if not found.ok:
        rep.outcome = "failed"
        rep.message = (f"{done}: the release passed but the cluster does not run mode "
                       f"{plan.mode_after} as expected: {'; '.join(found.problems)}")
        return
    rep.outcome = "scaled"
    rep.message = f"{done}; nothing lost ({after.line()})"


def _put_back(ctx: _Ctx) -> None:
    from kestra_ops.workflows.overlay_edit import restore

    plan, rep = ctx.plan, ctx.report
    try:
        done = restore(plan.overlay)
    except (OSError, KestraOpsError) as err:
        done, why = None, str(err)
    if done is False and not ctx.overlay_written:
        return  # stopped before the write took place: the file is as it was (or someone's)
    if done is not None:
        why = None if done else "it was edited during the scale"
    name = f"put back {plan.overlay.shown}"
    if why is None:
        ctx.overlay_written = False
        rep.overlay_restored = True
        rep.result.steps.append(Step(name, PASS, ""))
        rep.message += f"; {plan.overlay.shown} put back as it was"
        return
    rep.overlay_restored = False
    rep.result.steps.append(Step(name, FAIL, why))
    put = " and ".join(f"{'.'.join(k)} back to " + str(
        plan.mode_before if k == ("mode",) else plan.workers_before) for k in plan.changes)
    rep.warnings.append(f"{plan.overlay.shown} was not put back ({why}; left as it is): set "
                        f"{put} by hand (the cluster runs mode {plan.mode_before})")
    rep.message += f"; {plan.overlay.shown} NOT put back ({why}): see the warnings"


def _after(ctx: _Ctx) -> str:
    if not ctx.overlay_written:
        return "; nothing was changed"
    if ctx.released:
        return f"; the release passed: the cluster runs mode {ctx.plan.mode_after}"
    return ""
