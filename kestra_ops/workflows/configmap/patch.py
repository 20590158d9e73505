"""config patch / config restore: change ConfigMap kestra-config safely.

Order of a patch: read the ConfigMap (and the Deployment) -> apply the change to application.yml
and check it with Kestra's rules (refused: nothing written, a failed report) -> show the masked
diff and ask -> back up what was read -> replace with the resourceVersion that was read (a
concurrent change is a Conflict: nothing written) -> rollout restart + wait -> on a failed
rollout, put the backup back and restart again (a failed report saying so). With ``persist``,
the same change goes into the env's last values layer. Both run under the deploy lock (the Lease
of :mod:`kestra_ops.workflows.deploy.lock`, operation ``config patch`` / ``config restore``),
taken before the ConfigMap is read and held until the rollout ends, so they never interleave
with a deploy, rollback or release (a held lock: :class:`Conflict` naming its holder, nothing
read or written); a caller that holds it already passes it as ``lock``. Every write is logged with
:func:`kestra_ops.audit.log_change` (keys and revisions, no values). Each returns a
:class:`kestra_ops.results.Report` (:mod:`kestra_ops.workflows.configmap.report`).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from kestra_ops import chart
from kestra_ops.adapters import kube_config
from kestra_ops.audit import log_change
from kestra_ops.errors import (Aborted, Conflict, InvalidInput, KestraOpsError, NotFound,
                               OperationFailed)
from kestra_ops.results import Recorder, Report
from kestra_ops.settings import Environment
from kestra_ops.yamlio import YamlDoc, to_plain
from kestra_ops.workflows.configmap import backups as backups
from kestra_ops.workflows.configmap.doc import (Patch, PatchRefused, apply_patch, changed_keys,
                                                check_rules, drift, dump_app, masked_diff,
                                                outside_sections, parse_app, persist)
from kestra_ops.workflows.configmap.report import ConfigChange, backups_report, finish
from kestra_ops.workflows.rollout import restart_deployment, wait_for_rollout

CONFIGMAP = chart.CONFIGMAP
DATA_KEY = chart.CONFIG_KEY
DEPLOYMENT = chart.DEPLOYMENT
DOC_NAME = f"configmap/{CONFIGMAP}/{DATA_KEY}"
Confirm = Callable[[str], bool]  # shown the masked diff (and the Helm warning); True: go ahead
Uploader = Callable[[Path], str]  # copies a backup file off the machine; returns where it went


def helm_warning(env: Environment, persisted: bool) -> str:
    overlay = _overlay_name(env)
    if persisted:
        return (f"Helm owns configmap {CONFIGMAP}: the change is also written to {overlay} so "
                "the next `kestra-ops deploy` keeps it; commit that file")
    return (f"Helm owns configmap {CONFIGMAP}: this is an out-of-band change, written by field "
            f"manager kestra-ops. The next `kestra-ops deploy` or `release` shows it in its "
            f"diff as changed outside Helm and, once confirmed (or --yes), reverts it to the "
            f"values (on Helm 4 by taking the field back with --force-conflicts; a plain "
            f"`helm upgrade` on Helm 4 fails on it). To keep the change, carry it into the "
            f"values: --persist writes it to {overlay}")


RESTORE_WARNING = (f"Helm owns configmap {CONFIGMAP}: a restore is an out-of-band change too; "
                   "the next `kestra-ops deploy` renders it from the values again")


def patch_config(env: Environment, patch: Patch, *, confirm: Confirm, restart: bool = True,
                 persist_values: bool = False, timeout: float = 300.0, progress=None, kube=None,
                 uploader: Uploader | None = None, bucket_copy: bool = False,
                 lock=None) -> Report:
    """Apply ``patch`` to application.yml in ConfigMap kestra-config (see the module doc).
    ``bucket_copy``: copy the backup to the env's bucket when object storage is configured.
    ``lock``: the deploy lock the caller holds already (else it is taken here)."""
    outside = outside_sections(patch.top_keys())
    overlay = _overlay(env) if persist_values else None
    if overlay is not None and outside:
        raise InvalidInput(f"--persist: {', '.join(outside)} is not rendered from values (only "
                           "datasources and kestra are); patch without --persist")
    result = ConfigChange("patch", env.name, env.namespace)
    report = _start("config patch", env, helm_warning(env, persist_values))
    rec = Recorder(report, progress)
    kube = kube or _connect(env)
    with _locked(rec, kube, env, lock, "config patch") as held:
        return _patch(env, patch, rec, kube, held, result, report, confirm=confirm,
                      restart=restart, overlay=overlay, outside=outside, timeout=timeout,
                      uploader=uploader, bucket_copy=bucket_copy)


def _patch(env: Environment, patch: Patch, rec: Recorder, kube, lock, result: ConfigChange,
           report: Report, *, confirm: Confirm, restart: bool, overlay: Path | None,
           outside: list[str], timeout: float, uploader: Uploader | None,
           bucket_copy: bool) -> Report:
    live, grace, dep_rv = _read_all(rec, kube, env, result, restart)
    before = parse_app(live["data"][DATA_KEY], DOC_NAME)
    before_plain = to_plain(before)
    merged = apply_patch(before, DOC_NAME, patch)
    with rec.step("check Kestra's rules") as step:
        try:
            result.findings = check_rules(before_plain, merged, env.name,
                                          f"configmap {CONFIGMAP}", grace)
        except PatchRefused as err:
            result.findings = err.report
            step.fail(str(err))
            return finish(report, result, error=str(err))
        step.detail = f"{result.findings.warnings} warning(s)"
    if outside:
        result.warnings.append(f"{', '.join(outside)}: not rendered from values; the next "
                               "deploy drops it")
    result.keys = changed_keys(before_plain, merged.plain)
    if not result.keys:
        result.warnings.append(f"configmap {CONFIGMAP} already has these values: nothing to do")
        return finish(report, result)
    result.diff = masked_diff(before_plain, merged.plain, f"{DOC_NAME} (resourceVersion "
                              f"{result.resource_version_before})", f"{DOC_NAME} (patched)")
    data = {**live["data"], DATA_KEY: dump_app(merged.data)}
    error = _write_and_roll(rec, kube, env, live, data, live.get("binaryData"), result,
                            confirm=confirm, restart=restart, timeout=timeout,
                            uploader=_uploader(env, uploader, bucket_copy, result),
                            deployment_rv=dep_rv, lock=lock)
    if overlay is not None and error is None:
        with rec.step(f"persist to {backups.relative(overlay, env.root)}"):
            keys = persist(overlay, patch)
        result.persisted = backups.relative(overlay, env.root)
        log_change(env.root, action="values.persist", env=env.name, target=result.persisted,
                   keys=keys, reason=f"config patch of configmap {CONFIGMAP}")
        result.warnings.extend(_drift_warning(env, merged.plain))
    return finish(report, result, error=error)


def restore_config(env: Environment, backup: str | Path, *, confirm: Confirm,
                   restart: bool = True, timeout: float = 300.0, progress=None, kube=None,
                   uploader: Uploader | None = None, bucket_copy: bool = False,
                   lock=None) -> Report:
    """Put a backup's data back into ConfigMap kestra-config (backing up the live one first).
    ``lock``: the deploy lock the caller holds already (else it is taken here)."""
    path = backups.resolve(env.root, backup)
    saved = backups.load_backup(path, configmap=CONFIGMAP, env=env.name, namespace=env.namespace)
    if not isinstance(saved["data"].get(DATA_KEY), str):
        raise InvalidInput(f"{path}: the backup has no {DATA_KEY}")
    result = ConfigChange("restore", env.name, env.namespace,
                          restored_from=backups.relative(path, env.root))
    report = _start("config restore", env, RESTORE_WARNING)
    rec = Recorder(report, progress)
    kube = kube or _connect(env)
    with _locked(rec, kube, env, lock, "config restore") as held:
        return _restore(env, path, saved, rec, kube, held, result, report, confirm=confirm,
                        restart=restart, timeout=timeout, uploader=uploader,
                        bucket_copy=bucket_copy)


def _restore(env: Environment, path: Path, saved: dict, rec: Recorder, kube, lock,
             result: ConfigChange, report: Report, *, confirm: Confirm, restart: bool,
             timeout: float, uploader: Uploader | None, bucket_copy: bool) -> Report:
    live, grace, dep_rv = _read_all(rec, kube, env, result, restart)
    before_plain = to_plain(parse_app(live["data"][DATA_KEY], DOC_NAME))
    name = f"{path.name}/{DATA_KEY}"
    doc = parse_app(saved["data"][DATA_KEY], name)
    from kestra_ops.values.merge import merge_docs

    with rec.step("check Kestra's rules") as step:
        try:
            result.findings = check_rules(before_plain, merge_docs([YamlDoc(path, doc, name)]),
                                          env.name, result.restored_from, grace)
        except PatchRefused as err:  # the way back is never blocked; say what it brings back
            result.findings = err.report
            step.warn(f"the backup breaks {err.report.errors} Kestra rule(s)")
            result.warnings.append(f"the backup breaks {err.report.errors} Kestra rule(s); "
                                   "restoring it anyway")
    after_plain = to_plain(doc)
    other = sorted(k for k in set(live["data"]) | set(saved["data"])
                   if k != DATA_KEY and live["data"].get(k) != saved["data"].get(k))
    result.keys = changed_keys(before_plain, after_plain) + [f"data.{k}" for k in other]
    if live["data"] == saved["data"] and live.get("binaryData") == saved.get("binaryData"):
        result.warnings.append(f"configmap {CONFIGMAP} already holds this backup's data: "
                               "nothing to do")
        return finish(report, result)
    result.diff = masked_diff(before_plain, after_plain, f"{DOC_NAME} (resourceVersion "
                              f"{result.resource_version_before})", f"{result.restored_from}")
    error = _write_and_roll(rec, kube, env, live, saved["data"], saved.get("binaryData"), result,
                            confirm=confirm, restart=restart, timeout=timeout,
                            uploader=_uploader(env, uploader, bucket_copy, result),
                            deployment_rv=dep_rv, lock=lock)
    return finish(report, result, error=error)


def list_backups(env: Environment) -> Report:
    """The local backups of ConfigMap kestra-config, newest first."""
    return backups_report(env, backups.list_backups(env.root, env.name))


# --------------------------------------------------------------------------- steps


@contextmanager
def _locked(rec: Recorder, kube, env: Environment, lock, operation: str):
    """The deploy lock for the block: the caller's (``lock``) or one taken here."""
    if lock is not None:
        yield lock
        return
    from kestra_ops.workflows.deploy.lock import deploy_lock

    with deploy_lock(kube, env, operation=operation) as held:
        rec.info(f"  deploy lock: lease {chart.LEASE} in {env.namespace}, held by {held.holder}")
        yield held


def _still_held(lock, env: Environment) -> None:
    """The Lease is still ours after the prompt (someone may have broken it meanwhile), or
    nothing is written."""
    if not hasattr(lock, "current"):
        return
    held = lock.current()
    lost = getattr(lock, "lost", None) or (
        "the Lease is gone" if held is None else
        f"now held by {held.holder}" if held.holder != lock.holder else None)
    if lost:
        raise Conflict(f"the deploy lock of {env.namespace} was lost before the write ({lost}); "
                       f"nothing was changed: run the command again")


def _start(command: str, env: Environment, warning: str) -> Report:
    report = Report(command, env.name, title=f"{command} {env.name} (namespace {env.namespace}, "
                    f"configmap {CONFIGMAP})", warnings=[warning])
    return report


def _read_all(rec: Recorder, kube, env: Environment, result: ConfigChange, restart: bool):
    with rec.step(f"read configmap {CONFIGMAP}") as step:
        live = _read(kube, env)
        grace, dep_rv = _deployment(kube, env, required=restart)
        result.resource_version_before = live["metadata"].get("resourceVersion")
        step.detail = f"resourceVersion {result.resource_version_before}"
    return live, grace, dep_rv


def _uploader(env: Environment, given: Uploader | None, bucket_copy: bool,
              result: ConfigChange) -> Uploader | None:
    if given is not None or not bucket_copy:
        return given
    uploader, why_not = backups.storage_uploader(env)
    if uploader is None:
        result.notes.append(f"the backup stays local only: {why_not}")
    return uploader


def _write_and_roll(rec: Recorder, kube, env: Environment, live: dict, data: dict,
                    binary: dict | None, result: ConfigChange, *, confirm: Confirm,
                    restart: bool, timeout: float, uploader: Uploader | None,
                    deployment_rv: str | None, lock=None) -> str | None:
    """Back up, write, restart; returns why it failed (the rollout, restored) or None."""
    shown = result.diff + "".join(f"warning: {w}\n" for w in rec.report.warnings[:1])
    if not confirm(shown):  # the masked diff and who owns the ConfigMap
        raise Aborted("not confirmed: nothing was changed")
    _still_held(lock, env)
    with rec.step(f"back up configmap {CONFIGMAP}") as step:
        path = backups.write_backup(env.root, live, env=env.name)
        result.backup = step.detail = backups.relative(path, env.root)
        if uploader is not None:  # best effort: the local 0600 file is the guarantee
            try:
                result.uploaded = uploader(path)
                step.detail += f", copied to {result.uploaded}"
            except KestraOpsError as err:  # e.g. the patch that fixes a wrong MinIO endpoint
                step.warn()
                result.warnings.append(f"the backup was not copied to the bucket ({err}); the "
                                       f"local copy {result.backup} is the backup")
    rv = result.resource_version_before
    with rec.step(f"write configmap {CONFIGMAP} (resourceVersion {rv})") as step:
        written = _replace(kube, env, live, data, binary, conflict=(
            f"configmap {CONFIGMAP} changed since it was read (resourceVersion {rv}): nothing "
            "was written; run the command again to work on the current version"))
        result.changed = True
        result.resource_version_after = written["metadata"].get("resourceVersion")
        step.detail = f"resourceVersion {result.resource_version_after}"
    log_change(env.root, action=f"configmap.{result.action}", env=env.name,
               target=f"configmap {env.namespace}/{CONFIGMAP}", before=rv,
               after=result.resource_version_after, backup=result.backup, keys=result.keys,
               uploaded=result.uploaded, restored_from=result.restored_from)
    if not restart:
        result.warnings.append(f"not restarted: Kestra reads {DATA_KEY} at start; the change "
                               f"applies at the next restart of deployment {DEPLOYMENT}")
        return None
    start = time.monotonic()
    try:
        _restart(rec, kube, env, timeout, deployment_rv, f"config {result.action}")
    except OperationFailed as failure:
        outcome = _auto_restore(rec, kube, env, written, live, result, timeout)
        return f"rollout failed: {failure}; {outcome}"
    except KeyboardInterrupt:
        rec.info(f"interrupted during the rollout: configmap {CONFIGMAP} is already written; "
                 f"undo with: kestra-ops config restore --env {env.name} {path.name}")
        raise
    result.restarted = True
    result.rollout_seconds = round(time.monotonic() - start, 2)
    return None


def _restart(rec: Recorder, kube, env: Environment, timeout: float, before_rv: str | None,
             reason: str) -> None:
    with rec.step(f"rollout restart deployment/{DEPLOYMENT}"):
        dep = restart_deployment(kube, env.namespace, DEPLOYMENT)
        log_change(env.root, action="deployment.restart", env=env.name,
                   target=f"deployment {env.namespace}/{DEPLOYMENT}", before=before_rv,
                   after=dep["metadata"].get("resourceVersion"), reason=reason)
        wait_for_rollout(kube, env.namespace, DEPLOYMENT, timeout, rec.progress)


def _auto_restore(rec: Recorder, kube, env: Environment, written: dict, live: dict,
                  result: ConfigChange, timeout: float) -> str:
    """Put back what was read before the write (the backup), then restart again."""
    how = f"kestra-ops config restore --env {env.name} {Path(result.backup or '').name}"
    try:
        with rec.step(f"restore configmap {CONFIGMAP} from {result.backup}"):
            restored = _replace(kube, env, written, live["data"], live.get("binaryData"),
                                conflict=f"configmap {CONFIGMAP} changed again meanwhile")
    except OperationFailed as err:
        return f"could NOT restore {CONFIGMAP} ({err}); restore it with: {how}"
    after = restored["metadata"].get("resourceVersion")
    log_change(env.root, action="configmap.restore", env=env.name,
               target=f"configmap {env.namespace}/{CONFIGMAP}",
               before=result.resource_version_after, after=after, backup=result.backup,
               reason="automatic: the rollout failed")
    result.resource_version_after = after
    result.auto_restored = True
    outcome = f"restored {CONFIGMAP} from {result.backup}"
    try:
        _restart(rec, kube, env, timeout, None, "automatic restore")
    except OperationFailed as err:
        return f"{outcome}; the restart on the restored configuration failed too: {err}"
    return f"{outcome}; deployment {DEPLOYMENT} is ready again on it"


def _replace(kube, env: Environment, current: dict, data: dict, binary: dict | None, *,
             conflict: str) -> dict:
    """Replace the ConfigMap's data, guarded by ``current``'s resourceVersion."""
    metadata = {k: v for k, v in current["metadata"].items() if k != "managedFields"}
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": dict(data)}
    if binary:
        body["binaryData"] = dict(binary)
    try:
        return kube_config.replace_configmap(kube, env.namespace, CONFIGMAP, body)
    except Conflict:
        raise Conflict(conflict, hint=f"inspect it with: kubectl -n {env.namespace} get "
                                      f"configmap {CONFIGMAP} -o yaml") from None


def _read(kube, env: Environment) -> dict:
    live = kube_config.read_configmap(kube, env.namespace, CONFIGMAP)
    if not isinstance((live.get("data") or {}).get(DATA_KEY), str):
        raise NotFound(f"configmap {CONFIGMAP} in {env.namespace} has no {DATA_KEY}")
    return live


read_configmap = _read  # the live ConfigMap kestra-config (backup run stores it)


def _deployment(kube, env: Environment, *, required: bool) -> tuple[int | None, str | None]:
    """(the pod grace period, for the grace-period rule; the Deployment's resourceVersion)."""
    try:
        dep = kube_config.read_deployment(kube, env.namespace, DEPLOYMENT)
    except NotFound:
        if required:
            raise NotFound(f"deployment {DEPLOYMENT} not found in {env.namespace}: nothing to "
                           "restart; nothing was changed",
                           hint="--no-restart patches the ConfigMap only") from None
        return None, None
    spec = ((dep.get("spec") or {}).get("template") or {}).get("spec") or {}
    return spec.get("terminationGracePeriodSeconds"), dep["metadata"].get("resourceVersion")


def _overlay(env: Environment) -> Path:
    if not env.values_paths:
        raise InvalidInput(f"environment {env.name!r} has no values layers to persist into")
    path = env.values_paths[-1]
    if not path.is_file():
        raise InvalidInput(f"{path}: the values overlay does not exist")
    return path


def _overlay_name(env: Environment) -> str:
    if not env.values_paths:
        return "the values"
    return backups.relative(env.values_paths[-1], env.root)


def _drift_warning(env: Environment, app_plain: dict) -> list[str]:
    from kestra_ops.values.merge import load_layers

    try:
        keys = drift(load_layers(env.values_paths).plain, app_plain)
    except InvalidInput as err:
        return [f"cannot compare the values with the ConfigMap: {err}"]
    if not keys:
        return []
    shown = ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")
    return [f"the values still render a different {DATA_KEY} than the live one at: {shown}"]


def _connect(env: Environment):
    from kestra_ops.wiring import kube

    return kube(env)
