"""The REAL kestra-ops client against Kestra's OpenAPI document (../shared/kestra-openapi.yml).

Every KestraClient method runs against FakeKestra (successes and the typed-error paths); then
every request the client sent and every answer it got, as recorded by the fake, is checked with
OpenAPIContract: path, query parameters (including the ``filters[field][OP]`` wire format and the
explicit ``delete=false``), request content type, status and JSON/SSE body.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from kestra_ops.adapters.kestra_api import KestraClient, KestraValidationError
from kestra_ops.errors import Conflict, NotFound, PermissionDenied
from tests.fakes.kestra_contract import OpenAPIContract
from tests.fakes.kestra_server import FakeKestra

OPENAPI = Path(__file__).resolve().parents[2] / ".." / "shared" / "kestra-openapi.yml"
NS = "company.team"
FLOW = f"""id: hello
namespace: {NS}
labels:
  team: data
inputs:
  - id: who
    type: STRING
    defaults: world
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "hi {{{{ inputs.who }}}}"
"""
FAILING = (f"id: boom\nnamespace: {NS}\ntasks:\n  - id: fail\n"
           "    type: io.kestra.plugin.core.execution.Fail\n")
DISABLED = (f"id: off\nnamespace: {NS}\ndisabled: true\ntasks:\n  - id: t\n"
            "    type: io.kestra.plugin.core.log.Log\n    message: x\n")

# operationId of every documented call the client makes
EXPECTED = {"configuration", "searchFlows", "flow", "createFlow", "updateFlow", "deleteFlow",
            "validateFlows", "exportFlowsByQuery", "importFlows", "updateFlowsInNamespace",
            "createExecution", "execution", "searchExecutions", "listDistinctNamespaces", "listKeys",
            "keyValue", "setKeyValue", "deleteKeyValue", "listNamespaceDirectoryFiles", "fileContent",
            "createNamespaceFile"}


@pytest.fixture(scope="module")
def contract() -> OpenAPIContract:
    if not OPENAPI.is_file():
        pytest.skip("../shared/kestra-openapi.yml not found (only present beside the project in CI/dev)")
    return OpenAPIContract(OPENAPI)


def drive(kestra: FakeKestra) -> None:
    """Every client method, including the error paths the client maps to typed errors."""
    client = KestraClient(kestra.url, kestra.username, kestra.password, backoff=0.01, timeout=5)
    client.configs()
    client.basic_auth_validation_errors()
    client.create_flow(FLOW)
    client.create_flow(FAILING)
    client.create_flow(DISABLED)
    with pytest.raises(KestraValidationError):
        client.create_flow(FLOW)  # already exists: 422 with an error list
    list(client.search_flows(page_size=1))
    list(client.search_flows(NS, page_size=2, prefix=False))
    client.get_flow(NS, "hello")
    client.get_flow(NS, "hello", source=False, revision=1)
    with pytest.raises(NotFound):
        client.get_flow(NS, "missing")
    client.update_flow(NS, "hello", FLOW + "# changed\n")
    client.validate_flows(FLOW + "---\nid: bad\nnamespace: Bad NS\ntasks: []\n")
    data = client.export_flows(NS)
    client.export_flows()
    client.import_flows(data, "flows.zip")
    client.import_flows(FLOW.encode(), "hello.yml", fail_on_error=True)
    client.update_namespace(NS, FLOW + "---\n" + FAILING + "---\n" + DISABLED, delete=False)
    ex = client.create_execution(NS, "hello", inputs={"who": "you"}, labels={"run": "contract"},
                                 schedule_date="2026-01-01T00:00:00Z")
    client.get_execution(ex["id"])
    failed = client.create_execution(NS, "boom")
    while client.get_execution(failed["id"])["state"]["current"] not in client.TERMINAL_STATES:
        time.sleep(0.01)
    with pytest.raises(Conflict):
        client.create_execution(NS, "off")
    list(client.search_executions(state="SUCCESS", namespace=NS, flow_id="hello", page_size=1))
    list(client.search_executions(state=["SUCCESS", "FAILED"]))
    with pytest.raises(NotFound):
        client.get_execution("missing")
    client.delete_flow(NS, "boom")
    client.namespaces()
    client.count_executions(NS, state="SUCCESS")
    client.put_kv(NS, "greeting", "hello")
    client.put_kv(NS, "limits", {"max": 3})
    client.kv_keys(NS)
    client.get_kv(NS, "limits")
    with pytest.raises(NotFound):
        client.get_kv(NS, "missing")
    with pytest.raises(KestraValidationError):
        client.put_kv(NS, "bad key", 1)
    client.delete_kv(NS, "limits")
    client.put_namespace_file(NS, "/sql/q.sql", b"select 1")
    client.namespace_files(NS)
    client.get_namespace_file(NS, "/sql/q.sql")
    with pytest.raises(NotFound):
        client.get_namespace_file(NS, "/missing.txt")
    with pytest.raises(PermissionDenied):
        KestraClient(kestra.url, kestra.username, "Wrong-Passw0rd").get_flow(NS, "hello")


def test_every_client_exchange_follows_the_openapi_document(contract):
    with FakeKestra(step_seconds=0.02, follow_not_found_seconds=0.1) as kestra:
        drive(kestra)
        exchanges = list(kestra.exchanges)
    assert len(exchanges) > 30
    problems, operations = [], set()
    for exchange in exchanges:
        try:
            op = contract.check_exchange(exchange.request, exchange.response)
        except AssertionError as err:
            problems.append(str(err))
            continue
        if op:
            operations.add(op)
    assert not problems, "\n".join(problems)
    assert operations == EXPECTED, (f"not exercised: {EXPECTED - operations}, "
                                    f"extra: {operations - EXPECTED}")
    statuses = {e.response.status for e in exchanges}
    assert {200, 204, 401, 404, 409, 422} <= statuses  # error bodies were checked too


def test_sync_requests_carry_an_explicit_delete(contract):
    with FakeKestra() as kestra:
        client = KestraClient(kestra.url, kestra.username, kestra.password)
        client.update_namespace(NS, FLOW, delete=False)
        calls = kestra.calls("POST", rf"/flows/{NS}$")
        assert len(calls) == 1
        for call in calls:
            assert call.query["delete"] == ["false"]
            contract.check_request(call.method, call.path, call.query, call.headers.get("Content-Type"))
