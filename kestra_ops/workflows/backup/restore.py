"""``backup verify`` and ``backup restore`` (layout: backup_set; the drill: backup/drill.py).

Every artefact is read back as a stream (sha256 and size checked against the manifest, never a
temp file). The dump goes object -> zstd decompress -> ``pg_restore`` on stdin: ``--list`` for
verify, ``--no-owner --single-transaction [--clean --if-exists] -d URL`` for restore (so a
failed restore leaves the target as it was). A non-empty target is refused without ``clean``.

Everything a restore needs is read and checked before the confirmation and before any write:
the target database empty (or ``clean``); ``flows.zip`` holding only flow files that pass the
offline rules of ``flows validate`` (:func:`kestra_ops.workflows.flows.local.validate_local`,
the environment's plugin blacklist included), else nothing is restored (exit 1, the findings
shown); the ConfigMap read. ``config`` takes the deploy lock (the Lease deploy takes) before the
first write, so a restore cannot interleave with a deploy. A set dated in the future is
restored only when named (never as ``latest``), with a warning; verify flags it.
Each returns a :class:`kestra_ops.results.Report` (JSON: env, set, ok, artefacts, toc_entries,
details, future), exit 1 when something does not match.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
import threading
import zipfile
from contextlib import nullcontext
from pathlib import Path

from kestra_ops import chart
from kestra_ops.adapters import postgres as pg
from kestra_ops.errors import Aborted, Conflict, InvalidInput, NotFound, OperationFailed
from kestra_ops.results import FAIL, PASS, WARN, Item, Recorder, Report, Section, worst
from kestra_ops.workflows.backup import sets as bs
from kestra_ops.workflows.backup.locations import find_set

READ_SIZE = 1024 * 1024


def _stream_to(storage, bucket: str, key: str, expected: dict, sink, *, decompress: bool
               ) -> tuple[bool, str]:
    """Feed an object (decompressed when asked) into ``sink(bytes)``; check size and sha256.
    ``sink`` returning False stops feeding (the reader left) but hashing goes on."""
    import zstandard

    sha, size, feeding = hashlib.sha256(), 0, True
    dobj = zstandard.ZstdDecompressor().decompressobj() if decompress else None
    for data in storage.iter_object(bucket, key, READ_SIZE):
        sha.update(data)
        size += len(data)
        if feeding:
            try:
                feeding = sink(dobj.decompress(data) if dobj else data) is not False
            except zstandard.ZstdError as err:
                return False, f"not a valid zstd stream: {err}"
    if size != expected.get("size"):
        return False, f"size {size} != manifest {expected.get('size')}"
    if sha.hexdigest() != expected.get("sha256"):
        return False, "sha256 differs from the manifest"
    return True, f"{size} bytes, sha256 ok"


def _pipe_sink(child: pg.Child):
    def sink(data: bytes):
        if not data:
            return True
        try:
            child.proc.stdin.write(data)
            return True
        except (BrokenPipeError, ValueError):
            return False
    return sink


def report_for(command: str, env, s: bs.BackupSet) -> Report:
    report = Report(command, env.name, title=f"{command} {env.name} {s.name}",
                    data={"env": env.name, "set": s.name, "ok": True, "artefacts": {},
                          "toc_entries": 0, "future": s.future, "location": s.location})
    if s.location != "backup":
        report.details.append(f"set {s.name} is in the {s.location} location (Kestra's own "
                              "bucket)")
    if s.future:
        report.warnings.append(bs.future_warning(s))
    return report


def finish(report: Report, verdict: str | None = None) -> Report:
    ok = report.data["ok"] and all(s.status != FAIL for s in report.steps)
    report.data["ok"] = ok
    report.exit_code = 0 if ok else 1
    report.status = worst([s.status for s in report.steps] + [i.status for i in report.items]
                          + [PASS if ok else FAIL])
    report.outcome = "ok" if ok else "failed"
    report.message = (f"{report.command.split()[-1]} {report.env} {report.data['set']}: "
                      f"{'ok' if ok else verdict or 'FAILED'}")
    return report


def verify(env, name: str, *, storage=None, toc: bool = False, identity=None) -> Report:
    """Re-read every artefact of set ``name`` (or ``latest``); ``toc`` shows the dump's table of
    contents; ``identity`` (an age identity file) opens secrets.age in memory."""
    from kestra_ops.workflows.backup import sealed

    place, s = find_set(env, name, storage=storage)  # the destination, or the legacy location
    storage, bucket = place.storage, place.bucket
    report = report_for("backup verify", env, s)
    identities = sealed.identities_for(report, identity)
    if s.future:
        report.items.append(Item("date", WARN, bs.future_warning(s)))
    lines: list[str] = []
    for artefact, expected in sorted(s.manifest["artefacts"].items()):
        key = bs.key(env.name, s.name, artefact)
        if artefact not in s.objects:
            ok, detail = False, "missing from the bucket"
        elif artefact == bs.DB:
            ok, detail = verify_dump(storage, bucket, key, expected, lines)
        elif artefact == bs.SECRETS:
            ok, detail = sealed.verify_artefact(storage, bucket, env.name, s, identities,
                                                identity)
        else:
            ok, detail = _stream_to(storage, bucket, key, expected, lambda d: True,
                                    decompress=False)
        report.data["artefacts"][artefact] = {"ok": ok, "detail": detail}
        report.items.append(Item(artefact, PASS if ok else FAIL, detail))
        report.data["ok"] &= ok
    unsealed, broken = sealed.unsealed_warning(s), sealed.manifest_problem(s)
    if unsealed:
        report.items.append(Item("secrets", WARN, unsealed))
        report.warnings.append(unsealed)
    if broken:
        report.items.append(Item("secrets", FAIL, broken))
        report.data["ok"] = False
    if "storage" in s.manifest:  # manifest version 2 (workflows/backup/storage_set.py)
        from kestra_ops.workflows.backup import storage_set

        storage_set.verify_into(report, storage, bucket, env.name, s)
    report.data["toc_entries"] = len(lines)
    if toc:
        report.data["toc"] = lines
        report.sections.append(Section(f"{bs.DB}: table of contents", lines))
    bad = report.data["artefacts"].get(bs.SECRETS, {})
    return finish(report, None if bad.get("ok", True) else f"FAILED: {bs.SECRETS}: "
                  f"{bad['detail']}")


def verify_dump(storage, bucket, key, expected, toc: list[str]) -> tuple[bool, str]:
    child = pg.list_toc()
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(child.proc.stdout), daemon=True)
    reader.start()
    try:
        ok, detail = _stream_to(storage, bucket, key, expected, _pipe_sink(child),
                                decompress=True)
    finally:
        try:
            child.proc.stdin.close()
        except BrokenPipeError:
            pass
    code = child.wait(600)
    reader.join(60)
    toc[:] = [ln.decode("utf-8", "replace").rstrip() for ln in lines
              if ln.strip() and not ln.startswith(b";")]
    if code != 0:
        return False, child.failure(code)
    if ok:
        detail += f", {len(toc)} table-of-contents entries"
    return ok, detail


def restore(env, name: str, *, to_database: str | None, clean: bool = False,
            flows: bool = False, config: bool = False, confirm=None, progress=None,
            storage=None, kestra=None, kube=None, identity=None) -> Report:
    """Restore a set's database into ``to_database`` (and flows / the ConfigMap when asked).
    ``confirm(what)`` is asked once the set and its artefacts are known and checked, before any
    change (see the module doc). ``identity`` (an age identity file): the set's sealed
    Secrets must open with it, checked before any change (not applied here)."""
    from kestra_ops.workflows.backup import sealed

    if to_database is None and not (flows or config):
        raise InvalidInput("nothing to restore: give --to-database, --flows or --config")
    place, s = find_set(env, name, storage=storage)  # the destination, or the legacy location
    storage, bucket = place.storage, place.bucket
    report = report_for("backup restore", env, s)
    sealed.check_identity(report, storage, bucket, env.name, s, identity)
    rec = Recorder(report, progress)
    arts = s.manifest["artefacts"]
    for wanted, artefact in ((to_database, bs.DB), (flows, bs.FLOWS), (config, bs.CONFIGMAP)):
        if wanted and artefact not in arts:
            raise NotFound(f"backup set {s.name} has no {artefact} (it included "
                           f"{', '.join(s.included) or 'nothing'})")
    url = None
    if to_database is not None:
        url = pg.DatabaseURL.parse(to_database) if isinstance(to_database, str) else to_database
        if not clean and not pg.is_empty(url):
            raise Conflict(f"database {url.dbname!r} at {url} is not empty: refusing to restore "
                           "into it", hint="pass --clean to drop and replace its objects")
    flows_zip = _read_checked(storage, bucket, env.name, s, bs.FLOWS) if flows else None
    if flows_zip is not None:
        with rec.step(f"check {bs.FLOWS} like flows validate") as step:
            found = check_flows(env, flows_zip, where=f"s3://{bucket}/"
                                f"{bs.key(env.name, s.name, bs.FLOWS)}")
            step.detail = "; ".join(found.layers + [f"{found.errors} error(s)",
                                                    f"{found.warnings} warning(s)"])
            report.findings.append(found)
            if found.errors or found.unreadable:
                step.fail()
        if found.errors or found.unreadable:
            return _refused_flows(report, s, found)
    config_yaml = _read_checked(storage, bucket, env.name, s, bs.CONFIGMAP) if config else None
    parts = [w for w, on in (("database", url), ("flows", flows), ("config", config)) if on]
    if confirm is not None and not confirm(f"restore {', '.join(parts)} of {env.name} from "
                                           f"{s.name}"):
        raise Aborted("restore declined; nothing changed")
    if config and kube is None:
        from kestra_ops.wiring import kube as connect

        kube = connect(env)
    with _config_lock(kube, env) if config else nullcontext() as lock:
        if url is not None:
            with rec.step(f"database {s.name} -> {url}") as step:
                step.detail = restore_db(storage, bucket, env.name, s, url, clean=clean)
                report.details.append(step.detail)
        if flows_zip is not None:
            _restore_flows(env, rec, flows_zip, kestra, kube)
        if config_yaml is not None:
            _restore_config(env, rec, s, config_yaml, kube, lock)
    return finish(report)


def _config_lock(kube, env):
    """The deploy lock (the Lease deploy and rollback take), held from before the first write
    until the last; config restore gets it as its ``lock``."""
    from kestra_ops.workflows.deploy.lock import deploy_lock

    return deploy_lock(kube, env, operation="backup restore")


def check_flows(env, data: bytes, *, where: str):
    """``flows.zip``'s flows checked as ``flows validate`` checks them offline (the env's
    blacklist included): a :class:`kestra_ops.values.findings.Report` naming ``where``. An
    entry that is not a flow file (``*.yml``/``*.yaml``) is an error: Kestra would import it
    unchecked."""
    from kestra_ops.values.findings import Finding
    from kestra_ops.workflows.flows.local import FLOW_SUFFIXES, validate_local
    from kestra_ops.yamlio import Location

    with tempfile.TemporaryDirectory(prefix="kestra-ops-restore-") as tmp:
        path = Path(tmp) / "flows.zip"
        path.write_bytes(data)
        path.chmod(0o600)
        shown = str(path)
        try:
            with zipfile.ZipFile(path) as zf:
                strays = [i.filename for i in zf.infolist()
                          if not i.is_dir() and not i.filename.lower().endswith(FLOW_SUFFIXES)]
        except (zipfile.BadZipFile, OSError):
            strays = []  # validate_local says it is not a readable ZIP archive
        try:
            found = validate_local(path, env).report
        except InvalidInput as err:
            raise InvalidInput(str(err).replace(shown, where), hint=err.hint) from None
    found.findings += [Finding("flows/not-a-flow-file", "error", f"{name}: not a flow file "
                               f"({'/'.join(FLOW_SUFFIXES)}); Kestra would import it unchecked",
                               "$", Location(f"{where}!{name}")) for name in strays]
    found.target = where
    found.findings = [dataclasses.replace(
        f, message=f.message.replace(shown, where),
        location=dataclasses.replace(f.location, file=f.location.file.replace(shown, where)))
        for f in found.findings]
    return found


def _refused_flows(report: Report, s: bs.BackupSet, found) -> Report:
    from kestra_ops.values.findings import exit_code

    report.data["ok"] = False
    finish(report)
    report.exit_code = exit_code([found])
    report.outcome = "refused"
    report.message = (f"restore {report.env} {s.name}: {bs.FLOWS} fails the flows rules "
                      f"({found.errors} error(s)): nothing restored")
    return report


def _restore_flows(env, rec: Recorder, data: bytes, kestra, kube) -> None:
    if kestra is None:
        from kestra_ops.wiring import client_for_env

        kestra = client_for_env(env, kube=kube)
    with rec.step("flows -> Kestra import") as step:
        failed = kestra.import_flows(data, "flows.zip")
        if failed:
            step.fail(f"flows not imported: {', '.join(failed)}")
        else:
            step.detail = "flows imported"
        rec.report.details.append(step.detail)


def _restore_config(env, rec: Recorder, s: bs.BackupSet, data: bytes, kube, lock) -> None:
    from kestra_ops.workflows.configmap.patch import restore_config

    with rec.step(f"configmap <- {s.name}") as step:
        with tempfile.TemporaryDirectory(prefix="kestra-ops-restore-") as tmp:
            path = Path(tmp) / f"{chart.CONFIGMAP}-{s.name}.yaml"
            path.write_bytes(data)
            path.chmod(0o600)
            done = restore_config(env, path, confirm=lambda shown: True,
                                  progress=rec.progress, kube=kube, lock=lock)
        backup, cm = done.data.get("backup"), done.data.get("configmap")
        if done.exit_code != 0:
            step.fail(f"configmap {cm}: {done.message}")
        elif backup:
            step.detail = (f"configmap {cm}: restored from {s.name} (the live one was backed "
                           f"up to {backup})")
        else:
            step.detail = f"configmap {cm}: already held this set's data"
        rec.report.details.append(step.detail)
        rec.report.warnings += done.warnings


def restore_db(storage, bucket: str, env: str, s: bs.BackupSet, url: pg.DatabaseURL, *,
               clean: bool) -> str:
    detail = feed_restore(storage, bucket, env, s, url, clean=clean)
    return f"database {url.dbname!r} restored from {s.name} ({detail})"


def feed_restore(storage, bucket: str, env: str, s: bs.BackupSet, url: pg.DatabaseURL, *,
                 clean: bool) -> str:
    """The set's dump -> ``pg_restore`` into ``url``; returns "N bytes, sha256 ok". The last
    :data:`HOLD_BACK` bytes reach pg_restore only once size and sha256 matched the manifest:
    before that it cannot reach the end of the archive, so it cannot commit; on a mismatch it
    is killed and its transaction rolls back (the target stays as it was)."""
    expected = s.manifest["artefacts"][bs.DB]
    major = pg.server_major(url)
    child = pg.restore(url, clean=clean, server_major_version=major)
    try:
        sink = _HeldBack(_pipe_sink(child))
        ok, detail = _stream_to(storage, bucket, bs.key(env, s.name, bs.DB), expected, sink,
                                decompress=True)
        if not ok:
            child.kill()
            raise OperationFailed(f"restore of {s.name}: {bs.DB}: {detail}; nothing restored")
        sink.flush()
        child.proc.stdin.close()
    except BrokenPipeError:
        pass  # pg_restore left early: its exit status says why
    except BaseException:
        child.kill()
        raise
    code = child.wait()
    if code != 0:
        raise OperationFailed(f"restore of {s.name} into {url.dbname!r}: {child.failure(code)}")
    return detail


HOLD_BACK = 64 * 1024


class _HeldBack:
    """A sink that passes on all but the last :data:`HOLD_BACK` bytes until :meth:`flush`."""

    def __init__(self, sink):
        self.sink, self.tail = sink, b""

    def __call__(self, data: bytes):
        if len(data) < HOLD_BACK:  # a small piece: join it to the tail (a small copy)
            data = self.tail + data
            self.tail, rest = data[-HOLD_BACK:], data[:-HOLD_BACK]
            return self.sink(rest) if rest else True
        tail, self.tail = self.tail, bytes(data[-HOLD_BACK:])
        if tail and self.sink(tail) is False:
            return False
        rest = memoryview(data)[:-HOLD_BACK]  # no copy of the large part
        return self.sink(rest) if len(rest) else True

    def flush(self) -> None:
        self.sink(self.tail)
        self.tail = b""


def _read_checked(storage, bucket, env, s: bs.BackupSet, artefact: str) -> bytes:
    data = bs.read_small(storage, bucket, bs.key(env, s.name, artefact))
    exp = s.manifest["artefacts"][artefact]
    if len(data) != exp.get("size") or hashlib.sha256(data).hexdigest() != exp.get("sha256"):
        raise OperationFailed(f"backup set {s.name}: {artefact} does not match its manifest")
    return data
