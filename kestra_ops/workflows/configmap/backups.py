"""Local backups of ConfigMap kestra-config: ``<root>/backups/configmap/<name>-<UTC>.yaml``.

Each backup is a ConfigMap manifest that can be re-applied as it is (``kubectl apply -f``):
apiVersion, kind, name, namespace, labels, annotations and data, without what the API server
sets (uid, resourceVersion, managedFields, ...). A comment header records the environment,
namespace and resourceVersion it was taken from. Files are mode 0600 (application.yml may hold
a literal secret) and never overwritten.
"""

from __future__ import annotations

import datetime
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kestra_ops.errors import InvalidInput

FOLDER = Path("backups") / "configmap"
KEEP_METADATA = ("name", "namespace", "labels", "annotations")
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"^(?P<cm>.+)-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<n>\d+))?\.yaml$")
_HEADER = re.compile(r"^# kestra-ops backup: env (?P<env>\S+), namespace (?P<ns>\S+), "
                     r"configmap (?P<cm>\S+), resourceVersion (?P<rv>\S+)$", re.M)


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    name: str
    taken: datetime.datetime
    size: int
    env: str | None
    namespace: str | None
    resource_version: str | None

    def to_dict(self, root: Path | None = None) -> dict:
        return {"name": self.name, "path": relative(self.path, root) if root else str(self.path),
                "time": self.taken.isoformat().replace("+00:00", "Z"), "size": self.size,
                "env": self.env, "namespace": self.namespace,
                "resourceVersion": self.resource_version}


def folder(root: Path) -> Path:
    return root / FOLDER


def relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def manifest(live: dict) -> dict:
    """The re-appliable part of a live ConfigMap (server-set metadata dropped)."""
    md = live.get("metadata") or {}
    out: dict[str, Any] = {"apiVersion": live.get("apiVersion", "v1"),
                           "kind": live.get("kind", "ConfigMap"),
                           "metadata": {k: md[k] for k in KEEP_METADATA if md.get(k)}}
    for key in ("data", "binaryData"):
        if live.get(key):
            out[key] = dict(live[key])
    if live.get("immutable") is not None:
        out["immutable"] = live["immutable"]
    return out


def write_backup(root: Path, live: dict, *, env: str, now: datetime.datetime | None = None
                 ) -> Path:
    """Write ``live`` (a ConfigMap as read) to a new 0600 backup file; return its path."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    md = live.get("metadata") or {}
    name = md.get("name", "configmap")
    header = (f"# kestra-ops backup: env {env}, namespace {md.get('namespace', '-')}, "
              f"configmap {name}, resourceVersion {md.get('resourceVersion', '-')}\n"
              f"# taken {now.strftime('%Y-%m-%dT%H:%M:%SZ')}; restore with: kestra-ops config "
              f"restore --env {env} FILE (or kubectl apply -f FILE)\n")
    text = header + dump_manifest(manifest(live))
    target_dir = folder(root)
    target_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = now.strftime(STAMP_FORMAT)
    fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=".backup.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        for n in range(1, 1000):  # never overwrite: a second backup in the same second gets -2
            path = target_dir / (f"{name}-{stamp}.yaml" if n == 1 else f"{name}-{stamp}-{n}.yaml")
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                continue
        raise InvalidInput(f"{target_dir}: too many backups taken at {stamp}")
    finally:
        os.unlink(tmp)


def dump_manifest(data: dict) -> str:
    """YAML for a manifest, multi-line strings as literal blocks (readable application.yml)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import LiteralScalarString

    def literal(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: literal(v) for k, v in node.items()}
        if isinstance(node, str) and "\n" in node:
            return LiteralScalarString(node)
        return node

    yaml = YAML(typ="rt")
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=2, offset=0)
    buf = io.StringIO()
    yaml.dump(literal(data), buf)
    return buf.getvalue()


def list_backups(root: Path, env: str | None = None) -> list[BackupInfo]:
    """Backups under ``root``, newest first; with ``env``, only those taken from that
    environment (files without a kestra-ops header are listed for every environment)."""
    found = []
    base = folder(root)
    if not base.is_dir():
        return []
    for path in base.iterdir():
        m = _NAME.match(path.name)
        if not m or path.is_symlink() or not path.is_file():  # a planted link is not ours
            continue
        info = _info(path, m)
        if env is None or info.env in (None, env):
            found.append(info)
    found.sort(key=lambda i: (i.taken, int(_NAME.match(i.name)["n"] or 1)), reverse=True)
    return found


def _info(path: Path, m: re.Match) -> BackupInfo:
    taken = datetime.datetime.strptime(m["stamp"], STAMP_FORMAT).replace(
        tzinfo=datetime.timezone.utc)
    stat = path.stat()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, encoding="utf-8", errors="replace") as fh:
        head = fh.read(1024)
    h = _HEADER.search(head)
    return BackupInfo(path, path.name, taken, stat.st_size, h["env"] if h else None,
                      h["ns"] if h else None, h["rv"] if h else None)


def resolve(root: Path, backup: str | os.PathLike) -> Path:
    """A backup named by path, or by file name in the backups folder."""
    given = Path(backup)
    for candidate in (given, folder(root) / given.name):
        if candidate.parent.resolve() == folder(root).resolve() and candidate.is_symlink():
            raise InvalidInput(f"{candidate}: is a symbolic link in the backups folder; "
                               "refusing to restore through it")
        if candidate.is_file():
            return candidate
    raise InvalidInput(f"backup {str(backup)!r} not found (neither a file nor in "
                       f"{folder(root)})", hint="list them with: kestra-ops config backups")


def load_backup(path: Path, *, configmap: str, env: str, namespace: str) -> dict:
    """Read and check a backup: a ConfigMap named ``configmap`` taken from this environment."""
    from kestra_ops.yamlio import load_yaml_file, to_plain

    text = path.read_text(encoding="utf-8", errors="replace")[:1024]
    data = to_plain(load_yaml_file(path).data)
    if not isinstance(data, dict) or data.get("kind") != "ConfigMap":
        raise InvalidInput(f"{path}: not a ConfigMap manifest")
    md = data.get("metadata") or {}
    if md.get("name") != configmap:
        raise InvalidInput(f"{path}: holds configmap {md.get('name')!r}, not {configmap!r}")
    if md.get("namespace") not in (None, namespace):
        raise InvalidInput(f"{path}: taken from namespace {md['namespace']!r}; environment "
                           f"{env!r} uses {namespace!r}")
    header = _HEADER.search(text)
    if header and header["env"] != env:
        raise InvalidInput(f"{path}: taken from environment {header['env']!r}, not {env!r}")
    if not isinstance(data.get("data"), dict) or not data["data"]:
        raise InvalidInput(f"{path}: the backup has no data")
    return data


def storage_uploader(env, *, environ=None):
    """An uploader copying each backup to ``<bucket>/backups/<env>/configmap/<file>`` when the
    environment has object storage configured; else ``(None, why)``."""
    from kestra_ops.wiring import storage_for_env

    storage, why_not = storage_for_env(env, environ=environ)
    if storage is None:
        return None, why_not

    def upload(path: Path) -> str:
        return storage.upload_file(env.minio_bucket, f"backups/{env.name}/configmap/{path.name}",
                                   path)

    return upload, ""
