"""Misc and flow endpoint handlers of the fake Kestra server (routing table: kestra_server.ROUTES;
execution handlers live in kestra_executions).

Each handler takes the parsed ``Request`` and returns a ``Response``; ``HttpError`` becomes a
Micronaut ``JsonError`` body. Behaviours worth knowing when testing a client (all from the Kestra
source): ``delete`` defaults to TRUE on namespace sync and bulk update, and bulk without
``namespace`` deletes every flow of the tenant whose *id* is not in the batch; sync/bulk delete
first and then apply flows one by one, so an invalid flow in the batch leaves earlier changes
applied; the flow endpoints only take ``application/x-yaml`` (415 otherwise).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import yaml

from .kestra_filters import QueryFilter, matches
from .kestra_flows import FlowInvalid, flow_json, load_yaml, read_upload, split_sync, split_validate, zip_sources
from .kestra_http import MULTIPART, YAML, HttpError, Response, filters_for, invalid, paged, require_media

if TYPE_CHECKING:
    from .kestra_http import Request


# ---- misc ----
def configs(req: "Request") -> Response:
    fake = req.fake
    return Response(200, {
        "uuid": "6f1c2a7e-0b7d-4c36-9c1e-2f7c3b9d5a10", "version": fake.version, "edition": "OSS",
        "commitId": "0f1e2d3", "commitDate": "2026-10-01T00:00:00Z", "chartDefaultDuration": "P30D",
        "isCustomDashboardsEnabled": True, "isAnonymousUsageEnabled": False, "isUiAnonymousUsageEnabled": False,
        "isTemplateEnabled": False, "url": fake.url, "preview": {"initial": 100, "max": 5000},
        "systemNamespace": "system", "hiddenLabelsPrefixes": ["system."], "isAiEnabled": False,
        "isBasicAuthInitialized": fake.basic_auth_initialized, "pluginsHash": 1306247113,
        "isConcurrencyViewEnabled": False,
    })


def basic_auth_errors(req: "Request") -> Response:
    return Response(200, list(req.fake.basic_auth_validation_errors))


def health(req: "Request") -> Response:
    fake = req.fake
    up = {"/health/liveness": fake.liveness_up, "/health/readiness": fake.readiness_up}.get(
        req.path, fake.liveness_up and fake.readiness_up)
    return Response(200 if up else 503, {"name": "kestra", "status": "UP" if up else "DOWN"})


# ---- flows ----
def _flows_json(req: "Request", filters: list[QueryFilter], with_source: bool = False) -> list[dict[str, Any]]:
    docs = [flow_json(r, with_source, req.fake.tenant) for r in req.fake.flow_store.current()]
    return [d for d in docs if matches(d, filters, text_fields=("id", "namespace", "description"))]


def search_flows(req: "Request") -> Response:
    filters = filters_for(req, "FLOW", ("q", "namespace", "labels", "scope"))
    with req.fake._lock:
        items = _flows_json(req, filters)
    for spec in reversed(req.query.get("sort", [])):
        key, _, order = spec.partition(":")
        items.sort(key=lambda d: str(d.get(key, "")), reverse=order.lower() == "desc")
    return Response(200, paged(req, items))


def distinct_namespaces(req: "Request") -> Response:
    q = (req.q("q") or "").lower()
    with req.fake._lock:
        namespaces = sorted({r.namespace for r in req.fake.flow_store.current()})
    return Response(200, [n for n in namespaces if q in n.lower()])


def _zip(entries: list[tuple[str, str]]) -> Response:
    return Response(200, zip_sources(entries), "application/octet-stream",
                    {"Content-Disposition": 'attachment; filename="flows.zip"'})


def export_by_query(req: "Request") -> Response:
    filters = filters_for(req, "FLOW", ("q", "namespace", "labels", "scope"))
    with req.fake._lock:
        docs = _flows_json(req, filters, with_source=True)
    return _zip([(f"{d['namespace']}-{d['id']}.yml", d["source"]) for d in docs])


def export_by_ids(req: "Request") -> Response:
    require_media(req, "application/json")
    entries = []
    with req.fake._lock:
        for ident in req.json() or []:
            rev = req.fake.flow_store.latest(ident.get("namespace"), ident.get("id"))
            if rev is None:
                raise HttpError(404, "Not Found: No value present")
            entries.append((f"{rev.namespace}.{rev.id}.yaml", rev.source))
    return _zip(entries)


def _validate_one(req: "Request", index: int, source: str, filename: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"index": index}
    if filename:
        out["filename"] = filename
    rules, store = req.fake.flow_store.rules, req.fake.flow_store
    try:
        doc = rules.parse(source)
        problem = None
    except FlowInvalid as e:
        if e.structural:
            out["constraints"] = e.message
            return out
        doc, problem = e.doc or {}, e.message
    if isinstance(doc.get("id"), str):
        out["flow"] = doc["id"]
    if isinstance(doc.get("namespace"), str):
        out["namespace"] = doc["namespace"]
    if isinstance(doc.get("revision"), int) and "flow" in out and "namespace" in out:
        revs = store.revisions.get((out["namespace"], out["flow"]), [])
        out["outdated"] = doc["revision"] != (revs[-1].revision if revs else 0) + 1
    out["deprecationPaths"] = rules.deprecation_paths(doc)
    out["warnings"] = []
    out["infos"] = []
    if problem:
        out["constraints"] = problem
    return out


def validate_flows(req: "Request") -> Response:
    require_media(req, YAML, MULTIPART)
    if req.media_type == MULTIPART:
        sources = [(data.decode().strip(), fn) for name, fn, data in req.multipart() if name == "flows"]
    else:
        sources = [(s, None) for s in split_validate(req.text())]
    with req.fake._lock:
        return Response(200, [_validate_one(req, i, s, fn) for i, (s, fn) in enumerate(sources)])


def import_flows(req: "Request") -> Response:
    require_media(req, MULTIPART)
    parts = [p for p in req.multipart() if p[0] == "fileUpload"]
    if not parts or not parts[0][1]:
        raise HttpError(400, "Required argument [CompletedFileUpload fileUpload] not specified")
    _, filename, data = parts[0]
    try:
        entries = read_upload(filename, data)
    except ValueError as e:
        raise HttpError(422, f"Illegal argument: {e}") from None
    wrong = []
    with req.fake._lock:
        for name, source in entries:
            try:
                req.fake.flow_store.create_or_update(source, allow_deleted=True)
            except FlowInvalid:
                wrong.append(name)
    if wrong and req.q_bool("failOnError", False):
        raise HttpError(422, "Illegal argument: Following invalid flows were not imported: " + ", ".join(wrong))
    return Response(200, wrong)


def create_flow(req: "Request") -> Response:
    require_media(req, YAML)
    with req.fake._lock:
        try:
            rev = req.fake.flow_store.create(req.text())
        except FlowInvalid as e:
            raise invalid(e) from None
        return Response(200, flow_json(rev, True, req.fake.tenant))


def list_namespace(req: "Request") -> Response:
    ns = req.params["namespace"]
    with req.fake._lock:
        return Response(200, [flow_json(r, False, req.fake.tenant) for r in req.fake.flow_store.current()
                              if r.namespace == ns])


def _bulk(req: "Request", sources: list[str], namespace: str | None, delete: bool, allow_child: bool) -> Response:
    """FlowController.bulkUpdateOrCreate: checks, deletes, then creates/updates one by one."""
    store, tenant = req.fake.flow_store, req.fake.tenant
    docs = []
    for source in sources:
        try:
            doc = load_yaml(source)
        except yaml.YAMLError as e:
            raise HttpError(422, f"Invalid entity: Illegal flow source: {str(e).splitlines()[0]}") from None
        if not isinstance(doc, dict):
            raise HttpError(422, "Invalid entity: Illegal flow source: a flow must be a YAML mapping")
        docs.append(doc)
    if namespace is not None:
        bad = [("flow.namespace", f"{d.get('namespace')}.{d.get('id')} - flow namespace is invalid") for d in docs
               if d.get("namespace") != namespace
               and not (allow_child and str(d.get("namespace")).startswith(namespace))]
        if bad:
            raise HttpError(422, "Invalid entity: " + ", ".join(f"{p}: {m}" for p, m in bad), bad)
    ids = [d.get("id") for d in docs]
    if len(set(map(str, ids))) < len(ids):
        raise HttpError(422, "Invalid entity: flow.id: Duplicate flow id", [("flow.id", "Duplicate flow id")])
    result = []
    with req.fake._lock:
        if delete:
            for rev in store.current():
                if (namespace is None or rev.namespace == namespace) and rev.id not in ids:
                    result.append(flow_json(store.delete(rev.namespace, rev.id), True, tenant))
        for source in sources:
            try:
                result.append(flow_json(store.create_or_update(source), True, tenant))
            except FlowInvalid as e:
                raise invalid(e) from None
    return Response(200, result)


def sync_namespace(req: "Request") -> Response:
    require_media(req, YAML, MULTIPART)
    namespace = req.params["namespace"]
    if req.media_type == MULTIPART:
        override = req.q_bool("override", False)
        sources = []
        for name, _, data in req.multipart():
            if name == "flows":
                src = data.decode().strip()
                if override:
                    src = re.sub(r"(?m)^namespace:.+", f"namespace: {namespace}", src, count=1)
                sources.append(src)
    else:
        sources = [s.strip() for s in split_sync(req.text())] if req.body else []
    return _bulk(req, sources, namespace, req.q_bool("delete", True), False)


def bulk_update(req: "Request") -> Response:
    if req.body:
        require_media(req, YAML)
    sources = split_sync(req.text()) if req.body else []
    return _bulk(req, sources, req.q("namespace"), req.q_bool("delete", True), req.q_bool("allowNamespaceChild", False))


def get_flow(req: "Request") -> Response:
    p = req.params
    with req.fake._lock:
        rev = req.fake.flow_store.get(p["namespace"], p["id"], req.q_int("revision", None),
                                 req.q_bool("allowDeleted", False))
        if rev is None:
            raise HttpError(404, "Not Found")
        return Response(200, flow_json(rev, req.q_bool("source", False), req.fake.tenant))


def update_flow(req: "Request") -> Response:
    require_media(req, YAML)
    p = req.params
    with req.fake._lock:
        try:
            rev = req.fake.flow_store.update(p["namespace"], p["id"], req.text())
        except FlowInvalid as e:
            raise invalid(e) from None
        if rev is None:
            raise HttpError(404, "Not Found")
        return Response(200, flow_json(rev, True, req.fake.tenant))


def delete_flow(req: "Request") -> Response:
    with req.fake._lock:
        if req.fake.flow_store.delete(req.params["namespace"], req.params["id"]) is None:
            raise HttpError(404, "Not Found")
    return Response(204, None, None)


def flow_revisions(req: "Request") -> Response:
    allow = req.q_bool("allowDelete", False)
    with req.fake._lock:
        revs = req.fake.flow_store.revisions.get((req.params["namespace"], req.params["id"]), [])
        return Response(200, [flow_json(r, True, req.fake.tenant) for r in revs if allow or not r.deleted])


