"""``backup verify``, ``backup restore`` and ``backup drill`` (layout: backup_set).

Every artefact is read back as a stream (sha256 and size checked against the manifest, never a
temp file). The dump goes object -> zstd decompress -> ``pg_restore`` on stdin: ``--list`` for
verify, ``--no-owner --single-transaction [--clean --if-exists] -d URL`` for restore (so a
failed restore leaves the target as it was). A non-empty target is refused without ``clean``.
"""

from __future__ import annotations

import datetime
import hashlib
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from kestra_ops.adapters import postgres as pg
from kestra_ops.errors import Conflict, InvalidInput, NotFound, OperationFailed
from kestra_ops.workflows import backup_set as bs

READ_SIZE = 1024 * 1024


@dataclass
class Report:
    env: str
    name: str
    ok: bool = True
    artefacts: dict = field(default_factory=dict)   # artefact -> {"ok", "size", "detail"}
    toc: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    counts: dict = field(default_factory=dict)      # drill: table -> [source, restored]

    def to_dict(self) -> dict:
        return {"env": self.env, "set": self.name, "ok": self.ok, "artefacts": self.artefacts,
                "toc_entries": len(self.toc), "details": self.details,
                **({"counts": self.counts} if self.counts else {})}


def _chunks(storage, bucket: str, key: str):
    resp = storage.call(f"object {bucket}/{key}", storage.client.get_object, bucket, key)
    try:
        while True:
            data = storage.call(f"object {bucket}/{key}", resp.read, READ_SIZE)
            if not data:
                return
            yield data
    finally:
        resp.close()
        resp.release_conn()


def _stream_to(storage, bucket: str, key: str, expected: dict, sink, *, decompress: bool
               ) -> tuple[bool, str]:
    """Feed an object (decompressed when asked) into ``sink(bytes)``; check size and sha256.
    ``sink`` returning False stops feeding (the reader left) but hashing goes on."""
    import zstandard

    sha, size, feeding = hashlib.sha256(), 0, True
    dobj = zstandard.ZstdDecompressor().decompressobj() if decompress else None
    for data in _chunks(storage, bucket, key):
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


def verify(env, name: str, *, storage=None) -> Report:
    storage, bucket = (storage, env.minio_bucket) if storage else bs.storage_for(env)
    s = bs.get_set(storage, bucket, env.name, name)
    report = Report(env.name, s.name)
    for artefact, expected in sorted(s.manifest["artefacts"].items()):
        key = bs.key(env.name, s.name, artefact)
        if artefact not in s.objects:
            ok, detail = False, "missing from the bucket"
        elif artefact == bs.DB:
            ok, detail = _verify_dump(storage, bucket, key, expected, report)
        else:
            ok, detail = _stream_to(storage, bucket, key, expected, lambda d: True,
                                    decompress=False)
        report.artefacts[artefact] = {"ok": ok, "detail": detail}
        report.ok &= ok
    return report


def _verify_dump(storage, bucket, key, expected, report: Report) -> tuple[bool, str]:
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
    report.toc = [ln.decode("utf-8", "replace").rstrip() for ln in lines
                  if ln.strip() and not ln.startswith(b";")]
    if code != 0:
        return False, child.failure(code)
    if ok:
        detail += f", {len(report.toc)} table-of-contents entries"
    return ok, detail


def restore(env, name: str, *, to_database: str | None, clean: bool = False,
            flows: bool = False, config: bool = False, confirm=None, progress=None,
            storage=None, kestra=None, kube=None) -> Report:
    """Restore a set's database into ``to_database`` (and flows / the ConfigMap when asked)."""
    storage, bucket = (storage, env.minio_bucket) if storage else bs.storage_for(env)
    s = bs.get_set(storage, bucket, env.name, name)
    report = Report(env.name, s.name)
    arts = s.manifest["artefacts"]
    if to_database is None and not (flows or config):
        raise InvalidInput("nothing to restore: give --to-database, --flows or --config")
    for wanted, artefact in ((to_database, bs.DB), (flows, bs.FLOWS), (config, bs.CONFIGMAP)):
        if wanted and artefact not in arts:
            raise NotFound(f"backup set {s.name} has no {artefact} (it included "
                           f"{', '.join(s.included) or 'nothing'})")
    if to_database is not None:
        url = pg.DatabaseURL.parse(to_database) if isinstance(to_database, str) else to_database
        if not clean and not pg.is_empty(url):
            raise Conflict(f"database {url.dbname!r} at {url} is not empty: refusing to restore "
                           "into it", hint="pass --clean to drop and replace its objects")
        with _step(progress, f"database {s.name} -> {url}"):
            report.details.append(restore_db(storage, bucket, env.name, s, url, clean=clean))
    if flows:
        if kestra is None:
            from kestra_ops.adapters.kestra_api import client_for_env

            kestra = client_for_env(env, kube=kube)
        data = _read_checked(storage, bucket, env.name, s, bs.FLOWS)
        with _step(progress, "flows -> Kestra import"):
            failed = kestra.import_flows(data, "flows.zip")
        if failed:
            report.ok = False
            report.details.append(f"flows not imported: {', '.join(failed)}")
        else:
            report.details.append("flows imported")
    if config:
        from kestra_ops.workflows.configmap import restore_config

        data = _read_checked(storage, bucket, env.name, s, bs.CONFIGMAP)
        with tempfile.TemporaryDirectory(prefix="kestra-ops-restore-") as tmp:
            path = Path(tmp) / f"kestra-config-{s.name}.yaml"
            path.write_bytes(data)
            path.chmod(0o600)
            change = restore_config(env, path, confirm=confirm or (lambda *_: True),
                                    progress=progress, kube=kube)
        report.details.append(
            f"configmap {change.configmap}: restored from {s.name} (the live one was backed up "
            f"to {change.backup})" if change.backup else
            f"configmap {change.configmap}: already held this set's data")
    return report


def restore_db(storage, bucket: str, env: str, s: bs.BackupSet, url: pg.DatabaseURL, *,
               clean: bool) -> str:
    expected = s.manifest["artefacts"][bs.DB]
    major = pg.server_major(url)
    child = pg.restore(url, clean=clean, server_major_version=major)
    try:
        ok, detail = _stream_to(storage, bucket, bs.key(env, s.name, bs.DB), expected,
                                _pipe_sink(child), decompress=True)
        child.proc.stdin.close()
    except BaseException:
        child.kill()
        raise
    code = child.wait()
    if code != 0:
        raise OperationFailed(f"restore of {s.name} into {url.dbname!r}: {child.failure(code)}")
    if not ok:
        raise OperationFailed(f"restore of {s.name}: {bs.DB}: {detail}")
    return f"database {url.dbname!r} restored from {s.name} ({detail})"


def _read_checked(storage, bucket, env, s: bs.BackupSet, artefact: str) -> bytes:
    data = bs.read_small(storage, bucket, bs.key(env, s.name, artefact))
    exp = s.manifest["artefacts"][artefact]
    if len(data) != exp.get("size") or hashlib.sha256(data).hexdigest() != exp.get("sha256"):
        raise OperationFailed(f"backup set {s.name}: {artefact} does not match its manifest")
    return data


def drill(env, *, database_url: str | None = None, scratch_url: str | None = None,
          progress=None, storage=None) -> Report:
    """Restore the newest complete set with a database into a scratch database and compare
    per-table row counts with the source (exit 1 on any difference)."""
    storage, bucket = (storage, env.minio_bucket) if storage else bs.storage_for(env)
    source = pg.resolve_url(database_url)
    s = next((x for x in bs.list_sets(storage, bucket, env.name)
              if x.complete and bs.DB in x.manifest["artefacts"]), None)
    if s is None:
        raise NotFound(f"no complete backup set with a database for {env.name}")
    report = Report(env.name, s.name)
    created = None
    if scratch_url:
        target = pg.DatabaseURL.parse(scratch_url)
    else:
        created = f"kestra_drill_{datetime.datetime.now(datetime.timezone.utc):%Y%m%d%H%M%S}"
        target = pg.create_database(source, created)
        report.details.append(f"scratch database {created} created")
    try:
        with _step(progress, f"restore {s.name} into {target.dbname}"):
            report.details.append(restore_db(storage, bucket, env.name, s, target,
                                             clean=scratch_url is not None))
        with _step(progress, "compare row counts"):
            src, dst = pg.row_counts(source), pg.row_counts(target)
        for table in sorted(set(src) | set(dst)):
            a, b = src.get(table), dst.get(table)
            report.counts[table] = [a, b]
            if a != b:
                report.ok = False
                report.details.append(f"{table}: source {a}, restored {b}")
        report.details.append(f"{len(report.counts)} tables compared")
    finally:
        if created:
            pg.drop_database(source, created)
            report.details.append(f"scratch database {created} dropped")
    return report


def _step(progress, name):
    import contextlib

    return progress.step(name) if progress is not None else contextlib.nullcontext()
