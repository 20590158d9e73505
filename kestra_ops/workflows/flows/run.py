"""The flows commands as results: each function builds the environment's Kestra client, runs the
flows workflow (:mod:`flows_local`, :mod:`flows_plan`, :mod:`flows_apply`, :mod:`flows_remote`,
:mod:`flows_promote`, :mod:`flows_backfill`) and returns the :class:`kestra_ops.results.Report`
the CLI prints in any format.

Confirmations are the caller's: ``ask(question, lines) -> bool`` is called before anything
changes on the server, with the lines to show first (the plan, the windows); it may raise (no
terminal and no ``--yes``: :class:`kestra_ops.errors.InvalidInput`, nothing changed).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from kestra_ops.errors import KestraOpsError
from kestra_ops.results import FAIL, PASS, Recorder, Report, Table
from kestra_ops.settings import Environment

Ask = Callable[[str, list[str]], bool]
TIMEOUT = 60.0  # seconds per request: exports and namespace batches can be large


@contextmanager
def kestra(env: Environment, report: Report, kestra_url: str | None = None,
           insecure: bool = False) -> Iterator:
    """The environment's Kestra client; what it warns about (e.g. TLS not verified) goes into
    the report's warnings."""
    from kestra_ops.wiring import client_for_env

    client = client_for_env(env, kestra_url=kestra_url, insecure=insecure, timeout=TIMEOUT)
    report.warnings.extend(client.warnings)
    with client:
        yield client


def validate(target: Path, env: Environment | None = None, *, kestra_url: str | None = None,
             insecure: bool = False, target_version: str | None = None,
             from_version: str | None = None) -> Report:
    """``flows validate``: the offline checks (with ``target_version``, the flow syntax an
    upgrade to it removes or changes) and, with ``env``, the server's validate endpoint.
    Exit 0 clean, 1 any error, 2 a file is not YAML or a version is unknown; the server
    unreachable: its error's code, with the offline findings still shown."""
    from kestra_ops.workflows.flows.local import validate_local
    from kestra_ops.workflows.flows.remote import server_validate
    from kestra_ops.workflows.values import findings_report

    local = validate_local(target, env, target_version, from_version)
    failure, warnings = None, []
    if env is not None:
        holder = Report("flows validate")
        try:
            with kestra(env, holder, kestra_url, insecure) as client:
                local.report.findings.extend(
                    server_validate(client, [f for f in local.flows if isinstance(f.data, dict)]))
        except KestraOpsError as err:
            failure = err
        warnings = holder.warnings
    report = findings_report("flows validate", env.name if env else None, [local.report])
    report.warnings += warnings
    if failure is not None:
        report.status, report.exit_code = FAIL, failure.exit_code
        report.message = f"flows validate: the server's validate endpoint failed: {failure}"
        report.details += [f"hint: {failure.hint}"] if failure.hint else []
    return report


def _offline(target: Path, env: Environment, rec: Recorder):
    """The offline checks as the first step of a command that goes on to the server."""
    from kestra_ops.workflows.flows.local import validate_local

    with rec.step("check the flows offline") as step:
        local = validate_local(target, env)
        found = local.report
        step.detail = (f"{len(local.flows)} flow(s); {found.errors} error(s), "
                       f"{found.warnings} warning(s)")
        if found.errors or found.unreadable:
            step.fail()
    return local


def plan(target: Path, env: Environment, *, diffs: bool = True, detailed: bool = False,
         kestra_url: str | None = None, insecure: bool = False, progress=None) -> Report:
    """``flows plan``: per flow create / update / unchanged / delete, with diffs. Exit 0, or 3
    with ``detailed`` when there are changes; 1 invalid flows (2 unreadable), nothing asked of
    the server."""
    from kestra_ops.values.findings import exit_code
    from kestra_ops.workflows.flows.plan import plan_flows

    report = Report("flows plan", env.name)
    rec = Recorder(report, progress)
    local = _offline(target, env, rec)
    report.findings.append(local.report)
    if local.report.errors or local.report.unreadable:
        report.status, report.exit_code = FAIL, exit_code([local.report])
        report.message = (f"flows plan {env.name}: {local.report.errors} error(s) in the flows: "
                          "nothing planned")
        return report
    with kestra(env, report, kestra_url, insecure) as client:
        with rec.step(f"server flows of {len({f.namespace for f in local.flows})} "
                      "namespace(s)") as step:
            changes = plan_flows(client, local.flows)
            step.detail = changes.summary()
    table = changes.table()
    if table.rows:
        report.tables.append(table)
    if diffs:
        report.sections += changes.diff_sections()
    report.outcome = "changes" if changes.changed else "no-changes"
    report.exit_code = 3 if detailed and changes.changed else 0
    report.message = f"flows plan {env.name}: {changes.summary()}"
    report.data.update({"env": env.name, **changes.to_dict(diffs=diffs)})
    return report


def apply(target: Path, env: Environment, *, prune: bool = False,
          max_deletions: int | None = None, protect=(), show_diff: bool = False,
          ask: Ask | None = None, detailed: bool = False, kestra_url: str | None = None,
          insecure: bool = False, progress=None) -> Report:
    """``flows apply`` (see :mod:`flows_apply`): exit 0 applied or nothing to do; 1 invalid,
    refused, declined or failed; 2 unreadable; 3 changes made with ``detailed``."""
    from kestra_ops.workflows.flows.apply import apply_flows

    report = Report("flows apply", env.name)
    rec = Recorder(report, progress)
    local = _offline(target, env, rec)

    def confirm(changes, deletes) -> bool:
        lines = changes.lines(diffs=show_diff) + [
            f"changes: {changes.summary()}; {len(deletes)} deletion(s)"]
        return ask is None or ask(f"apply these changes to {env.name}?", lines)

    with kestra(env, report, kestra_url, insecure) as client:
        result = apply_flows(local, client, env=env, prune=prune, max_deletions=max_deletions,
                             protect=protect, confirm=confirm, rec=rec)
    return result.fill(report, "flows apply", detailed=detailed)


def promote(target: Path, env: Environment, src: str, dst: str, *, dry_run: bool = False,
            ask: Ask | None = None, kestra_url: str | None = None, insecure: bool = False,
            progress=None) -> Report:
    """``flows promote`` (see :mod:`flows_promote`): the rewritten flows applied like ``flows
    apply`` without pruning. Exit 0 applied, nothing to do or dry run; 1 invalid, declined or
    failed; 2 invalid input."""
    from kestra_ops.workflows.flows.apply import apply_flows
    from kestra_ops.workflows.flows.promote import promote as rewrite

    report = Report("flows promote", env.name)
    rec = Recorder(report, progress)
    local = _offline(target, env, rec)
    with rec.step(f"rewrite namespaces {src} -> {dst}") as step:
        promotion = rewrite(local, src, dst)
        step.detail = f"{len(promotion.mapping)} flow(s), {len(promotion.skipped)} skipped"
    report.tables.append(Table(["from", "to", "namespace values"],
                               [list(m) for m in promotion.mapping], "promoted"))
    report.details += [f"skipped {line}" for line in promotion.skipped]

    def confirm(changes, deletes) -> bool:
        lines = changes.lines(diffs=False) + [f"changes: {changes.summary()}"]
        return ask is None or ask(f"promote these flows to {env.name}?", lines)

    with kestra(env, report, kestra_url, insecure) as client:
        result = apply_flows(promotion.local, client, env=env, dry_run=dry_run,
                             confirm=confirm, rec=rec)
    result.fill(report, f"flows promote {src} -> {dst}")
    report.data.update(promotion.to_dict())
    return report


def export(env: Environment, to: Path, namespace: str | None = None, *,
           kestra_url: str | None = None, insecure: bool = False) -> Report:
    """``flows export``: the server's flows to a ZIP as is, or one file per flow in a folder."""
    from kestra_ops.workflows.flows.remote import export as export_flows

    report = Report("flows export", env.name)
    with kestra(env, report, kestra_url, insecure) as client:
        result = export_flows(client, to, namespace)
    report.warnings += [f"skipped {line}" for line in result.skipped]
    report.outcome, report.status = "exported", PASS
    report.message = (f"flows export {env.name}: {result.flows} flow(s) to {result.target} "
                      f"({result.form})")
    report.data.update(result.to_dict())
    return report


def backfill(env: Environment, namespace: str, flow_id: str, start: str, end: str, *,
             trigger: str | None = None, inputs: dict[str, str] | None = None,
             dry_run: bool = False, max_executions: int = 100, ask: Ask | None = None,
             ask_over: Callable[[int], bool] | None = None, kestra_url: str | None = None,
             insecure: bool = False, progress=None) -> Report:
    """``flows backfill`` (see :mod:`flows_backfill`): exit 0 done or dry run; 1 refused,
    declined or failed; 2 invalid input."""
    from kestra_ops.workflows.flows.backfill import backfill as run

    report = Report("flows backfill", env.name)
    with kestra(env, report, kestra_url, insecure) as client:
        result = run(client, env, namespace, flow_id, start, end, trigger=trigger,
                     inputs=inputs, dry_run=dry_run, max_executions=max_executions,
                     confirm=ask, confirm_over=ask_over, rec=Recorder(report, progress))
    return result.fill(report)
