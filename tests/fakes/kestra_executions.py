"""Executions of the fake Kestra server: a time-driven state machine and the Execution JSON.

An execution carries a *plan*: (state, time) steps. Its state at any moment is the last step
whose time has passed, so no background thread is needed and readers (GET, search, SSE follow)
always agree. The default plan is CREATED -> RUNNING -> SUCCESS one ``step`` apart; a flow with a
"fail marker" task ends FAILED, one with a "hang marker" task stays RUNNING (for stuck-execution
checks); ``kill`` and ``force`` replace the rest of the plan.

JSON follows the ``Execution`` schema of the 1.3 OpenAPI document and what Kestra serialises:
``tenantId``, ``originalId``, ``metadata``, a ``system.correlationId`` label added by the server,
ISO-8601 dates and ``state.duration`` as a Java ``Duration`` string (``PT0.1S``).

The execution endpoint handlers are at the end: creation only takes multipart (or no body, 415
otherwise); the SSE follow stream starts with an ``id: start`` event whose data is only
``{"id": ...}``, then ``progress`` events on changes, then ``end`` with the final execution.
"""
from __future__ import annotations

import json
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from . import kestra_canary as canary
from .kestra_filters import QueryFilter, match_date, match_state, matches, parse_datetime
from .kestra_flows import flow_json, now_iso
from .kestra_http import MULTIPART, HttpError, Response, filters_for, paged, require_media

if TYPE_CHECKING:
    from .kestra_http import Request

TERMINAL_STATES = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED"})
ALL_STATES = ("CREATED", "SUBMITTED", "RUNNING", "PAUSED", "RESTARTED", "KILLING", "SUCCESS", "WARNING", "FAILED",
              "KILLED", "CANCELLED", "QUEUED", "RETRYING", "RETRIED", "SKIPPED", "BREAKPOINT", "RESUBMITTED")
_ALPHABET = string.ascii_letters + string.digits


def new_id() -> str:
    """A Kestra-looking id (22 base62 characters, like IdUtils.create())."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(22))


def java_duration(seconds: float) -> str:
    """``java.time.Duration#toString``: PT0.05S, PT1M2.5S, PT2H."""
    seconds = max(seconds, 0.0)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    out = "PT" + (f"{int(h)}H" if h else "") + (f"{int(m)}M" if m else "")
    if s or out == "PT":
        s_txt = f"{s:.6f}".rstrip("0").rstrip(".")
        out += f"{s_txt}S"
    return out


@dataclass
class Execution:
    id: str
    namespace: str
    flow_id: str
    flow_revision: int
    labels: list[dict[str, str]]
    inputs: dict[str, Any]
    task_ids: list[str]
    plan: list[tuple[str, float]]
    failing_task: int | None = None
    kind: str | None = None
    tenant: str = "main"
    created: float = field(default_factory=time.time)
    outputs: dict[str, Any] = field(default_factory=dict)  # task id -> outputs (see kestra_canary)

    # ---- state ----
    def history(self, now: float | None = None) -> list[tuple[str, float]]:
        now = time.time() if now is None else now
        past = [step for step in self.plan if step[1] <= now]
        return past or self.plan[:1]

    def state(self, now: float | None = None) -> str:
        return self.history(now)[-1][0]

    def terminal(self, now: float | None = None) -> bool:
        return self.state(now) in TERMINAL_STATES

    def force(self, state: str, step: float = 0.0) -> None:
        """Replace the future of the plan: go to ``state`` now (KILLING is followed by KILLED ``step`` later)."""
        if state not in ALL_STATES:
            raise ValueError(f"unknown execution state {state!r}")
        now = time.time()
        self.plan = [s for s in self.history(now)]
        self.plan.append((state, now))
        if state == "KILLING":
            self.plan.append(("KILLED", now + step))

    # ---- JSON ----
    def _state_json(self, steps: list[tuple[str, float]], now: float) -> dict[str, Any]:
        current = steps[-1][0]
        start = steps[0][1]
        end = steps[-1][1] if current in TERMINAL_STATES else None
        out: dict[str, Any] = {
            "current": current,
            "histories": [{"state": s, "date": now_iso(t)} for s, t in steps],
            "duration": java_duration((end if end is not None else now) - start),
            "startDate": now_iso(start),
        }
        if end is not None:
            out["endDate"] = now_iso(end)
        return out

    def _task_runs(self, steps: list[tuple[str, float]], now: float) -> list[dict[str, Any]]:
        current = steps[-1][0]
        running_at = next((t for s, t in steps if s == "RUNNING"), None)
        if running_at is None or not self.task_ids:
            return []
        if current in TERMINAL_STATES:
            last = self.failing_task if current in ("FAILED", "KILLED") and self.failing_task is not None \
                else (0 if current == "KILLED" else len(self.task_ids) - 1)
            states = ["SUCCESS"] * last + [current if current != "WARNING" else "SUCCESS"]
        else:
            states = ["RUNNING"]
        runs = []
        for i, task_state in enumerate(states):
            task_steps = [("CREATED", running_at)]
            if task_state != "CREATED":
                task_steps.append(("RUNNING", running_at))
            if task_state in TERMINAL_STATES:
                task_steps.append((task_state, steps[-1][1]))
            run = {
                "id": f"{self.id[:16]}{i:06d}",
                "executionId": self.id,
                "namespace": self.namespace,
                "flowId": self.flow_id,
                "taskId": self.task_ids[i],
                "state": self._state_json(task_steps, now),
                "attempts": [{"state": self._state_json(task_steps[1:] or task_steps, now)}],
            }
            if task_state == "SUCCESS" and self.task_ids[i] in self.outputs:
                run["outputs"] = self.outputs[self.task_ids[i]]
            runs.append(run)
        return runs

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        steps = self.history(now)
        out: dict[str, Any] = {
            "id": self.id,
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "flowRevision": self.flow_revision,
            "tenantId": self.tenant,
            "taskRunList": self._task_runs(steps, now),
            "inputs": dict(self.inputs),
            "labels": [dict(lab) for lab in self.labels],
            "state": self._state_json(steps, now),
            "originalId": self.id,
            "deleted": False,
            "metadata": {"attemptNumber": 1, "originalCreatedDate": now_iso(self.created)},
        }
        if self.kind:
            out["kind"] = self.kind
        return out


def plan_for(outcome: str, start: float, step: float) -> list[tuple[str, float]]:
    """CREATED -> RUNNING -> SUCCESS|FAILED one ``step`` apart; HANG stays RUNNING."""
    plan = [("CREATED", start), ("RUNNING", start + step)]
    if outcome != "HANG":
        plan.append((outcome, start + 2 * step))
    return plan


def plan_seeded(state: str, started_ago: float) -> list[tuple[str, float]]:
    """A plan whose current state is ``state``, started ``started_ago`` seconds ago (for seeding)."""
    if state not in ALL_STATES:
        raise ValueError(f"unknown execution state {state!r}")
    now = time.time()
    start = now - max(started_ago, 0.0)
    if state == "CREATED":
        return [("CREATED", start)]
    plan = [("CREATED", start), ("RUNNING", start)]
    if state != "RUNNING":
        plan.append((state, now))
    return plan


# ---- endpoint handlers ----
def _execution_filter(f: QueryFilter, doc: dict[str, Any]) -> bool | None:
    state = doc["state"]
    if f.field == "STATE":
        return match_state(state["current"], f)
    if f.field == "START_DATE":
        return match_date(state.get("startDate"), f)
    if f.field == "END_DATE":
        return match_date(state.get("endDate"), f)
    if f.field == "KIND":
        return match_state(doc.get("kind") or "NORMAL", f)
    if f.field == "CHILD_FILTER":
        return (str(f.value).upper() == "MAIN") == (f.op == "EQUALS")
    if f.field == "TRIGGER_EXECUTION_ID":
        return f.op in ("NOT_EQUALS", "NOT_IN")
    return None


def search_executions(req: "Request") -> Response:
    filters = filters_for(req, "EXECUTION", ("q", "namespace", "flowId", "state", "labels", "startDate", "endDate"))
    with req.fake._lock:
        docs = [ex.to_json() for ex in req.fake.executions.values()]
    items = [d for d in docs if matches(d, filters, ("id", "namespace", "flowId"), extra=_execution_filter)]
    items.sort(key=lambda d: d["state"]["startDate"], reverse=True)
    for spec in reversed(req.query.get("sort", [])):
        key, _, order = spec.partition(":")
        def value(d: dict[str, Any], path: list[str] = key.split(".")) -> str:
            for k in path:
                d = d.get(k, "") if isinstance(d, dict) else ""
            return str(d)
        items.sort(key=value, reverse=order.lower() == "desc")
    return Response(200, paged(req, items))


def _coerce_inputs(flow_doc: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in flow_doc.get("inputs") or []:
        name, kind = spec.get("id"), spec.get("type")
        if name in given:
            raw = given[name]
            try:
                if kind == "INT":
                    raw = int(raw)
                elif kind == "FLOAT":
                    raw = float(raw)
                elif kind in ("BOOLEAN", "BOOL"):
                    if str(raw).lower() not in ("true", "false"):
                        raise ValueError(raw)
                    raw = str(raw).lower() == "true"
            except ValueError:
                raise HttpError(422, f"Invalid entity: {name}: Invalid input for `{name}`, expected {kind}, "
                                     f"but received `{given[name]}`", [(name, f"expected {kind}")]) from None
            out[name] = raw
        elif spec.get("defaults") is not None:
            out[name] = spec["defaults"]
        elif spec.get("required", True):
            raise HttpError(422, f"Invalid entity: {name}: Missing required input:{name}", [(name, "missing")])
    return out


def create_execution(req: "Request") -> Response:
    require_media(req, None, MULTIPART)
    fake, p = req.fake, req.params
    labels = []
    for item in req.query.get("labels", []):
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise HttpError(422, f"Illegal argument: Invalid label '{item}', expected 'key:value'")
        if key.startswith("system.") and key != "system.correlationId":
            raise HttpError(422, "Illegal argument: System labels can only be set by Kestra itself, "
                                 f"offending label: {key}={value}")
        labels.append({"key": key, "value": value})
    kind = req.q("kind")
    if kind not in (None, "NORMAL", "TEST", "PLAYGROUND"):
        raise HttpError(400, f"Bad Request: Failed to convert argument [kind] for value [{kind}]")
    given: dict[str, Any] = {}
    if req.media_type == MULTIPART:
        for name, filename, data in req.multipart():
            given[name] = (f"kestra:///{p['namespace'].replace('.', '/')}/{p['id']}/executions/inputs/{name}/"
                           f"{filename}") if filename else data.decode()
    with fake._lock:
        rev = fake.flow_store.get(p["namespace"], p["id"], req.q_int("revision", None))
        if rev is None:
            raise HttpError(404, f"Not Found: Unable to find flow '{p['namespace']}.{p['id']}'")
        if rev.doc.get("disabled"):
            raise HttpError(409, "Illegal state: Cannot execute a disabled flow")
        inputs = _coerce_inputs(rev.doc, given)
        ex_id = new_id()
        flow_labels = [lab for lab in flow_json(rev, False).get("labels", []) if not lab["key"].startswith("system.")]
        keys = {lab["key"] for lab in labels}
        all_labels = [lab for lab in flow_labels if lab["key"] not in keys] + labels
        if "system.correlationId" not in keys:
            all_labels.append({"key": "system.correlationId", "value": ex_id})
        outcome, failing = fake.flow_store.rules.outcome(rev.doc)
        outputs: dict[str, Any] = {}
        if outcome == "SUCCESS":
            outcome, failing, outputs = canary.run(fake, rev.doc, ex_id)
        start = time.time()
        if req.q("scheduleDate"):
            start = max(start, parse_datetime(req.q("scheduleDate")).timestamp())
        ex = Execution(ex_id, rev.namespace, rev.id, rev.revision, all_labels, inputs,
                       [str(t.get("id")) for t in rev.doc.get("tasks") or []],
                       plan_for(outcome, start, fake.step_seconds), failing, kind, fake.tenant)
        ex.outputs = outputs
        fake.executions[ex_id] = ex
    if req.q_bool("wait", False):
        deadline = time.time() + 30
        while not ex.terminal() and time.time() < deadline:
            time.sleep(min(0.01, fake.step_seconds))
    body = ex.to_json()
    body["url"] = f"{fake.url}/ui/{fake.tenant}/executions/{ex.namespace}/{ex.flow_id}/{ex.id}"
    return Response(200, body)


def _execution(req: "Request") -> Execution:
    ex = req.fake.executions.get(req.params["executionId"])
    if ex is None:
        raise HttpError(404, "Not Found")
    return ex


def get_execution(req: "Request") -> Response:
    with req.fake._lock:
        return Response(200, _execution(req).to_json())


def delete_execution(req: "Request") -> Response:
    with req.fake._lock:
        _execution(req)
        del req.fake.executions[req.params["executionId"]]
    return Response(204, None, None)


def kill_execution(req: "Request") -> Response:
    """202 and KILLING -> KILLED; a finished execution is 409 only with isOnKillCascade=false
    (with the default true the real server accepts and emits a kill event anyway)."""
    cascade = req.q_bool("isOnKillCascade", True)
    with req.fake._lock:
        ex = _execution(req)
        if ex.terminal():
            if not cascade:
                raise HttpError(409, "Illegal state: Execution is already finished, can't kill it")
        else:
            ex.force("KILLING", req.fake.step_seconds)
    return Response(202, None, None)


def _sse(event_id: str, data: dict[str, Any]) -> bytes:
    return f"id: {event_id}\ndata: {json.dumps(data)}\n\n".encode()


def follow_execution(req: "Request") -> Response:
    fake, ex_id = req.fake, req.params["executionId"]
    poll = max(0.002, min(0.02, fake.step_seconds / 5))
    resp = Response(200, stream=None)

    def events() -> Iterator[bytes]:
        yield _sse("start", {"id": ex_id})
        deadline = time.time() + fake.follow_not_found_seconds
        while fake.executions.get(ex_id) is None:
            if time.time() >= deadline:
                resp.abort = True  # the real server errors the stream (404) after its 10 s wait
                return
            time.sleep(poll)
        last = None
        while True:
            ex = fake.executions.get(ex_id)
            if ex is None:
                return
            doc = ex.to_json()
            marker = (doc["state"]["current"], len(doc["taskRunList"]))
            if doc["state"]["current"] in TERMINAL_STATES:
                yield _sse("end", doc)
                return
            if marker != last:
                yield _sse("progress", doc)
                last = marker
            time.sleep(poll)

    resp.stream = events()
    return resp
