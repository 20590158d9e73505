"""A fake Kestra 1.3 server (OSS, tenant ``main``) speaking real HTTP, for tests of a ``requests`` client.

    with FakeKestra() as kestra:                      # 127.0.0.1, ephemeral port, daemon threads
        s = requests.Session(); s.auth = (kestra.username, kestra.password)
        s.post(kestra.api_url + "/flows", data=yaml_src, headers={"Content-Type": "application/x-yaml"})
        kestra.fail_next(2, status=503); kestra.slow(0.2); kestra.drop_next(1)
        assert kestra.calls("POST", r"/flows/bulk$")[0].query["delete"] == ["false"]

Served (paths as in the OpenAPI document, ``{tenant}`` must be ``main``, other tenants are 404):
see ``ROUTES``. Not in the document but served like the real server: ``GET /api/v1/basicAuthValidationErrors``
and the management endpoints ``/health``, ``/health/liveness``, ``/health/readiness`` (port 8081 on a
real server, no auth; here on the same port).

Auth (AuthenticationFilter of Kestra OSS): every ``/api/v1/**`` call needs the ``BASIC_AUTH`` cookie
(base64 of ``user:password``, read first) or ``Authorization: Basic`` except ``/api/v1/configs`` and, while basic auth is not initialised, ``/api/v1/basicAuthValidationErrors``;
otherwise 401 with ``WWW-Authenticate: Basic`` and an empty body. Errors carry Micronaut's JsonError
body: ``{"message": ..., "_links": {"self": {...}}, "_embedded": {"errors": [{"message", "path"}]}}``.

Fault injection applies before auth and routing, to every path unless ``path`` (a regex searched in
the URL path) or ``method`` narrows it: ``fail_next`` answers a status (default 503), ``drop_next``
closes the connection without an answer, ``slow`` delays answers. ``reset_faults`` clears them.

State: in memory by default; ``FakeKestra(backend=Backend(...))`` keeps flows, executions, KV
metadata and namespace-file metadata in PostgreSQL and KV values, namespace files and execution
files in an S3 bucket, laid out as a real Kestra does (kestra_store), so that a database + bucket
restore brings a second instance the same state. Tasks it really runs (KV reads, namespace-file
downloads): kestra_canary.

Modules: kestra_server (this: HTTP server, routing, auth, faults, FakeKestra), kestra_http (request,
response, recorded traffic), kestra_handlers (misc and flow endpoints), kestra_flows (flow parsing,
validation, revisions), kestra_executions (execution state machine and endpoints), kestra_filters
(``filters[field][OP]`` query filters), kestra_storage_handlers (KV and namespace-file endpoints),
kestra_store (memory / PostgreSQL + S3 state), kestra_persist (backed-mode load and sync),
kestra_canary (interpreted tasks), kestra_contract (OpenAPI checks, independent of the fake).
"""
from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from . import kestra_executions as executions
from . import kestra_handlers as handlers
from . import kestra_persist as persist
from . import kestra_storage_handlers as storage
from .kestra_executions import Execution, new_id, plan_seeded
from .kestra_flows import FlowRules, FlowStore, flow_json
from .kestra_store import Backend, KestraData
from .kestra_http import (Exchange, Fault, HttpError, RecordedRequest, RecordedResponse, Request, Response,
                          error_response)

__all__ = ["FakeKestra", "Backend", "RecordedRequest", "RecordedResponse", "Exchange", "ROUTES", "UNDOCUMENTED_ROUTES"]


# (method, OpenAPI path template, handler). Listed in the OpenAPI document unless noted.
ROUTES: list[tuple[str, str, Callable[..., Response]]] = [
    ("GET", "/api/v1/configs", handlers.configs),
    ("GET", "/api/v1/basicAuthValidationErrors", handlers.basic_auth_errors),  # not in the document
    ("GET", "/api/v1/{tenant}/flows/search", handlers.search_flows),
    ("GET", "/api/v1/{tenant}/flows/distinct-namespaces", handlers.distinct_namespaces),
    ("GET", "/api/v1/{tenant}/flows/export/by-query", handlers.export_by_query),
    ("POST", "/api/v1/{tenant}/flows/export/by-ids", handlers.export_by_ids),
    ("POST", "/api/v1/{tenant}/flows/validate", handlers.validate_flows),
    ("POST", "/api/v1/{tenant}/flows/import", handlers.import_flows),
    ("POST", "/api/v1/{tenant}/flows/bulk", handlers.bulk_update),
    ("POST", "/api/v1/{tenant}/flows", handlers.create_flow),
    ("GET", "/api/v1/{tenant}/flows/{namespace}", handlers.list_namespace),
    ("POST", "/api/v1/{tenant}/flows/{namespace}", handlers.sync_namespace),
    ("GET", "/api/v1/{tenant}/flows/{namespace}/{id}", handlers.get_flow),
    ("PUT", "/api/v1/{tenant}/flows/{namespace}/{id}", handlers.update_flow),
    ("DELETE", "/api/v1/{tenant}/flows/{namespace}/{id}", handlers.delete_flow),
    ("GET", "/api/v1/{tenant}/flows/{namespace}/{id}/revisions", handlers.flow_revisions),
    ("GET", "/api/v1/{tenant}/executions/search", executions.search_executions),
    ("POST", "/api/v1/{tenant}/executions/{namespace}/{id}", executions.create_execution),
    ("GET", "/api/v1/{tenant}/executions/{executionId}", executions.get_execution),
    ("DELETE", "/api/v1/{tenant}/executions/{executionId}", executions.delete_execution),
    ("GET", "/api/v1/{tenant}/executions/{executionId}/follow", executions.follow_execution),
    ("DELETE", "/api/v1/{tenant}/executions/{executionId}/kill", executions.kill_execution),
    ("GET", "/api/v1/{tenant}/namespaces/{namespace}/kv", storage.list_kv),
    ("GET", "/api/v1/{tenant}/namespaces/{namespace}/kv/{key}", storage.get_kv),
    ("PUT", "/api/v1/{tenant}/namespaces/{namespace}/kv/{key}", storage.put_kv),
    ("DELETE", "/api/v1/{tenant}/namespaces/{namespace}/kv/{key}", storage.delete_kv),
    ("GET", "/api/v1/{tenant}/namespaces/{namespace}/files", storage.file_content),
    ("POST", "/api/v1/{tenant}/namespaces/{namespace}/files", storage.create_file),
    ("GET", "/api/v1/{tenant}/namespaces/{namespace}/files/directory", storage.list_directory),
    ("GET", "/health", handlers.health),  # management port, not in the document
    ("GET", "/health/liveness", handlers.health),
    ("GET", "/health/readiness", handlers.health),
]
UNDOCUMENTED_ROUTES = {("GET", "/api/v1/basicAuthValidationErrors"), ("GET", "/health"),
                       ("GET", "/health/liveness"), ("GET", "/health/readiness")}


def _compile(template: str) -> tuple[re.Pattern, tuple[int, ...]]:
    segs = template.strip("/").split("/")
    rx = "/" + "/".join("(?P<%s>[^/]+)" % s[1:-1] if s.startswith("{") else re.escape(s) for s in segs)
    return re.compile(rx + "$"), tuple(0 if s.startswith("{") else 1 for s in segs)


_COMPILED = [(m, t, h, *_compile(t)) for m, t, h in ROUTES]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: "FakeKestra"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 30

    def log_message(self, fmt: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle + delayed ACK cost ~40 ms a call
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        self.server.fake._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        fake = self.server.fake
        url = urllib.parse.urlsplit(self.path)
        path, raw_query = url.path, url.query
        query = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        recorded = RecordedRequest(self.command, path, query,
                                   {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "cookie")}, body)
        with fake._lock:
            fake.requests_log.append(recorded)
            if fake._backend_pending and not fake.paused:
                fake._backend_pending = False
                fake._open_backend()
        fault = fake._take_fault(self.command, path)
        if fault is not None and fault.kind == "drop":
            fake._record(recorded, RecordedResponse(None, {}, b""))
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        for delay in fake._delays(self.command, path):
            time.sleep(delay)
        req = Request(fake, self.command, path, raw_query, query, headers, body)
        if fault is not None and fault.kind == "fail":
            resp = Response(fault.status, fault.body if fault.body is not None else
                            {"message": f"{fault.status} (injected fault)"}, headers=dict(fault.headers or {}))
        elif fake.paused:  # its pods are gone (kestra_persist.pause): no database connection
            resp = Response(503, {"message": "Kestra is not running"})
        else:
            try:
                resp = self._route(req)
                fake.sync()
            except HttpError as e:
                resp = error_response(req, e)
            except Exception as e:  # a bug in the fake: make it loud, like a 500 from the server
                resp = error_response(req, HttpError(500, f"Internal server error: {e!r}"))
        self._send(recorded, resp)

    def _route(self, req: Request) -> Response:
        fake = req.fake
        if req.path.startswith("/api/v1/") and not fake._open_path(req.path) and not fake._authorized(req.headers):
            return Response(401, None, None, {"WWW-Authenticate": "Basic"})
        candidates = []
        for method, template, handler, rx, literal in _COMPILED:
            m = rx.match(req.path)
            if m:
                candidates.append((method, template, handler, literal, m))
        allowed = [c for c in candidates if c[0] == req.method]
        if not allowed:
            if candidates:
                raise HttpError(405, "Method Not Allowed")
            raise HttpError(404, "Page Not Found")
        _, template, handler, _, m = max(allowed, key=lambda c: c[3])
        req.params = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
        req.template = template
        if "tenant" in req.params and req.params["tenant"] != fake.tenant:
            raise HttpError(404, "Not Found")
        return handler(req)

    def _send(self, recorded: RecordedRequest, resp: Response) -> None:
        fake = self.server.fake
        headers = dict(resp.headers)
        if resp.stream is not None:
            headers.update({"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"})
            self._write_head(resp.status, headers)
            sent = b""
            try:
                for chunk in resp.stream:
                    sent += chunk
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                if resp.abort:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                else:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
            except OSError:
                self.close_connection = True
            fake._record(recorded, RecordedResponse(resp.status, headers, sent))
            return
        if isinstance(resp.body, (bytes, bytearray)):
            payload = bytes(resp.body)
        elif resp.body is None:
            payload = b""
        else:
            payload = json.dumps(resp.body).encode()
        if payload and resp.content_type:
            headers.setdefault("Content-Type", resp.content_type)
        headers["Content-Length"] = str(len(payload))
        fake._record(recorded, RecordedResponse(resp.status, headers, payload))
        try:
            self._write_head(resp.status, headers)
            if self.command != "HEAD":
                self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _write_head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()


class FakeKestra:
    """An in-memory Kestra (OSS 1.3, tenant ``main``) behind a real HTTP server. See module doc."""

    def __init__(self, username: str = "admin@example.com", password: str = "Kestra-Passw0rd", *,
                 version: str = "1.3.2", step_seconds: float = 0.05,
                 known_plugin_prefixes: tuple[str, ...] = ("io.kestra.",),
                 fail_markers: tuple[str, ...] = ("Fail",), hang_markers: tuple[str, ...] = ("Hang",),
                 deprecated_types: tuple[str, ...] = (), basic_auth_initialized: bool = True,
                 follow_not_found_seconds: float = 0.5, host: str = "127.0.0.1", tenant: str = "main",
                 backend: Backend | None = None, open_backend_on_first_request: bool = False):
        self.username, self.password = username, password
        self.version = version
        self.paused = False  # kestra_persist.pause/resume: Kestra stopped, as its pods are
        self.step_seconds = step_seconds
        self.basic_auth_initialized = basic_auth_initialized
        self.basic_auth_validation_errors: list[str] = []
        self.follow_not_found_seconds = follow_not_found_seconds
        self.liveness_up = True
        self.readiness_up = True
        self.tenant = tenant
        self.host = host
        self.flow_store = FlowStore(FlowRules(tuple(known_plugin_prefixes), tuple(fail_markers),
                                              tuple(hang_markers), tuple(deprecated_types)))
        self.executions: dict[str, Execution] = {}
        self.backend = backend  # None: everything in memory; else PostgreSQL + S3 (kestra_store)
        # a Kestra started before its database is restored (a disaster recovery, a drill): the
        # backend is opened (tables made, state read) by the first request, not by start()
        self._backend_pending = backend is not None and open_backend_on_first_request
        self.data = KestraData.memory(tenant)
        self._persisted_flows: set[tuple[str, str, int]] = set()
        self._persisted_executions: dict[str, tuple[Any, dict[str, Any]]] = {}
        self.requests_log: list[RecordedRequest] = []
        self.exchanges: list[Exchange] = []
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----
    def start(self) -> "FakeKestra":
        if self.backend is not None and not self._backend_pending:
            self._open_backend()
        self._server = _Server((self.host, 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        name="fake-kestra", daemon=True)
        self._thread.start()
        return self

    def _open_backend(self) -> None:
        """(Re)open the database and the bucket and read what is there."""
        self.data = KestraData.backed(self.backend, self.tenant)
        with self._lock:
            self.flow_store.revisions.clear()
            self.executions.clear()
            self._persisted_flows.clear()
            self._persisted_executions.clear()
            persist.load(self)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        if self.backend is not None and not self._backend_pending:
            try:
                with self._lock:
                    persist.sync(self)
            finally:
                self.data.close()
        self._server.server_close()
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server = None

    def __enter__(self) -> "FakeKestra":
        return self.start() if self._server is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeKestra not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Base of the tenant-scoped API: ``<url>/api/v1/main``."""
        return f"{self.url}/api/v1/{self.tenant}"

    @staticmethod
    def routes() -> list[tuple[str, str]]:
        """(method, OpenAPI path template) of everything served."""
        return [(m, t) for m, t, _ in ROUTES]

    # ---- fault injection ----
    def fail_next(self, n: int = 1, status: int = 503, *, path: str | None = None, method: str | None = None,
                  body: Any = None, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``n`` matching requests with ``status`` (a JSON error body unless ``body``)."""
        with self._lock:
            self._faults.append(Fault("fail", n, path, method, status, body=body, headers=headers))

    def drop_next(self, n: int = 1, *, path: str | None = None, method: str | None = None) -> None:
        """Close the connection of the next ``n`` matching requests without answering."""
        with self._lock:
            self._faults.append(Fault("drop", n, path, method))

    def slow(self, seconds: float, *, n: int | None = None, path: str | None = None,
             method: str | None = None) -> None:
        """Delay matching requests by ``seconds`` (the next ``n``, or all until ``reset_faults``)."""
        with self._lock:
            self._faults.append(Fault("slow", n, path, method, seconds=seconds))

    def reset_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.kind in ("fail", "drop") and f.matches(method, path) and (f.remaining or 0) > 0:
                    f.remaining = (f.remaining or 0) - 1
                    return f
        return None

    def _delays(self, method: str, path: str) -> list[float]:
        with self._lock:
            out = []
            for f in self._faults:
                if f.kind == "slow" and f.matches(method, path) and (f.remaining is None or f.remaining > 0):
                    if f.remaining is not None:
                        f.remaining -= 1
                    out.append(f.seconds)
            return out

    # ---- auth ----
    def _open_path(self, path: str) -> bool:
        if path.endswith("/configs"):
            return True
        return path.endswith(("/basicAuth", "/basicAuthValidationErrors")) and not self.basic_auth_initialized

    def _authorized(self, headers: dict[str, str]) -> bool:
        # BasicAuthService.isAuthenticated: the BASIC_AUTH cookie first (what reaches Kestra through
        # the API server's service proxy, which strips Authorization), else the Basic header
        token = _cookie(headers.get("cookie", ""), "BASIC_AUTH")
        if token is None:
            value = headers.get("authorization", "")
            if not value.lower().startswith("basic "):
                return False
            token = value[6:].strip()
        try:
            user, _, pwd = base64.b64decode(token).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return self.basic_auth_initialized and (user, pwd) == (self.username, self.password)

    # ---- recording ----
    def _record(self, req: RecordedRequest, resp: RecordedResponse) -> None:
        with self._lock:
            self.exchanges.append(Exchange(req, resp))

    def calls(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Recorded requests by method and ``path`` regex (searched), e.g. ``calls("POST", r"/flows/bulk$")``."""
        with self._lock:
            return [r for r in self.requests_log if (method is None or r.method == method.upper())
                    and (path is None or re.search(path, r.path))]

    def clear_log(self) -> None:
        with self._lock:
            self.requests_log.clear()
            self.exchanges.clear()

    # ---- seeding and inspection (no HTTP) ----
    def sync(self) -> None:
        """Backed mode: write new flow revisions and changed executions to the database now
        (done after every request and at stop, e.g. call it before a backup of a running fake)."""
        with self._lock:
            persist.sync(self)

    def put_kv(self, namespace: str, key: str, value: Any) -> None:
        """Store a KV value as PUT .../kv/{key} would (a new version)."""
        with self._lock:
            self.data.kv_put(namespace, key, value)

    def put_namespace_file(self, namespace: str, path: str, data: bytes) -> None:
        """Store a namespace file (``path`` like ``/dir/f.txt``) as POST .../files would."""
        with self._lock:
            self.data.file_put(namespace, "/" + path.lstrip("/"), data)

    def add_flow(self, source: str) -> dict[str, Any]:
        """Store a flow as POST /flows would (creates or updates); raises FlowInvalid."""
        with self._lock:
            return flow_json(self.flow_store.create_or_update(source), with_source=True, tenant=self.tenant)

    def flow(self, namespace: str, flow_id: str) -> dict[str, Any] | None:
        with self._lock:
            rev = self.flow_store.latest(namespace, flow_id)
            return flow_json(rev, with_source=True, tenant=self.tenant) if rev else None

    def all_flows(self) -> list[dict[str, Any]]:
        with self._lock:
            return [flow_json(r, with_source=True, tenant=self.tenant) for r in self.flow_store.current()]

    def add_execution(self, namespace: str, flow_id: str, state: str = "RUNNING", *, started_ago: float = 0.0,
                      labels: dict[str, str] | None = None, flow_revision: int = 1) -> dict[str, Any]:
        """Seed an execution already in ``state`` (e.g. a RUNNING one started two hours ago)."""
        ex_id = new_id()
        labs = [{"key": k, "value": v} for k, v in (labels or {}).items()]
        labs.append({"key": "system.correlationId", "value": ex_id})
        ex = Execution(ex_id, namespace, flow_id, flow_revision, labs, {}, [], plan_seeded(state, started_ago),
                       tenant=self.tenant)
        ex.created = ex.plan[0][1]
        with self._lock:
            self.executions[ex_id] = ex
        return ex.to_json()

    def execution(self, execution_id: str) -> dict[str, Any] | None:
        with self._lock:
            ex = self.executions.get(execution_id)
            return ex.to_json() if ex else None

    def set_execution_state(self, execution_id: str, state: str) -> None:
        with self._lock:
            self.executions[execution_id].force(state, self.step_seconds)


def _cookie(header: str, name: str) -> str | None:
    for pair in header.split(";"):
        key, eq, value = pair.partition("=")
        if eq and key.strip() == name:
            return value.strip()
    return None
