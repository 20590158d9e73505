"""kestra-ops doctor."""

from __future__ import annotations

import json

import click

from kestra_ops.cli.common import (duration_seconds, env_option, kestra_options,
                                    output_option, pass_state, quiet_option)


@click.command("doctor")
@env_option()
@click.option("--stuck-after", default="1h", show_default=True, metavar="DURATION",
              callback=duration_seconds,
              help="An execution RUNNING longer than this is reported as stuck.")
@kestra_options("Kestra and MinIO")
@output_option("text", "json")
@quiet_option()
@pass_state
def doctor_cmd(state, env: str, stuck_after: float, kestra_url: str | None, insecure: bool,
               output: str, quiet: bool) -> None:
    """Walk the troubleshooting guide for ENV: each problem found, with its fix.

    \b
    datasource-missing  a pod crash-loops with DataSource / Micronaut errors in its log, or
                        ConfigMap kestra-config has no datasources.default
    crashloop           any other crash-looping or failing pod (with its last log lines)
    postgres-pod        kestra-postgres-0 missing or not ready
    postgres-auth       "password authentication failed" in PostgreSQL's or Kestra's log
    basic-auth          login fails, or basicAuthValidationErrors is not empty
    rbac                a permission the deploy needs is missing
    minio-dns           Kestra reaches MinIO by something else than a cluster-internal name
    minio-health        MinIO's /minio/health/live (or /cluster) fails
    blacklisted-plugin  a flow uses a type of kestra.plugins.blacklist (live ConfigMap)
    unknown-plugin      the server's validation does not know a flow's plugin type
    stuck-executions    executions RUNNING for longer than --stuck-after
    release-pending     the Helm release is stuck in pending-*

    Nothing is changed. Exit 0 when no problem is found, 1 when one is.
    """
    from kestra_ops.output.progress import Progress
    from kestra_ops.workflows.doctor import run_doctor

    environment = state.environment(env)
    progress = Progress(quiet=quiet or output == "json")
    report = run_doctor(environment, kestra_url=kestra_url, insecure=insecure,
                        stuck_after=stuck_after, progress=progress)
    if progress.tty and not progress.quiet:
        click.echo("\r\x1b[2K", nl=False, err=True)
    if output == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(render_text(report, quiet=quiet))
    click.get_current_context().exit(report.exit_code)


def render_text(report, *, quiet: bool = False) -> str:
    lines = [] if quiet else [f"doctor {report.env} (namespace {report.namespace})"]
    if not quiet:
        lines += [f"  looked at: {what}" for what in report.looked_at]
        lines += [f"  not checked: {what}: {why}" for what, why in report.not_checked.items()]
    for f in report.findings:
        lines.append(f"{f.severity.upper()} {f.id}: {f.summary}")
        lines += [f"    {e}" for e in f.evidence]
        lines.append(f"  fix: {f.fix}")
    if report.ok:
        lines.append(f"doctor {report.env}: no problems found")
    else:
        errors = sum(f.severity == "error" for f in report.findings)
        lines.append(f"doctor {report.env}: {len(report.findings)} problem(s) found ({errors} "
                     f"error(s), {len(report.findings) - errors} warning(s))")
    return "\n".join(lines)
