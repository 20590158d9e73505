"""Flows as code, the server side: what the server holds, what its validate endpoint says, export.

Requests are batched: per namespace one search (ids and revisions, ``EQUALS`` filter) and one
export (sources); validation sends many flows per request. Batches are multi-document YAML, and
Kestra splits them on ``---`` (validate on ``\\n---`` lines, namespace sync and bulk on any
``---`` in the text), so a flow whose text contains ``---`` always travels alone.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from kestra_ops.errors import InvalidInput, OperationFailed
from kestra_ops.values.findings import Finding
from kestra_ops.workflows.flows.local import FLOW_ID_RE
from kestra_ops.workflows.flows.yamldoc import LocalFlow, flow_text, parse_flow
from kestra_ops.yamlio import Location

BATCH_FLOWS = 200  # flows per request
BATCH_BYTES = 2 * 1024 * 1024  # and at most this much YAML
_PART = re.compile(r", (?=[\w.\[\]]+: )")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_KESTRA_NS = re.compile(r"[a-z0-9][a-z0-9._-]*")  # Kestra's own rule: safe as a folder name


@dataclass
class RemoteFlow:
    namespace: str
    id: str
    revision: int | None
    source: str


def batchable(source: str) -> bool:
    """True when ``source`` can share a multi-document request with other flows."""
    return "---" not in source


def batches(items: list, size_of=lambda item: 0) -> Iterator[list]:
    """``items`` in chunks of at most BATCH_FLOWS items and about BATCH_BYTES."""
    chunk, size = [], 0
    for item in items:
        n = size_of(item)
        if chunk and (len(chunk) >= BATCH_FLOWS or size + n > BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += n
    if chunk:
        yield chunk


def join_sources(sources: Iterable[str]) -> str:
    return "\n---\n".join(flow_text(s) for s in sources) + "\n"


def read_zip(data: bytes, what: str = "export") -> list[tuple[str, str]]:
    """(entry name, source) of every YAML entry of a ZIP, within the budget of a flows target
    (:mod:`kestra_ops.workflows.flows.files`: entries, bytes of each flow and in all, as they
    are inflated, whatever the archive claims), so that a ZIP bomb is refused, never inflated."""
    from kestra_ops.workflows.flows.files import MAX_FLOW_FILES, MAX_TOTAL_BYTES
    from kestra_ops.yamlio import MAX_BYTES

    def refuse(why: str) -> OperationFailed:
        return OperationFailed(f"the server's {what} is not a ZIP of YAML flows ({why})")

    out, total = [], 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = sorted((i for i in zf.infolist() if not i.is_dir()
                            and i.filename.lower().endswith((".yml", ".yaml"))),
                           key=lambda i: i.filename)
            if len(infos) > MAX_FLOW_FILES:
                raise refuse(f"more than {MAX_FLOW_FILES:,} flow files")
            for info in infos:
                with zf.open(info) as fh:
                    raw = fh.read(MAX_BYTES + 1)
                total += len(raw)
                if len(raw) > MAX_BYTES:
                    raise refuse(f"{info.filename}: more than {MAX_BYTES:,} bytes")
                if total > MAX_TOTAL_BYTES:
                    raise refuse(f"flow files of more than {MAX_TOTAL_BYTES:,} bytes in all")
                out.append((info.filename, raw.decode("utf-8")))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, UnicodeDecodeError, OSError,
            EOFError, RuntimeError, NotImplementedError) as err:
        raise refuse(str(err)) from None
    return out


def _flow_of(name: str, source: str) -> LocalFlow | None:
    try:
        return parse_flow(source, name)
    except InvalidInput:
        return None


def fetch_remote(client, namespaces: Iterable[str]) -> dict[tuple[str, str], RemoteFlow]:
    """Every flow the server holds in exactly these namespaces (children excluded)."""
    out: dict[tuple[str, str], RemoteFlow] = {}
    for ns in sorted(set(namespaces)):
        revisions = {f.get("id"): f.get("revision")
                     for f in client.search_flows(ns, page_size=1000, prefix=False)
                     if f.get("namespace") == ns}
        if not revisions:
            continue
        for name, source in read_zip(client.export_flows(ns)):
            flow = _flow_of(name, source)
            if flow is not None and flow.namespace == ns and flow.id in revisions:
                out[(ns, flow.id)] = RemoteFlow(ns, flow.id, revisions[flow.id], source)
        for flow_id, revision in revisions.items():  # listed but not exported: fetch it
            if (ns, flow_id) not in out:
                got = client.get_flow(ns, flow_id, source=True)
                out[(ns, flow_id)] = RemoteFlow(ns, flow_id, revision, got.get("source") or "")
    return out


def _path(text: str) -> tuple:
    return tuple(int(i) if i else k for k, i in _STEP.findall(text))


def constraint_findings(flow: LocalFlow, result: dict) -> list[Finding]:
    """The server's verdict on one flow, located in its file where the path allows."""
    out = []
    constraints = (result.get("constraints") or "").strip()
    for part in _PART.split(constraints) if constraints else []:
        where, sep, message = part.partition(": ")
        path = _path(where) if sep and " " not in where else ()
        located = flow.locate(path) if path else Location(flow.file)
        out.append(Finding("flows/server", "error", f"server: {part}", where if path else "$",
                           located, "Kestra's validate endpoint refused the flow"))
    for path_text in result.get("deprecationPaths") or []:
        out.append(Finding("flows/deprecated", "warning", f"server: {path_text} is deprecated",
                           path_text, flow.locate(_path(path_text)), None))
    for warning in result.get("warnings") or []:
        text = warning.get("message") if isinstance(warning, dict) else str(warning)
        out.append(Finding("flows/server-warning", "warning", f"server: {text}", "$",
                           Location(flow.file), None))
    return out


def server_validate(client, flows: list[LocalFlow], progress=None) -> list[Finding]:
    """Kestra's validate endpoint for every flow, many per request."""
    together = [f for f in flows if batchable(f.source)]
    alone = [f for f in flows if not batchable(f.source)]
    findings: list[Finding] = []
    chunks = list(batches(together, lambda f: len(f.source))) + [[f] for f in alone]
    for chunk in chunks:
        body = join_sources(f.source for f in chunk) if len(chunk) > 1 else chunk[0].source
        results = client.validate_flows(body)
        if len(results) != len(chunk):
            raise OperationFailed(f"flows/validate answered {len(results)} result(s) for "
                                  f"{len(chunk)} flow(s) (starting with {chunk[0].file})")
        by_index = {r.get("index", i): r for i, r in enumerate(results)}
        for i, flow in enumerate(chunk):
            findings.extend(constraint_findings(flow, by_index.get(i) or {}))
        if progress is not None:
            progress.update(f"validated {len(chunk)} flow(s) on the server")
    return findings


@dataclass
class ExportResult:
    target: str
    flows: int
    form: str  # zip | directory
    files: list[str]
    skipped: list[str]

    def to_dict(self) -> dict:
        return {"target": self.target, "flows": self.flows, "form": self.form,
                "files": self.files, "skipped": self.skipped}


def export(client, to: Path, namespace: str | None = None) -> ExportResult:
    """The export endpoint's ZIP written as is (``to`` ends in .zip) or unpacked, one flow per
    file ``<to>/<namespace>/<id>.yaml``. Other files in ``to`` are left alone."""
    from kestra_ops.fileio import write_atomic

    data = client.export_flows(namespace)
    entries = read_zip(data)
    if namespace:  # the API filter is a prefix: keep the namespace and its children only
        keep = []
        for name, source in entries:
            flow = _flow_of(name, source)
            ns = flow.namespace if flow else None
            if ns is None or ns == namespace or ns.startswith(namespace + "."):
                keep.append((name, source))
        entries = keep
    if to.suffix.lower() == ".zip":
        if namespace and len(entries) != len(read_zip(data)):
            data = _zip(entries)
        to.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(to, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0),
                     0o600)  # exported flows may hold secrets: 0600, never through a symlink
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(data)
        return ExportResult(str(to), len(entries), "zip", [str(to)], [])
    if to.exists() and not to.is_dir():
        raise InvalidInput(f"{to}: not a directory (name a directory, or a FILE.zip)")
    files, skipped = [], []
    for name, source in entries:
        flow = _flow_of(name, source)
        ns, fid = (flow.namespace, flow.id) if flow else (None, None)
        if not (ns and _KESTRA_NS.fullmatch(ns) and FLOW_ID_RE.match(fid or "")):
            skipped.append(f"{name}: no usable namespace/id for a file name")
            continue
        path = to / ns / f"{fid}.yaml"
        write_atomic(path, source if source.endswith("\n") else source + "\n", secret=True)
        files.append(str(path))
    return ExportResult(str(to), len(files), "directory", files, skipped)


def _zip(entries: list[tuple[str, str]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in entries:
            zf.writestr(name, text)
    return buf.getvalue()
