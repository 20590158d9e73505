"""A fake Kubernetes API server speaking the real REST protocol over plain HTTP.

Start it, write a kubeconfig pointing at it, and use the official `kubernetes` client (or any
other client) unchanged:

    kube = FakeKube().start()
    cfg = kube.write_kubeconfig(tmp_path / "kubeconfig")
    ...
    kube.stop()

`kube.store` seeds and inspects objects (Store.create/get/list/patch/delete/set_log),
`kube.controller` simulates the Deployment / ReplicaSet / StatefulSet / Job controllers and the
kubelet (set_failure, tick, seed_completed_job_pod, trigger_cronjob), `kube.deny()` simulates
missing RBAC, `kube.fail_next()` injects server errors, `kube.requests` records every request.
Only the standard library is used. Modules: kube_store (objects, resourceVersion, GC),
kube_rules (defaults, validation, Status errors), kube_patch (selectors, patches, timestamps),
kube_handlers (watch, logs, discovery, SSAR, scale), kube_controller + kube_workloads
(controllers), kube_kubelet (pod status, Istio injection, events).
"""
from __future__ import annotations

import base64
import json
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from . import kube_patch as kp
from .kube_controller import Controller
from .kube_rules import ApiError, bad_request, details, forbidden
from .kube_store import GROUPS, Store, resolve
from .kube_handlers import (check_kind, group, group_names, list_response, logs_response,
                            pod_proxy, resource_list, scale_view, ssar, update_scale,
                            watch_stream)

__all__ = ["FakeKube", "ApiError", "RecordedRequest", "fake_kube_fixture"]

PATCH_TYPES = {"application/json-patch+json": "json", "application/merge-patch+json": "merge",
               "application/strategic-merge-patch+json": "strategic",
               "application/apply-patch+yaml": "apply"}


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict
    content_type: str | None
    body: object  # parsed JSON when possible, else text


class FakeKube:
    def __init__(self, *, namespaces=("hyperplane-kestra",), user="kubernetes-admin",
                 token="fake-token", require_auth=True, git_version="v1.31.4",
                 ready_delay=0.05, controller=True, tick_interval=0.01, watch_timeout=5.0):
        self.store = Store()
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease", *namespaces):
            if not self.store.get("namespaces", None, ns):
                self.store.create({"metadata": {"name": ns}}, resource="namespaces")
        self.internal_errors: list[str] = []  # tracebacks of bugs in the fake (API + controller)
        self.controller = Controller(self.store, ready_delay=ready_delay, interval=tick_interval,
                                     errors=self.internal_errors)
        self.user, self.token, self.require_auth = user, token, require_auth
        self.git_version, self.watch_timeout = git_version, watch_timeout
        self.requests: list[RecordedRequest] = []
        self.kubeconfig: Path | None = None
        self._auto_controller = controller
        self._denied: list[tuple] = []
        self._faults: list[dict] = []
        self.pod_servers: list[tuple[str, int, str]] = []  # (pod name prefix, port, base URL)
        self._server: ThreadingHTTPServer | None = None
        self.stopping = threading.Event()

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> "FakeKube":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        threading.Thread(target=self._server.serve_forever, args=(0.05,),
                         name="fake-kube-api", daemon=True).start()
        if self._auto_controller:
            self.controller.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.controller.stop()
        with self.store.changed:
            self.store.changed.notify_all()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def write_kubeconfig(self, path, context="fake", namespace="hyperplane-kestra", *,
                         token=None, user="fake-user", cluster="fake-cluster"):
        """Write a kubeconfig (YAML) for this server; returns `path` unchanged."""
        q = json.dumps
        text = (f"apiVersion: v1\nkind: Config\nclusters:\n- name: {q(cluster)}\n  cluster:\n"
                f"    server: {q(self.url)}\ncontexts:\n- name: {q(context)}\n  context:\n"
                f"    cluster: {q(cluster)}\n    user: {q(user)}\n    namespace: {q(namespace)}\n"
                f"current-context: {q(context)}\nusers:\n- name: {q(user)}\n  user:\n"
                f"    token: {q(token or self.token)}\npreferences: {{}}\n")
        Path(path).write_text(text)
        return path

    # ----------------------------------------------------------------- RBAC and faults
    def deny(self, verb, resource, namespace=None) -> None:
        """Forbid `verb` ("*" for all) on `resource` ("pods", "pods/log", "deployments.apps",
        "*") in `namespace` (None: everywhere), like a missing RBAC rule."""
        self._denied.append((verb, resource, namespace))

    def allow(self, verb, resource, namespace=None) -> None:
        self._denied = [d for d in self._denied if d != (verb, resource, namespace)]

    def is_allowed(self, verb, resource, namespace=None) -> tuple[bool, str]:
        """resource: "plural[/sub]" or "plural.group[/sub]"."""
        base, _, sub = resource.partition("/")
        try:
            res = resolve(base)
            names = {res.plural, res.gr}
        except KeyError:
            names = {base}
        names = {f"{n}/{sub}" if sub else n for n in names}
        for d_verb, d_res, d_ns in self._denied:
            if d_verb in ("*", verb) and d_res in names | {"*"} and d_ns in (None, namespace):
                where = f' in namespace "{namespace}"' if namespace else ""
                return False, (f'RBAC: user "{self.user}" has no rule granting "{verb}" on '
                               f'"{resource}"{where}')
        return True, f'RBAC: allowed by ClusterRoleBinding "fake-admin" of ClusterRole ' \
                     f'"cluster-admin" to User "{self.user}"'

    def fail_next(self, verb, resource, *, code=500, reason="InternalError", message=None,
                  times=1, namespace=None) -> None:
        """Make the next `times` matching requests fail with a Status of `code`/`reason`."""
        self._faults.append({"verb": verb, "resource": resource, "namespace": namespace,
                             "times": times, "error": ApiError(code, reason, message or
                             f"fake failure injected for {verb} {resource}")})

    def _check_fault(self, verb, resource, namespace):
        for f in self._faults:
            if f["times"] > 0 and f["verb"] in ("*", verb) and f["resource"] in ("*", resource) \
                    and f["namespace"] in (None, namespace):
                f["times"] -= 1
                raise f["error"]

    # ----------------------------------------------------------------- helpers for tests
    def serve_pods(self, url: str, *, port: int = 8081, prefix: str = "") -> None:
        """The pod proxy sends requests for ``port`` of the pods named ``prefix``* to ``url``
        (the longest prefix wins); no server: the real API server's connection refused."""
        self.pod_servers.append((prefix, port, url))

    def pod_server(self, pod: str, port: int) -> str | None:
        found = [(len(p), u) for p, n, u in self.pod_servers if n == port and pod.startswith(p)]
        return max(found)[1] if found else None

    def seed(self, *objs, namespace=None) -> list[dict]:
        """Create objects directly in the store (status kept as given)."""
        return [self.store.create(o, namespace) for o in objs]

    def wait_until(self, predicate, timeout=3.0, interval=0.01) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return bool(predicate())

    def requests_matching(self, method=None, path_contains="") -> list[RecordedRequest]:
        return [r for r in self.requests
                if (method is None or r.method == method) and path_contains in r.path]


def fake_kube_fixture(**options):
    """A pytest fixture running a FakeKube per test, with `kube.kubeconfig` already written
    (context "fake", namespace hyperplane-kestra). In a conftest:
    `fake_kube = fake_kube_fixture(ready_delay=0.05)`. Fails the test on internal errors."""
    import pytest

    @pytest.fixture
    def _fixture(tmp_path):
        kube = FakeKube(**options).start()
        kube.kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        try:
            yield kube
        finally:
            kube.stop()
        assert not kube.internal_errors, "\n".join(kube.internal_errors)

    return _fixture


# --------------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver"
    disable_nagle_algorithm = True  # else Nagle + delayed ACK cost 40 ms per request

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        fake: FakeKube = self.server.fake
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip() or None
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        fake.requests.append(RecordedRequest(self.command, url.path, query, ctype, body))
        try:
            if fake.require_auth and fake.token and \
                    self.headers.get("Authorization") != f"Bearer {fake.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            if isinstance(body, str) and self.command != "GET":
                raise bad_request(f"the server could not parse the request body as JSON: "
                                  f"{body[:80]!r}")
            result = _route(fake, self.command, url.path, query, body, ctype)
        except ApiError as e:
            result = (e.code, e.status())
        except Exception:  # a bug in the fake: answer like the real server would, and keep it
            fake.internal_errors.append(traceback.format_exc())
            print(fake.internal_errors[-1], file=sys.stderr)
            result = (500, ApiError(500, "InternalError", "fake apiserver internal error").status())
        if callable(result):
            return self._stream(result)
        code, payload, *ctype_out = result
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype_out[0] if ctype_out else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", base64.b16encode(time.time_ns().to_bytes(8, "big")).decode())
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _stream(self, gen):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for line in gen():
                data = (json.dumps(line) + "\n").encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:
            self.server.fake.internal_errors.append(traceback.format_exc())
        self.close_connection = True


def _not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _route(fake: FakeKube, method, path, query, body, ctype):
    path = "/" + path.strip("/")
    parts = [p for p in path.split("/") if p]
    if path in ("/healthz", "/livez", "/readyz"):
        return 200, "ok", "text/plain; charset=utf-8"
    if path == "/version":
        major, minor = fake.git_version.lstrip("v").split(".")[:2]
        return 200, {"major": major, "minor": minor, "gitVersion": fake.git_version,
                     "gitCommit": "0" * 40, "gitTreeState": "clean",
                     "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.22.9",
                     "compiler": "gc", "platform": "linux/amd64"}
    if parts == ["api"]:
        return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": fake.url.split("//")[1]}]}
    if parts == ["apis"]:
        return 200, {"kind": "APIGroupList", "apiVersion": "v1",
                     "groups": [group(g) for g in group_names()]}
    if len(parts) == 2 and parts[0] == "apis":
        if parts[1] not in group_names():
            raise _not_found()
        return 200, {"kind": "APIGroup", "apiVersion": "v1", **group(parts[1])}
    if len(parts) >= 2 and parts[0] == "api":
        gv, rest = parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        raise _not_found()
    if gv not in GROUPS:
        raise _not_found()
    if not rest:
        return 200, resource_list(gv)
    ns = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        ns, rest = rest[1], rest[2:]
    if len(rest) >= 3 and rest[0] == "pods" and rest[2] == "proxy" and ns and method == "GET":
        if not fake.is_allowed("get", "pods/proxy", ns)[0]:
            raise forbidden(resolve("pods"), "get", rest[1], ns, fake.user, "proxy")
        return pod_proxy(fake, ns, rest[1], "/".join(rest[3:]), query)
    if len(rest) > 3:
        raise _not_found()
    plural, name, sub = (rest + [None, None])[:3]
    res = next((r for r in GROUPS[gv] if r.plural == plural), None)
    if res is None or (ns and not res.namespaced) or (sub and sub not in res.sub):
        raise _not_found()
    watch = query.get("watch") in ("true", "1")
    verb = {"GET": "get" if name else ("watch" if watch else "list"),
            "POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if name else "deletecollection"}[method]
    if res.namespaced and not ns and (name or verb not in ("list", "watch")):
        raise _not_found()
    if verb not in res.verbs or (verb == "create" and name) or \
            (verb in ("update", "patch") and not name):
        raise ApiError(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource", {})
    resource = f"{res.plural}/{sub}" if sub else res.plural
    allowed, _ = fake.is_allowed(verb, resource, ns)
    if not allowed:
        raise forbidden(res, verb, name, ns, fake.user, sub)
    fake._check_fault(verb, resource, ns)
    dry = query.get("dryRun") == "All"
    store = fake.store
    if res.kind == "SelfSubjectAccessReview":
        return 201, ssar(fake, body or {})
    if verb in ("list", "watch", "deletecollection"):
        try:
            items = store.list(res, ns, query.get("labelSelector"), query.get("fieldSelector"))
        except kp.SelectorError as e:
            raise bad_request(str(e)) from None
        if verb == "watch":
            rv = query.get("resourceVersion") or "0"
            if not rv.isdigit():
                raise bad_request(f'invalid resource version "{rv}"')
            return lambda: watch_stream(fake, res, ns, query)
        if verb == "deletecollection":
            items = [store.delete(res, o["metadata"].get("namespace"), o["metadata"]["name"],
                                  dry_run=dry)[0] for o in items]
        return 200, list_response(res, items, store.resource_version, query)
    if verb == "get":
        if sub == "log":
            return logs_response(store, ns, name, query)
        obj = store.read(res, ns, name)
        return 200, scale_view(res, obj) if sub == "scale" else obj
    if body is not None and not isinstance(body, (dict, list)):
        raise bad_request("the body of the request was in an unknown format")
    if verb in ("create", "update") and isinstance(body, dict):
        check_kind(res, body, sub)
    if verb == "create":
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        return 201, store.create(body, ns, resource=res, api=True, dry_run=dry)
    if verb == "update":
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        if sub == "scale":
            return 200, update_scale(store, res, ns, name, body, dry)
        return 200, store.replace(body, ns, resource=res, name=name, api=True,
                                  subresource=sub, dry_run=dry)
    if verb == "patch":
        ptype = PATCH_TYPES.get(ctype or "")
        if ptype is None:
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an "
                           f"unknown format - accepted media types include: "
                           f"{', '.join(PATCH_TYPES)}")
        if ptype == "apply" and not query.get("fieldManager"):
            raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: '
                           'fieldManager: Required value: is required for apply patch')
        if sub == "scale":
            apply = {"json": kp.json_patch, "merge": kp.merge_patch}.get(
                ptype, kp.strategic_merge_patch)
            try:
                patched = apply(scale_view(res, store.read(res, ns, name)), body)
            except kp.PatchError as e:
                raise ApiError(422, "Invalid", str(e)) from None
            return 200, update_scale(store, res, ns, name, patched, dry)
        return 200, store.patch(res, ns, name, body, ptype, api=True, subresource=sub,
                                dry_run=dry)
    # delete
    opts = body if isinstance(body, dict) else {}
    propagation = opts.get("propagationPolicy") or query.get("propagationPolicy")
    obj, removed = store.delete(res, ns, name, propagation=propagation,
                                preconditions=opts.get("preconditions"), dry_run=dry)
    if res.kind in ("Pod", "Namespace") or not removed:
        return 200, obj
    return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                 "details": {**details(res, name), "uid": obj["metadata"]["uid"]}}
