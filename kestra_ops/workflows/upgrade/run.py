"""``upgrade run``: the NEXT step of the path to a target version (one step per run), under the
deploy lock:

1. the plan (:mod:`plan`): a step whose flows or values the target refuses is blocked;
2. the confirmation (the step, whether it can be undone, the values diff);
3. for an IRREVERSIBLE step, the gates (:mod:`gates`): a fresh verified backup set (taken with
   ``take_backup``) and the required environment already on the target;
4. manual migrations that run beside Kestra (``migrate plan``) as Kubernetes Jobs with the
   target image and the env's own configuration and Secrets (:mod:`jobs`);
5. an irreversible step stops Kestra first (helm upgrade at 0 replicas, the previous image: no
   two versions on one database, and a rollback never starts the previous image on a migrated
   database), then runs the migrations that need it stopped (``migrate run``);
6. the overlay's ``image.tag`` set to the step's version, and a guarded release
   (:func:`kestra_ops.workflows.release.run.release`: lint, diff, upgrade, check, rollback);
7. on failure: a reversible step is rolled back by the release (helm) and the overlay put back;
   past an irreversible point, the pre-upgrade backup set and the previous version are
   restored (:mod:`recover`), and the report says so;
8. the report (:mod:`report`), stored beside the release reports.

Ctrl-C: the overlay is put back; past an irreversible point nothing more is done on its own
(Kestra is left stopped) and the report gives the command that restores the pre-upgrade state.
"""

from __future__ import annotations

import os
import time
from typing import Callable

from kestra_ops.errors import Aborted, InvalidInput, KestraOpsError
from kestra_ops.results import FAIL, PASS, Step


def upgrade_run(env, to: str, *, confirm: Callable[[str, list[str]], bool] | None = None,
                take_backup: bool = False, identity=None, required=None, timeout: str = "10m",
                check_timeout: str = "5m", kestra_url: str | None = None,
                insecure: bool = False, progress=None, kube=None, helm=None, storage=None,
                database_url: str | None = None, catalogue=None, shared_with=()):
    """Run the next step toward ``to`` (see the module doc); never raises for a failed step.
    ``required``: the Environment named by ``upgrade.requires`` (resolved by the caller).
    ``confirm(question, lines)``: None goes ahead (``--yes``)."""
    from kestra_ops import durations, wiring
    from kestra_ops.results import Recorder
    from kestra_ops.workflows.release.report import stamp
    from kestra_ops.workflows.upgrade.report import UpgradeReport, store

    durations.parse(timeout)
    check_seconds = durations.parse(check_timeout)
    started = time.perf_counter()
    report = UpgradeReport(env.name, stamp(), target=str(to))
    rec = Recorder(report.result, progress)
    ctx = _Ctx(env, rec, report, shared_with=tuple(shared_with), timeout=timeout,
               check_seconds=check_seconds,
               kestra_url=kestra_url, insecure=insecure, storage=storage,
               database_url=database_url)
    own_kube = kube is None
    try:
        kube = ctx.kube = kube or wiring.kube(env)
        ctx.helm = wiring.helm(env, helm=helm)
        plan = _plan(ctx, to, catalogue)
        if plan is not None and _confirmed(ctx, plan, confirm):
            _locked(ctx, plan, take_backup=take_backup, identity=identity, required=required)
    except KeyboardInterrupt:
        report.outcome = "interrupted"
        report.message = f"interrupted at {rec.current or 'the start'}" + _after_interrupt(ctx)
    except InvalidInput as err:
        report.outcome, report.message = "refused", str(err)
    except Aborted as err:
        report.outcome, report.message = "aborted", str(err)
    except KestraOpsError as err:
        report.outcome = "failed"
        report.message = f"failed at {rec.current or 'the start'}: {err}" + _after_failure(ctx)
    finally:
        if ctx.overlay_written and report.outcome != "upgraded":
            _put_back_overlay(ctx)
        if own_kube and ctx.kube is not None:
            ctx.kube.close()
        report.seconds = time.perf_counter() - started
    result = report.to_report()
    store(result, env, report.started, storage=storage)
    result.sections = report.sections(result)
    return result


class _Ctx:
    def __init__(self, env, rec, report, **opts):
        self.env, self.rec, self.report = env, rec, report
        self.kube = self.helm = self.plan = self.overlay = None
        self.overlay_written = False
        self.stopping = False  # the stop of an irreversible step began
        self.stopped = False  # Kestra stopped for an irreversible step (past the point)
        self.lock = None
        self.left = 0  # steps after this run's
        self.__dict__.update(opts)


def _plan(ctx: _Ctx, to: str, catalogue):
    from kestra_ops.workflows.upgrade.plan import plan_upgrade
    from kestra_ops.workflows.upgrade.render import status_of

    rep = ctx.report
    with ctx.rec.step("plan the upgrade") as step:
        # judged at the next step's version, what this run installs (the flows the final
        # target breaks are the later runs' to block)
        plan = plan_upgrade(ctx.env, to, kube=ctx.kube, kestra_url=ctx.kestra_url,
                            insecure=ctx.insecure, catalogue=catalogue, judge_next=True,
                            shared_with=ctx.shared_with)
        ctx.left = max(len(plan.steps) - 1, 0)
        ctx.plan, rep.target = plan, str(plan.target)
        rep.start = str(plan.running.version)
        rep.warnings += (plan.running.notes + plan.warnings
                         + [n for n in plan.notes if "not carried" in n])
        if not plan.steps:
            step.detail = f"already at {plan.target}"
        else:
            nxt = plan.steps[0]
            rep.end, rep.reversible = str(nxt.end), nxt.reversible
            step.detail = (f"{len(plan.steps)} step(s); this run: {nxt.name} "
                           f"({'reversible' if nxt.reversible else 'IRREVERSIBLE'})")
    if not plan.steps:
        rep.outcome, rep.message = "unchanged", f"already at {plan.target}; nothing to do"
        return None
    rep.overlay, rep.values_diff = plan.overlay.shown, plan.overlay.diff()
    ctx.overlay = plan.overlay
    rep.image = plan.image
    if status_of(plan)[1]:
        rep.result.findings = [r for r in (plan.values, plan.flows) if r is not None]
        errors = sum(r.errors for r in rep.result.findings)
        rep.outcome = "blocked"
        rep.message = (f"{errors} flow or values error(s) Kestra {plan.judged} refuses: "
                       "fix them first (kestra-ops upgrade plan lists them with the fix)")
        return None
    return plan


def _confirmed(ctx: _Ctx, plan, confirm) -> bool:
    if confirm is None:
        return True
    step = plan.steps[0]
    lines = [f"upgrade {ctx.env.name}: {step.name}"
             + ("" if step.reversible else " (IRREVERSIBLE: gated by a verified backup set; a "
                "failure restores it)")]
    lines += [f"  migration Job: {' '.join(m.command)}" for m in step.manual]
    lines += (plan.overlay.diff() or "").splitlines()
    if not confirm(f"upgrade {ctx.env.name} to {step.end}?", lines):
        raise Aborted("upgrade declined; nothing changed")
    return True


def _locked(ctx: _Ctx, plan, *, take_backup, identity, required) -> None:
    from kestra_ops.workflows.deploy.lock import recorded_lock

    with recorded_lock(ctx.kube, ctx.env.namespace, "upgrade", ctx.rec,
                       ctx.report.warnings) as ctx.lock:
        _step(ctx, plan, take_backup=take_backup, identity=identity, required=required)


def _step(ctx: _Ctx, plan, *, take_backup, identity, required) -> None:
    from kestra_ops import durations
    from kestra_ops.workflows.upgrade import gates

    step, rep, env = plan.steps[0], ctx.report, ctx.env
    if not step.reversible:
        rep.gates.append(gates.requires_gate(required, step.end))
        item, name = gates.backup_gate(env, ctx.rec, take=take_backup, identity=identity,
                                       max_age=durations.parse(env.upgrade_backup_max_age),
                                       storage=ctx.storage, kube=ctx.kube,
                                       running=step.start)
        rep.gates.append(item)
        rep.backup_set = name
        failing = [g for g in rep.gates if not g.ok]
        if failing:
            rep.outcome = "blocked"
            rep.message = ("the irreversible step " + step.name + " is refused: "
                           + "; ".join(g.reason for g in failing) + "; nothing was changed")
            return
    beside = [m for m in step.manual if not m.stop]
    stopped = [m for m in step.manual if m.stop]
    for m in beside:
        if not _job(ctx, m):
            rep.outcome = "failed"
            rep.message = (f"migration Job {m.id} failed: stopped before the release; nothing "
                           "was changed")
            return
    if not step.reversible:
        from kestra_ops.workflows.upgrade.recover import install

        with ctx.rec.step("stop Kestra (0 replicas, the running version)") as s:
            ctx.stopping = True
            s.detail = install(env, ctx.helm, timeout=ctx.timeout, replicas=0, kube=ctx.kube)
            ctx.stopped = True  # from here on: past the point of no return
    for m in stopped:
        if not _job(ctx, m):
            return _restore(ctx, f"migration Job {m.id} failed")
    _release(ctx, plan, step)


def _job(ctx: _Ctx, migration) -> bool:
    from kestra_ops import chart, durations
    from kestra_ops.adapters.kube_read import KubeReader
    from kestra_ops.redact import environment_secrets, mask_line
    from kestra_ops.workflows.upgrade.jobs import build_job, job_name, kestra_args, run_job

    env = ctx.env
    secrets = environment_secrets(os.environ)
    with ctx.rec.step(f"migration Job {migration.id}: {' '.join(migration.command)}") as s:
        dep = KubeReader(ctx.kube).read("deployments", env.namespace, chart.DEPLOYMENT,
                                        group_version="apps/v1")
        body = build_job(dep, name=job_name(migration.id), image=ctx.report.image,
                         args=kestra_args(list(migration.command)),
                         annotations=dict(env.upgrade_job_annotations),
                         labels={"kestra-ops/upgrade-to": str(ctx.report.end)})
        done = run_job(ctx.kube, env.namespace, body, rec=ctx.rec,
                       timeout=durations.parse(env.upgrade_job_timeout),
                       mask=lambda line: mask_line(line, secrets))
        ctx.report.jobs.append({**done.to_dict(), "migration": migration.id})
        s.detail = f"{done.name}: {done.reason}"
        if not done.succeeded:
            s.fail()
    return done.succeeded


def _release(ctx: _Ctx, plan, step) -> None:
    from kestra_ops.workflows.release.run import release
    from kestra_ops.workflows.upgrade.overlay import write

    rep, env = ctx.report, ctx.env
    with ctx.rec.step(f"values: image.tag {plan.tag} in {plan.overlay.shown}") as s:
        write(plan.overlay)
        ctx.overlay_written = True
        s.detail = "written" if plan.overlay.changed else "already there"
    with ctx.rec.step(f"guarded release of Kestra {step.end}") as s:
        rel = release(env, timeout=ctx.timeout, check_timeout=f"{ctx.check_seconds:g}s",
                      skip_backup=not step.reversible, kestra_url=ctx.kestra_url,
                      insecure=ctx.insecure, progress=ctx.rec, kube=ctx.kube, helm=ctx.helm,
                      lock=ctx.lock, storage=ctx.storage)
        rep.release = {"outcome": rel.outcome, "message": rel.message,
                       "revision_before": rel.data.get("revision_before"),
                       "revision_after": rel.data.get("revision_after"),
                       "stored": rel.data.get("stored"), "steps": [x.to_dict() for x in rel.steps]}
        rep.check = rel.data.get("check")
        s.detail = f"{rel.outcome}: {rel.message}"
        if rel.exit_code:
            s.fail()
    if rel.outcome == "interrupted":
        rep.outcome = "interrupted"
        rep.message = f"interrupted during the release: {rel.message}" + _after_interrupt(ctx)
        return
    if rel.exit_code == 0:
        rep.outcome = "upgraded"
        rep.message = f"upgraded {env.name} from {rep.start} to {step.end}"
        if ctx.left:
            rep.next = f"kestra-ops upgrade run --env {env.name} --to {rep.target}"
            rep.message += f"; {ctx.left} step(s) left to {rep.target}: run {rep.next}"
        return
    if ctx.stopped:
        return _restore(ctx, f"the release of {step.end} failed ({rel.outcome})")
    rep.outcome = "rolled-back" if rel.outcome == "rolled-back" else "failed"
    rep.message = (f"the release of {step.end} failed: {rel.message}; the step is reversible: "
                   f"helm took {env.name} back and the overlay is put back")


def _restore(ctx: _Ctx, why: str) -> None:
    from kestra_ops.workflows.upgrade.recover import restore_pre_upgrade

    rep = ctx.report
    _put_back_overlay(ctx)
    ctx.rec.info(f"{why}: restoring backup set {rep.backup_set} and Kestra {rep.start} "
                 "(the step cannot be undone by helm rollback)")
    try:
        done, rep.failed_state_set, rep.check = restore_pre_upgrade(
            ctx.env, ctx.rec, rep.backup_set, helm=ctx.helm, kube=ctx.kube,
            timeout=ctx.timeout, check_seconds=ctx.check_seconds,
            database_url=ctx.database_url, kestra_url=ctx.kestra_url, insecure=ctx.insecure,
            storage=ctx.storage)
    except KestraOpsError as err:
        rep.outcome = "failed"
        rep.message = (f"{why}; restoring the pre-upgrade state FAILED: {err}"
                       + _after_failure(ctx))
        return
    rep.restore = done
    rep.outcome = "restored"
    ok = rep.check and rep.check.get("exit_code") == 0
    rep.message = (f"{why}; restored backup set {rep.backup_set} and Kestra {rep.start}; the "
                   f"check after the restore {'passes' if ok else 'still FAILS'}")


def _put_back_overlay(ctx: _Ctx) -> None:
    from kestra_ops.workflows.upgrade.overlay import restore

    if not ctx.overlay_written or ctx.overlay is None:
        return
    try:
        why = None if restore(ctx.overlay) else "it was edited during the upgrade; left as it is"
    except (OSError, KestraOpsError) as err:
        why = str(err)
    name = f"put back {ctx.overlay.shown}"
    if why is None:
        ctx.overlay_written = False
        ctx.report.result.steps.append(Step(name, PASS, ""))
        return
    ctx.report.result.steps.append(Step(name, FAIL, why))
    ctx.report.warnings.append(f"{ctx.overlay.shown} could not be put back ({why}): set "
                               f"image.tag back to the running version by hand")


def _restore_command(ctx: _Ctx) -> str:
    return (f"kestra-ops upgrade restore --env {ctx.env.name} --set {ctx.report.backup_set}"
            if ctx.report.backup_set else "kestra-ops backup restore (runbooks/upgrade.md)")


def _after_interrupt(ctx: _Ctx) -> str:
    if ctx.stopping and not ctx.stopped:
        return _after_failure(ctx)
    if not ctx.stopped:
        return "; nothing was changed" if not ctx.overlay_written else ""
    return ("; Kestra is left STOPPED past an irreversible point; go back with: "
            + _restore_command(ctx) + ", or run the upgrade again")


def _after_failure(ctx: _Ctx) -> str:
    if ctx.stopping and not ctx.stopped:  # the stop itself failed: nothing was migrated
        return (f"; no migration ran, Kestra may be partly stopped: bring the running version "
                f"back with: kestra-ops release --env {ctx.env.name}")
    if not ctx.stopped:
        return ""
    return "; Kestra is left stopped; finish with: " + _restore_command(ctx)
