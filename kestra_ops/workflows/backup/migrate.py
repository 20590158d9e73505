"""``backup migrate-location``: move the sets of the legacy location (``backups/<env>/`` in
Kestra's bucket) to the backup destination (backup.bucket; :mod:`.locations`).

For each COMPLETE legacy set (incomplete ones are left alone and listed):

1. already complete at the destination (a rerun, or taken twice): not copied again -- so a
   migration interrupted anywhere is resumed by running it again;
2. otherwise every object of the set is copied except ``manifest.json``; then each artefact at
   the destination is read back and its size and sha256 compared with the legacy manifest (other
   objects: their size); only then is ``manifest.json`` copied, LAST. A copy interrupted (Ctrl-C,
   an error) leaves at most a set without a manifest at the destination: incomplete, never
   listed as usable, overwritten by the next run;
3. with ``delete_source``, and only once the destination's copy is verified (step 2, or for a
   set already there: the same artefacts in both manifests and the destination's sha256 read
   back), the legacy copy is deleted, manifest first (:func:`sets.delete_set`), and logged.

Reading uses Kestra's key (the legacy place), writing the backup key (the operator's: it must
be allowed to write; deleting the source needs Kestra's key to delete, which it may). The
report (JSON: env, source, destination, dry_run, sets: [{name, action, size}], copied,
deleted, skipped) exits 1 when a set fails to copy or verify.
"""

from __future__ import annotations

import hashlib

from kestra_ops.errors import Aborted, ConfigError, KestraOpsError, OperationFailed
from kestra_ops.results import FAIL, PASS, Recorder, Report, Table
from kestra_ops.workflows.backup import locations
from kestra_ops.workflows.backup import sets as bs

PART_SIZE = 8 * 1024 * 1024


def stream_copy(src: "locations.Place", dst: "locations.Place", key: str,
                part_size: int = PART_SIZE) -> int:
    """Copy ``key`` from ``src`` to ``dst`` through this process (``Storage.put_stream``: one
    PUT for a small object, else a multipart upload of ``part_size`` parts, aborted on any
    failure, Ctrl-C included). Returns the bytes copied.

    :class:`ServerSideFirst` (the default ``copy``) uses a server-side copy instead when it
    can."""
    return dst.storage.put_stream(dst.bucket, key, src.storage.iter_object(src.bucket, key),
                                  part_size=part_size).size


class ServerSideFirst:
    """The default ``copy``: a server-side CopyObject (``Storage.copy_object``, signed with the
    destination's key: no bytes through this process) when both places are on one endpoint;
    once the destination's key is refused the source (the backup key may not read Kestra's
    bucket, as it should not), every later object is streamed (:func:`stream_copy`)."""

    def __init__(self):
        self.server_side = True

    def __call__(self, src, dst, key: str) -> None:
        from kestra_ops.errors import PermissionDenied

        if self.server_side and src.storage.same_endpoint(dst.storage):
            try:
                dst.storage.copy_object(src.bucket, key, dst.bucket, key)
                return
            except PermissionDenied:
                self.server_side = False
        stream_copy(src, dst, key)


def _sha256(place, key: str) -> tuple[int, str]:
    sha, size = hashlib.sha256(), 0
    for chunk in place.storage.iter_object(place.bucket, key):
        sha.update(chunk)
        size += len(chunk)
    return size, sha.hexdigest()


def _verify(dst, env: str, name: str, manifest: dict, sizes: dict[str, int]) -> None:
    """The destination's copy of set ``name`` matches: each manifest artefact's size and sha256,
    each other object's size (``sizes``: key -> size at the source). Raises OperationFailed."""
    prefix = bs.set_prefix(env, name)
    listed = {o.name: o.size for o in dst.storage.list_objects(dst.bucket, prefix)}
    for key, size in sizes.items():
        artefact = key[len(prefix):]
        expected = manifest["artefacts"].get(artefact)
        if key not in listed:
            raise OperationFailed(f"set {name}: {artefact} missing at the destination after "
                                  "the copy")
        if expected is None:
            if listed[key] != size:
                raise OperationFailed(f"set {name}: {artefact}: {listed[key]} bytes at the "
                                      f"destination, {size} at the source")
            continue
        got_size, got_sha = _sha256(dst, key)
        if got_size != expected.get("size") or got_sha != expected.get("sha256"):
            raise OperationFailed(f"set {name}: {artefact} at the destination does not match "
                                  "the manifest (size or sha256)")


def migrate_location(env, *, dry_run: bool = False, delete_source: bool = False,
                     confirm=None, progress=None, copy=None, environ=None) -> Report:
    """See the module doc. ``confirm(what)`` is asked once, before the first write; ``copy(src,
    dst, key)`` copies one object between the places (default :class:`ServerSideFirst`)."""
    copy = copy or ServerSideFirst()
    dst = locations.destination(env, environ=environ)
    src, why = locations.legacy(env, environ=environ)
    if src is None:
        raise ConfigError(f"backup migrate-location for {env.name}: {why}; nothing to migrate")
    if not dst.storage.bucket_exists(dst.bucket):
        raise OperationFailed(f"backup bucket {dst.bucket} does not exist at {dst.storage.url}; "
                              "nothing was copied",
                              hint=f"create it with: kestra-ops minio setup --env {env.name}")
    legacy_sets = locations.list_place(src, env.name)
    there = {s.name: s for s in locations.list_place(dst, env.name) if s.complete}
    plan = []
    for s in sorted(legacy_sets, key=lambda s: s.name):
        action = ("skip: incomplete" if not s.complete else
                  "already at the destination" if s.name in there else "copy")
        plan.append((s, action))
    report = Report("backup migrate-location", env.name,
                    title=f"backup migrate-location {env.name}: {src.where(env.name)} -> "
                          f"{dst.where(env.name)}",
                    data={"env": env.name, "source": src.where(env.name),
                          "destination": dst.where(env.name), "dry_run": dry_run,
                          "delete_source": delete_source,
                          "sets": [{"name": s.name, "action": a, "size": s.size}
                                   for s, a in plan],
                          "copied": [], "deleted": [], "skipped": []})
    if dst.warning:
        report.warnings.append(dst.warning)
    if plan:
        report.tables.append(Table(["SET", "ACTION", "SIZE"], [
            [s.name, a, f"{s.size / 1e6:.1f}MB"] for s, a in plan]))
    report.data["skipped"] = [s.name for s, a in plan if a.startswith("skip")]
    todo = [(s, a) for s, a in plan if not a.startswith("skip")]
    if dry_run or not todo or not any(a == "copy" for _s, a in todo) and not delete_source:
        report.outcome = "planned" if dry_run else "nothing to do"
        copies = sum(1 for _s, a in todo if a == "copy")
        report.message = (f"migrate-location {env.name}: {copies} set(s) to copy, "
                          f"{len(todo) - copies} already at the destination"
                          + (" (dry run)" if dry_run else ""))
        return report
    what = (f"copy {sum(1 for _s, a in todo if a == 'copy')} backup set(s) of {env.name} to "
            f"{dst.where(env.name)}" + (" and delete the legacy copies once verified"
                                       if delete_source else ""))
    if confirm is not None and not confirm(what):
        raise Aborted("migrate-location declined; nothing changed")
    rec = Recorder(report, progress)
    for s, action in todo:
        try:
            _one(env, rec, src, dst, s, action, copy=copy, delete_source=delete_source)
        except KestraOpsError:
            continue  # recorded as the step's failure; the next set is independent
    failed = [st for st in report.steps if st.status == FAIL]
    report.status = FAIL if failed else PASS
    report.exit_code = 1 if failed else 0
    report.outcome = "failed" if failed else "migrated"
    report.message = (f"migrate-location {env.name}: {len(report.data['copied'])} copied, "
                      f"{len(report.data['deleted'])} legacy cop(y/ies) deleted"
                      + (f", {len(failed)} FAILED" if failed else ""))
    return report


def _one(env, rec, src, dst, s: bs.BackupSet, action: str, *, copy, delete_source) -> None:
    from kestra_ops.audit import log_change

    prefix = bs.set_prefix(env.name, s.name)
    manifest_key = prefix + bs.MANIFEST
    sizes = {o.name: o.size for o in src.storage.list_objects(src.bucket, prefix)
             if o.name != manifest_key}
    if action == "copy":
        with rec.step(f"copy {s.name}") as step:
            for key in sorted(sizes):
                copy(src, dst, key)
            _verify(dst, env.name, s.name, s.manifest, sizes)
            copy(src, dst, manifest_key)  # LAST: only now is the set complete there
            if bs.read_small(dst.storage, dst.bucket, manifest_key) != \
                    bs.read_small(src.storage, src.bucket, manifest_key):
                step.fail(f"{bs.MANIFEST} differs after the copy")
                raise OperationFailed(f"set {s.name}: manifest differs after the copy")
            step.detail = f"{len(sizes) + 1} object(s), sha256 verified"
        rec.report.data["copied"].append(s.name)
    if not delete_source:
        return
    with rec.step(f"delete legacy {s.name}") as step:
        if action != "copy":  # already there: check that copy before deleting this one
            theirs = bs.read_manifest(dst.storage, dst.bucket, env.name, s.name)
            if theirs.get("artefacts") != s.manifest.get("artefacts"):
                step.fail("the destination's set differs from the legacy one: legacy kept")
                raise OperationFailed(f"set {s.name}: the copies differ")
            _verify(dst, env.name, s.name, s.manifest,
                    {k: v for k, v in sizes.items()
                     if k[len(prefix):] in s.manifest["artefacts"]})
        count = bs.delete_set(src.storage, src.bucket, env.name, s.name)
        step.detail = f"{count} object(s) deleted from {src.where(env.name)}"
    rec.report.data["deleted"].append(s.name)
    log_change(env.root, action="backup migrate-location", env=env.name,
               target=f"s3://{src.bucket}/{prefix}", before=count, after=0,
               copy=f"s3://{dst.bucket}/{prefix}")
