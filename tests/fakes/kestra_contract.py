"""Check HTTP requests and responses against Kestra's OpenAPI document (../shared/kestra-openapi.yml).

    contract = OpenAPIContract(path_to_yml)              # tenant "main" expected in {tenant}
    contract.check_request("GET", "/api/v1/main/flows/search", {"page": ["1"], "size": ["10"]}, None)
    contract.check_response("GET", "/api/v1/main/flows/search", 200, body_json)
    for ex in fake.exchanges: contract.check_exchange(ex.request, ex.response)

Every check raises AssertionError naming the operation and each violation. Rules:

- the path must match a documented template for that method (the most specific template wins,
  as in Micronaut: ``/flows/search`` beats ``/flows/{namespace}``); ``{tenant}`` must be the tenant;
- every query parameter must be documented and its value(s) must parse to the parameter schema
  (integers, booleans ``true``/``false``, enums, date-times); a repeated key is only allowed for
  arrays; a ``required`` parameter WITH a default is optional (the document marks every
  ``@QueryValue(defaultValue=...)`` required, the server does not need it);
- ``filters`` is documented as a form array of QueryFilter objects, but the wire format the server
  binds is ``filters[<field>][<OP>]=value`` (QueryFilterFormatBinder): such keys are accepted when
  the operation has a ``filters`` parameter, ``<field>`` maps to a ``QueryFilter.Field`` of the
  document and ``<OP>`` is a ``QueryFilter.Op``;
- the request content type must be one the operation consumes; no body where none is documented;
- a response status must be documented, except error statuses (>= 400) which the document
  mostly omits: their bodies must be Micronaut JsonError objects (``message`` string) or empty,
  also where the document lists the status without a body (e.g. 409 of killExecution);
- JSON bodies are validated (OpenAPI 3.0 read semantics, $refs resolved, formats checked) against
  the response schema after ERRATA: a few places where the document contradicts what Kestra
  serialises (each erratum carries the document's current value, so a test can notice when the
  document is fixed and the erratum becomes stale).
- ``text/event-stream`` bodies are checked event by event against the ``data`` property of the
  documented Event schema; the first ``id: start`` event of /follow only carries ``{"id": ...}``.
"""
from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import parse_qs

import yaml
from jsonschema import ValidationError
from jsonschema.validators import extend
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker

from .kestra_filters import FIELDS as FILTER_FIELDS

try:  # the document uses \p{Ll} / \p{L} (Java regexes), which `re` does not know
    import regex as _regex
except ImportError:  # pragma: no cover
    _regex = None

REMOVE = object()
FILTER_KEY = re.compile(r"filters\[(.*?)]\[(.*?)](?:\[(.+)])?")
# Served by a real Kestra but absent from the document (method, path regex, why).
KNOWN_UNDOCUMENTED = (
    ("GET", r"^/api/v1/basicAuthValidationErrors$", "OSS-only basic-auth setup endpoint"),
    ("GET", r"^/health(/liveness|/readiness)?$", "Micronaut management endpoints (port 8081)"),
)


@dataclass(frozen=True)
class Erratum:
    pointer: str  # JSON pointer under components, e.g. /schemas/AbstractFlow/properties/variables
    expected: Any  # what the document says today; a different value means the erratum is stale
    replacement: Any  # REMOVE drops the key
    reason: str


_PROPERTY_REASON = ("Kestra serialises Property<T> as the raw value or an expression string (e.g. `PT1M`, `5`, "
                    "`true`, `{{ inputs.x }}`); the document's `type: object` plus `oneOf: [object, string]` "
                    "rejects every scalar")
ERRATA: tuple[Erratum, ...] = (
    Erratum("/schemas/AbstractFlow/properties/variables/additionalProperties", False, REMOVE,
            "flow `variables` is a Map<String, Object>; `additionalProperties: false` rejects any variable"),
    Erratum("/schemas/PluginDefault/properties/values/additionalProperties", False, REMOVE,
            "pluginDefaults `values` is a Map<String, Object>; `additionalProperties: false` rejects any value"),
    Erratum("/schemas/FlowInterface/allOf/3/properties/variables/additionalProperties", {"type": "object"}, REMOVE,
            "flow `variables` is a Map<String, Object>; the document requires every variable to be an object"),
    Erratum("/schemas/KVController.KvDetail/properties/value/type", "object", REMOVE,
            "a KV value is any Ion/JSON value (KVController.get returns TypedValue(KVType, Object): a STRING, "
            "NUMBER or BOOLEAN value is a JSON scalar); `type: object` rejects every scalar"),
) + tuple(
    e for name in ("Property_Boolean_", "Property_Duration_", "Property_List_AssetIdentifier__",
                   "Property_List_Asset__", "Property_Object_", "Property_String_")
    for e in (Erratum(f"/schemas/{name}/type", "object", REMOVE, _PROPERTY_REASON),
              Erratum(f"/schemas/{name}/oneOf", [{"type": "object"}, {"type": "string"}], REMOVE, _PROPERTY_REASON))
)


def _pattern(validator: Any, patrn: str, instance: Any, schema: Any):
    if not validator.is_type(instance, "string"):
        return
    if _regex is not None:
        found = _regex.search(patrn, instance)
    else:  # pragma: no cover
        found = re.search(patrn.replace(r"\p{Ll}", "a-z").replace(r"\p{L}", "A-Za-z"), instance)
    if not found:
        yield ValidationError(f"{instance!r} does not match {patrn!r}")


ReadValidator = extend(OAS30ReadValidator, {"pattern": _pattern})
WriteValidator = extend(OAS30WriteValidator, {"pattern": _pattern})


@functools.lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader)


def _pointer_parts(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.strip("/").split("/")]


def resolve_pointer(root: Any, pointer: str) -> Any:
    node = root
    for part in _pointer_parts(pointer):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _media(content_type: str | None) -> str | None:
    return content_type.split(";")[0].strip().lower() if content_type else None


def normalize_query(query: Any) -> dict[str, list[str]]:
    """A raw query string, a mapping (values str or list) or (key, value) pairs, as dict of lists."""
    if query is None:
        return {}
    if isinstance(query, (str, bytes)):
        return parse_qs(query.decode() if isinstance(query, bytes) else query, keep_blank_values=True)
    items = query.items() if hasattr(query, "items") else query
    out: dict[str, list[str]] = {}
    for key, value in items:
        values = value if isinstance(value, (list, tuple)) else [value]
        out.setdefault(key, []).extend("true" if v is True else "false" if v is False else str(v) for v in values)
    return out


def parse_sse(body: bytes | str) -> list[tuple[str | None, Any]]:
    """(id, data-as-JSON) for each event of a text/event-stream body."""
    text = body.decode() if isinstance(body, bytes) else body
    events = []
    for block in re.split(r"\r?\n\r?\n", text):
        event_id, data = None, []
        for line in block.splitlines():
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                event_id = value
            elif name == "data":
                data.append(value)
        if data:
            events.append((event_id, json.loads("\n".join(data))))
    return events


class OpenAPIContract:
    def __init__(self, path: str | Path, *, tenant: str | None = "main", errata: Iterable[Erratum] = ERRATA,
                 allow_undocumented_errors: bool = True):
        self.path = Path(path)
        self.doc = _load(str(self.path.resolve()))
        self.tenant = tenant
        self.allow_undocumented_errors = allow_undocumented_errors
        self.errata = tuple(errata)
        self.components = copy.deepcopy(self.doc.get("components", {}))
        for e in self.errata:
            parts = _pointer_parts(e.pointer)
            parent = resolve_pointer(self.components, "/".join(parts[:-1]))
            if e.replacement is REMOVE:
                parent.pop(parts[-1], None)
            else:
                parent[parts[-1]] = e.replacement
        self._templates = []
        for template, item in self.doc.get("paths", {}).items():
            segs = template.strip("/").split("/")
            rx = "/" + "/".join("(?P<%s>[^/]+)" % s[1:-1] if s.startswith("{") else re.escape(s) for s in segs)
            self._templates.append((template, item, re.compile(rx + "$"), tuple(0 if "{" in s else 1 for s in segs)))
        self._validators: dict[tuple[int, bool], Any] = {}
        self.checked: set[tuple[str, str, str]] = set()  # (kind request|response, METHOD, template)

    # ---- lookup ----
    def stale_errata(self) -> list[Erratum]:
        """Errata whose target no longer holds the expected value in the document."""
        stale = []
        for e in self.errata:
            try:
                if resolve_pointer(self.doc["components"], e.pointer) != e.expected:
                    stale.append(e)
            except (KeyError, IndexError, TypeError):
                stale.append(e)
        return stale

    def operation(self, method: str, url_path: str) -> tuple[str, dict[str, Any], dict[str, str]]:
        """(template, operation object, path parameters) for a concrete path (a query part is ignored)."""
        method = method.lower()
        url_path = url_path.split("?", 1)[0]
        matches = [(t, item, rx.match(url_path), lit) for t, item, rx, lit in self._templates if rx.match(url_path)]
        if not matches:
            raise AssertionError(f"{method.upper()} {url_path}: no such path in the OpenAPI document")
        allowed = [m for m in matches if method in m[1]]
        if not allowed:
            documented = sorted({k.upper() for _, item, _, _ in matches for k in item if k != "parameters"})
            raise AssertionError(f"{method.upper()} {url_path}: method not documented for "
                                 f"{matches[0][0]} (documented: {', '.join(documented)})")
        template, item, m, _ = max(allowed, key=lambda x: x[3])
        return template, item[method], m.groupdict()

    def _resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/components/"):
            node = resolve_pointer(self.components, node["$ref"][len("#/components"):])
        return node

    def _parameters(self, template: str, op: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        params = {}
        for p in list(self.doc["paths"][template].get("parameters", [])) + list(op.get("parameters", [])):
            p = self._resolve(p)
            params[(p["in"], p["name"])] = p
        return params

    def _errors(self, schema: dict[str, Any], instance: Any, write: bool = False) -> list[str]:
        key = (id(schema), write)
        if key not in self._validators:
            root = {"components": self.components, **schema}
            cls = WriteValidator if write else ReadValidator
            self._validators[key] = (cls(root, format_checker=oas30_format_checker), schema)
        validator = self._validators[key][0]
        errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
        messages = ["at $" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
                    + f": {e.message[:300]}" for e in errors]
        return list(dict.fromkeys(messages))[:10]  # allOf chains repeat the same error

    def _coerce(self, schema: dict[str, Any], raw: str) -> Any:
        schema = self._resolve(schema)
        types = {self._resolve(s).get("type") for s in schema.get("allOf", [])} | {schema.get("type")}
        if "integer" in types:
            return int(raw) if re.fullmatch(r"-?\d+", raw) else raw
        if "number" in types:
            try:
                return float(raw)
            except ValueError:
                return raw
        if "boolean" in types:
            return {"true": True, "false": False}.get(raw, raw)
        return raw

    # ---- checks ----
    def check_request(self, method: str, url_path: str, query: Any = None, body_ct: str | None = None) -> str:
        """Check path, query parameters and request content type; returns the operationId."""
        template, op, path_params = self.operation(method, url_path)
        where = f"{method.upper()} {url_path} ({op.get('operationId')})"
        problems: list[str] = []
        params = self._parameters(template, op)
        for name, value in path_params.items():
            if name == "tenant" and self.tenant is not None and value != self.tenant:
                problems.append(f"path: tenant is {value!r}, expected {self.tenant!r}")
        q = normalize_query(query)
        if "?" in url_path:
            for key, values in normalize_query(url_path.split("?", 1)[1]).items():
                q.setdefault(key, []).extend(values)
        for key, values in q.items():
            m = FILTER_KEY.fullmatch(key)
            if m and ("query", "filters") in params:
                problems += self._check_filter(params[("query", "filters")], key, *m.groups())
                continue
            p = params.get(("query", key))
            if p is None:
                problems.append(f"query parameter {key!r} is not documented "
                                f"(documented: {', '.join(sorted(n for i, n in params if i == 'query')) or 'none'})")
                continue
            schema = self._resolve(p.get("schema", {}))
            if schema.get("type") == "array":
                items = values if p.get("explode", True) else [v for value in values for v in value.split(",")]
                item_schema = schema.get("items", {})
                for item in items:
                    problems += [f"query {key}={item!r} {err}" for err in
                                 self._errors(item_schema, self._coerce(item_schema, item), write=True)]
            else:
                if len(values) > 1:
                    problems.append(f"query parameter {key!r} repeated {len(values)} times but is not an array")
                problems += [f"query {key}={values[0]!r} {err}" for err in
                             self._errors(schema, self._coerce(schema, values[0]), write=True)]
        for (where_in, name), p in params.items():
            has_default = "default" in self._resolve(p.get("schema", {}))
            if where_in == "query" and p.get("required") and not has_default and name not in q \
                    and not (name == "filters" and any(k.startswith("filters[") for k in q)):
                problems.append(f"required query parameter {name!r} missing")
        body = op.get("requestBody")
        media = _media(body_ct)
        if body is None:
            if media:
                problems.append(f"sends a {media} body but the operation documents no request body")
        elif media is None:
            if body.get("required"):
                problems.append(f"request body required ({', '.join(body.get('content', {}))})")
        elif media not in body.get("content", {}):
            problems.append(f"content type {media} not accepted (documented: {', '.join(body.get('content', {}))})")
        if problems:
            raise AssertionError(f"{where} violates the OpenAPI document:\n  - " + "\n  - ".join(problems))
        self.checked.add(("request", method.upper(), template))
        return op.get("operationId", "")

    def _check_filter(self, param: dict[str, Any], key: str, field: str, op: str, nested: str | None) -> list[str]:
        items = self._resolve(self._resolve(param.get("schema", {})).get("items", {}))
        props = items.get("properties", {})
        fields = self._resolve(props.get("field", {})).get("enum", [])
        ops = self._resolve(props.get("operation", {})).get("enum", [])
        problems = []
        if FILTER_FIELDS.get(field) not in fields:
            problems.append(f"query {key}: filter field {field!r} is not a QueryFilter.Field of the document")
        if op not in ops:
            problems.append(f"query {key}: filter operation {op!r} is not a QueryFilter.Op of the document")
        return problems

    def check_response(self, method: str, url_path: str, status: int, json_body: Any = None, *,
                       content_type: str | None = "application/json") -> str:
        """Check a response status and (JSON) body; ``json_body=None`` means no body."""
        template, op, _ = self.operation(method, url_path)
        where = f"{method.upper()} {url_path} -> {status} ({op.get('operationId')})"
        responses = op.get("responses", {})
        spec = responses.get(str(status)) or responses.get("default")
        if spec is None:
            if status >= 400 and self.allow_undocumented_errors:
                if json_body is not None and not (isinstance(json_body, dict) and isinstance(
                        json_body.get("message"), str)):
                    raise AssertionError(f"{where}: error body is not a JsonError: {str(json_body)[:300]}")
                return op.get("operationId", "")
            raise AssertionError(f"{where}: status not documented (documented: {', '.join(responses)})")
        content = spec.get("content") or {}
        media = _media(content_type)
        problems = []
        if not content:
            if json_body not in (None, b"", "") and not (status >= 400 and self.allow_undocumented_errors
                                                       and isinstance(json_body, dict)
                                                       and isinstance(json_body.get("message"), str)):
                problems.append("the document declares no body for this status but one was sent")
        elif json_body is None and media is None:
            problems.append(f"body expected ({', '.join(content)})")
        elif media not in content:
            problems.append(f"content type {media} not documented (documented: {', '.join(content)})")
        else:
            schema = content[media].get("schema")
            if schema is not None and (media.endswith("json")):
                problems += self._errors(schema, json_body)
            elif schema is not None and media == "text/event-stream":
                problems += self._check_events(schema, json_body or [])
        if problems:
            raise AssertionError(f"{where} violates the OpenAPI document:\n  - " + "\n  - ".join(problems))
        self.checked.add(("response", method.upper(), template))
        return op.get("operationId", "")

    def _check_events(self, schema: dict[str, Any], events: list[tuple[str | None, Any]]) -> list[str]:
        data_schema = self._resolve(schema).get("properties", {}).get("data", schema)
        problems = []
        for i, (event_id, data) in enumerate(events):
            if event_id == "start" and i == 0:
                if not (isinstance(data, dict) and isinstance(data.get("id"), str)):
                    problems.append(f"event 0 (start): data must carry the execution id, got {data!r}")
                continue
            problems += [f"event {i} (id {event_id}) {err}" for err in self._errors(data_schema, data)]
        return problems

    def check_exchange(self, request: Any, response: Any = None) -> str | None:
        """Check one recorded exchange of FakeKestra (``fake.exchanges``). Known undocumented
        endpoints (KNOWN_UNDOCUMENTED) are skipped; returns the operationId, or None when skipped."""
        if any(m == request.method and re.search(rx, request.path) for m, rx, _ in KNOWN_UNDOCUMENTED):
            return None
        headers = {k.lower(): v for k, v in request.headers.items()}
        op_id = self.check_request(request.method, request.path, request.query,
                                   headers.get("content-type") if request.body else None)
        if response is None or response.status is None:
            return op_id
        rheaders = {k.lower(): v for k, v in response.headers.items()}
        ctype = _media(rheaders.get("content-type"))
        if not response.body:
            body: Any = None
        elif ctype == "text/event-stream":
            body = parse_sse(response.body)
        elif ctype and ctype.endswith("json"):
            body = json.loads(response.body)
        else:
            body = response.body
        self.check_response(request.method, request.path, response.status, body, content_type=ctype)
        return op_id
