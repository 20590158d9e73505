"""KV store and namespace-file endpoint handlers of the fake Kestra server (routing table:
kestra_server.ROUTES; the data lives in ``fake.data``, a kestra_store.KestraData, in memory or
backed by PostgreSQL + S3).

Behaviours from Kestra's controllers (webserver/src/main/java/io/kestra/webserver/controllers/api/
KVController.java and NamespaceFileController.java):

- ``PUT kv/{key}`` takes ``text/plain`` or ``application/json`` and reads the body as Ion (so JSON,
  and a bare word is a string); a key must match ``[a-zA-Z0-9][a-zA-Z0-9._-]*`` (KVStore.validateKey,
  422 otherwise); every put is a new version. ``GET kv/{key}`` answers ``{type, value, revision,
  updated}`` or 404 ``No value found for key ...``; ``DELETE kv/{key}`` answers a JSON boolean;
  ``GET kv`` lists the current entries (KVEntry) of that namespace only.
- ``POST files?path=`` (multipart part ``fileContent``) stores a new version of the file; an
  upload whose *file name* ends in ``.zip`` is extracted instead, each entry at ``/<entry name>``;
  paths under ``/_flows`` are refused (422). ``GET files?path=`` streams the content (404 when
  missing, also when the object is gone from storage); ``GET files/directory?path=`` lists one
  level (FileAttributes; directories have type ``Directory``), 404 for a missing directory other
  than the root.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .kestra_http import MULTIPART, HttpError, Response, require_media
from .kestra_store import ObjectMissing

if TYPE_CHECKING:
    from .kestra_http import Request

KEY_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*")
ION_SYMBOL = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def _epoch_ms(iso: str | None) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000) if iso else 0


def _key(req: "Request") -> str:
    key = req.params["key"]
    if not KEY_RE.fullmatch(key):
        raise HttpError(422, "Illegal argument: Key must start with an alphanumeric character (uppercase or "
                             "lowercase) and can contain alphanumeric characters (uppercase or lowercase), dots "
                             "(.), underscores (_), and hyphens (-) only.")
    return key


def kv_type(value: Any) -> str:
    """KVType.from: the type the UI shows."""
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, (int, float)):
        return "NUMBER"
    if isinstance(value, str):
        return "STRING"
    return "JSON"


# ---- KV ----
def put_kv(req: "Request") -> Response:
    require_media(req, "text/plain", "application/json")
    key, text = _key(req), req.text().strip()
    try:
        value = json.loads(text)
    except ValueError:
        if not ION_SYMBOL.fullmatch(text):
            raise HttpError(422, "Illegal argument: Invalid JSON value for the key " + key) from None
        value = text  # an Ion symbol reads as a string
    with req.fake._lock:
        req.fake.data.kv_put(req.params["namespace"], key, value)
    return Response(200, None, None)


def get_kv(req: "Request") -> Response:
    ns, key = req.params["namespace"], _key(req)
    with req.fake._lock:
        found = req.fake.data.kv_get(ns, key)
    if found is None:
        raise HttpError(404, f"Not Found: No value found for key '{key}' in namespace '{ns}'")
    row, value = found
    return Response(200, {"type": kv_type(value), "value": value, "revision": row["version"],
                          "updated": row["updated"]})


def delete_kv(req: "Request") -> Response:
    with req.fake._lock:
        return Response(200, req.fake.data.kv_delete(req.params["namespace"], _key(req)))


def list_kv(req: "Request") -> Response:
    with req.fake._lock:
        rows = req.fake.data.kv_list(req.params["namespace"])
    out = []
    for r in rows:
        entry = {"namespace": r["namespace"], "key": r["name"], "version": r["version"],
                 "creationDate": r["created"], "updateDate": r["updated"]}
        if r.get("description") is not None:
            entry["description"] = r["description"]
        if r.get("expirationDate") is not None:
            entry["expirationDate"] = r["expirationDate"]
        out.append(entry)
    return Response(200, out)


# ---- namespace files ----
def _path(req: "Request", required: bool = True) -> str | None:
    raw = req.q("path")
    if raw is None or raw == "":
        if required:
            raise HttpError(400, "Bad Request: Required QueryValue [path] not specified")
        return None
    path = "/" + raw.lstrip("/")
    if ".." in path.split("/"):
        raise HttpError(422, f"Illegal argument: Invalid path: {raw}")
    if re.fullmatch(r"/_flows(/.*)?", path):
        raise HttpError(422, f"Illegal argument: Forbidden path: {path}")
    return path


def create_file(req: "Request") -> Response:
    require_media(req, MULTIPART)
    path = _path(req)
    parts = [p for p in req.multipart() if p[0] == "fileContent"]
    if not parts:
        raise HttpError(400, "Required argument [CompletedFileUpload fileContent] not specified")
    _, filename, data = parts[0]
    ns = req.params["namespace"]
    with req.fake._lock:
        if (filename or "").lower().endswith(".zip"):
            try:
                archive = zipfile.ZipFile(io.BytesIO(data))
                entries = [(i.filename, archive.read(i)) for i in archive.infolist() if not i.is_dir()]
            except (zipfile.BadZipFile, ValueError) as e:
                raise HttpError(422, f"Illegal argument: {e}") from None
            for name, content in entries:
                req.fake.data.file_put(ns, "/" + name.lstrip("/"), content)
        else:
            req.fake.data.file_put(ns, path, data)
    return Response(200, None, None)


def file_content(req: "Request") -> Response:
    ns, path = req.params["namespace"], _path(req)
    revision = req.q_int("revision", None)
    data = req.fake.data
    with req.fake._lock:
        try:
            if revision is None:
                content = data.file_get(ns, path)
            else:
                rows = data.tables.rows("namespace_file_metadata", {"tenantId": data.tenant, "namespace": ns,
                                                                    "path": path, "version": revision})
                content = data.objects.get(data.file_object(ns, path, revision)) if rows else None
        except ObjectMissing:
            content = None
    if content is None:
        raise HttpError(404, f"Not Found: File not found: {path}")
    return Response(200, content, "application/octet-stream", {"Cache-Control": "no-cache"})


def list_directory(req: "Request") -> Response:
    ns, path = req.params["namespace"], _path(req, required=False) or "/"
    with req.fake._lock:
        rows = req.fake.data.file_children(ns, path)
    if rows is None:
        raise HttpError(404, f"Not Found: Directory not found: {path}")
    out = []
    for r in rows:
        name = r["path"].rstrip("/").rpartition("/")[2]
        out.append({"fileName": name, "lastModifiedTime": _epoch_ms(r.get("updated")),
                    "creationTime": _epoch_ms(r.get("created")),
                    "type": "Directory" if r["path"].endswith("/") else "File", "size": r["size"], "metadata": {}})
    return Response(200, out)
