"""kestra-ops preflight."""

from __future__ import annotations

import json

import click

from kestra_ops.cli.common import env_option, helm_option, output_option, pass_state, quiet_option

MARK = {"pass": "pass", "warn": "warn", "fail": "FAIL"}
REASON_WIDTH = 300  # characters of a reason or detail in the text output


@click.command("preflight")
@env_option()
@helm_option()
@click.option("--skip-bucket", is_flag=True,
              help="Do not check the MinIO bucket (reported as a warning).")
@output_option("text", "json")
@quiet_option()
@pass_state
def preflight_cmd(state, env: str, helm: str | None, skip_bucket: bool, output: str,
                  quiet: bool):
    """Check that a deploy to ENV can succeed, before anything changes.

    \b
    - the Kubernetes API answers (and its version); the namespace exists;
    - the caller may get/list/watch/create/patch/update/delete every kind the chart creates
      (helm's --wait lists and watches them), list ReplicaSets and pods (what --wait reads of
      a Deployment and a StatefulSet), and get/list/create/update/delete Secrets, in the
      namespace (one SelfSubjectAccessReview per verb and resource; each missing one named);
    - the MinIO bucket exists (credentials: KESTRA_OPS_MINIO_ACCESS_KEY and
      KESTRA_OPS_MINIO_SECRET_KEY; skipped with a warning without them);
    - the Helm release is not stuck in pending-* (an interrupted helm client).

    Nothing is written. Exit 0 when every check passes (warnings allowed), 1 when one fails.
    """
    from kestra_ops.output.cells import one_line
    from kestra_ops.output.progress import Progress
    from kestra_ops.workflows.preflight import run_preflight

    environment = state.environment(env)
    progress = Progress(quiet=quiet or output == "json")
    result = run_preflight(environment, progress=progress, check_bucket=not skip_bucket,
                           helm=helm)
    if progress.tty and not progress.quiet:
        click.echo("\r\x1b[2K", nl=False, err=True)  # clear the transient status line
    if output == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        if not quiet:
            click.echo(f"preflight {env} (namespace {environment.namespace}, release "
                       f"{environment.release}, context {environment.context or '(current)'})")
        # one line each: a reason may quote helm's description, which holds newlines (JSON keeps
        # the full text)
        width = max(len(c.name) for c in result.checks)
        for check in result.checks:
            if quiet and check.status != "fail":
                continue
            click.echo(f"  {MARK[check.status]:4}  {check.name:{width}}  "
                       f"{one_line(check.reason, REASON_WIDTH)} ({check.seconds:.2f}s)")
            for detail in check.details:
                click.echo(f"  {'':4}  {'':{width}}    - {one_line(detail, REASON_WIDTH)}")
        click.echo(f"preflight {env}: {'ok' if result.ok else 'FAILED'}")
    click.get_current_context().exit(result.exit_code)
