"""kestra-ops backup restore / drill (the group lives in cli/backup.py)."""

from __future__ import annotations

import click

from kestra_ops.cli.common import (confirm, duration_seconds, emit, env_option, kube_options,
                                    output_option, pass_state, progress_for, quiet_option)


def identity_option():
    return click.option("--identity", metavar="FILE", help="An age identity file (the private "
                        "key, AGE-SECRET-KEY-1... lines, as `backup keygen` writes) that opens "
                        "the set's sealed Secrets (secrets.age); never stored anywhere.")


def reach_options(fn):
    """How the restored Kestra is reached, and how long helm waits."""
    for option in reversed((
            click.option("--kestra-url", metavar="URL", help="Reach the restored Kestra here "
                         "(default: the Kubernetes API service proxy in the target namespace)."),
            click.option("--insecure", is_flag=True, help="Do not verify Kestra's TLS "
                         "certificate (a warning says so)."),
            click.option("--timeout", default="10m", show_default=True, metavar="DURATION",
                         help="How long each helm install/upgrade may wait."),
            click.option("--check-wait", default="2m", show_default=True, metavar="DURATION",
                         callback=duration_seconds, help="Run failing checks of the restored "
                         "Kestra again until they pass or this has passed."))):
        fn = option(fn)
    return fn


@click.command("restore")
@env_option()
@kube_options()
@click.argument("set_name", metavar="SET")
@click.option("--to-database", metavar="URL", help="Restore the dump into this database "
              "(postgresql:// URL); it must be empty unless --clean.")
@click.option("--clean", is_flag=True, help="Drop the target's objects that the dump holds "
              "before recreating them (pg_restore --clean --if-exists).")
@click.option("--flows", is_flag=True, help="Import the set's flows into ENV's Kestra (only when "
              "they pass the rules of `flows validate`, ENV's plugin blacklist included).")
@click.option("--config", is_flag=True, help="Put the set's ConfigMap back (the live one is "
              "backed up first) and restart Kestra, holding the deploy lock.")
@click.option("--to-namespace", metavar="NS", help="Disaster recovery: bring the whole Kestra "
              "back into this NEW or empty namespace (needs --to-database, an empty database).")
@click.option("--to-bucket", metavar="BUCKET", help="With --to-namespace: copy the storage "
              "objects into this (empty) bucket (default: the env's minio.bucket).")
@reach_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required when "
              "stdin is not a terminal).")
@identity_option()
@output_option()
@quiet_option()
@pass_state
def restore_cmd(state, env: str, set_name: str, to_database: str | None, clean: bool,
                flows: bool, config: bool, to_namespace: str | None, to_bucket: str | None,
                kestra_url: str | None, insecure: bool, timeout: str, check_wait: float,
                yes: bool, identity: str | None, output: str, quiet: bool) -> None:
    """Restore SET (or `latest`) of ENV: its database, and its flows / ConfigMap on request.

    With --to-namespace NS it is a disaster recovery: NS (new, or empty) gets the set's
    Secrets (unsealed with --identity), the chart with the set's values and Kestra scaled to
    0, the database (--to-database, empty), the storage objects (into --to-bucket or the
    env's bucket, empty of Kestra objects), Kestra scaled up, then the counts, a canary flow
    reading a KV value and a namespace file, and the checklist. Each step is shown and timed;
    after Ctrl-C or a failure the same command resumes (state in ConfigMap
    kestra-ops-recovery of NS). Exit 0: the restored Kestra passed its checks; 1: a step or
    a check failed; 2: a precondition does not hold (nothing changed).
    """
    emit(_restore(state, env, set_name, to_database, clean, flows, config, to_namespace,
                  to_bucket, kestra_url, insecure, timeout, check_wait, yes, identity, output,
                  quiet), output, quiet=quiet)


def _restore(state, env, set_name, to_database, clean, flows, config, to_namespace, to_bucket,
             kestra_url, insecure, timeout, check_wait, yes, identity, output, quiet):
    from kestra_ops.errors import InvalidInput

    environment = state.environment(env)
    ask = lambda what: confirm(yes, f"{what}?", what)  # noqa: E731
    progress = progress_for(output, quiet)
    if to_namespace is None:
        if to_bucket or kestra_url:
            raise InvalidInput("--to-bucket and --kestra-url go with --to-namespace")
        from kestra_ops.workflows.backup.restore import restore

        return restore(environment, set_name, to_database=to_database, clean=clean,
                       flows=flows, config=config, identity=identity, confirm=ask,
                       progress=progress)
    if clean or flows or config:
        raise InvalidInput("--to-namespace restores everything into an empty namespace: "
                           "--clean, --flows and --config do not go with it")
    if not to_database:
        raise InvalidInput("--to-namespace needs --to-database URL (the new, empty database "
                           "the restored Kestra will use)")
    from kestra_ops.workflows.backup.recover import Target, recover

    target = Target(to_namespace, to_database, to_bucket, kestra_url, insecure,
                    check_wait=check_wait)
    return recover(environment, set_name, target, identity=identity, timeout=timeout,
                   confirm=ask, progress=progress)


@click.command("drill")
@env_option()
@kube_options()
@click.option("--database-url", metavar="URL", help="The source database (default: "
              "KESTRA_OPS_DATABASE_URL).")
@click.option("--scratch-url", metavar="URL", help="Restore into this EMPTY database (never the "
              "source: refused) instead of a new kestra_drill_<time>_<random> one on the "
              "source's server (created, then dropped).")
@click.option("--scratch-bucket", metavar="BUCKET", help="Copy the storage objects into this "
              "existing, EMPTY bucket (kept) instead of a new kestra-drill-<random> one "
              "(created, then emptied and deleted).")
@click.option("--database-only", is_flag=True, help="Only restore the database into the "
              "scratch database and compare row counts (no cluster needed).")
@reach_options
@identity_option()
@output_option()
@quiet_option()
@pass_state
def drill_cmd(state, env: str, database_url: str | None, scratch_url: str | None,
              scratch_bucket: str | None, database_only: bool, kestra_url: str | None,
              insecure: bool, timeout: str, check_wait: float, identity: str | None,
              output: str, quiet: bool) -> None:
    """Restore the newest complete set as a whole Kestra in a scratch namespace; check it.

    The drill creates kestra-drill-<time>-<random> (never an existing namespace), a scratch
    database and a scratch bucket, runs `backup restore --to-namespace` into them with values
    that point its Kestra at those only, then the counts, the canary flow and the checklist;
    it reports the recovery time (RTO) and the set's age (RPO), stores its report beside the
    set (drills/<time>.json) and deletes what it made, also on failure and Ctrl-C. A
    --scratch-url that is the source (however the URL spells it) or is not empty is refused
    (exit 2, nothing changed). With --database-only: the database alone, row counts compared.
    Exit 0 when the restored Kestra passed; 1 otherwise.
    """
    from kestra_ops.errors import InvalidInput
    from kestra_ops.workflows.backup.drill import drill

    if database_only and (scratch_bucket or kestra_url):
        raise InvalidInput("--scratch-bucket and --kestra-url do not go with --database-only")
    emit(drill(state.environment(env), database_url=database_url, scratch_url=scratch_url,
               identity=identity, namespace=not database_only, scratch_bucket=scratch_bucket,
               kestra_url=kestra_url, insecure=insecure, timeout=timeout,
               check_wait=check_wait, progress=progress_for(output, quiet)), output,
         quiet=quiet)
