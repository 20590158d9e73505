"""The gates of an irreversible upgrade step (``upgrade run``), each an
:class:`~kestra_ops.results.Item` with its reason:

* ``backup``: a complete backup set of the environment, holding its database, taken within
  ``upgrade.backup_max_age`` (default 60m), that passes ``backup verify`` (every artefact read
  back against the manifest). ``take=True`` takes one (the full set ``backup run`` takes) and
  verifies it when there is none;
* ``requires``: the environment named by ``upgrade.requires`` (default: staging for
  production) runs the same target version now (its Kestra, else its Deployment's image), and
  its newest release or upgrade report naming that version ended well with a passing check.
  Reports are read from its bucket (``releases/<env>/``, ``upgrades/<env>/``) and from the
  local ``backups/releases|upgrades/<env>/`` folders.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from kestra_ops.errors import KestraOpsError
from kestra_ops.results import FAIL, PASS, Item
from kestra_ops.upgrades.version import Version, try_parse

GOOD = ("released", "upgraded")
MAX_REPORTS = 50  # newest reports read per place


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def set_version(manifest: dict | None) -> Version | None:
    """The Kestra version a backup set was taken from (its manifest's ``versions``: Kestra's
    own word, else the image tag); None when it did not record one."""
    from kestra_ops.workflows.upgrade.plan import image_version

    versions = (manifest or {}).get("versions") or {}
    return try_parse(versions.get("kestra")) or image_version(versions.get("image"))


def fresh_set(env, max_age: float, *, storage=None, now=None, running: Version | None = None):
    """(the newest complete set with the database, younger than ``max_age`` seconds and taken
    from the ``running`` version (when it recorded one), or None; why not)."""
    from kestra_ops.workflows.backup import sets as bs
    from kestra_ops.workflows.backup.locations import BACKUP, Place, list_all, list_place

    now = now or _now()
    if storage is not None:  # the destination's bucket through it (tests, as find_set does)
        found = list_place(Place(BACKUP, storage, env.backup_target[2]), env.name, now=now)
    else:
        found = list_all(env, now=now)[0]
    newest, other = None, None
    for s in found:
        if not bs.usable(s) or "db" not in s.included:
            continue
        taken = set_version(s.manifest)
        if running is not None and taken is not None and taken != running:
            other = other or (s, taken)  # a set of another version restores another version
            continue
        newest = newest or s
        if (now - s.time).total_seconds() <= max_age:
            return s, ""
    if newest is None:
        if other is not None:
            return None, (f"the newest complete set with the database, {other[0].name}, was "
                          f"taken from Kestra {other[1]}, not the running {running}")
        return None, "no complete backup set with the database"
    age = int((now - newest.time).total_seconds() // 60)
    return None, f"the newest complete set with the database, {newest.name}, is {age} min old"


def backup_gate(env, rec, *, max_age: float, take: bool, storage=None, kube=None,
                identity=None, running: Version | None = None) -> tuple[Item, str | None]:
    """(the gate's item, the set's name when it passes)."""
    from kestra_ops.workflows.backup.restore import verify

    with rec.step("gate: a fresh verified backup set") as step:
        s, why = fresh_set(env, max_age, storage=storage, running=running)
        name = s.name if s is not None else None
        if name is None and take:
            from kestra_ops.workflows.backup.run import run_backup

            rec.info(f"{why}: taking one now (--take-backup)")
            name = run_backup(env, storage=storage, kube=kube).name
        if name is None:
            step.fail(why)
            return Item("backup", FAIL, f"{why} (younger than {max_age / 60:g} min is needed)",
                        fix=f"kestra-ops backup run --env {env.name}, or upgrade run "
                            "--take-backup"), None
        checked = verify(env, name, storage=storage, identity=identity)
        if not checked.ok:
            step.fail(f"set {name} does not pass verify: {checked.message}")
            return Item("backup", FAIL, f"set {name} does not pass verify: {checked.message}",
                        fix=f"kestra-ops backup verify --env {env.name} {name}"), None
        step.detail = f"set {name} is complete and passes verify"
        return Item("backup", PASS, step.detail), name


def requires_gate(required, target: Version, *, kube=None, client=None, storage=None
                  ) -> Item:
    """``required``: the Environment that must run ``target`` first (None: no gate)."""
    if required is None:
        return Item("requires", PASS, "no environment is required first (upgrade.requires)")
    try:
        running = _running(required, kube=kube, client=client)
    except KestraOpsError as err:
        return Item("requires", FAIL, f"cannot read which version {required.name} runs: {err}",
                    fix=f"upgrade {required.name} to {target} first")
    if running != target:
        return Item("requires", FAIL, f"{required.name} runs Kestra {running}, not {target}: "
                    f"upgrade {required.name} first (upgrade.requires)",
                    fix=f"kestra-ops upgrade run --env {required.name} --to {target}")
    report, where = newest_report(required, target, storage=storage)
    if report is None:
        return Item("requires", FAIL, f"{required.name} runs {target}, but no release or "
                    f"upgrade report of it names {target} ({where})",
                    fix=f"kestra-ops release --env {required.name}")
    outcome, check = report.get("outcome"), _check_ok(report)
    if outcome not in GOOD or not check:
        return Item("requires", FAIL, f"{required.name}'s newest report for {target} "
                    f"({report.get('started')}) ended {outcome!r}"
                    f"{'' if check else ' without a passing check'}",
                    fix=f"fix {required.name} first, then kestra-ops release --env "
                        f"{required.name}")
    return Item("requires", PASS, f"{required.name} runs {target} with a passing check "
                f"({report.get('command')} {report.get('started')})")


def _running(env, *, kube=None, client=None) -> Version:
    from kestra_ops.workflows.upgrade.plan import running_version

    own = []
    try:
        if kube is None:
            from kestra_ops import wiring

            kube = wiring.kube(env)
            own.append(kube)
        if client is None:
            try:
                from kestra_ops.wiring import client_for_env

                client = client_for_env(env, kube=kube)
                own.append(client)
            except KestraOpsError:
                client = None  # the Deployment's image then says it
        return running_version(env, kube=kube, client=client).version
    finally:
        for thing in own:
            thing.close()


def _check_ok(report: dict) -> bool:
    check = report.get("check")
    if isinstance(check, dict):
        return check.get("exit_code") == 0 or check.get("status") in ("pass", "warn")
    return False


def report_version(report: dict) -> Version | None:
    """The Kestra version a stored release/upgrade report names (``to`` of an upgrade, the
    image tag of a release)."""
    from kestra_ops.workflows.upgrade.plan import image_version

    return try_parse(report.get("to")) or image_version(report.get("image"))


def newest_report(env, target: Version, *, storage=None) -> tuple[dict | None, str]:
    """The newest stored report of ``env`` naming ``target`` (bucket and local folders)."""
    found: list[dict] = []
    places = []
    for kind in ("releases", "upgrades"):
        folder = Path(env.root) / "backups" / kind / env.name
        places.append(str(folder))
        for path in sorted(folder.glob("*/report.json"), reverse=True)[:MAX_REPORTS]:
            try:
                found.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
    if storage is None:
        try:
            from kestra_ops.wiring import storage_for_env

            storage, _ = storage_for_env(env)
        except KestraOpsError:
            storage = None
    if storage is not None and env.minio_bucket:
        for kind in ("releases", "upgrades"):
            prefix = f"{kind}/{env.name}/"
            places.append(f"s3://{env.minio_bucket}/{prefix}")
            try:
                keys = sorted((e.name for e in storage.iter_entries(env.minio_bucket, prefix)
                               if e.name.endswith(".json")), reverse=True)[:MAX_REPORTS]
                for key in keys:
                    found.append(json.loads(storage.get_bytes(env.minio_bucket, key)))
            except (KestraOpsError, ValueError):
                continue
    mine = [r for r in found if isinstance(r, dict) and report_version(r) == target]
    mine.sort(key=lambda r: str(r.get("started") or ""), reverse=True)
    return (mine[0] if mine else None), "looked in " + ", ".join(places)
