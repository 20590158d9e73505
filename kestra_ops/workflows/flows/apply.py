"""flows apply: make the server's flows match a directory, behind guards, in few requests.

Order: offline checks (any error: nothing is written) -> the server's flows of the directory's
namespaces -> plan -> deletion guards -> the server's validate endpoint for every flow to write
(any constraint: nothing is written) -> confirmation -> writes -> deletes.

Guards: nothing is deleted without ``prune``; never in a protected namespace (``protect`` names
a namespace and its children); more deletions than ``max_deletions`` (default 0, or 10 with
``prune``) refuses the whole apply before anything is written.

Writes go per namespace through the namespace endpoint, ``POST flows/{ns}?delete=false`` with the
multi-document YAML of that namespace's new and changed flows (up to 200 a request), always with
an explicit ``delete=false`` (the server's default is to delete every flow not in the batch). The
server applies a batch flow by flow and an invalid flow fails the call half-way, which is why
everything is validated first. A flow whose text contains ``---`` (the server splits batches on
it) is written alone with create/update. Deletes go one by one. Each change is logged in
``backups/changes.jsonl``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from kestra_ops.errors import KestraOpsError
from kestra_ops.results import FAIL, PASS, Recorder, Report, Table
from kestra_ops.values.findings import Report as Findings
from kestra_ops.workflows.flows.local import LocalResult
from kestra_ops.workflows.flows.plan import (CHANGE_COLUMNS, FlowChange, FlowPlan, change_row,
                                             plan_flows)
from kestra_ops.workflows.flows.remote import batchable, batches, join_sources, server_validate

OUTCOMES = {"applied": 0, "unchanged": 0, "dry-run": 0, "invalid": 1, "refused": 1,
            "aborted": 1, "failed": 1}
PRUNE_DEFAULT_MAX = 10


@dataclass
class ApplyResult:
    env: str
    outcome: str = "failed"
    message: str = ""
    report: Findings | None = None  # the offline (and server) findings of the flows
    plan: FlowPlan | None = None
    deletes: list[FlowChange] = field(default_factory=list)  # deletions carried out / planned
    applied: list[dict] = field(default_factory=list)

    def exit_code(self, detailed: bool = False) -> int:
        if self.outcome == "invalid" and self.report is not None and self.report.unreadable:
            return 2
        code = OUTCOMES[self.outcome]
        if detailed and code == 0 and self.outcome in ("applied", "dry-run") and \
                (self.applied or self.pending):
            return 3
        return code

    @property
    def pending(self) -> bool:
        return bool(self.plan and (self.plan.of("create", "update") or self.deletes))

    def to_dict(self) -> dict:
        return {"env": self.env, "outcome": self.outcome, "message": self.message,
                "applied": self.applied, "deletes": [c.name for c in self.deletes],
                "plan": self.plan.to_dict() if self.plan else None,
                "report": self.report.to_dict() if self.report else None}

    def fill(self, report: Report, what: str, *, detailed: bool = False) -> Report:
        """Complete ``report`` (whose steps the apply recorded): the findings, the changes made
        (or planned, or refused), the diffs of a dry run; its message says ``what`` ended how;
        its JSON keeps this result's keys (:meth:`to_dict`)."""
        if self.report is not None:
            report.findings.append(self.report)
        table = self.table()
        if table.rows:
            report.tables.append(table)
        if self.outcome == "dry-run" and self.plan is not None:
            report.sections += self.plan.diff_sections()
        report.outcome = self.outcome
        report.exit_code = self.exit_code(detailed)
        report.status = PASS if OUTCOMES[self.outcome] == 0 else FAIL
        report.message = f"{what} {self.env}: {self.message}"
        report.data.update(self.to_dict())
        return report

    def table(self) -> Table:
        """What was written and deleted (with the deletions kept and why); before any write, what
        was planned."""
        if self.applied or self.outcome in ("applied", "failed"):
            rows = [[a["action"], a["flow"], _revisions(a), a["file"] or "", ""]
                    for a in self.applied]
            rows += [change_row(c) for c in (self.plan.of("delete") if self.plan else [])
                     if c.note]
            return Table(CHANGE_COLUMNS, rows, "changes")
        return self.plan.table() if self.plan is not None else Table(CHANGE_COLUMNS)


def _revisions(applied: dict) -> str:
    before, after = applied["revision_before"], applied["revision_after"]
    if before is None or applied["action"] == "create":
        return "" if after is None else str(after)
    if applied["action"] == "delete":
        return str(before)
    return f"{before} -> {'?' if after is None else after}"


def protected_by(namespace: str, protect: tuple[str, ...] | list[str]) -> str | None:
    for ns in protect:
        if namespace == ns or namespace.startswith(ns.rstrip(".") + "."):
            return ns
    return None


def guard_deletes(plan: FlowPlan, *, prune: bool, protect) -> list[FlowChange]:
    """The deletions to carry out; the others get a note saying why they are kept."""
    chosen = []
    for change in plan.of("delete"):
        shield = protected_by(change.namespace, protect)
        if not prune:
            change.note = "kept (--prune not given)"
        elif shield:
            change.note = f"kept (protected namespace: --protect {shield})"
        else:
            chosen.append(change)
    return chosen


def apply_flows(local: LocalResult, client, *, env, prune: bool = False,
                max_deletions: int | None = None, protect=(), dry_run: bool = False,
                confirm: Callable[[FlowPlan, list[FlowChange]], bool] | None = None,
                rec: Recorder | None = None) -> ApplyResult:
    """See the module doc. ``confirm(plan, deletes)`` is asked before the first write (False:
    nothing written); ``rec`` records the steps (and shows them on its progress)."""
    rec = rec or Recorder(Report("flows apply", env.name))
    result = ApplyResult(env.name, report=local.report)
    if local.report.errors or local.report.unreadable:
        result.outcome = "invalid"
        result.message = f"{local.report.errors} error(s) in the flows: nothing written"
        return result
    with rec.step(f"server flows of {len({f.namespace for f in local.flows})} "
                  "namespace(s)") as step:
        result.plan = plan = plan_flows(client, local.flows)
        step.detail = plan.summary()
    result.deletes = guard_deletes(plan, prune=prune, protect=tuple(protect))
    limit = max_deletions if max_deletions is not None else (PRUNE_DEFAULT_MAX if prune else 0)
    if len(result.deletes) > limit:
        result.outcome = "refused"
        result.message = (f"{len(result.deletes)} deletion(s) planned, more than --max-deletions "
                          f"{limit}: nothing written")
        return result
    writes = plan.of("create", "update")
    if not writes and not result.deletes:
        result.outcome = "unchanged"
        kept = len(plan.of("delete"))
        result.message = f"no changes ({plan.summary()})" + (
            f"; {kept} flow(s) only on the server kept" if kept else "")
        return result
    by_key = {f.key: f for f in local.flows}
    refused: set[str] = set()
    if writes:
        with rec.step(f"validate {len(writes)} flow(s) on the server") as step:
            found = server_validate(client, [by_key[(c.namespace, c.id)] for c in writes], rec)
            local.report.findings.extend(found)
            refused = {f.location.file for f in found if f.severity == "error"}
            if refused:
                step.fail(f"{len(refused)} flow(s) refused")
    if refused:
        result.outcome = "invalid"
        result.message = f"the server refused {len(refused)} flow(s): nothing written"
        return result
    if dry_run:
        result.outcome, result.message = "dry-run", f"dry run: {_summary(writes, result.deletes)}"
        return result
    if confirm is not None and not confirm(plan, result.deletes):
        result.outcome, result.message = "aborted", "aborted, nothing written"
        return result
    try:
        _write(client, env, writes, result, rec)
        _delete(client, env, result, rec)
    except KestraOpsError as err:
        result.outcome = "failed"
        result.message = (f"{err}; {len(result.applied)} change(s) made before the failure (a "
                          "namespace batch may be partly applied): run `kestra-ops flows plan` "
                          "to see what is left")
        _log(env, "flows-apply", "flows", status="failed", error=str(err),
             applied=len(result.applied))
        return result
    result.outcome = "applied"
    result.message = f"applied: {_summary(writes, result.deletes)}"
    return result


def _summary(writes: list[FlowChange], deletes: list[FlowChange]) -> str:
    creates = sum(c.action == "create" for c in writes)
    return (f"{creates} created, {len(writes) - creates} updated, {len(deletes)} deleted")


def _write(client, env, writes: list[FlowChange], result: ApplyResult, rec: Recorder) -> None:
    per_ns: dict[str, list[FlowChange]] = defaultdict(list)
    for change in writes:
        per_ns[change.namespace].append(change)
    if not writes:
        return
    with rec.step(f"write {len(writes)} flow(s) in {len(per_ns)} namespace(s)"):
        for ns in sorted(per_ns):
            together = [c for c in per_ns[ns] if batchable(c.source)]
            for chunk in batches(together, lambda c: len(c.source)):
                answer = client.update_namespace(ns, join_sources(c.source for c in chunk),
                                                 delete=False)
                revisions = {f.get("id"): f.get("revision") for f in answer or []
                             if isinstance(f, dict) and f.get("namespace") == ns}
                for change in chunk:
                    _done(env, result, change, revisions.get(change.id))
                rec.update(f"{len(result.applied)}/{len(writes)} flows written")
            for change in per_ns[ns]:
                if batchable(change.source):
                    continue
                if change.action == "create":
                    answer = client.create_flow(change.source)
                else:
                    answer = client.update_flow(change.namespace, change.id, change.source)
                _done(env, result, change, (answer or {}).get("revision"))


def _delete(client, env, result: ApplyResult, rec: Recorder) -> None:
    if not result.deletes:
        return
    with rec.step(f"delete {len(result.deletes)} flow(s)"):
        for change in result.deletes:
            client.delete_flow(change.namespace, change.id)
            _done(env, result, change, None)


def _done(env, result: ApplyResult, change: FlowChange, after) -> None:
    result.applied.append({"action": change.action, "flow": change.name, "file": change.file,
                           "revision_before": change.revision, "revision_after": after})
    _log(env, f"flow-{change.action}", f"flow {change.name}", before=change.revision,
         after=after, file=change.file)


def _log(env, action: str, target: str, **extra) -> None:
    from kestra_ops.audit import log_change

    log_change(env.root, action=action, env=env.name, target=target, **extra)
