"""kestra-ops flows validate | plan | apply | export | promote | backfill."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from kestra_ops.cli.common import (ask, color, env_option, kestra_options, output_option,
                                    pass_state, quiet_option)
from kestra_ops.errors import KestraOpsError

DIR_ARG = click.Path(path_type=Path)


server_options = kestra_options()


def _client(environment, kestra_url, insecure, timeout: float = 60.0):
    from kestra_ops.adapters.kestra_api import client_for_env

    client = client_for_env(environment, kestra_url=kestra_url, insecure=insecure,
                            timeout=timeout)
    for warning in client.warnings:
        click.echo(f"warning: {warning}", err=True)
    return client


def _exit(code: int) -> None:
    click.get_current_context().exit(code)


def _ask(question: str, yes: bool, shown: list[str]) -> bool:
    if yes:
        return True
    for line in shown:
        click.echo(line, err=True)
    if not sys.stdin.isatty():
        click.echo("not a terminal and no --yes: nothing changed", err=True)
        return False
    return ask(question)


@click.group()
def flows() -> None:
    """Flows as code: validate, plan and apply a directory of flows, export, promote, backfill.

    A flows directory holds one flow per YAML file (any layout; `flows export` writes
    <namespace>/<id>.yaml). Namespaces follow lowercase.with-hyphens, e.g. company.team.
    """


@flows.command("validate")
@click.argument("target", type=DIR_ARG, metavar="DIR")
@env_option(required=False)
@server_options
@output_option("text", "json")
@pass_state
def validate_cmd(state, target: Path, env: str | None, kestra_url, insecure, output: str):
    """Check a flows directory offline and, with --env, with the server's validate endpoint.

    Offline: valid YAML, one flow per file, id/namespace/tasks present, namespace naming
    (lowercase.with-hyphens), no flow defined twice, unique task ids, and no blacklisted
    plugin type anywhere in a flow (tasks at any depth, triggers, errors, finally,
    afterExecution, task runners, pluginDefaults). The blacklist is --env's
    kestra.plugins.blacklist (merged values), else io.kestra.plugin.docker.*. Every finding
    names file:line:col. DIR may also be one flow file or an export ZIP.

    Exit 0 clean, 1 any error, 2 a file is not readable YAML.
    """
    from kestra_ops.output.findings import render
    from kestra_ops.values.findings import exit_code
    from kestra_ops.workflows.flows_local import validate_local
    from kestra_ops.workflows.flows_remote import server_validate

    environment = state.environment(env) if env else None
    local = validate_local(target, environment)
    if environment is not None:
        ok = [f for f in local.flows if isinstance(f.data, dict)]
        try:
            with _client(environment, kestra_url, insecure) as client:
                local.report.findings.extend(server_validate(client, ok))
        except KestraOpsError:
            click.echo(render([local.report], output, color=color()))
            raise
    click.echo(render([local.report], output, color=color()))
    _exit(exit_code([local.report]))


@flows.command("plan")
@click.argument("target", type=DIR_ARG, metavar="DIR")
@env_option()
@click.option("--detailed-exitcode", is_flag=True, help="Exit 3 when there are changes.")
@click.option("--no-diff", is_flag=True, help="List the changes without their diffs.")
@server_options
@output_option("text", "json")
@pass_state
def plan_cmd(state, target: Path, env: str, detailed_exitcode: bool, no_diff: bool, kestra_url,
             insecure, output: str):
    """Show what `flows apply` would change on ENV's server, flow by flow, with diffs.

    Each flow of DIR is create, update or unchanged (sources compared as text); delete lists
    the server's flows in DIR's namespaces that DIR lacks (apply removes them only with
    --prune). Literal secret values are masked in diffs. DIR is checked offline first.

    Exit 0, or 3 with --detailed-exitcode when there are changes; 1 invalid flows.
    """
    from kestra_ops.output.findings import render
    from kestra_ops.values.findings import exit_code
    from kestra_ops.workflows.flows_local import validate_local
    from kestra_ops.workflows.flows_plan import plan_flows

    environment = state.environment(env)
    local = validate_local(target, environment)
    if local.report.errors or local.report.unreadable:
        click.echo(render([local.report], output, color=color()))
        _exit(exit_code([local.report]))
    with _client(environment, kestra_url, insecure) as client:
        plan = plan_flows(client, local.flows)
    if output == "json":
        click.echo(json.dumps({"env": env, **plan.to_dict(diffs=not no_diff)}, indent=2))
    else:
        for line in plan.lines(diffs=not no_diff):
            click.echo(line)
        click.echo(f"flows plan {env}: {plan.summary()}")
    _exit(3 if detailed_exitcode and plan.changed else 0)


def _render_apply(result, output: str, what: str) -> None:
    from kestra_ops.output.findings import render_text

    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    if result.report is not None and result.report.findings:
        click.echo(render_text([result.report], color=color()))
    if result.outcome == "dry-run" and result.plan is not None:
        click.echo("\n".join(result.plan.lines()))
    for item in result.applied:
        rev = f" (revision {item['revision_after']})" if item["revision_after"] else ""
        click.echo(f"{item['action']:7} {item['flow']}{rev}")
    if result.plan is not None:
        for change in result.plan.of("delete"):
            if change.note:
                click.echo(f"kept    {change.name} {change.note.removeprefix('kept ')}")
    click.echo(f"{what} {result.env}: {result.message}")


@flows.command("apply")
@click.argument("target", type=DIR_ARG, metavar="DIR")
@env_option()
@click.option("--prune", is_flag=True, help="Delete the server's flows in DIR's namespaces "
              "that DIR lacks (default: keep them).")
@click.option("--max-deletions", type=click.IntRange(min=0), metavar="N",
              help="Refuse the whole apply when it would delete more than N flows "
                   "[default: 0, or 10 with --prune].")
@click.option("--protect", multiple=True, metavar="NS", help="Never delete a flow in NS or "
              "its child namespaces (repeatable).")
@click.option("--diff", "show_diff", is_flag=True, help="Show diffs before the confirmation.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 3 when something changed.")
@server_options
@output_option("text", "json")
@quiet_option()
@pass_state
def apply_cmd(state, target: Path, env: str, prune: bool, max_deletions, protect, show_diff,
              yes: bool, detailed_exitcode: bool, kestra_url, insecure, output: str,
              quiet: bool):
    """Make ENV's flows match DIR: create, update and (with --prune) delete, behind guards.

    Nothing is written when a flow fails the offline checks or the server's validate
    endpoint, or when more flows would be deleted than --max-deletions allows. Nothing is
    deleted without --prune, nor ever in a --protect namespace. Flows are written per
    namespace in batches (POST flows/{namespace}?delete=false: never a sync that deletes),
    deletions one by one; each change is logged in backups/changes.jsonl.

    Exit 0 applied or nothing to do; 1 invalid flows, refused, declined or failed;
    2 unreadable files; 3 changes made (with --detailed-exitcode).
    """
    from kestra_ops.output.progress import Progress
    from kestra_ops.workflows.flows_apply import apply_flows
    from kestra_ops.workflows.flows_local import validate_local

    environment = state.environment(env)
    progress = Progress(quiet=quiet or output == "json")
    local = validate_local(target, environment)

    def confirm(plan, deletes) -> bool:
        return _ask(f"apply these changes to {env}?", yes,
                    plan.lines(diffs=show_diff) + [f"changes: {plan.summary()}; "
                                                   f"{len(deletes)} deletion(s)"])

    with _client(environment, kestra_url, insecure) as client:
        result = apply_flows(local, client, env=environment, prune=prune,
                             max_deletions=max_deletions, protect=protect, confirm=confirm,
                             progress=progress)
    _render_apply(result, output, "flows apply")
    _exit(result.exit_code(detailed_exitcode))


@flows.command("export")
@env_option()
@click.option("--to", "to", type=DIR_ARG, required=True, metavar="DIR|FILE.zip",
              help="A FILE.zip (the server's export as is) or a DIR (one flow per file, "
                   "<namespace>/<id>.yaml; other files left alone).")
@click.option("--namespace", metavar="NS", help="Only NS and its child namespaces.")
@server_options
@output_option("text", "json")
@pass_state
def export_cmd(state, env: str, to: Path, namespace, kestra_url, insecure, output: str):
    """Export ENV's flows to a ZIP or a directory that `flows apply` takes back unchanged."""
    from kestra_ops.workflows.flows_remote import export

    with _client(state.environment(env), kestra_url, insecure) as client:
        result = export(client, to, namespace)
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for line in result.skipped:
            click.echo(f"skipped {line}", err=True)
        click.echo(f"flows export {env}: {result.flows} flow(s) to {result.target} "
                   f"({result.form})")


@flows.command("promote")
@click.argument("target", type=DIR_ARG, metavar="[DIR]", default=Path("flows"))
@env_option()
@click.option("--from", "src", required=True, metavar="SEGMENT",
              help="Namespace segment(s) to replace, e.g. staging.")
@click.option("--to", "dst", required=True, metavar="SEGMENT",
              help="Replacement segment(s), e.g. production.")
@click.option("--dry-run", is_flag=True, help="Plan only: validate and show the changes.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@server_options
@output_option("text", "json")
@quiet_option()
@pass_state
def promote_cmd(state, target: Path, env: str, src: str, dst: str, dry_run: bool, yes: bool,
                kestra_url, insecure, output: str, quiet: bool):
    """Deploy DIR's flows to ENV with namespaces rewritten from one stage to the next.

    The rule: a namespace containing the --from segment(s) as whole dot-separated segments
    gets them replaced by --to (first occurrence): with --from staging --to production,
    company.staging.sales -> company.production.sales; company.staging-x is not matched.
    Every namespace: value in a flow (its own, Subflow tasks, triggers) is rewritten the
    same way, in place. Flows without the segment are skipped. The result is validated
    (offline with ENV's blacklist, then the server), planned and applied like `flows
    apply` without --prune (promote never deletes). DIR defaults to flows/.
    """
    from kestra_ops.output.progress import Progress
    from kestra_ops.workflows.flows_apply import apply_flows
    from kestra_ops.workflows.flows_local import validate_local
    from kestra_ops.workflows.flows_promote import promote

    environment = state.environment(env)
    progress = Progress(quiet=quiet or output == "json")
    promotion = promote(validate_local(target, environment), src, dst)
    for before, after, _ in promotion.mapping:
        progress.info(f"  {before} -> {after}")
    for line in promotion.skipped:
        progress.info(f"  skipped {line}")

    def confirm(plan, deletes) -> bool:
        return _ask(f"promote these flows to {env}?", yes,
                    plan.lines(diffs=False) + [f"changes: {plan.summary()}"])

    with _client(environment, kestra_url, insecure) as client:
        result = apply_flows(promotion.local, client, env=environment, dry_run=dry_run,
                             confirm=confirm, progress=progress)
    _render_apply(result, output, f"flows promote {src} -> {dst}")
    _exit(result.exit_code())


@flows.command("backfill")
@click.argument("namespace")
@click.argument("flow_id", metavar="FLOW_ID")
@env_option()
@click.option("--start", required=True, metavar="TIME", help="First instant, inclusive "
              "(ISO 8601; without an offset, in the trigger's timezone).")
@click.option("--end", required=True, metavar="TIME", help="Last instant, exclusive.")
@click.option("--trigger", "trigger", metavar="ID", help="Only this Schedule trigger "
              "(default: every enabled one).")
@click.option("--input", "inputs", multiple=True, metavar="NAME=VALUE",
              help="An input of every execution (repeatable); {window} in VALUE becomes the "
                   "window's ISO date-time. The trigger's own inputs are sent too.")
@click.option("--dry-run", is_flag=True, help="List the windows; create nothing.")
@click.option("--max-executions", type=click.IntRange(min=1), default=100, show_default=True,
              metavar="N", help="Above N executions, ask on a terminal; refuse otherwise "
                                "(--yes does not lift it).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@server_options
@output_option("text", "json")
@quiet_option()
@pass_state
def backfill_cmd(state, namespace: str, flow_id: str, env: str, start: str, end: str, trigger,
                 inputs, dry_run: bool, max_executions: int, yes: bool, kestra_url, insecure,
                 output: str, quiet: bool):
    """Run the windows a flow's Schedule missed (e.g. while Kestra was down), one each.

    Reads the flow from ENV's server, computes every fire time of its Schedule triggers'
    cron in [--start, --end) and creates one execution per window with that scheduleDate,
    labelled backfill:true and kestra-ops.backfill-id:<uuid> (to find or kill them later).
    Such executions have no trigger variables: pass the window with --input NAME={window}.

    Exit 0 done or dry run; 1 refused, declined or failed; 2 invalid input.
    """
    from kestra_ops.output.progress import Progress
    from kestra_ops.workflows.flows_backfill import backfill

    environment = state.environment(env)
    if any("=" not in item for item in inputs):
        raise click.BadParameter("expected NAME=VALUE", param_hint="--input")
    given = dict(item.split("=", 1) for item in inputs)

    def listing(result) -> list[str]:
        return [f"  {when.isoformat()}  ({tid})" for tid, when in result.windows]

    def confirm(result) -> bool:
        return _ask(f"create {len(result.windows)} execution(s) of {namespace}.{flow_id}?",
                    yes, listing(result))

    def confirm_over(result) -> bool:
        if not sys.stdin.isatty():
            return False
        return click.prompt(f"{len(result.windows)} executions is more than --max-executions "
                            f"{max_executions}; type the number to go on", default="",
                            err=True, show_default=False) == str(len(result.windows))

    with _client(environment, kestra_url, insecure) as client:
        result = backfill(client, environment, namespace, flow_id, start, end, trigger=trigger,
                          inputs=given, dry_run=dry_run, max_executions=max_executions,
                          confirm=confirm, confirm_over=confirm_over,
                          progress=Progress(quiet=quiet or output == "json"))
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo("triggers: " + "; ".join(result.triggers))
        if dry_run or result.outcome != "created":
            click.echo("\n".join(listing(result)))
        for item in result.executions:
            click.echo(f"  {item['scheduleDate']}  execution {item['id']}")
        click.echo(f"flows backfill {env} {namespace}.{flow_id}: {result.message}")
    _exit(result.exit_code)
