"""kestra-ops flows validate | plan | apply | export | promote | backfill."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kestra_ops.cli.common import (asker as _asker, emit, env_option, kestra_options, output_option,
                                    pass_state, progress_for, quiet_option)
from kestra_ops.cli.common import kube_options

DIR_ARG = click.Path(path_type=Path)


server_options = kestra_options()


@click.group()
def flows() -> None:
    """Flows as code: validate, plan and apply a directory of flows, export, promote, backfill.

    A flows directory holds one flow per YAML file (any layout; `flows export` writes
    <namespace>/<id>.yaml). Namespaces follow lowercase.with-hyphens, e.g. company.team.
    """


@flows.command("validate")
@click.argument("target", type=DIR_ARG, metavar="DIR")
@env_option(required=False)
@kube_options(namespace=("--kube-namespace",))
@click.option("--target-version", metavar="VERSION",
              help="Also flag the flow syntax Kestra VERSION (e.g. 2.0.8, or a line: 2.0) "
                   "removed, renamed or changed, as the version catalogue lists it.")
@click.option("--from-version", metavar="VERSION",
              help="With --target-version: the version the flows run on now; only the changes "
                   "after it count [default: every change up to the target].")
@server_options
@output_option()
@pass_state
def validate_cmd(state, target: Path, env: str | None, target_version: str | None,
                 from_version: str | None, kestra_url, insecure, output: str):
    """Check a flows directory offline and, with --env, with the server's validate endpoint.

    Offline: valid YAML, one flow per file, id/namespace/tasks present, namespace naming
    (lowercase.with-hyphens), no flow defined twice, unique task ids, and no blacklisted
    plugin type anywhere in a flow (tasks at any depth, triggers, errors, finally,
    afterExecution, task runners, pluginDefaults). The blacklist is --env's
    kestra.plugins.blacklist (merged values), else io.kestra.plugin.docker.*; outside dev
    io.kestra.plugin.docker.* always applies, and a missing, empty or invalid list is an
    error. Every finding names file:line:col. DIR may also be one flow file or an export ZIP.

    Symlinks are never followed out of DIR: such a link is a flows/symlink error, its content
    neither read nor sent. A FIFO or device is refused unread.

    With --target-version: the flow syntax the releases after --from-version up to VERSION
    remove, rename or change, each with file:line, the replacement and its source. The facts
    (plugin types, properties, paths such as triggers[].conditions and pluginDefaults, Pebble
    functions and filters such as json() and | json) come from kestra-ops' version catalogue
    (kestra_ops/upgrades/catalogue.yaml), each citing Kestra's migration guides. Removed or
    renamed syntax is an error, changed behaviour a warning. VERSION must be in the catalogue,
    on a supported line.

    Exit 0 clean, 1 any error, 2 a file is not readable YAML or not read, or an unknown version.
    """
    from kestra_ops.workflows.flows import run as flows_run

    emit(flows_run.validate(target, state.environment(env) if env else None,
                            kestra_url=kestra_url, insecure=insecure,
                            target_version=target_version, from_version=from_version), output)


@flows.command("plan")
@click.argument("target", type=DIR_ARG, metavar="DIR")
@env_option()
@kube_options(namespace=("--kube-namespace",))
@click.option("--detailed-exitcode", is_flag=True, help="Exit 3 when there are changes.")
@click.option("--no-diff", is_flag=True, help="List the changes without their diffs.")
@server_options
@output_option()
@pass_state
def plan_cmd(state, target: Path, env: str, detailed_exitcode: bool, no_diff: bool, kestra_url,
             insecure, output: str):
    """Show what `flows apply` would change on ENV's server, flow by flow, with diffs.

    Each flow of DIR is create, update or unchanged (sources compared as text); delete lists
    the server's flows in DIR's namespaces that DIR lacks (apply removes them only with
    --prune). Literal secret values are masked in diffs. DIR is checked offline first.

    Exit 0, or 3 with --detailed-exitcode when there are changes; 1 invalid flows.
    """
    from kestra_ops.workflows.flows import run as flows_run

    emit(flows_run.plan(target, state.environment(env), diffs=not no_diff,
                        detailed=detailed_exitcode, kestra_url=kestra_url, insecure=insecure),
         output)


@flows.command("apply")
@click.argument("target", type=DIR_ARG, metavar="DIR")
@env_option()
@kube_options(namespace=("--kube-namespace",))
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
@output_option()
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
    2 unreadable files, or no terminal to confirm on and no --yes (nothing written);
    3 changes made (with --detailed-exitcode).
    """
    from kestra_ops.workflows.flows import run as flows_run

    emit(flows_run.apply(target, state.environment(env), prune=prune,
                         max_deletions=max_deletions, protect=protect, show_diff=show_diff,
                         ask=_asker(yes, f"apply flows to {env}"), detailed=detailed_exitcode,
                         kestra_url=kestra_url, insecure=insecure,
                         progress=progress_for(output, quiet)), output, quiet=quiet)


@flows.command("export")
@env_option()
@kube_options(namespace=("--kube-namespace",))
@click.option("--to", "to", type=DIR_ARG, required=True, metavar="DIR|FILE.zip",
              help="A FILE.zip (the server's export as is) or a DIR (one flow per file, "
                   "<namespace>/<id>.yaml; other files left alone).")
@click.option("--namespace", metavar="NS", help="Only NS and its child namespaces.")
@server_options
@output_option()
@pass_state
def export_cmd(state, env: str, to: Path, namespace, kestra_url, insecure, output: str):
    """Export ENV's flows to a ZIP or a directory that `flows apply` takes back unchanged."""
    from kestra_ops.workflows.flows import run as flows_run

    emit(flows_run.export(state.environment(env), to, namespace, kestra_url=kestra_url,
                          insecure=insecure), output)


@flows.command("promote")
@click.argument("target", type=DIR_ARG, metavar="[DIR]", default=Path("flows"))
@env_option()
@kube_options(namespace=("--kube-namespace",))
@click.option("--from", "src", required=True, metavar="SEGMENT",
              help="Namespace segment(s) to replace, e.g. staging.")
@click.option("--to", "dst", required=True, metavar="SEGMENT",
              help="Replacement segment(s), e.g. production.")
@click.option("--dry-run", is_flag=True, help="Plan only: validate and show the changes.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@server_options
@output_option()
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

    Exit 0 applied, nothing to do or dry run; 1 invalid flows, declined or failed; 2 invalid
    input, or no terminal to confirm on and no --yes (nothing written).
    """
    from kestra_ops.workflows.flows import run as flows_run

    emit(flows_run.promote(target, state.environment(env), src, dst, dry_run=dry_run,
                           ask=_asker(yes, f"promote flows to {env}"), kestra_url=kestra_url,
                           insecure=insecure, progress=progress_for(output, quiet)),
         output, quiet=quiet)


@flows.command("backfill")
@click.argument("namespace")
@click.argument("flow_id", metavar="FLOW_ID")
@env_option()
@kube_options(namespace=("--kube-namespace",))
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
@output_option()
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

    Exit 0 done or dry run; 1 refused, declined or failed; 2 invalid input, or no terminal
    to confirm on and no --yes (nothing created).
    """
    from kestra_ops.workflows.flows import run as flows_run

    if any("=" not in item for item in inputs):
        raise click.BadParameter("expected NAME=VALUE", param_hint="--input")

    def over(count: int) -> bool:  # a guard of its own: --yes does not lift it
        if not sys.stdin.isatty():
            return False
        return click.prompt(f"{count} executions is more than --max-executions "
                            f"{max_executions}; type the number to go on", default="",
                            err=True, show_default=False) == str(count)

    emit(flows_run.backfill(state.environment(env), namespace, flow_id, start, end,
                            trigger=trigger, inputs=dict(item.split("=", 1) for item in inputs),
                            dry_run=dry_run, max_executions=max_executions,
                            ask=_asker(yes, f"create backfill executions of {namespace}."
                                            f"{flow_id}"), ask_over=over,
                            kestra_url=kestra_url, insecure=insecure,
                            progress=progress_for(output, quiet)), output, quiet=quiet)
