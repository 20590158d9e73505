"""flows backfill: replay the runs a Schedule trigger missed (Kestra does not replay them).

The flow's source is read from the server; its Schedule triggers (``io.kestra.plugin.core.
trigger.Schedule`` or the legacy ``io.kestra.core.models.triggers.types.Schedule``; disabled ones
skipped unless named with ``trigger``) give ``cron`` (five fields, six with ``withSeconds: true``,
or a nickname like ``@hourly``) and ``timezone`` (UTC when unset). Every fire time in
[start, end) is a window; a time without an offset is read in the trigger's timezone. One
execution per window is created with ``scheduleDate`` = the window and labels ``backfill:true``,
``kestra-ops.backfill-id:<uuid>`` and ``kestra-ops.trigger:<trigger id>``, with the trigger's
scalar ``inputs`` and then ``inputs`` given here, where ``{window}`` stands for the window's ISO
date-time. (An execution created through the API has no ``trigger`` variables: a flow that reads
``{{ trigger.date }}`` can take the window from such an input.) More windows than
``max_executions`` need ``confirm_over``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Callable

from kestra_ops.errors import InvalidInput, KestraOpsError, OperationFailed
from kestra_ops.results import FAIL, PASS, Recorder, Report, Table

SCHEDULE_TYPES = ("io.kestra.plugin.core.trigger.Schedule",
                  "io.kestra.core.models.triggers.types.Schedule")
HARD_CAP = 100_000  # windows computed at most
OUTCOMES = {"created": 0, "dry-run": 0, "nothing": 0, "refused": 1, "aborted": 1, "failed": 1}


@dataclass(frozen=True)
class Schedule:
    id: str
    cron: str
    timezone: str = "UTC"
    with_seconds: bool = False
    inputs: tuple[tuple[str, str], ...] = ()

    @property
    def tz(self) -> dt.tzinfo:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"trigger {self.id}: unknown timezone {self.timezone!r}") from None


@dataclass
class BackfillResult:
    env: str
    namespace: str
    flow_id: str
    backfill_id: str
    start: str
    end: str
    outcome: str = "failed"
    message: str = ""
    triggers: list[str] = field(default_factory=list)
    windows: list[tuple[str, dt.datetime]] = field(default_factory=list)  # (trigger id, date)
    executions: list[dict] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return OUTCOMES[self.outcome]

    def to_dict(self) -> dict:
        return {"env": self.env, "namespace": self.namespace, "flow": self.flow_id,
                "backfill_id": self.backfill_id, "start": self.start, "end": self.end,
                "outcome": self.outcome, "message": self.message, "triggers": self.triggers,
                "windows": [{"trigger": t, "date": d.isoformat()} for t, d in self.windows],
                "executions": self.executions}

    def listing(self) -> list[str]:
        """The windows, one line each (what a confirmation shows)."""
        return [f"  {when.isoformat()}  ({tid})" for tid, when in self.windows]

    def fill(self, report: Report) -> Report:
        """Complete ``report``: the triggers, the windows (when none was created) or the
        executions created, the message; its JSON keeps this result's keys (:meth:`to_dict`)."""
        report.details.append("triggers: " + "; ".join(self.triggers))
        if self.windows and (self.outcome != "created"):
            report.tables.append(Table(["window", "trigger"], [
                [when.isoformat(), tid] for tid, when in self.windows], "windows"))
        if self.executions:
            report.tables.append(Table(["window", "trigger", "execution"], [
                [e["scheduleDate"], e["trigger"], e["id"]] for e in self.executions],
                "executions"))
        report.outcome, report.exit_code = self.outcome, self.exit_code
        report.status = PASS if self.exit_code == 0 else FAIL
        report.message = f"flows backfill {self.env} {self.namespace}.{self.flow_id}: {self.message}"
        report.data.update(self.to_dict())
        return report


def schedules(doc: dict, only: str | None = None) -> list[Schedule]:
    """The flow's Schedule triggers (enabled ones, or the one named ``only``)."""
    found = []
    for trigger in doc.get("triggers") or []:
        if not isinstance(trigger, dict) or trigger.get("type") not in SCHEDULE_TYPES:
            continue
        tid = str(trigger.get("id"))
        if only is not None and tid != only:
            continue
        if trigger.get("disabled") is True and only is None:
            continue
        cron = trigger.get("cron")
        if not isinstance(cron, str) or not cron.strip():
            raise InvalidInput(f"trigger {tid} has no cron expression")
        inputs = trigger.get("inputs") if isinstance(trigger.get("inputs"), dict) else {}
        found.append(Schedule(tid, cron.strip(), str(trigger.get("timezone") or "UTC"),
                              trigger.get("withSeconds") is True,
                              tuple((str(k), str(v)) for k, v in inputs.items()
                                    if isinstance(v, (str, int, float, bool)))))
    return found


def parse_time(text: str, tz: dt.tzinfo) -> dt.datetime:
    """ISO 8601 (``2026-11-24T01:00:00Z``, ``2026-11-24T01:00``, ``2026-11-24``); without an
    offset, in ``tz``."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{text!r} is not an ISO 8601 time (e.g. 2026-11-24T01:00:00Z)") \
            from None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def windows(schedule: Schedule, start: str, end: str, cap: int = HARD_CAP) -> list[dt.datetime]:
    """Every fire time of ``schedule`` in [start, end)."""
    from croniter import croniter

    tz = schedule.tz
    first, last = parse_time(start, tz).astimezone(tz), parse_time(end, tz).astimezone(tz)
    if last <= first:
        raise InvalidInput(f"--end {end} is not after --start {start}")
    try:
        it = croniter(schedule.cron, first - dt.timedelta(microseconds=1),
                      second_at_beginning=schedule.with_seconds)
    except (ValueError, KeyError) as err:
        raise InvalidInput(f"trigger {schedule.id}: cron {schedule.cron!r} is not valid "
                           f"({err})") from None
    out = []
    while True:
        when = it.get_next(dt.datetime)
        if when >= last:
            return out
        if when >= first:
            out.append(when)
        if len(out) > cap:
            raise InvalidInput(f"trigger {schedule.id}: more than {cap:,} windows between "
                               f"{start} and {end}; narrow the range")


def backfill(client, env, namespace: str, flow_id: str, start: str, end: str, *,
             trigger: str | None = None, inputs: dict[str, str] | None = None,
             dry_run: bool = False, max_executions: int = 100,
             confirm: Callable[[str, list[str]], bool] | None = None,
             confirm_over: Callable[[int], bool] | None = None,
             rec: Recorder | None = None) -> BackfillResult:
    """See the module doc. ``confirm(question, windows shown)`` is asked before the first
    execution is created (False: none); above ``max_executions``, ``confirm_over(count)``
    instead (False: refused). ``rec`` records the creation step."""
    from kestra_ops.audit import log_change
    from kestra_ops.workflows.flows.yamldoc import parse_flow

    result = BackfillResult(env.name, namespace, flow_id, str(uuid.uuid4()), start, end)
    flow = client.get_flow(namespace, flow_id, source=True)
    if flow.get("disabled"):
        raise OperationFailed(f"flow {namespace}.{flow_id} is disabled: enable it first")
    doc = parse_flow(flow.get("source") or "", f"server {namespace}/{flow_id}").data or {}
    found = schedules(doc, trigger)
    if not found:
        what = f"no Schedule trigger {trigger!r}" if trigger else "no enabled Schedule trigger"
        raise InvalidInput(f"flow {namespace}.{flow_id} has {what}")
    result.triggers = [f"{s.id}: {s.cron} ({s.timezone})" for s in found]
    for schedule in found:
        result.windows.extend((schedule.id, w) for w in windows(schedule, start, end))
    result.windows.sort(key=lambda item: (item[1], item[0]))
    count = len(result.windows)
    if not count:
        result.outcome, result.message = "nothing", f"no window between {start} and {end}"
        return result
    if dry_run:
        result.outcome, result.message = "dry-run", f"dry run: {count} window(s), none created"
        return result
    if count > max_executions:
        if not (confirm_over and confirm_over(count)):
            result.outcome = "refused"
            result.message = (f"{count} executions, more than --max-executions "
                              f"{max_executions}: none created (raise --max-executions to "
                              "allow them)")
            return result
    elif confirm is not None and not confirm(
            f"create {count} execution(s) of {namespace}.{flow_id}?", result.listing()):
        result.outcome, result.message = "aborted", "aborted, no execution created"
        return result
    given = {s.id: dict(s.inputs) for s in found}
    rec = rec or Recorder(Report("flows backfill", env.name))
    try:
        with rec.step(f"create {count} execution(s)") as step:
            for tid, when in result.windows:
                labels = {"backfill": "true", "kestra-ops.backfill-id": result.backfill_id,
                          "kestra-ops.trigger": tid}
                values = {**given[tid], **{k: v.replace("{window}", when.isoformat())
                                           for k, v in (inputs or {}).items()}}
                execution = client.create_execution(namespace, flow_id, inputs=values or None,
                                                    labels=labels,
                                                    schedule_date=when.isoformat())
                result.executions.append({"id": execution.get("id"), "trigger": tid,
                                          "scheduleDate": when.isoformat()})
                rec.update(f"{len(result.executions)}/{count} executions created")
            step.detail = f"backfill id {result.backfill_id}"
    except KestraOpsError as err:
        result.outcome = "failed"
        result.message = (f"{err}; {len(result.executions)} of {count} execution(s) created "
                          f"before the failure (label kestra-ops.backfill-id:"
                          f"{result.backfill_id})")
    else:
        result.outcome = "created"
        result.message = f"{count} execution(s) created (backfill id {result.backfill_id})"
    log_change(env.root, action="flow-backfill", env=env.name,
               target=f"flow {namespace}.{flow_id}", before=None,
               after=len(result.executions), status=result.outcome,
               backfill_id=result.backfill_id, start=start, end=end,
               executions=[e["id"] for e in result.executions])
    return result
