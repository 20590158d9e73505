"""A Kestra that answers without end, or with a ZIP bomb, is refused with one line, after
reading at most the cap (issue 12, item 8: no unbounded read)."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kestra_ops.adapters import kestra_http
from kestra_ops.adapters.kestra_api import KestraClient
from kestra_ops.errors import OperationFailed
from kestra_ops.workflows.flows import remote


class Endless(BaseHTTPRequestHandler):
    """200 with a body that never ends (chunked), JSON or not."""

    sent = 0

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"[" + b"0," * 32 * 1024
        try:
            while True:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                type(self).sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture()
def endless():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("call", ["export", "json"])
def test_an_endless_answer_is_cut_at_the_cap(endless, monkeypatch, call):
    monkeypatch.setattr(kestra_http, "MAX_BODY", 2 * 1024 * 1024)
    client = KestraClient(endless, retries=0, timeout=5)
    started = time.monotonic()
    with pytest.raises(OperationFailed, match="larger than 2,097,152 bytes; it was not read"):
        if call == "export":
            client.export_flows("company")
        else:
            client.get_flow("company", "a")
    assert time.monotonic() - started < 10


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_a_zip_bomb_is_refused_before_it_is_inflated():
    bomb = _zip({"company/a.yaml": b"id: a\n" + b" " * (50 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    with pytest.raises(OperationFailed, match=r"company/a.yaml: more than [\d,]+ bytes"):
        remote.read_zip(bomb)


def test_too_many_bytes_in_all_are_refused(monkeypatch):
    from kestra_ops.workflows.flows import files

    monkeypatch.setattr(files, "MAX_TOTAL_BYTES", 1024 * 1024)
    data = _zip({f"company/f{i}.yaml": b"id: f\n" + b"#" * 300_000 for i in range(5)})
    with pytest.raises(OperationFailed, match="more than 1,048,576 bytes in all"):
        remote.read_zip(data)


def test_too_many_entries_are_refused(monkeypatch):
    from kestra_ops.workflows.flows import files

    monkeypatch.setattr(files, "MAX_FLOW_FILES", 10)
    data = _zip({f"company/f{i}.yaml": b"id: f\n" for i in range(11)})
    with pytest.raises(OperationFailed, match="more than 10 flow files"):
        remote.read_zip(data)


def test_a_normal_export_reads_as_before():
    data = _zip({"b/y.yml": b"id: y\n", "a/x.yaml": b"id: x\n", "README.md": b"no"})
    assert remote.read_zip(data) == [("a/x.yaml", "id: x\n"), ("b/y.yml", "id: y\n")]
