"""Kestra 1.x query filters (``filters[field][OP]=value``) for the fake Kestra server.

Mirrors ``io.kestra.webserver.converters.QueryFilterFormatBinder`` and
``io.kestra.core.models.QueryFilter`` (read from the Kestra source):

- the wire format is ``filters[<field>][<OP>]=<value>`` or, for labels,
  ``filters[labels][<OP>][<key>]=<value>``; ``<field>`` is the camelCase value
  (``namespace``, ``flowId``, ``state``, ``startDate``, ``q``, ...) and ``<OP>`` an
  upper-case ``QueryFilter.Op``;
- for ``IN``/``NOT_IN`` only the FIRST value is used, split on commas
  (``filters[state][IN]=RUNNING,PAUSED``): a repeated key silently loses values;
- ``PREFIX`` on a namespace matches the namespace itself and its children;
- an operation a field does not support, or a field the resource does not support,
  is a 400 (``InvalidQueryFiltersException``); an unknown field or op name is a 422.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

FIELDS = {  # wire value -> QueryFilter.Field name
    "q": "QUERY", "scope": "SCOPE", "namespace": "NAMESPACE", "kind": "KIND", "labels": "LABELS",
    "flowId": "FLOW_ID", "updated": "UPDATED", "startDate": "START_DATE", "endDate": "END_DATE",
    "state": "STATE", "timeRange": "TIME_RANGE", "triggerExecutionId": "TRIGGER_EXECUTION_ID",
    "triggerId": "TRIGGER_ID", "triggerState": "TRIGGER_STATE", "executionId": "EXECUTION_ID",
    "childFilter": "CHILD_FILTER", "workerId": "WORKER_ID", "existingOnly": "EXISTING_ONLY",
    "level": "MIN_LEVEL", "path": "PATH", "parentPath": "PARENT_PATH", "version": "VERSION",
}
OPS = ("EQUALS", "NOT_EQUALS", "GREATER_THAN", "LESS_THAN", "GREATER_THAN_OR_EQUAL_TO",
       "LESS_THAN_OR_EQUAL_TO", "IN", "NOT_IN", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "REGEX", "PREFIX")
_STR_OPS = ("EQUALS", "NOT_EQUALS", "CONTAINS", "STARTS_WITH", "ENDS_WITH", "REGEX", "IN", "NOT_IN", "PREFIX")
_DATE_OPS = ("GREATER_THAN_OR_EQUAL_TO", "GREATER_THAN", "LESS_THAN_OR_EQUAL_TO", "LESS_THAN", "EQUALS", "NOT_EQUALS")
SUPPORTED_OPS = {
    "QUERY": ("EQUALS", "NOT_EQUALS"), "SCOPE": ("EQUALS", "NOT_EQUALS"), "NAMESPACE": _STR_OPS,
    "KIND": ("EQUALS", "NOT_EQUALS", "IN", "NOT_IN"), "LABELS": ("EQUALS", "NOT_EQUALS", "IN", "NOT_IN", "CONTAINS"),
    "FLOW_ID": _STR_OPS, "UPDATED": _DATE_OPS, "START_DATE": _DATE_OPS, "END_DATE": _DATE_OPS,
    "STATE": ("EQUALS", "NOT_EQUALS", "IN", "NOT_IN"), "TIME_RANGE": ("EQUALS",),
    "TRIGGER_EXECUTION_ID": ("EQUALS", "NOT_EQUALS", "CONTAINS", "STARTS_WITH", "ENDS_WITH", "IN", "NOT_IN"),
    "CHILD_FILTER": ("EQUALS", "NOT_EQUALS"),
}
RESOURCE_FIELDS = {
    "FLOW": ("LABELS", "NAMESPACE", "QUERY", "SCOPE", "FLOW_ID"),
    "EXECUTION": ("QUERY", "SCOPE", "FLOW_ID", "START_DATE", "END_DATE", "STATE", "LABELS",
                  "TRIGGER_EXECUTION_ID", "CHILD_FILTER", "NAMESPACE", "KIND"),
}
FILTER_KEY = re.compile(r"filters\[(.*?)]\[(.*?)](?:\[(.+)])?")
SYSTEM_NAMESPACE = "system"


class FilterError(Exception):
    """A filter the real server refuses; ``status`` is 400 (unsupported) or 422 (unknown name)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class QueryFilter:
    field: str  # QueryFilter.Field name, e.g. NAMESPACE
    op: str
    value: Any


def parse_filters(query: dict[str, list[str]], resource: str) -> list[QueryFilter]:
    """Parse ``filters[...]`` keys of a query (values are lists, as from ``parse_qs``)."""
    filters: list[QueryFilter] = []
    labels_by_op: dict[str, dict[str, str]] = {}
    for key, values in query.items():
        if not key.startswith("filters["):
            continue
        m = FILTER_KEY.fullmatch(key)
        if not m:
            continue
        wire_field, op, nested = m.groups()
        field = FIELDS.get(wire_field)
        if field is None:
            raise FilterError(422, f"Illegal argument: Unsupported value '{wire_field}' for field")
        if op not in OPS:
            raise FilterError(422, f"Illegal argument: Unsupported value '{op}' for operation")
        if field == "LABELS" and nested is not None:
            labels_by_op.setdefault(op, {})[nested] = values[0]
            continue
        if nested is not None:
            value: Any = {nested: values[0]}
        elif op in ("IN", "NOT_IN"):
            value = [v for v in re.sub(r"[\[\]]", "", values[0]).split(",")]
        else:
            value = values[0] if len(values) == 1 else list(values)
        filters.append(QueryFilter(field, op, value))
    for op, labels in labels_by_op.items():
        filters.append(QueryFilter("LABELS", op, labels))
    errors = []
    for f in filters:
        if f.op not in SUPPORTED_OPS.get(f.field, ()):
            errors.append(f"Operation {f.op} is not supported for field {f.field}. Supported operations are "
                          + ", ".join(SUPPORTED_OPS.get(f.field, ())))
        if f.field not in RESOURCE_FIELDS[resource]:
            errors.append(f"Field {f.field} is not supported for resource {resource}. Supported fields are "
                          + ", ".join(RESOURCE_FIELDS[resource]))
    if errors:
        raise FilterError(400, "Invalid query filters: " + "; ".join(errors))
    return filters


def legacy_filters(query: dict[str, list[str]], names: Iterable[str]) -> list[QueryFilter]:
    """Deprecated plain parameters (``namespace=``, ``q=``, ``state=``, ``labels=k:v`` ...),
    used by the real server only when no ``filters[...]`` is given."""
    out: list[QueryFilter] = []
    for name in names:
        values = query.get(name)
        if not values:
            continue
        if name == "namespace":
            out.append(QueryFilter("NAMESPACE", "PREFIX", values[0]))
        elif name == "q":
            out.append(QueryFilter("QUERY", "EQUALS", values[0]))
        elif name == "flowId":
            out.append(QueryFilter("FLOW_ID", "EQUALS", values[0]))
        elif name == "state":
            out.append(QueryFilter("STATE", "IN", [s for v in values for s in v.split(",")]))
        elif name == "scope":
            out.append(QueryFilter("SCOPE", "EQUALS", values[0]))
        elif name == "labels":
            out.append(QueryFilter("LABELS", "EQUALS", dict(v.split(":", 1) for v in values if ":" in v)))
        elif name in ("startDate", "endDate"):
            out.append(QueryFilter("START_DATE" if name == "startDate" else "END_DATE",
                                   "GREATER_THAN_OR_EQUAL_TO" if name == "startDate" else "LESS_THAN_OR_EQUAL_TO",
                                   values[0]))
    return out


def parse_datetime(value: str) -> datetime:
    v = value.strip().replace("Z", "+00:00").replace(" ", "+")
    dt = datetime.fromisoformat(v)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _match_string(actual: str | None, op: str, value: Any, namespace_prefix: bool = False) -> bool:
    actual = actual or ""
    values = value if isinstance(value, list) else [value]
    v = str(values[0]) if values else ""
    if op == "EQUALS":
        return actual == v
    if op == "NOT_EQUALS":
        return actual != v
    if op == "CONTAINS":
        return v in actual
    if op == "STARTS_WITH":
        return actual.startswith(v)
    if op == "ENDS_WITH":
        return actual.endswith(v)
    if op == "REGEX":
        return re.search(v, actual) is not None
    if op == "IN":
        return actual in [str(x) for x in values]
    if op == "NOT_IN":
        return actual not in [str(x) for x in values]
    if op == "PREFIX":
        return actual == v or actual.startswith(v + ".")
    return False


def _match_date(actual: str | None, op: str, value: Any) -> bool:
    if not actual:
        return False
    a, v = parse_datetime(actual), parse_datetime(str(value))
    return {
        "EQUALS": a == v, "NOT_EQUALS": a != v, "GREATER_THAN": a > v, "LESS_THAN": a < v,
        "GREATER_THAN_OR_EQUAL_TO": a >= v, "LESS_THAN_OR_EQUAL_TO": a <= v,
    }[op]


def _match_labels(labels: list[dict[str, str]], op: str, value: Any) -> bool:
    have = {lab["key"]: lab["value"] for lab in labels or []}
    if isinstance(value, dict):
        wanted = value
    else:
        items = value if isinstance(value, list) else [value]
        wanted = dict(str(i).split(":", 1) for i in items if ":" in str(i))
    hits = [have.get(k) == v for k, v in wanted.items()]
    if op in ("EQUALS", "CONTAINS"):
        return all(hits)
    if op == "NOT_EQUALS":
        return not all(hits)
    if op == "IN":
        return any(hits)
    return not any(hits)  # NOT_IN


def matches(doc: dict[str, Any], filters: list[QueryFilter], text_fields: tuple[str, ...] = ("id", "namespace"),
            extra: Callable[[QueryFilter, dict[str, Any]], bool | None] | None = None) -> bool:
    """True when the flow/execution JSON ``doc`` passes every filter."""
    for f in filters:
        if extra is not None:
            r = extra(f, doc)
            if r is not None:
                if not r:
                    return False
                continue
        if f.field == "NAMESPACE":
            ok = _match_string(doc.get("namespace"), f.op, f.value)
        elif f.field == "FLOW_ID":
            ok = _match_string(doc.get("flowId", doc.get("id")), f.op, f.value)
        elif f.field == "QUERY":
            needle = str(f.value).lower()
            found = any(needle in str(doc.get(k) or "").lower() for k in text_fields)
            ok = found if f.op == "EQUALS" else not found
        elif f.field == "SCOPE":
            values = f.value if isinstance(f.value, list) else str(f.value).split(",")
            scope = "SYSTEM" if doc.get("namespace") == SYSTEM_NAMESPACE else "USER"
            ok = (scope in values) if f.op == "EQUALS" else (scope not in values)
        elif f.field == "LABELS":
            ok = _match_labels(doc.get("labels") or [], f.op, f.value)
        else:
            ok = True
        if not ok:
            return False
    return True


def match_state(current: str, f: QueryFilter) -> bool:
    return _match_string(current, f.op, f.value)


def match_date(actual: str | None, f: QueryFilter) -> bool:
    return _match_date(actual, f.op, f.value)
