"""The Kestra client's KV, namespace-file, namespace and execution-count calls against the fake
Kestra (in memory, real HTTP), and the fake's canary tasks (kv.Get, namespace.DownloadFiles)."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest

from kestra_ops.adapters.kestra_api import KestraClient, KestraValidationError
from kestra_ops.errors import InvalidInput, NotFound, OperationFailed
from tests.fakes.kestra_server import FakeKestra

NS = "company.team"


@pytest.fixture
def kestra():
    with FakeKestra(step_seconds=0.02) as fake:
        yield fake


@pytest.fixture
def client(kestra):
    with KestraClient(kestra.url, kestra.username, kestra.password, backoff=0.01, timeout=5) as c:
        yield c


def flow(flow_id: str, ns: str = NS, tasks: str | None = None) -> str:
    tasks = tasks or "  - id: log\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"
    return f"id: {flow_id}\nnamespace: {ns}\ntasks:\n{tasks}"


def finished(client: KestraClient, execution_id: str) -> dict:
    deadline = time.monotonic() + 5
    while True:
        ex = client.get_execution(execution_id)
        if ex["state"]["current"] in client.TERMINAL_STATES:
            return ex
        assert time.monotonic() < deadline
        time.sleep(0.02)


# ---------------------------------------------------------------- KV
def test_kv_round_trip_of_every_json_type(kestra, client):
    values = {"text": "hello", "number": 42, "ratio": 0.5, "flag": False, "doc": {"a": [1, "b"]},
              "quoted": 'say "hi"\n'}
    for key, value in values.items():
        client.put_kv(NS, key, value)
    assert client.kv_keys(NS) == sorted(values)
    assert {k: client.get_kv(NS, k) for k in values} == values
    sent = kestra.calls("PUT", r"/kv/text$")[0]
    assert sent.body == b'"hello"' and sent.headers["Content-Type"] == "text/plain"
    assert client.kv_keys("other.ns") == []


def test_kv_versions_delete_and_errors(kestra, client):
    client.put_kv(NS, "k", 1)
    client.put_kv(NS, "k", 2)
    assert client.get_kv(NS, "k") == 2
    assert kestra.data.objects.keys("main/company/team/_kv/") == [  # with its directory object
        "main/company/team/_kv/", "main/company/team/_kv/k.ion", "main/company/team/_kv/k.ion.v2"]
    assert client.delete_kv(NS, "k") is True and client.delete_kv(NS, "k") is False
    with pytest.raises(NotFound, match=r"GET namespaces/company\.team/kv/k: not found \(404\): .*No value"):
        client.get_kv(NS, "k")
    assert client.kv_keys(NS) == []
    with pytest.raises(KestraValidationError, match="422"):
        client.put_kv(NS, "no spaces", 1)
    with pytest.raises(InvalidInput, match="not JSON"):
        client.put_kv(NS, "k", object())
    assert len(kestra.calls("PUT", r"/kv/k$")) == 2  # nothing sent for the bad value


def test_kv_get_answer_without_value_is_an_error(kestra, client):
    kestra.fail_next(1, status=200, path=r"/kv/k$", body={"type": "STRING"})
    with pytest.raises(OperationFailed, match="has no value"):
        client.get_kv(NS, "k")


# ---------------------------------------------------------------- namespace files
def test_namespace_files_round_trip_and_recursive_listing(kestra, client):
    binary = bytes(range(256)) * 10
    client.put_namespace_file(NS, "/sql/a/q1.sql", b"select 1")
    client.put_namespace_file(NS, "sql/q2.sql", b"select 2")
    client.put_namespace_file(NS, "/blob.bin", binary)
    client.put_namespace_file(NS, "/archive.zip", b"not a zip")  # stored, not unzipped
    assert client.namespace_files(NS) == ["/archive.zip", "/blob.bin", "/sql/a/q1.sql", "/sql/q2.sql"]
    assert client.get_namespace_file(NS, "/blob.bin") == binary
    assert client.get_namespace_file(NS, "archive.zip") == b"not a zip"
    client.put_namespace_file(NS, "/sql/q2.sql", b"select 22")
    assert client.get_namespace_file(NS, "/sql/q2.sql") == b"select 22"
    assert "main/company/team/_files/sql/q2.sql.v2" in kestra.data.objects.keys()
    assert client.namespace_files("empty.ns") == []
    with pytest.raises(NotFound):
        client.get_namespace_file(NS, "/missing.txt")
    with pytest.raises(InvalidInput):
        client.put_namespace_file(NS, "/../escape.txt", b"x")
    with pytest.raises(InvalidInput):
        client.get_namespace_file(NS, "/")


def test_a_zip_upload_is_extracted_by_the_server(kestra):
    # why the client always sends a fixed upload name: Kestra unzips uploads named *.zip
    import requests

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("one.txt", "1")
        z.writestr("dir/two.txt", "2")
    requests.post(f"{kestra.api_url}/namespaces/{NS}/files", params={"path": "/x.zip"},
                  files={"fileContent": ("x.zip", buf.getvalue())}, auth=(kestra.username, kestra.password),
                  timeout=5).raise_for_status()
    client = KestraClient(kestra.url, kestra.username, kestra.password)
    assert client.namespace_files(NS) == ["/dir/two.txt", "/one.txt"]


@pytest.mark.parametrize("listing, message", [
    ([{"fileName": "../etc", "type": "File"}], "unusable name"),
    ([{"fileName": "a/b", "type": "Directory"}], "unusable name"),
    ([{"type": "File"}], "unusable name"),
    ({"fileName": "x"}, "expected a list"),
])
def test_a_hostile_directory_listing_is_refused(kestra, client, listing, message):
    kestra.fail_next(1, status=200, path=r"/files/directory$", body=listing)
    with pytest.raises(OperationFailed, match=message):
        client.namespace_files(NS)


@pytest.mark.parametrize("path, body, call", [
    (r"/kv$", {"key": "a"}, lambda c: c.kv_keys(NS)),
    (r"/kv$", [{"namespace": NS}], lambda c: c.kv_keys(NS)),
    (r"/distinct-namespaces$", {"a": 1}, lambda c: c.namespaces()),
])
def test_a_listing_that_is_not_a_list_is_an_error_not_empty(kestra, client, path, body, call):
    kestra.fail_next(1, status=200, path=path, body=body)
    with pytest.raises(OperationFailed):
        call(client)
    with pytest.raises(InvalidInput, match="not JSON"):
        client.put_kv(NS, "k", float("nan"))


def test_listing_stops_at_the_limit(kestra, client):
    for i in range(5):
        client.put_namespace_file(NS, f"/f{i}.txt", b"x")
    assert len(client.namespace_files(NS, limit=5)) == 5
    with pytest.raises(OperationFailed, match="more than 4 namespace files"):
        client.namespace_files(NS, limit=4)


# ---------------------------------------------------------------- namespaces and counts
def test_namespaces_and_execution_counts(kestra, client):
    client.create_flow(flow("a"))
    client.create_flow(flow("b", "company.team.sub"))
    client.create_flow(flow("c", "other"))
    assert client.namespaces() == ["company.team", "company.team.sub", "other"]
    for flow_id, ns in (("a", NS), ("a", NS), ("b", "company.team.sub"), ("c", "other")):
        finished(client, client.create_execution(ns, flow_id)["id"])
    assert client.count_executions() == 4
    assert client.count_executions(NS) == 3  # with its children
    assert client.count_executions("other", state="FAILED") == 0
    assert json.loads(json.dumps(kestra.calls("GET", r"/executions/search$")[-1].query))["size"] == ["1"]
    kestra.fail_next(1, status=200, path=r"/executions/search$", body={"results": []})
    with pytest.raises(OperationFailed, match="no execution count"):
        client.count_executions()


# ---------------------------------------------------------------- the canary tasks
CANARY = """  - id: read_kv
    type: io.kestra.plugin.core.kv.Get
    key: greeting
    namespace: "{{ flow.namespace }}"
    errorOnMissing: true
  - id: optional
    type: io.kestra.plugin.core.kv.Get
    key: absent
  - id: read_files
    type: io.kestra.plugin.core.namespace.DownloadFiles
    namespace: company.team
    files: ["**.sql"]
    destination: out
"""


def test_canary_reads_kv_and_files(kestra, client):
    client.create_flow(flow("canary", tasks=CANARY))
    client.put_kv(NS, "greeting", "hello")
    client.put_namespace_file(NS, "/sql/q.sql", b"select 1")
    client.put_namespace_file(NS, "/readme.md", b"#")
    ex = finished(client, client.create_execution(NS, "canary")["id"])
    assert ex["state"]["current"] == "SUCCESS"
    out = {r["taskId"]: r["outputs"] for r in ex["taskRunList"]}
    assert out["read_kv"] == {"value": "hello"} and out["optional"] == {"value": None}
    [(path, uri)] = out["read_files"]["files"].items()
    assert path == "/sql/q.sql"
    key = "main" + uri[len("kestra://"):]
    assert key.startswith(f"main/company/team/canary/executions/{ex['id']}/tasks/read-files/")
    assert key.endswith("/out/sql/q.sql") and kestra.data.objects.get(key) == b"select 1"


def test_canary_fails_on_a_missing_key_or_a_missing_object(kestra, client):
    client.create_flow(flow("canary", tasks=CANARY))
    ex = finished(client, client.create_execution(NS, "canary")["id"])
    assert ex["state"]["current"] == "FAILED" and [r["taskId"] for r in ex["taskRunList"]] == ["read_kv"]
    client.put_kv(NS, "greeting", "hello")
    client.put_namespace_file(NS, "/sql/q.sql", b"select 1")
    kestra.data.objects.delete("main/company/team/_files/sql/q.sql")
    ex = finished(client, client.create_execution(NS, "canary")["id"])
    assert ex["state"]["current"] == "FAILED"
    assert [(r["taskId"], r["state"]["current"]) for r in ex["taskRunList"]] == [
        ("read_kv", "SUCCESS"), ("optional", "SUCCESS"), ("read_files", "FAILED")]


ASSERTED = """  - id: read_file
    type: io.kestra.plugin.core.namespace.DownloadFiles
    namespace: company.team
    files: ["/sql/q.sql"]
  - id: file_found
    type: io.kestra.plugin.core.execution.Assert
    conditions:
      - "{{ outputs.read_file.files | length > 0 }}"
"""


@pytest.mark.parametrize("stored, condition, final", [
    (True, None, "SUCCESS"),
    (False, None, "FAILED"),  # DownloadFiles matched nothing: only the Assert notices
    (True, "{{ outputs.read_file.files | length == 0 }}", "FAILED"),
    (True, "{{ outputs.read_file.files is not empty }}", "FAILED"),  # not understood: false
])
def test_an_assert_on_the_downloaded_files(client, stored, condition, final):
    tasks = ASSERTED if condition is None else ASSERTED.replace(
        '"{{ outputs.read_file.files | length > 0 }}"', json.dumps(condition))
    client.create_flow(flow("asserted", tasks=tasks))
    if stored:
        client.put_namespace_file(NS, "/sql/q.sql", b"select 1")
    ex = finished(client, client.create_execution(NS, "asserted")["id"])
    assert ex["state"]["current"] == final
    assert ex["taskRunList"][-1]["taskId"] == "file_found"
