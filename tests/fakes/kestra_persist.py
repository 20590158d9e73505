"""Backed mode of the fake Kestra: load flows and executions from the ``flows`` / ``executions``
tables when the server starts, and write back what changed after every request (and on
``FakeKestra.sync()`` / ``stop()``), so that the database always holds what a real Kestra's would
(see kestra_store for the tables).

An execution read back from the database keeps its recorded state history: one that was RUNNING
when it was written stays RUNNING (nothing resumes it), a finished one stays finished, with the
outputs of its task runs."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .kestra_executions import Execution
from .kestra_filters import parse_datetime
from .kestra_flows import Revision, flow_json, load_yaml

if TYPE_CHECKING:
    from .kestra_server import FakeKestra


def load(fake: "FakeKestra") -> None:
    """Fill the flow store and the executions from the database (called once, at start)."""
    data = fake.data
    for value, source in data.load_flows():
        doc = load_yaml(source)
        if not isinstance(doc, dict):
            continue
        rev = Revision(int(value["revision"]), source, doc, value.get("updated") or "", bool(value.get("deleted")))
        fake.flow_store.revisions.setdefault((value["namespace"], value["id"]), []).append(rev)
        fake._persisted_flows.add((value["namespace"], value["id"], rev.revision))
    for revs in fake.flow_store.revisions.values():
        revs.sort(key=lambda r: r.revision)
    for doc in data.load_executions():
        ex = execution_from_json(fake, doc)
        fake.executions[ex.id] = ex
        fake._persisted_executions[ex.id] = (_marker(doc), doc)


def execution_from_json(fake: "FakeKestra", doc: dict[str, Any]) -> Execution:
    plan = [(h["state"], parse_datetime(h["date"]).timestamp()) for h in doc["state"].get("histories", [])]
    runs = doc.get("taskRunList") or []
    rev = fake.flow_store.get(doc["namespace"], doc["flowId"], doc.get("flowRevision"), allow_deleted=True)
    task_ids = [str(t.get("id")) for t in rev.doc.get("tasks") or []] if rev else [r["taskId"] for r in runs]
    failing = len(runs) - 1 if doc["state"]["current"] in ("FAILED", "KILLED") and runs else None
    ex = Execution(doc["id"], doc["namespace"], doc["flowId"], int(doc.get("flowRevision") or 1),
                   list(doc.get("labels") or []), dict(doc.get("inputs") or {}), task_ids,
                   plan or [("CREATED", parse_datetime(doc["state"]["startDate"]).timestamp())],
                   failing, doc.get("kind"), doc.get("tenantId") or fake.tenant)
    created = (doc.get("metadata") or {}).get("originalCreatedDate")
    ex.created = parse_datetime(created).timestamp() if created else ex.plan[0][1]
    ex.outputs = {r["taskId"]: r["outputs"] for r in runs if r.get("outputs") is not None}
    return ex


def _marker(doc: dict[str, Any]) -> tuple[str, int]:
    return doc["state"]["current"], len(doc.get("taskRunList") or [])


def sync(fake: "FakeKestra") -> None:
    """Write new flow revisions and changed / deleted executions (caller holds ``fake._lock``)."""
    if fake.backend is None:
        return
    data = fake.data
    for revs in fake.flow_store.revisions.values():
        for rev in revs:
            key = (rev.namespace, rev.id, rev.revision)
            if key not in fake._persisted_flows:
                data.save_flow(flow_json(rev, False, fake.tenant), rev.source)
                fake._persisted_flows.add(key)
    for ex_id, ex in fake.executions.items():
        doc = ex.to_json()
        marker = _marker(doc)
        if fake._persisted_executions.get(ex_id, (None,))[0] != marker:
            data.save_execution(doc)
            fake._persisted_executions[ex_id] = (marker, doc)
    for ex_id in [i for i in fake._persisted_executions if i not in fake.executions]:
        _, doc = fake._persisted_executions.pop(ex_id)
        data.save_execution({**doc, "deleted": True})


def pause(fake: "FakeKestra") -> None:
    """Kestra's pods are gone (scaled to 0): state written back, the database connection
    closed, every request answered 503 until :func:`resume`."""
    with fake._lock:
        if fake.paused:
            return
        fake.paused = True
        if fake.backend is not None and not fake._backend_pending:
            try:
                sync(fake)
            finally:
                fake.data.close()
            fake._backend_pending = True


def resume(fake: "FakeKestra") -> None:
    """Kestra's pods are back: the backend is read again on the next request (the database may
    have been restored meanwhile)."""
    with fake._lock:
        fake.paused = False
