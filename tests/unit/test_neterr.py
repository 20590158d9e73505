"""Network errors in words, from the exceptions requests and urllib3 really raise (real sockets on
loopback; a connect timeout, which loopback cannot produce, from urllib3's own classes)."""

from __future__ import annotations

import socket
import threading

import pytest
import requests
import urllib3

from kestra_ops.adapters.neterr import describe
from tests.fakes.minio_health import MinioHealth, self_signed


def raised(fn) -> BaseException:
    try:
        fn()
    except Exception as err:  # noqa: BLE001 - the point is to look at it
        return err
    raise AssertionError("no error")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """Accepts connections and never answers; with ``close``, reads the request and closes."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    state = {"close": False, "conns": []}

    def serve():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            if state["close"]:  # read the request, then close: no answer, no reset
                conn.recv(65536)
                conn.close()
            else:
                state["conns"].append(conn)

    threading.Thread(target=serve, daemon=True).start()
    yield sock.getsockname()[1], state
    sock.close()
    for conn in state["conns"]:
        conn.close()


def test_connection_refused_through_requests_and_the_kubernetes_clients_urllib3():
    url = f"http://127.0.0.1:{free_port()}/version"
    assert describe(raised(lambda: requests.get(url, timeout=2))) == "connection refused"
    pool = urllib3.PoolManager()
    err = raised(lambda: pool.request("GET", url, retries=urllib3.Retry(1, backoff_factor=0)))
    assert type(err).__name__ == "MaxRetryError"  # what Kube.call used to print
    assert describe(err) == "connection refused"


def test_name_not_resolved():
    err = raised(lambda: requests.get("http://kestra-ops-no-such-host.invalid/", timeout=5))
    assert describe(err) == "name not resolved"


def test_tls_certificate_verify_failed_and_plain_http(tmp_path):
    with MinioHealth(tls=self_signed(tmp_path)) as server:
        err = raised(lambda: requests.get(server.url + "/minio/health/live", timeout=5))
        assert describe(err).startswith("TLS certificate verify failed: self")  # self-signed ...
    with MinioHealth() as plain:
        err = raised(lambda: requests.get(plain.url.replace("http:", "https:") + "/", timeout=5))
        assert describe(err) == ("TLS handshake failed: the server does not answer in TLS "
                                 "(plain HTTP?)")


def test_no_answer_and_closed_without_answer(silent_server):
    port, state = silent_server
    err = raised(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=(2, 0.2)))
    assert describe(err) == "timed out waiting for an answer"
    state["close"] = True
    err = raised(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=2))
    assert describe(err) == "connection closed without an answer"


def test_connect_timeout_as_urllib3_raises_it():
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

    try:
        try:
            raise TimeoutError("timed out")
        except TimeoutError as cause:
            raise ConnectTimeoutError(None, "Connection to 10.0.0.1 timed out. (connect "
                                            "timeout=1)") from cause
    except ConnectTimeoutError as inner:
        err = MaxRetryError(None, "/version", inner)
    assert describe(err) == "timed out connecting"
    assert describe(requests.exceptions.ConnectTimeout(err)) == "timed out connecting"


def test_unknown_errors_keep_their_words_not_their_class_or_reprs():
    from urllib3.exceptions import NewConnectionError

    err = NewConnectionError(object(), "<urllib3.connection.HTTPConnection object at 0x7f>: "
                                       "Failed to establish a new connection: [Errno 71] "
                                       "Protocol error")
    assert describe(err) == "cannot open a connection"
    assert describe(ValueError("<obj at 0x1>: [Errno 5] something odd\nsecond line")) == \
        "something odd"
