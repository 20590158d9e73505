"""kestra-ops backup run/list/verify/restore/drill (prune lives in cli/backup_prune.py)."""

from __future__ import annotations

import click

from kestra_ops.cli.common import (confirm, emit, env_option, insecure_warned, output_option,
                                    pass_state, progress_for, quiet_option,
                                    storage_environment, storage_insecure_option)
from kestra_ops.cli.common import kube_options
from kestra_ops.cli.backup_recover import drill_cmd, identity_option, restore_cmd


class _BackupGroup(click.Group):
    """Adds ``prune`` (kestra_ops.cli.backup_prune.prune_cmd) lazily when that module exists."""

    def _prune(self):
        if "prune" not in self.commands:
            try:
                from kestra_ops.cli import backup_prune
            except ImportError:
                return
            self.add_command(backup_prune.prune_cmd, "prune")

    def list_commands(self, ctx):
        self._prune()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        if name == "prune":
            self._prune()
        return super().get_command(ctx, name)


@click.group("backup", cls=_BackupGroup)
def backup() -> None:
    """Backup sets in the env's backup bucket: database, flows and config; verify, restore, drill.

    A set is `backups/<env>/<UTC timestamp>/` in the backup bucket (db.dump.zst, flows.zip,
    configmap.yaml, values.yaml; secrets.age, the env's Secrets sealed with age to
    backup.recipients, when recipients are set) and counts only once its manifest.json is
    written, last. `backup keygen` makes an age identity for backup.recipients.
    Object storage: backup.bucket (default kestra-<env>-backups) on backup.endpoint (default
    minio.endpoint) in kestra-ops.yaml, never Kestra's own bucket; its key in
    KESTRA_OPS_BACKUP_ACCESS_KEY / KESTRA_OPS_BACKUP_SECRET_KEY (or the files their _FILE
    variables name): the CronJob's may write but not delete, the operator's (prune,
    migrate-location) may delete. Without a backup key, Kestra's key
    (KESTRA_OPS_MINIO_ACCESS_KEY / _SECRET_KEY, which also reads Kestra's storage for the
    storage component) is used and every report warns. Sets of earlier versions, under
    backups/<env>/ in Kestra's bucket (read with Kestra's key), are still listed (LOCATION
    legacy), verified and restored by name and may be `latest`; `backup migrate-location`
    moves them. Database: --database-url or
    KESTRA_OPS_DATABASE_URL (a postgresql:// URL; a password missing from it is taken from
    KESTRA_OPS_DB_PASSWORD or the file KESTRA_OPS_DB_PASSWORD_FILE names, and is only ever
    passed to pg_dump through its environment). The MinIO keys may be files too
    (KESTRA_OPS_MINIO_ACCESS_KEY_FILE, KESTRA_OPS_MINIO_SECRET_KEY_FILE).
    """


@backup.command("run")
@env_option()
@kube_options()
@click.option("--what", default="db,flows,config,storage,secrets", show_default=True,
              metavar="LIST",
              help="What to back up: a comma list of db, flows, config, storage (Kestra's "
              "internal storage: KV values and namespace files), secrets (the env's Secrets "
              "sealed with age to backup.recipients; without recipients the set says they are "
              "not included).")
@click.option("--include-executions", is_flag=True, help="With storage: also the execution "
              "files (inputs, outputs) of the internal storage.")
@click.option("--database-url", metavar="URL", help="PostgreSQL to dump (default: "
              "KESTRA_OPS_DATABASE_URL; with database.mode external or cloudnativepg, the "
              "database the values name, TLS per their sslmode).")
@click.option("--cnpg-backup", is_flag=True, help="database.mode cloudnativepg: also take "
              "the operator's own backup (a Backup of the Cluster, to its object store) and "
              "record it in the set.")
@click.option("--cnpg-timeout", type=float, default=3600, show_default=True, metavar="SECONDS",
              help="How long to wait for the operator's backup to complete.")
@storage_insecure_option()
@output_option()
@quiet_option()
@pass_state
def run_cmd(state, env: str, what: str, include_executions: bool, database_url: str | None,
            cnpg_backup: bool, cnpg_timeout: float, insecure: bool, output: str,
            quiet: bool) -> None:
    """Take one backup set of ENV; exit 1 (no manifest, earlier sets intact) on any failure.

    The database is dumped with `pg_dump -Fc -Z0`, compressed by multi-threaded zstd and
    streamed into a multipart upload (no temp file); a failed or killed pg_dump, a dump too
    small to be real, an S3 error or Ctrl-C aborts the upload. With storage, the dump is of
    a snapshot in which the KV and namespace-file metadata rows are read; once it is done,
    the tenant's objects are copied into the set (server-side on one S3 endpoint,
    concurrently), each with its size and etag in storage-index.json.
    """
    from kestra_ops.workflows.backup.run import run_backup
    from kestra_ops.workflows.backup.sets import parse_what

    result = run_backup(storage_environment(state, env, insecure), what=parse_what(what),
                        database_url=database_url, progress=progress_for(output, quiet),
                        include_executions=include_executions or None, cnpg_backup=cnpg_backup,
                        cnpg_timeout=cnpg_timeout)
    emit(insecure_warned(result.to_report(), insecure), output, quiet=quiet)


@backup.command("list")
@env_option()
@storage_insecure_option()
@output_option()
@pass_state
def list_cmd(state, env: str, insecure: bool, output: str) -> None:
    """List ENV's backup sets, newest first (incomplete ones marked)."""
    from kestra_ops.workflows.backup.locations import list_report

    emit(insecure_warned(list_report(storage_environment(state, env, insecure)), insecure),
         output)


@backup.command("verify")
@env_option()
@click.argument("set_name", metavar="SET")
@click.option("--toc", is_flag=True, help="Print the dump's table of contents.")
@identity_option()
@storage_insecure_option()
@output_option()
@pass_state
def verify_cmd(state, env: str, set_name: str, toc: bool, identity: str | None,
               insecure: bool, output: str) -> None:
    """Re-read every artefact of SET (or `latest`): size, sha256 and the dump's contents.

    With --identity, secrets.age (the sealed Secrets) is opened in memory and its Secrets and
    keys compared with the manifest; a set without sealed Secrets is flagged (warning).
    Storage objects: each one the index lists is in the set with its size and etag, and
    each object a metadata row names is in the index; objects no row names are listed
    (warning).

    Exit 0 when everything matches its manifest; 1 otherwise.
    """
    from kestra_ops.workflows.backup.restore import verify

    emit(insecure_warned(verify(storage_environment(state, env, insecure), set_name, toc=toc,
                                identity=identity), insecure), output)


backup.add_command(restore_cmd, "restore")
backup.add_command(drill_cmd, "drill")


@backup.command("keygen")
@click.option("--out", required=True, metavar="FILE", help="Write the new identity (private "
              "key) here, mode 0600; an existing file or a symlink is refused.")
@output_option()
@pass_state
def keygen_cmd(state, out: str, output: str) -> None:
    """Make an age identity for sealing backup Secrets; print only its public key.

    Put the public key into backup.recipients in kestra-ops.yaml; keep FILE (the private key)
    off the cluster and the bucket: `backup verify/restore/drill --identity FILE` open the
    sealed Secrets with it.
    """
    from kestra_ops.workflows.backup.age_keys import keygen

    report = keygen(out)
    if output == "text":
        click.echo(report.details[0], err=True)
        report.details = []
    emit(report, output)



# ---- migrate-location (the legacy location -> the backup bucket; workflows/backup/migrate.py)

@backup.command("migrate-location")
@env_option()
@click.option("--dry-run", is_flag=True, help="Show what would be copied; change nothing.")
@click.option("--delete-source", is_flag=True, help="Delete each legacy copy once its copy at "
              "the destination is verified (without it the legacy sets stay).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required when "
              "stdin is not a terminal).")
@output_option()
@quiet_option()
@pass_state
def migrate_location_cmd(state, env: str, dry_run: bool, delete_source: bool, yes: bool,
                         output: str, quiet: bool) -> None:
    """Copy ENV's sets from the old location (backups/ENV/ in Kestra's bucket) to the backup
    bucket.

    Each complete legacy set is copied object by object, the artefacts' size and sha256 are
    checked at the destination, and its manifest.json is copied LAST: an interrupted run
    leaves no complete-looking half set and is resumed by running it again (sets already
    complete at the destination are skipped). Incomplete legacy sets are left alone.
    --delete-source deletes a legacy copy only after its copy is verified. Keys: Kestra's to
    read (and delete) the legacy sets, the backup key to write. Exit 0 when done, 1 when a
    set fails to copy or verify (the others are still done), 2 for bad configuration.
    """
    from kestra_ops.workflows.backup.migrate import migrate_location

    emit(migrate_location(state.environment(env), dry_run=dry_run, delete_source=delete_source,
                          confirm=lambda what: confirm(yes, f"{what}?", what),
                          progress=progress_for(output, quiet)), output, quiet=quiet)
