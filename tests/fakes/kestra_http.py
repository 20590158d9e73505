"""HTTP plumbing shared by the fake Kestra server modules: the parsed request, responses,
Micronaut-style JsonError bodies, recorded traffic and fault descriptions."""
from __future__ import annotations

import email.parser
import email.policy
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, NamedTuple

from .kestra_filters import FilterError, QueryFilter, legacy_filters, parse_filters
from .kestra_flows import FlowInvalid

if TYPE_CHECKING:
    from .kestra_server import FakeKestra

YAML = "application/x-yaml"
MULTIPART = "multipart/form-data"


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able, bytes, or None
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[bytes] | None = None  # text/event-stream chunks
    abort: bool = False  # for streams: end by closing the connection (server-side error mid-stream)


class HttpError(Exception):
    def __init__(self, status: int, message: str, errors: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors or []


def error_response(req: "Request", e: HttpError) -> Response:
    href = req.path + (f"?{req.raw_query}" if req.raw_query else "")
    body: dict[str, Any] = {"message": e.message, "_links": {"self": {"href": href, "templated": False}}}
    if e.errors:
        body["_embedded"] = {"errors": [{"message": m, "path": p} if p else {"message": m} for p, m in e.errors]}
    return Response(e.status, body)


def invalid(e: FlowInvalid) -> HttpError:
    return HttpError(422, f"Invalid entity: {e.message}", e.violations)


def require_media(req: "Request", *allowed: str | None) -> None:
    if req.media_type not in allowed:
        raise HttpError(415, f"Unsupported Media Type: {req.media_type}; this endpoint consumes "
                             + ", ".join(a for a in allowed if a))


def paged(req: "Request", items: list[Any]) -> dict[str, Any]:
    page, size = req.q_int("page", 1), req.q_int("size", 10)
    bad = [(n, "must be greater than or equal to 1") for n, v in (("page", page), ("size", size)) if v < 1]
    if bad:
        raise HttpError(422, "Invalid entity: " + ", ".join(f"{n}: {m}" for n, m in bad), bad)
    return {"results": items[(page - 1) * size: page * size], "total": len(items)}


def filters_for(req: "Request", resource: str, legacy: tuple[str, ...]) -> list[QueryFilter]:
    try:
        filters = parse_filters(req.query, resource)
    except FilterError as e:
        raise HttpError(e.status, str(e)) from None
    return filters or legacy_filters(req.query, legacy)


class RecordedRequest(NamedTuple):
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # without Authorization
    body: bytes


class RecordedResponse(NamedTuple):
    status: int | None  # None: connection dropped
    headers: dict[str, str]
    body: bytes  # for an SSE stream, everything that was streamed


class Exchange(NamedTuple):
    request: RecordedRequest
    response: RecordedResponse


@dataclass
class Fault:
    kind: str  # fail | drop | slow
    remaining: int | None
    path: str | None = None
    method: str | None = None
    status: int = 503
    seconds: float = 0.0
    body: Any = None
    headers: dict[str, str] | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and \
            (self.path is None or re.search(self.path, path) is not None)


@dataclass
class Request:
    fake: FakeKestra
    method: str
    path: str
    raw_query: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    template: str = ""

    @property
    def media_type(self) -> str | None:
        ct = self.headers.get("content-type")
        return ct.split(";")[0].strip().lower() if ct else None

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def q_bool(self, name: str, default: bool) -> bool:
        value = self.q(name)
        if value is None or value == "":
            return default
        if value.lower() not in ("true", "false"):
            raise HttpError(400, f"Bad Request: Failed to convert argument [{name}] for value [{value}]")
        return value.lower() == "true"

    def q_int(self, name: str, default: int | None) -> int | None:
        value = self.q(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise HttpError(400, f"Bad Request: Failed to convert argument [{name}] for value [{value}]") from None

    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as e:
            raise HttpError(422, f"Invalid json: {e}") from None

    def multipart(self) -> list[tuple[str, str | None, bytes]]:
        """(name, filename, data) of a multipart/form-data body."""
        head = f"Content-Type: {self.headers.get('content-type')}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + self.body)
        if not msg.is_multipart():
            raise HttpError(400, "Bad Request: malformed multipart body")
        return [(p.get_param("name", header="content-disposition"), p.get_filename(),
                 p.get_payload(decode=True) or b"") for p in msg.iter_parts()]


