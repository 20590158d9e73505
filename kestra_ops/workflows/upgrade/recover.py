"""Back to the pre-upgrade state after a failure past an irreversible point: NOT ``helm rollback``
alone (the previous image cannot run on a database the new version migrated; Kestra's upgrade
guides: restore a backup, then start the older version). In order:

1. Kestra stopped with the env's values as they were before the upgrade (the previous image,
   0 replicas: nothing runs on the migrated database);
2. the failed upgrade's database kept as a backup set of its own (nothing is lost: executions
   that ran on the new version are in it); a failure here is a warning, the restore goes on;
3. the database reset and restored from the pre-upgrade backup set (the backup's disaster
   recovery path: :func:`kestra_ops.workflows.backup.restore_in_place.restore_in_place`);
4. Kestra started again with the pre-upgrade values (helm upgrade --wait);
5. the checklist.

Storage objects are left as they are: the versions in the catalogue keep reading what 1.x wrote
(https://kestra.io/docs/migration-guide/v2.0.0/ion-binary-format); files the new version
wrote after the upgrade may not be readable by the previous one (the report says so).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from kestra_ops.errors import KestraOpsError, OperationFailed


def install(env, helm, *, timeout: str, replicas: int | None = None, kube=None) -> str:
    """helm upgrade --install --wait with the env's values layers (and ``replicas`` on top).
    With ``replicas=0`` and ``kube``: then waits until Kestra's pods are gone (helm's wait
    ends when the Deployment is scaled; a pod finishing its running tasks takes up to its
    termination grace period), so nothing of the stopped version still uses the database."""
    import yaml

    from kestra_ops import durations
    from kestra_ops.fileio import write_private

    files = [Path(p) for p in env.values_paths]
    with tempfile.TemporaryDirectory(prefix="kestra-ops-upgrade-") as tmp:
        if replicas is not None:
            files.append(write_private(Path(tmp) / "replicas.yaml", yaml.safe_dump(
                {"standalone": {"replicas": replicas}})))
        revision = helm.upgrade_install(env.release, env.chart_path, env.namespace, files,
                                        timeout=timeout, wait=True, rollback_on_failure=False)
    done = f"revision {revision.revision} ({revision.status})"
    if replicas == 0 and kube is not None:
        left = wait_gone(kube, env, durations.parse(timeout))
        if left:
            raise OperationFailed(f"Kestra's pods still run after {timeout}: {', '.join(left)}",
                                  hint="they finish their running tasks first "
                                       "(terminationGracePeriodSeconds); try again later")
        done += ", every Kestra pod gone"
    return done


def wait_gone(kube, env, seconds: float, every: float = 1.0) -> list[str]:
    """Wait until no Kestra server pod of the release exists; the names still there after
    ``seconds`` ([] when gone)."""
    import time

    from kestra_ops.adapters.kube_read import KubeReader

    selector = (f"app.kubernetes.io/component=standalone,"
                f"app.kubernetes.io/instance={env.release}")
    deadline = time.monotonic() + seconds
    while True:
        pods = KubeReader(kube).pods(env.namespace, label_selector=selector)
        names = [p["metadata"]["name"] for p in pods]
        if not names or time.monotonic() >= deadline:
            return names
        time.sleep(every)


def version_mismatch(env, manifest: dict | None) -> str | None:
    """Why the env's values cannot be started on the set's database: the set records the Kestra
    version (or image) it was taken from, and the values name another version (starting a newer
    Kestra on the restored database would migrate it again). None when they agree or either
    is unknown."""
    from kestra_ops.upgrades.version import try_parse
    from kestra_ops.values.merge import load_layers
    from kestra_ops.workflows.upgrade.gates import set_version

    taken = set_version(manifest)
    tag = ((load_layers(env.values_paths, [], fast=True).plain or {}).get("image") or {}).get(
        "tag")
    named = try_parse(tag)
    if taken is None or named is None or taken == named:
        return None
    return (f"the set was taken from Kestra {taken} but {env.name}'s values name {tag}: set "
            f"image.tag back to v{taken} first (a newer Kestra would migrate the restored "
            "database again)")


def restore_pre_upgrade(env, rec, set_name: str, *, helm, kube, timeout: str,
                        check_seconds: float, database_url: str | None = None,
                        keep_failed: bool = True, kestra_url: str | None = None,
                        insecure: bool = False, storage=None) -> tuple[list[str], str | None,
                                                                        dict | None]:
    """Steps 1-5 (see the module doc) for ``set_name``, with the env's values already put back.
    Returns (what was done, the failed state's set name, the check's dict). Raises on a
    failure of steps 1, 3 or 4, naming what is left and the command that finishes it."""
    from kestra_ops.credentials import database_url as resolve
    from kestra_ops.workflows.backup.locations import find_set

    done: list[str] = []
    url = resolve(database_url)
    place, s = find_set(env, set_name, storage=storage)
    if "db" not in s.included:
        raise OperationFailed(f"backup set {s.name} holds no database: cannot restore")
    with rec.step("stop Kestra with the previous version (0 replicas)") as step:
        step.detail = install(env, helm, timeout=timeout, replicas=0, kube=kube)
        done.append(f"Kestra stopped with the previous version: {step.detail}")
    failed_set = None
    if keep_failed:
        with rec.step("keep the failed upgrade's database as a backup set") as step:
            try:
                from kestra_ops.workflows.backup.run import run_backup

                failed_set = run_backup(env, what=("db",), storage=storage).name
                step.detail = f"set {failed_set}"
                done.append(f"the failed upgrade's database kept as set {failed_set}")
            except KestraOpsError as err:
                step.warn(f"not kept: {err}")
                done.append(f"the failed upgrade's database could NOT be kept: {err}")
    with rec.step(f"restore the database from backup set {s.name}") as step:
        from kestra_ops.workflows.backup.restore_in_place import restore_in_place

        step.detail = restore_in_place(place.storage, place.bucket, env.name, s, url, rec=rec)
        done.append(step.detail)
    with rec.step("start Kestra with the previous version") as step:
        step.detail = install(env, helm, timeout=timeout)
        done.append(f"Kestra started with the previous version: {step.detail}")
    check = None
    with rec.step(f"check after the restore (wait {check_seconds:g}s)") as step:
        from kestra_ops.workflows.check import run_check

        checked = run_check(env, wait=check_seconds, timeout=max(min(check_seconds, 60.0), 10.0),
                            kestra_url=kestra_url, insecure=insecure, progress=rec, kube=kube)
        check = checked.to_dict()
        step.detail = "every item passed" if checked.ok else "still failing: " + ", ".join(
            i.id for i in checked.items if not i.ok)
        if not checked.ok:
            step.fail()
    done.append(f"check after the restore: {step.detail}")
    return done, failed_set, check


def upgrade_restore(env, set_name: str, *, timeout: str = "10m", check_timeout: str = "5m",
                    database_url: str | None = None, kestra_url: str | None = None,
                    insecure: bool = False, progress=None, kube=None, helm=None, storage=None,
                    confirm=None):
    """``upgrade restore``: steps 1-5 on their own, under the deploy lock, for an upgrade left
    stopped past an irreversible point (Ctrl-C, a failed restore). The env's values must name
    the version to go back to (``upgrade run`` puts its overlay back on any failure)."""
    import time

    from kestra_ops import durations, wiring
    from kestra_ops.errors import Aborted, InvalidInput
    from kestra_ops.results import Recorder
    from kestra_ops.workflows.deploy.lock import recorded_lock
    from kestra_ops.workflows.release.report import stamp
    from kestra_ops.workflows.upgrade.report import UpgradeReport, store

    check_seconds = durations.parse(check_timeout)
    durations.parse(timeout)
    report = UpgradeReport(env.name, stamp())
    report.result.command = "upgrade restore"
    report.backup_set = set_name
    rec = Recorder(report.result, progress)
    started = time.perf_counter()
    own = kube is None
    try:
        kube = kube or wiring.kube(env)
        helm = wiring.helm(env, helm=helm)
        from kestra_ops.workflows.backup.restore import verify

        with rec.step(f"verify backup set {set_name} before anything changes") as step:
            checked = verify(env, set_name, storage=storage)
            step.detail = checked.message
            if not checked.ok:
                step.fail()
                raise OperationFailed(f"backup set {set_name} does not pass verify: nothing "
                                      "was changed")
            from kestra_ops.workflows.backup.locations import find_set

            why = version_mismatch(env, find_set(env, set_name, storage=storage)[1].manifest)
            if why:
                step.fail(why)
                raise InvalidInput(f"{why}; nothing was changed")
        if confirm is not None and not confirm(
                f"restore {env.name}'s database from backup set {set_name} and start the "
                "version its values name?", []):
            raise Aborted("restore declined; nothing changed")
        with recorded_lock(kube, env.namespace, "upgrade restore", rec, report.warnings):
            report.restore, report.failed_state_set, report.check = restore_pre_upgrade(
                env, rec, set_name, helm=helm, kube=kube, timeout=timeout,
                check_seconds=check_seconds, database_url=database_url,
                kestra_url=kestra_url, insecure=insecure, storage=storage)
        ok = report.check and report.check.get("exit_code") == 0
        report.outcome = "recovered" if ok else "restored"
        report.message = (f"restored backup set {set_name}; the check "
                          f"{'passes' if ok else 'still FAILS'}")
    except KeyboardInterrupt:
        report.outcome, report.message = "interrupted", f"interrupted at {rec.current}"
    except InvalidInput as err:
        report.outcome, report.message = "refused", str(err)
    except Aborted as err:
        report.outcome, report.message = "aborted", str(err)
    except KestraOpsError as err:
        report.outcome = "failed"
        report.message = f"failed at {rec.current or 'the start'}: {err}"
    finally:
        if own and kube is not None:
            kube.close()
        report.seconds = time.perf_counter() - started
    result = report.to_report()
    result.command = "upgrade restore"
    result.title = f"upgrade restore {env.name} from backup set {set_name}, {report.started}"
    result.message = f"upgrade restore {env.name}: {report.message}"
    store(result, env, report.started, storage=storage)
    return result
