"""kestra-ops check."""

from __future__ import annotations

import json

import click

from kestra_ops.cli.common import (duration_seconds, env_option, kestra_options,
                                    output_option, pass_state, quiet_option)

MARK = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}
IDS = "pods, readiness, events, minio, kestra-api, login, e2e-flow, configmap"


@click.command("check")
@env_option()
@click.option("--wait", "wait", metavar="DURATION", callback=duration_seconds,
              help="Run failing checks again until all pass or DURATION has passed (e.g. 5m).")
@click.option("--only", metavar="ID,...", help=f"Run only these checks (comma-separated): {IDS}.")
@click.option("--timeout-per-check", "timeout", default="60s", show_default=True,
              metavar="DURATION", callback=duration_seconds,
              help="Time budget of each check (each attempt, with --wait).")
@kestra_options("Kestra and MinIO")
@output_option("table", "json", "junit", default="table")
@quiet_option()
@pass_state
def check_cmd(state, env: str, wait: float | None, only: str | None, timeout: float,
              kestra_url: str | None, insecure: bool, output: str, quiet: bool) -> None:
    """Run the post-deploy checklist for ENV: each item PASS, WARN or FAIL, with its time.

    \b
    pods        every pod Running or Completed; none CrashLoopBackOff, ImagePullBackOff,
                ErrImagePull, OOMKilled or Error (pod, container, reason, restarts, last log
                lines)
    readiness   every container ready (2/2 with the Istio sidecar; a Completed Job pod whose
                only running container is istio-proxy, "1/2 Completed", passes)
    events      no Warning event since the last deploy whose cause is still there (a pod
                not ready, not scheduled, a probe or BackOff still repeating); resolved
                ones (the pod is ready since, gone or re-created; the claim Bound) are
                listed as history; events on other kinds fail
    minio       /minio/health/live answers 200 (and /minio/health/cluster when served)
    kestra-api  Kestra answers on the flows endpoint
    login       the configured credentials log in; basicAuthValidationErrors is empty
    e2e-flow    a test flow (namespace kestra-ops.checks, unique id) runs to SUCCESS and is
                deleted, also when it fails or the command is interrupted
    configmap   ConfigMap kestra-config carries datasources.default, datasources.postgres and
                kestra.datasources.postgres

    The checks run concurrently, each within --timeout-per-check. Credentials:
    KESTRA_OPS_BASIC_AUTH_USERNAME / KESTRA_OPS_BASIC_AUTH_PASSWORD, else the basic-auth Secret.
    Exit 0 when every check passes (warnings allowed), 1 when one fails, 130 interrupted.
    """
    from kestra_ops.output.progress import Progress
    from kestra_ops.workflows.check import run_check, select

    select(only)  # an unknown id is refused before anything connects
    environment = state.environment(env)
    progress = Progress(quiet=quiet or output != "table")
    report = run_check(environment, only=only, wait=wait, timeout=timeout,
                       kestra_url=kestra_url, insecure=insecure, progress=progress)
    if progress.tty and not progress.quiet:
        click.echo("\r\x1b[2K", nl=False, err=True)  # clear the transient status line
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if output == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif output == "junit":
        click.echo(render_junit(report))
    else:
        click.echo(render_table(report, quiet=quiet))
    click.get_current_context().exit(report.exit_code)


def render_table(report, *, quiet: bool = False) -> str:
    lines = [] if quiet else [f"check {report.env} (namespace {report.namespace})"]
    width = max((len(r.id) for r in report.results), default=0)
    for r in report.results:
        if quiet and r.status != "fail":
            continue
        tries = f", {r.attempts} attempts" if r.attempts > 1 else ""
        lines.append(f"  {MARK[r.status]}  {r.id:{width}}  {r.reason} ({r.seconds:.2f}s{tries})")
        if r.status != "pass":
            lines += [f"        {'':{width}}  {d}" for d in r.details]
    counts = report.counts()
    verdict = "ok" if report.ok else "FAILED"
    lines.append(f"check {report.env}: {verdict}: {counts['pass']} passed, {counts['warn']} "
                 f"warning(s), {counts['fail']} failed ({report.seconds:.1f}s)")
    return "\n".join(lines)


def render_junit(report) -> str:
    """One testcase per check: FAIL -> failure, a skipped WARN -> skipped, WARN -> passed with
    the warning in system-out."""
    import datetime
    import socket

    from kestra_ops.output.junit import Case, Suite, render

    suite = Suite(f"kestra-ops check {report.env}",
                  timestamp=datetime.datetime.now(datetime.timezone.utc),
                  hostname=socket.gethostname(),
                  properties={"env": report.env, "namespace": report.namespace})
    for r in report.results:
        case = Case(r.id, f"kestra-ops.check.{report.env}", r.seconds,
                    output="\n".join([f"{r.status}: {r.reason}", *r.details]))
        if r.status == "fail":
            case.failure, case.failure_type = r.reason, f"check/{r.id}"
            case.failure_text = "\n".join([r.reason, *r.details])
        elif r.status == "warn" and r.reason.startswith("skipped"):
            case.skipped = r.reason
        suite.cases.append(case)
    return render([suite], "kestra-ops check", seconds=report.seconds)
