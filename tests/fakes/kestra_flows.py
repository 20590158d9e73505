"""Flow model of the fake Kestra server: YAML parsing, validation, revisions, multi-document splitting.

Behaviour copied from the Kestra 1.x source (FlowController, FlowService, AbstractJdbcFlowRepository,
HasSource), not from the documentation alone:

- creating a flow whose (namespace, id) exists is a 422 ``flow.id: Flow id already exists``
  (not a 409);
- a save whose source is byte-identical to the latest revision keeps the revision; any other
  change (comments and whitespace included) makes revision + 1; a delete is a soft delete that
  also takes a revision, so re-creating a deleted flow continues the numbering;
- a PUT may not change ``id`` or ``namespace`` (422);
- three different multi-document splitters: namespace sync / bulk split on the literal ``---``
  anywhere (Java ``String.split``: leading empty parts kept, trailing ones dropped), validate splits
  on ``\\n+---``, import on lines that are exactly ``---``.

Validation is a model of Kestra's, not a copy: structural problems (YAML errors, unknown
top-level keys, task/trigger types that are not ``io.kestra...``-like class names or not from a
known plugin prefix, input types) fail parsing, so /validate reports no ``flow``/``namespace``
for them; constraint problems (missing id/namespace/tasks, patterns, duplicate task ids) come
with ``flow``/``namespace``. Constraint messages use the ``path: message, path: message`` form
of ``jakarta.validation.ConstraintViolationException``.
"""
from __future__ import annotations

import datetime as _dt
import io
import json
import re
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any, Iterable

import yaml

FLOW_ID_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*")
NAMESPACE_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
TASK_ID_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]*")
JAVA_TYPE_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)+")
LABEL_KEY_RE = re.compile(r"[a-z][a-zA-Z0-9._-]*")
INPUT_TYPES = {"STRING", "ENUM", "SELECT", "INT", "FLOAT", "BOOLEAN", "BOOL", "DATETIME", "DATE", "TIME",
               "DURATION", "FILE", "JSON", "URI", "SECRET", "ARRAY", "MULTISELECT", "YAML", "EMAIL"}
FLOW_KEYS = {"id", "namespace", "revision", "description", "labels", "inputs", "outputs", "variables", "tasks",
             "errors", "finally", "afterExecution", "listeners", "triggers", "pluginDefaults", "taskDefaults",
             "disabled", "deleted", "concurrency", "retry", "sla", "workerGroup", "checks", "tenantId"}
TASK_LIST_KEYS = ("tasks", "errors", "finally", "afterExecution", "then", "else", "default")
JSON_PASSTHROUGH = ("description", "inputs", "outputs", "variables", "tasks", "errors", "finally", "afterExecution",
                    "triggers", "pluginDefaults", "concurrency", "retry", "sla", "checks", "workerGroup")


class KestraYamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML as Jackson reads it: only true/false are booleans (``on``/``off``/``yes``/``no`` stay strings)
    and dates stay strings, unlike PyYAML's YAML 1.1 defaults. Parsed by libyaml when PyYAML has it:
    the real server parses natively, so a pure-Python parser would make the fake, not the client,
    the bottleneck of any throughput measurement."""


KestraYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
KestraYamlLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                       list("tTfF"))


def load_yaml(source: str) -> Any:
    return yaml.load(source, Loader=KestraYamlLoader)


def now_iso(ts: float | None = None) -> str:
    t = _dt.datetime.fromtimestamp(time.time() if ts is None else ts, tz=_dt.timezone.utc)
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


def jsonable(value: Any) -> Any:
    """YAML values (dates, timestamps) as JSON-compatible values, the way Jackson would print them."""
    return json.loads(json.dumps(value, default=lambda o: o.isoformat() if hasattr(o, "isoformat") else str(o)))


class FlowInvalid(Exception):
    """A flow the real server refuses. ``structural``: parsing failed (no flow/namespace known)."""

    def __init__(self, violations: list[tuple[str, str]], structural: bool = False, doc: dict | None = None):
        self.violations = violations
        self.structural = structural
        self.doc = doc
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return ", ".join(f"{p}: {m}" if p else m for p, m in self.violations)


@dataclass
class Revision:
    revision: int
    source: str
    doc: dict[str, Any]
    updated: str
    deleted: bool = False

    @property
    def namespace(self) -> str:
        return self.doc["namespace"]

    @property
    def id(self) -> str:
        return self.doc["id"]


def _labels(raw: Any) -> list[dict[str, str]] | None:
    if raw is None:
        return None
    if isinstance(raw, dict):
        return [{"key": str(k), "value": "" if v is None else str(v)} for k, v in raw.items()]
    if isinstance(raw, list):
        return [{"key": str(i.get("key")), "value": str(i.get("value"))} for i in raw if isinstance(i, dict)]
    return None


@dataclass
class FlowRules:
    known_plugin_prefixes: tuple[str, ...] = ("io.kestra.",)
    fail_markers: tuple[str, ...] = ("Fail",)
    hang_markers: tuple[str, ...] = ("Hang",)
    deprecated_types: tuple[str, ...] = ()

    def iter_tasks(self, doc: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
        """(path, task) for every task at any depth, e.g. ``tasks[0].then[1]``."""
        def walk(prefix: str, node: Any):
            if not isinstance(node, dict):
                return
            for key in TASK_LIST_KEYS:
                items = node.get(key)
                if isinstance(items, list):
                    for i, task in enumerate(items):
                        path = f"{prefix}{key}[{i}]"
                        if isinstance(task, dict):
                            yield path, task
                            yield from walk(path + ".", task)
            cases = node.get("cases")
            if isinstance(cases, dict):
                for case, items in cases.items():
                    for i, task in enumerate(items if isinstance(items, list) else []):
                        path = f"{prefix}cases.{case}[{i}]"
                        if isinstance(task, dict):
                            yield path, task
                            yield from walk(path + ".", task)
        yield from walk("", doc)

    def parse(self, source: str) -> dict[str, Any]:
        """The flow document; raises FlowInvalid."""
        try:
            doc = load_yaml(source)
        except yaml.YAMLError as e:
            raise FlowInvalid([("", f"Illegal flow source: {str(e).splitlines()[0]}")], structural=True) from None
        if not isinstance(doc, dict):
            raise FlowInvalid([("", "Illegal flow source: a flow must be a YAML mapping")], structural=True)
        structural = [(k, f'Unrecognized field "{k}"') for k in doc if k not in FLOW_KEYS]
        for path, task in list(self.iter_tasks(doc)) + [(f"triggers[{i}]", t) for i, t in
                                                         enumerate(doc.get("triggers") or []) if isinstance(t, dict)]:
            ttype = task.get("type")
            if not ttype:
                structural.append((path, "Missing property 'type'"))
            elif not (isinstance(ttype, str) and JAVA_TYPE_RE.fullmatch(ttype)
                      and ttype.startswith(tuple(self.known_plugin_prefixes))):
                structural.append((path, f"Invalid type: {ttype}"))
        for i, inp in enumerate(doc.get("inputs") or []):
            if isinstance(inp, dict) and inp.get("type") not in INPUT_TYPES:
                structural.append((f"inputs[{i}]", f"Invalid type: {inp.get('type')}"))
        if structural:
            raise FlowInvalid(structural, structural=True)
        violations: list[tuple[str, str]] = []
        for key, regex, size in (("id", FLOW_ID_RE, 100), ("namespace", NAMESPACE_RE, 150)):
            value = doc.get(key)
            if value is None:
                violations.append((key, "must not be null"))
            elif not isinstance(value, str) or not regex.fullmatch(value):
                violations.append((key, f'must match "^{regex.pattern}"'))
            elif len(value) > size:
                violations.append((key, f"size must be between 1 and {size}"))
        if not doc.get("tasks"):
            violations.append(("tasks", "must not be empty"))
        seen: dict[str, int] = {}
        for path, task in self.iter_tasks(doc):
            tid = task.get("id")
            if tid is None:
                violations.append((f"{path}.id", "must not be null"))
            elif not isinstance(tid, str) or not TASK_ID_RE.fullmatch(tid):
                violations.append((f"{path}.id", f'must match "^{TASK_ID_RE.pattern}"'))
            else:
                seen[tid] = seen.get(tid, 0) + 1
        dups = sorted(t for t, n in seen.items() if n > 1)
        if dups:
            violations.append(("tasks", f"Duplicate task id with name [{', '.join(dups)}]"))
        for lab in _labels(doc.get("labels")) or []:
            if not LABEL_KEY_RE.fullmatch(lab["key"]):
                violations.append(("labels", f"Invalid label key '{lab['key']}'"))
        if violations:
            raise FlowInvalid(violations, doc=doc)
        return doc

    def deprecation_paths(self, doc: dict[str, Any]) -> list[str]:
        return [p for p, t in self.iter_tasks(doc) if t.get("type") in self.deprecated_types]

    def outcome(self, doc: dict[str, Any]) -> tuple[str, int | None]:
        """('FAILED', index-of-top-level-task) / ('HANG', None) / ('SUCCESS', None) for an execution."""
        for i, task in enumerate(doc.get("tasks") or []):
            inner = [task] + [t for _, t in self.iter_tasks(task)]
            for t in inner:
                text = f"{t.get('id', '')} {t.get('type', '')}"
                if any(m in text for m in self.fail_markers):
                    return "FAILED", i
                if any(m in text for m in self.hang_markers):
                    return "HANG", i
        return "SUCCESS", None


def flow_json(rev: Revision, with_source: bool, tenant: str = "main") -> dict[str, Any]:
    """A Flow / FlowWithSource as Kestra serialises it (nulls left out)."""
    d = rev.doc
    out: dict[str, Any] = {"id": d["id"], "namespace": d["namespace"], "revision": rev.revision, "tenantId": tenant}
    for key in JSON_PASSTHROUGH:
        if d.get(key) is not None:
            out[key] = jsonable(d[key])
    labels = _labels(d.get("labels"))
    if labels is not None:
        out["labels"] = labels
    out["disabled"] = bool(d.get("disabled", False))
    out["deleted"] = rev.deleted
    out["updated"] = rev.updated
    if with_source:
        out["source"] = rev.source
    return out


class FlowExists(FlowInvalid):
    def __init__(self, flow_id: str):
        super().__init__([("flow.id", "Flow id already exists")])
        self.flow_id = flow_id


@dataclass
class FlowStore:
    """Revisions of every flow of one tenant. Not thread-safe: the server holds a lock."""
    rules: FlowRules = field(default_factory=FlowRules)
    revisions: dict[tuple[str, str], list[Revision]] = field(default_factory=dict)

    def latest(self, namespace: str, flow_id: str, allow_deleted: bool = False) -> Revision | None:
        revs = self.revisions.get((namespace, flow_id))
        if not revs or (revs[-1].deleted and not allow_deleted):
            return None
        return revs[-1]

    def get(self, namespace: str, flow_id: str, revision: int | None = None,
            allow_deleted: bool = False) -> Revision | None:
        if revision is None:
            return self.latest(namespace, flow_id, allow_deleted)
        for rev in self.revisions.get((namespace, flow_id), []):
            if rev.revision == revision and (allow_deleted or not rev.deleted):
                return rev
        return None

    def current(self) -> list[Revision]:
        return sorted((revs[-1] for revs in self.revisions.values() if not revs[-1].deleted),
                      key=lambda r: (r.namespace, r.id))

    def _save(self, doc: dict[str, Any], source: str) -> Revision:
        key = (doc["namespace"], doc["id"])
        revs = self.revisions.setdefault(key, [])
        if revs and not revs[-1].deleted and revs[-1].source == source:
            return revs[-1]
        rev = Revision(revs[-1].revision + 1 if revs else 1, source, doc, now_iso())
        revs.append(rev)
        return rev

    def create(self, source: str) -> Revision:
        doc = self.rules.parse(source)
        if self.latest(doc["namespace"], doc["id"]) is not None:
            raise FlowExists(doc["id"])
        return self._save(doc, source)

    def update(self, namespace: str, flow_id: str, source: str) -> Revision | None:
        """None when the flow does not exist (the real server answers a bare 404)."""
        if self.latest(namespace, flow_id) is None:
            return None
        doc = self.rules.parse(source)
        problems = []
        if doc["id"] != flow_id:
            problems.append(("flow.id", "Illegal flow id update"))
        if doc["namespace"] != namespace:
            problems.append(("flow.namespace", "Illegal namespace update"))
        if problems:
            raise FlowInvalid(problems, doc=doc)
        return self._save(doc, source)

    def create_or_update(self, source: str, allow_deleted: bool = False) -> Revision:
        doc = self.rules.parse(source)
        return self._save(doc, source) if allow_deleted or self.latest(doc["namespace"], doc["id"]) else \
            self.create(source)

    def delete(self, namespace: str, flow_id: str) -> Revision | None:
        latest = self.latest(namespace, flow_id)
        if latest is None:
            return None
        self.revisions[(namespace, flow_id)].append(
            Revision(latest.revision + 1, latest.source, latest.doc, now_iso(), deleted=True))
        return latest


# ---- multi-document handling, one splitter per endpoint, as in the real server ----

def _java_split(parts: list[str]) -> list[str]:
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


def split_sync(body: str) -> list[str]:
    """POST /flows/{namespace} and /flows/bulk: ``flows.split("---")``."""
    return _java_split(body.split("---"))


def split_validate(body: str) -> list[str]:
    """POST /flows/validate: ``body.trim().split("\\n+---\\n*?")``."""
    return _java_split(re.split(r"\n+---\n*?", body.strip()))


def split_import(body: str) -> list[str]:
    """POST /flows/import of a YAML file: split on lines that are exactly ``---``."""
    return re.split(r"(?m)^---[ \t]*$", body)


def zip_sources(entries: list[tuple[str, str]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, source in entries:
            zf.writestr(name, source)
    return buf.getvalue()


def read_upload(filename: str, data: bytes) -> list[tuple[str, str]]:
    """(name, source) pairs of an import upload; names are indexes for YAML, entry names for ZIP."""
    lower = filename.lower()
    if lower.endswith((".yml", ".yaml")):
        return [(str(i), s) for i, s in enumerate(split_import(data.decode()))]
    if lower.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return [(n, zf.read(n).decode()) for n in zf.namelist()
                    if not n.endswith("/") and n.lower().endswith((".yml", ".yaml"))]
    raise ValueError(f"Cannot import file of type {lower[lower.rfind('.'):] if '.' in lower else lower}")
