"""The Kestra API client against the fake Kestra server (real HTTP), and client_for_env against
the fake Kubernetes API (a real kubeconfig): every call, typed errors, retries, paging."""

from __future__ import annotations

import base64
import http.client
import io
import re
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kestra_ops.adapters.kestra_api import KestraClient, KestraValidationError
from kestra_ops.adapters.kestra_route import kube_session as _kube_session
from kestra_ops.wiring import INSECURE_WARNING, client_for_env
from kestra_ops.adapters.kube import Kube
from kestra_ops.errors import (Conflict, InvalidInput, NotFound, OperationFailed,
                               PermissionDenied, Unreachable)
from kestra_ops.settings import Environment
from tests.fakes.kestra_server import FakeKestra

NS = "company.team"
FLOW = (f"id: hello\nnamespace: {NS}\ntasks:\n  - id: log\n"
        "    type: io.kestra.plugin.core.log.Log\n    message: hi\n")
FAILING = (f"id: boom\nnamespace: {NS}\ntasks:\n  - id: fail\n"
           "    type: io.kestra.plugin.core.execution.Fail\n")
HANGING = (f"id: stuck\nnamespace: {NS}\ntasks:\n  - id: Hang\n"
           "    type: io.kestra.plugin.core.flow.Pause\n")
VALUES = {"kestra": {"server": {"basic-auth": {"username": "admin@example.com",
                                               "password": "${KESTRA_BASIC_AUTH_PASSWORD}"}}},
          "existingSecrets": {"basicAuth": {"name": "kestra-login", "passwordKey": "pw"}}}


def flow(flow_id: str, ns: str = NS) -> str:
    return FLOW.replace("id: hello", f"id: {flow_id}").replace(f"namespace: {NS}", f"namespace: {ns}")


@pytest.fixture
def kestra():
    with FakeKestra(step_seconds=0.02, follow_not_found_seconds=0.1) as fake:
        yield fake


@pytest.fixture
def client(kestra):
    with KestraClient(kestra.url, kestra.username, kestra.password, backoff=0.01, timeout=5) as c:
        yield c


# ---------------------------------------------------------------- every call
def test_configs_and_basic_auth_validation_errors(kestra, client):
    assert client.configs()["version"] == kestra.version
    assert client.basic_auth_validation_errors() == []
    kestra.basic_auth_validation_errors = ["Invalid username for Basic Authentication."]
    assert client.basic_auth_validation_errors() == ["Invalid username for Basic Authentication."]


def test_flow_create_get_update_delete(kestra, client):
    created = client.create_flow(FLOW)
    assert (created["id"], created["revision"]) == ("hello", 1)
    assert client.get_flow(NS, "hello")["source"].startswith("id: hello")
    assert "source" not in client.get_flow(NS, "hello", source=False)
    assert client.update_flow(NS, "hello", FLOW + "# changed\n")["revision"] == 2
    assert client.get_flow(NS, "hello", revision=1)["revision"] == 1
    client.delete_flow(NS, "hello")
    assert kestra.flow(NS, "hello") is None
    with pytest.raises(NotFound, match=r"GET flows/company\.team/hello: not found \(404\)"):
        client.get_flow(NS, "hello")


def test_validate_export_import(kestra, client):
    results = client.validate_flows(FLOW + "---\nid: x\nnamespace: y\ntasks: []\n")
    assert [r.get("constraints") for r in results] == [None, "tasks: must not be empty"]
    client.create_flow(FLOW)
    client.create_flow(flow("other", "elsewhere"))
    data = client.export_flows(NS)
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == [f"{NS}-hello.yml"]
    assert len(zipfile.ZipFile(io.BytesIO(client.export_flows())).namelist()) == 2
    with FakeKestra() as other:
        target = KestraClient(other.url, other.username, other.password)
        assert target.import_flows(data, "flows.zip") == []
        assert other.flow(NS, "hello")["source"] == kestra.flow(NS, "hello")["source"]
        assert other.calls("POST", "/flows/import$")[0].query["failOnError"] == ["false"]


def test_pagination_over_more_than_a_page(kestra, client):
    for i in range(230):
        kestra.add_flow(flow(f"f{i:03d}", NS if i % 2 else "other.ns"))
    kestra.add_flow(flow("child", f"{NS}.sub"))
    everything = list(client.search_flows(page_size=100))
    assert len(everything) == 231 == len({(f["namespace"], f["id"]) for f in everything})
    assert [c.query["page"] for c in kestra.calls("GET", "/flows/search$")] == [["1"], ["2"], ["3"]]
    ours = list(client.search_flows(NS, page_size=50))
    assert len(ours) == 116 and {f["namespace"] for f in ours} == {NS, f"{NS}.sub"}
    assert len(list(client.search_flows(NS, page_size=50, prefix=False))) == 115


def test_namespace_sync_always_sends_delete(kestra, client):
    kestra.add_flow(flow("keep-me"))
    client.update_namespace(NS, FLOW + "---\n" + FAILING, delete=False)
    assert kestra.flow(NS, "keep-me") is not None  # the server's default (true) would delete it
    assert kestra.calls("POST", f"/flows/{NS}$")[0].query["delete"] == ["false"]
    client.update_namespace(NS, FLOW, delete=True)
    assert kestra.flow(NS, "keep-me") is None and kestra.flow(NS, "boom") is None
    assert kestra.calls("POST", f"/flows/{NS}$")[1].query["delete"] == ["true"]


def final_state(client, execution_id: str, timeout: float = 5.0) -> dict:
    """Poll get_execution until the execution has ended (as the e2e-flow check does)."""
    deadline = time.monotonic() + timeout
    while True:
        execution = client.get_execution(execution_id)
        if execution["state"]["current"] in KestraClient.TERMINAL_STATES:
            return execution
        assert time.monotonic() < deadline, f"execution still {execution['state']['current']}"
        time.sleep(0.02)


@pytest.mark.parametrize("source, final", [(FLOW, "SUCCESS"), (FAILING, "FAILED")])
def test_execution_runs_to_a_final_state(kestra, client, source, final):
    created = client.create_flow(source)
    ex = client.create_execution(NS, created["id"], labels={"run": "test"},
                                 schedule_date="2020-01-01T00:00:00Z")
    assert ex["state"]["current"] not in KestraClient.TERMINAL_STATES
    assert final_state(client, ex["id"])["state"]["current"] == final
    assert {"key": "run", "value": "test"} in client.get_execution(ex["id"])["labels"]
    call = kestra.calls("POST", rf"/executions/{NS}/{created['id']}$")[0]
    assert call.query["scheduleDate"] == ["2020-01-01T00:00:00Z"]
    with pytest.raises(NotFound):
        client.get_execution("nope")


def test_execution_inputs_and_search(kestra, client):
    client.create_flow(HANGING)
    client.create_flow(FLOW.replace("tasks:", "inputs:\n  - id: n\n    type: INT\ntasks:"))
    ex = client.create_execution(NS, "hello", inputs={"n": 3})
    assert kestra.execution(ex["id"])["inputs"] == {"n": 3}
    final_state(client, ex["id"])
    stuck = client.create_execution(NS, "stuck")
    deadline = time.monotonic() + 5
    while client.get_execution(stuck["id"])["state"]["current"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    running = list(client.search_executions(state="RUNNING", namespace=NS))
    assert [e["id"] for e in running] == [stuck["id"]]
    assert len(list(client.search_executions(state=["RUNNING", "SUCCESS"], page_size=1))) == 2
    assert [e["id"] for e in client.search_executions(flow_id="hello")] == [ex["id"]]


# ---------------------------------------------------------------- typed errors
def test_wrong_password_is_permission_denied_without_the_password(kestra):
    bad = KestraClient(kestra.url, kestra.username, "Wrong-Passw0rd")
    with pytest.raises(PermissionDenied) as err:
        list(bad.search_flows())
    message = str(err.value)
    assert "GET flows/search: 401" in message and "Wrong-Passw0rd" not in message
    assert "KESTRA_OPS_BASIC_AUTH_USERNAME" in message and kestra.password not in message
    anonymous = KestraClient(f"http://admin%40example.com:Secret-Passw0rd@127.0.0.1:{kestra.port}")
    assert anonymous.username == "admin@example.com" and "Secret" not in repr(anonymous)
    with pytest.raises(PermissionDenied) as err:
        KestraClient(kestra.url).get_flow(NS, "x")
    assert "no credentials were sent" in str(err.value)


def test_conflict_and_validation_errors_are_typed(kestra, client):
    client.create_flow(FLOW.replace("tasks:", "disabled: true\ntasks:"))
    with pytest.raises(Conflict, match="POST executions/company.team/hello: conflict"):
        client.create_execution(NS, "hello")
    with pytest.raises(KestraValidationError) as err:
        client.create_flow(FLOW)
    assert err.value.errors == ["flow.id: Flow id already exists"] and err.value.exit_code == 2
    with pytest.raises(KestraValidationError) as err:
        client.create_flow("id: x\nnamespace: Bad NS\ntasks: []\n")
    assert len(err.value.errors) == 2 and err.value.errors[1] == "tasks: must not be empty"


# ---------------------------------------------------------------- retries and faults
def test_5xx_burst_on_get_is_retried(kestra, client):
    kestra.add_flow(FLOW)
    kestra.fail_next(2, status=503, path="/flows/search$")
    assert [f["id"] for f in client.search_flows()] == ["hello"]
    assert len(kestra.calls("GET", "/flows/search$")) == 3
    kestra.fail_next(1, status=502, method="PUT")
    assert client.update_flow(NS, "hello", FLOW + "#\n")["revision"] == 2
    kestra.fail_next(10, status=500, path="/flows/search$")
    with pytest.raises(OperationFailed, match="answered 500 after 4 attempts"):
        list(client.search_flows())


@pytest.mark.parametrize("call, path", [
    (lambda c: c.create_flow(FLOW), r"/flows$"),
    (lambda c: c.create_execution(NS, "boom"), r"/executions/company\.team/boom$"),
    (lambda c: c.import_flows(b"id: a\nnamespace: b\n", "f.yml"), r"/flows/import$"),
    (lambda c: c.update_namespace(NS, FLOW, delete=False), rf"/flows/{NS}$"),
])
def test_5xx_or_dropped_connection_on_creates_is_not_retried(kestra, client, call, path):
    kestra.add_flow(FAILING)
    kestra.fail_next(1, status=503, method="POST", path=path)
    with pytest.raises(OperationFailed, match="answered 503: 503"):
        call(client)
    assert len(kestra.calls("POST", path)) == 1
    kestra.drop_next(1, method="POST", path=path)
    with pytest.raises(Unreachable, match="connection closed without an answer"):
        call(client)
    assert len(kestra.calls("POST", path)) == 2
    assert kestra.flow(NS, "hello") is None and len(kestra.executions) == 0


def test_dropped_connection_on_get_is_retried(kestra, client):
    kestra.add_flow(FLOW)
    kestra.drop_next(2, path="/flows/company.team/hello$")
    assert client.get_flow(NS, "hello")["id"] == "hello"
    assert len(kestra.calls("GET", "/flows/company.team/hello$")) == 3


def test_slow_answer_is_unreachable_after_the_timeout(kestra):
    kestra.slow(1.5, n=1, path="/flows/search$")
    client = KestraClient(kestra.url, kestra.username, kestra.password, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(Unreachable, match=r"GET flows/search: .* did not answer within 0.3s"):
        list(client.search_flows())
    assert time.monotonic() - started < 1.2  # a read timeout is not retried
    with pytest.raises(Unreachable, match="connection refused"):
        KestraClient("http://127.0.0.1:9", retries=1, backoff=0.01).configs()


# ---------------------------------------------------------------- client_for_env
def env(tmp_path: Path, kestra_url: str | None = None) -> Environment:
    return Environment(name="dev", root=tmp_path, kestra_url=kestra_url)


def test_url_precedence(tmp_path):
    creds = {"KESTRA_OPS_BASIC_AUTH_USERNAME": "a@b.c", "KESTRA_OPS_BASIC_AUTH_PASSWORD": "Passw0rd-x"}
    e = env(tmp_path, "https://from-config.example/")
    pick = lambda environ, flag=None: client_for_env(e, environ={**creds, **environ},  # noqa: E731
                                                     kestra_url=flag).url
    assert pick({}) == "https://from-config.example"
    assert pick({"KESTRA_OPS_KESTRA_URL": "https://from-var.example"}) == "https://from-var.example"
    assert pick({"KESTRA_OPS_KESTRA_URL": "https://v.example"}, "http://flag:80/") == "http://flag:80"
    assert pick({}, "https://u:Pass-w0rd@[::1]:8443/kestra/") == "https://[::1]:8443/kestra"
    client = client_for_env(e, environ=creds, insecure=True)
    assert client.verify is False and client.warnings == [INSECURE_WARNING]
    assert client.credentials_source == "environment" and client.route.startswith("kestra_url")
    with pytest.raises(InvalidInput, match="expected http"):
        client_for_env(e, environ=creds, kestra_url="kestra:8080")


def test_credentials_from_the_secret(tmp_path, kestra, fake_kube):
    fake_kube.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kestra-login"},
                    "data": {"pw": base64.b64encode(kestra.password.encode()).decode()}},
                   namespace="hyperplane-kestra")
    client = client_for_env(env(tmp_path, kestra.url), environ={}, values=VALUES)
    assert (client.username, client.credentials_source) == (kestra.username, "secret kestra-login")
    assert client.create_flow(FLOW)["id"] == "hello"
    # the username from the variable wins over values; the password still comes from the Secret
    other = client_for_env(env(tmp_path, kestra.url), values=VALUES,
                           environ={"KESTRA_OPS_BASIC_AUTH_USERNAME": "ops@example.com"})
    assert other.username == "ops@example.com"
    values = {**VALUES, "existingSecrets": {"basicAuth": {"name": "missing", "passwordKey": "pw"}}}
    none = client_for_env(env(tmp_path, kestra.url), environ={}, values=values)
    assert none.credentials_source is None and "secret missing: not found" in none.no_credentials_reason
    with pytest.raises(PermissionDenied, match="no credentials were sent .*secret missing"):
        none.get_flow(NS, "hello")


def test_credentials_and_url_from_the_env_layers(tmp_path, kestra, fake_kube):
    (tmp_path / "values").mkdir()
    (tmp_path / "values" / "base.yaml").write_text(
        "kestra:\n  server:\n    basic-auth:\n      username: admin@example.com\n"
        "existingSecrets:\n  basicAuth:\n    name: kestra-basic-auth\n    passwordKey: password\n")
    (tmp_path / "values" / "dev.yaml").write_text("service:\n  port: 8080\n")
    fake_kube.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kestra-basic-auth"},
                    "data": {"password": base64.b64encode(kestra.password.encode()).decode()}},
                   namespace="hyperplane-kestra")
    e = Environment(name="dev", root=tmp_path, context="fake",
                    values=(Path("values/base.yaml"), Path("values/dev.yaml")))
    client = client_for_env(e, environ={})  # no URL anywhere: the Kubernetes service proxy
    assert client.url == (f"{fake_kube.url}/api/v1/namespaces/hyperplane-kestra/services/"
                          "kestra:8080/proxy")
    assert client.credentials_source == "secret kestra-basic-auth" and client.session.auth is None
    assert client.session.headers["Authorization"] == "Bearer fake-token"
    assert client.management_url.endswith("/services/kestra:8081/proxy")


class CookieKestra(FakeKestra):
    """FakeKestra that also reads the BASIC_AUTH cookie, as Kestra's AuthenticationFilter does."""

    def _authorized(self, headers):
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "BASIC_AUTH":
                return super()._authorized({"authorization": f"Basic {value}"})
        return super()._authorized(headers)


class ApiServerFront(ThreadingHTTPServer):
    """What kube-apiserver does in front of .../services/NAME:PORT/proxy/...: authenticate the
    bearer token, DELETE the Authorization header, forward the rest (streamed) to the service.
    Any other path goes to the fake API server unchanged."""

    daemon_threads = True

    def __init__(self, kube_url: str, kestra_url: str, token: str):
        super().__init__(("127.0.0.1", 0), _FrontHandler)
        self.kube, self.kestra, self.token = urlsplit(kube_url), urlsplit(kestra_url), token
        self.forwarded: list[dict[str, str]] = []
        threading.Thread(target=self.serve_forever, args=(0.01,), daemon=True).start()


class _FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        front: ApiServerFront = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        m = re.match(r"^/api/v1/namespaces/[^/]+/services/kestra:\d+/proxy(/.*)?$", self.path)
        target, path = front.kube, self.path
        if m:
            if headers.pop("Authorization", None) != f"Bearer {front.token}":
                return self._answer(401, {"kind": "Status", "message": "Unauthorized"})
            target, path = front.kestra, m.group(1) or "/"
            front.forwarded.append(dict(headers))
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        conn.request(self.command, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        while chunk := resp.read1(65536):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True
        conn.close()

    do_POST = do_PUT = do_DELETE = do_GET

    def _answer(self, status, doc):
        import json

        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_service_proxy_end_to_end_with_a_bearer_token(tmp_path, fake_kube):
    with CookieKestra(step_seconds=0.02) as kestra:
        front = ApiServerFront(fake_kube.url, kestra.url, fake_kube.token)
        try:
            kubeconfig = fake_kube.write_kubeconfig(tmp_path / "front")
            front_url = f"http://127.0.0.1:{front.server_port}"
            kubeconfig.write_text(kubeconfig.read_text().replace(fake_kube.url, front_url))
            kube = Kube(kubeconfig=str(kubeconfig), context="fake", namespace="hyperplane-kestra")
            fake_kube.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kestra-login"},
                            "data": {"pw": base64.b64encode(kestra.password.encode()).decode()}},
                           namespace="hyperplane-kestra")
            client = client_for_env(env(tmp_path), kube=kube, environ={}, values=VALUES)
            assert client.route.startswith("Kubernetes API service proxy")
            assert client.configs()["version"] == kestra.version
            client.create_flow(FLOW)
            ex = client.create_execution(NS, "hello")
            assert final_state(client, ex["id"])["state"]["current"] == "SUCCESS"
            client.delete_flow(NS, "hello")
            assert all("Authorization" not in h for h in front.forwarded)  # stripped by the API server
            token = base64.b64encode(f"{kestra.username}:{kestra.password}".encode()).decode()
            assert all(h.get("Cookie") == f"BASIC_AUTH={token}" for h in front.forwarded)
        finally:
            front.shutdown()
            front.server_close()


def test_kube_session_with_a_client_certificate(tmp_path):
    from kubernetes import client as k8s

    cfg = k8s.Configuration()
    cfg.host, cfg.cert_file, cfg.key_file = "https://api.example:6443", "/tmp/c.crt", "/tmp/c.key"
    cfg.ssl_ca_cert = "/tmp/ca.crt"
    kube = type("K", (), {"api_client": k8s.ApiClient(cfg)})()
    session, verify, headers = _kube_session(kube)
    assert session.cert == ("/tmp/c.crt", "/tmp/c.key") and verify == "/tmp/ca.crt"
    assert headers == {}  # Authorization stays free; Kestra's credentials go in the cookie anyway
