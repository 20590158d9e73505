"""The pre-release backup (step 4 of :mod:`kestra_ops.workflows.release.run`): the live ConfigMap and
the Helm values of the current revision into the release's folder (mode 0600), and a database
backup set in the bucket when the env has object storage and a database configured."""

from __future__ import annotations

from pathlib import Path

from kestra_ops.errors import KestraOpsError, NotFound
from kestra_ops.results import SKIP, Step
from kestra_ops.workflows.release.report import ReleaseReport, write_private


def backup(env, rec, report: ReleaseReport, kube, helm, folder: Path, skip: bool) -> None:
    """``rec``: the release's :class:`~kestra_ops.results.Recorder` (its steps)."""
    import yaml

    from kestra_ops.adapters import kube_config
    from kestra_ops.chart import CONFIGMAP
    from kestra_ops.workflows.configmap.backups import dump_manifest, manifest

    files: dict[str, str] = {}
    with rec.step("pre-release backup: ConfigMap and Helm values") as step:
        try:
            live = kube_config.read_configmap(kube, env.namespace, CONFIGMAP)
            files["configmap"] = str(write_private(folder / "configmap.yaml",
                                                   dump_manifest(manifest(live))))
            report.configmap_before = dict(live.get("data") or {})
        except NotFound:
            report.configmap_before = None
        if report.before is not None:
            values = helm.current_values(env.release, env.namespace, revision=report.before)
            files["values"] = str(write_private(folder / f"values-{report.before}.yaml",
                                                yaml.safe_dump(values, sort_keys=False)))
        step.detail = ", ".join(f"{k} -> {v}" for k, v in files.items()) or "nothing live"
    report.backup["files"] = files
    report.backup["database"] = db_backup(env, rec, report, kube, skip)
    report.backup["summary"] = (f"{len(files)} file(s) in {folder}; database: "
                                f"{report.backup['database']}")


def db_backup(env, rec, report: ReleaseReport, kube, skip: bool) -> str:
    from kestra_ops.credentials import database_url
    from kestra_ops.wiring import backup_storage_for_env as for_env

    if skip:
        report.steps.append(Step("pre-release backup: database", SKIP, "--skip-backup"))
        return "skipped (--skip-backup)"
    storage, _bucket, _warning, why = for_env(env)  # the backup destination (backup.bucket)
    if storage is None:
        why = f"not configured: {why}"
    else:
        try:
            database_url(None)
        except KestraOpsError as err:
            storage, why = None, f"not configured: {err}"
    if storage is None:
        report.steps.append(Step("pre-release backup: database", SKIP, why))
        return f"skipped ({why})"
    from kestra_ops.workflows.backup.run import run_backup

    with rec.step("pre-release backup: database backup set") as step:
        # what a deploy can change (the database by its migrations, flows, config); the
        # storage objects and the Secrets are left to the nightly sets (a release stays fast)
        result = run_backup(env, what=("db", "flows", "config"), storage=storage, kube=kube)
        step.detail = f"set {result.name} in {result.bucket}"
    return f"set {result.name}"
