"""backup prune: grandfather-father-son retention over COMPLETE backup sets.

:func:`select` is pure (sets and a clock in, a plan out):

* when the newest set is not complete (no manifest.json, or a manifest whose status is not
  "complete") the newest run failed: the plan is blocked and nothing at all is deleted;
* daily keeps the newest complete set of each of the N most recent days that have one, weekly
  the newest per ISO week (N weeks), monthly the newest per calendar month (N months);
* the newest complete set is always kept, whatever the counts;
* incomplete sets older than a day are deleted; younger ones may still be running and are kept;
* sets dated more than ``FUTURE_SKEW`` after now (a wrong clock, or a made-up name) are ignored:
  never the newest, never kept for a period, never blocking, never deleted (listed as ignored).

:func:`prune_backups` lists the sets (:mod:`kestra_ops.workflows.backup.sets`), and deletes the
plan's sets only with ``confirm`` (each set manifest first, by ``backup_set.delete_set``). It
returns a :class:`kestra_ops.results.Report` (JSON: env, bucket, dry_run, blocked, keep, delete,
delete_incomplete, ignored, deleted), exit 1 when blocked.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Iterable

from kestra_ops.errors import InvalidInput
from kestra_ops.results import FAIL, PASS, Recorder, Report, Table
from kestra_ops.settings import Environment
from kestra_ops.workflows.backup.sets import FUTURE_SKEW

INCOMPLETE_GRACE = datetime.timedelta(days=1)


@dataclass
class PrunePlan:
    keep: dict[str, list[str]] = field(default_factory=dict)  # set -> reasons, newest first
    delete: list[str] = field(default_factory=list)  # complete sets outside the retention
    delete_incomplete: list[str] = field(default_factory=list)  # incomplete, older than a day
    blocked: str | None = None  # why nothing may be deleted
    ignored: list[str] = field(default_factory=list)  # dated in the future: never counted

    @property
    def to_delete(self) -> list[str]:
        return [] if self.blocked else sorted(self.delete + self.delete_incomplete, reverse=True)


@dataclass
class PruneResult:
    env: str
    bucket: str
    dry_run: bool
    plan: PrunePlan
    deleted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.plan.blocked else 0

    def to_dict(self) -> dict:
        return {"env": self.env, "bucket": self.bucket, "dry_run": self.dry_run,
                "blocked": self.plan.blocked, "keep": dict(self.plan.keep),
                "delete": list(self.plan.delete),
                "delete_incomplete": list(self.plan.delete_incomplete),
                "ignored": list(self.plan.ignored), "deleted": list(self.deleted)}

    def to_report(self, steps=()) -> Report:
        plan = self.plan
        report = Report("backup prune", self.env, title=f"backup prune {self.env} (bucket "
                        f"{self.bucket})", steps=list(steps), data=self.to_dict(),
                        exit_code=self.exit_code, status=FAIL if plan.blocked else PASS)
        report.warnings += self.warnings
        report.warnings += [f"backup set {name} is dated in the future: prune ignores it "
                            "(check the clock of the host that took it)" for name in plan.ignored]
        if plan.blocked:
            report.outcome, report.message = "blocked", f"backup prune {self.env}: {plan.blocked}"
            return report
        rows = [["keep", name, ", ".join(reasons)] for name, reasons in plan.keep.items()]
        rows += [["delete", name, ""] for name in plan.delete]
        rows += [["delete", name, "incomplete, older than a day"]
                 for name in plan.delete_incomplete]
        rows += [["ignore", name, "dated in the future"] for name in plan.ignored]
        if rows:
            report.tables.append(Table(["ACTION", "SET", "WHY"], rows))
        verb = "would delete" if self.dry_run else "deleted"
        done = len(plan.to_delete) if self.dry_run else len(self.deleted)
        note = " (dry run: pass --confirm to delete)" if self.dry_run else ""
        report.outcome = "planned" if self.dry_run else "pruned"
        report.message = (f"backup prune {self.env} (bucket {self.bucket}): keep "
                          f"{len(plan.keep)}, {verb} {done}{note}")
        return report


def select(sets: Iterable, *, now: datetime.datetime, keep_daily: int, keep_weekly: int,
           keep_monthly: int) -> PrunePlan:
    """The plan for ``sets`` (objects with ``name``, ``time`` (aware UTC) and ``complete``)."""
    for label, n in (("daily", keep_daily), ("weekly", keep_weekly), ("monthly", keep_monthly)):
        if n < 0:
            raise InvalidInput(f"--keep-{label} must be 0 or more (got {n})")
    plan = PrunePlan()
    ordered = sorted(sets, key=lambda s: s.time, reverse=True)
    plan.ignored = [s.name for s in ordered if s.time > now + FUTURE_SKEW]
    ordered = [s for s in ordered if s.time <= now + FUTURE_SKEW]
    if not ordered:
        return plan
    if not ordered[0].complete:
        plan.blocked = (f"the newest backup set {ordered[0].name} is incomplete or failed: "
                        "nothing is pruned until a backup run succeeds")
        return plan
    complete = [s for s in ordered if s.complete]
    periods = (("daily", keep_daily, lambda t: t.date()),
               ("weekly", keep_weekly, lambda t: tuple(t.isocalendar())[:2]),
               ("monthly", keep_monthly, lambda t: (t.year, t.month)))
    for label, count, period_of in periods:
        seen: set = set()
        for s in complete:
            period = period_of(s.time)
            if period in seen:
                continue
            if len(seen) >= count:
                break
            seen.add(period)
            plan.keep.setdefault(s.name, []).append(label)
    plan.keep.setdefault(complete[0].name, []).append("newest complete")
    plan.keep = {s.name: plan.keep[s.name] for s in complete if s.name in plan.keep}
    plan.delete = [s.name for s in complete if s.name not in plan.keep]
    plan.delete_incomplete = [s.name for s in ordered
                              if not s.complete and now - s.time > INCOMPLETE_GRACE]
    return plan


def prune_backups(env: Environment, *, keep_daily: int, keep_weekly: int, keep_monthly: int,
                  confirm: bool = False, now: datetime.datetime | None = None,
                  progress=None, legacy: bool = False) -> Report:
    """Plan, and with ``confirm`` delete. Blocked plans delete nothing (exit code 1). The backup
    destination's sets (the backup key: the operator's, which may delete), or with ``legacy``
    those left in Kestra's bucket (:mod:`kestra_ops.workflows.backup.locations`)."""
    from kestra_ops.audit import log_change
    from kestra_ops.errors import ConfigError
    from kestra_ops.workflows.backup import locations
    from kestra_ops.workflows.backup.sets import delete_set, list_sets

    if legacy:
        place, why = locations.legacy(env)
        if place is None:
            raise ConfigError(f"backup prune --legacy for {env.name}: {why}")
    else:
        place = locations.destination(env)
    storage, bucket = place.storage, place.bucket
    now = now or datetime.datetime.now(datetime.timezone.utc)
    sets = list_sets(storage, bucket, env.name, now=now)
    plan = select(sets, now=now, keep_daily=keep_daily, keep_weekly=keep_weekly,
                  keep_monthly=keep_monthly)
    result = PruneResult(env.name, bucket, not confirm, plan)
    result.warnings = [place.warning] if place.warning else []
    if not confirm or plan.blocked:
        return result.to_report()
    rec = Recorder(Report("backup prune", env.name), progress)
    for name in plan.to_delete:
        with rec.step(f"delete backup set {name}") as step:
            count = delete_set(storage, bucket, env.name, name)
            step.detail = f"{count} object(s)"
        result.deleted.append(name)
        log_change(env.root, action="backup prune", env=env.name,
                   target=f"s3://{bucket}/backups/{env.name}/{name}/", before=count, after=0)
    return result.to_report(rec.report.steps)
