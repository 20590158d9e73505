"""The fake Kestra server against Kestra's OpenAPI document (../shared/kestra-openapi.yml).

Every request below is sent with `requests` to the fake; what the fake *received* (path, query,
content type) and what it *answered* (status, JSON or SSE body) is then checked against the
document with OpenAPIContract (tests/fakes/kestra_contract.py). The same helper can check the real
kestra-ops client's traffic: run it against FakeKestra and feed ``fake.exchanges`` to
``check_exchange``.
"""
from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path

import pytest
import requests

from tests.fakes.kestra_contract import KNOWN_UNDOCUMENTED, OpenAPIContract, parse_sse
from tests.fakes.kestra_server import UNDOCUMENTED_ROUTES, FakeKestra

OPENAPI = Path(__file__).resolve().parents[2] / ".." / "shared" / "kestra-openapi.yml"
YAML = {"Content-Type": "application/x-yaml"}

FLOW = """id: hello
namespace: company.team
description: contract sample
labels:
  team: data
inputs:
  - id: who
    type: STRING
    defaults: world
  - id: count
    type: INT
    required: false
variables:
  greeting: hi
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ vars.greeting }} {{ inputs.who }}"
    timeout: PT1M
triggers:
  - id: nightly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 2 * * *"
pluginDefaults:
  - type: io.kestra.plugin.core.log.Log
    values:
      level: INFO
"""
CANARY = """id: canary
namespace: company.team
tasks:
  - id: kv
    type: io.kestra.plugin.core.kv.Get
    key: greeting
    errorOnMissing: true
  - id: files
    type: io.kestra.plugin.core.namespace.DownloadFiles
    namespace: "{{ flow.namespace }}"
    files: ["/sql/q.sql"]
"""
FAILING = "id: boom\nnamespace: company.team\ntasks:\n  - id: fail\n    type: io.kestra.plugin.core.execution.Fail\n"


@pytest.fixture(scope="module")
def contract() -> OpenAPIContract:
    if not OPENAPI.is_file():
        pytest.skip("../shared/kestra-openapi.yml not found (only present beside the project in CI/dev)")
    return OpenAPIContract(OPENAPI)


@pytest.fixture
def kestra():
    with FakeKestra(step_seconds=0.02, follow_not_found_seconds=0.1) as fake:
        yield fake


@pytest.fixture
def api(kestra):
    session = requests.Session()
    session.auth = (kestra.username, kestra.password)
    yield session
    session.close()


def tour(kestra: FakeKestra, api: requests.Session) -> None:
    """One call (or a few variants) of every endpoint the fake serves."""
    base = kestra.api_url
    requests.get(f"{kestra.url}/api/v1/configs", timeout=5)
    api.get(f"{kestra.url}/api/v1/basicAuthValidationErrors", timeout=5)
    for path in ("/health", "/health/liveness", "/health/readiness"):
        requests.get(kestra.url + path, timeout=5)

    api.post(f"{base}/flows", data=FLOW, headers=YAML, timeout=5)
    api.post(f"{base}/flows", data=FAILING, headers=YAML, timeout=5)
    api.post(f"{base}/flows", data=FLOW, headers=YAML, timeout=5)  # 422: already exists
    api.get(f"{base}/flows/search", params={"page": 1, "size": 10, "sort": "id:asc",
                                            "filters[namespace][PREFIX]": "company", "filters[q][EQUALS]": "hel"},
            timeout=5)
    api.get(f"{base}/flows/search", params={"page": 1, "size": 10, "filters[labels][EQUALS][team]": "data"},
            timeout=5)
    api.get(f"{base}/flows/distinct-namespaces", params={"q": "company"}, timeout=5)
    api.get(f"{base}/flows/company.team", timeout=5)
    api.get(f"{base}/flows/company.team/hello", params={"source": "true"}, timeout=5)
    api.get(f"{base}/flows/company.team/hello", params={"revision": 1, "allowDeleted": "false"}, timeout=5)
    api.get(f"{base}/flows/company.team/missing", timeout=5)  # 404
    api.put(f"{base}/flows/company.team/hello", data=FLOW + "# changed\n", headers=YAML, timeout=5)
    api.get(f"{base}/flows/company.team/hello/revisions", params={"allowDelete": "false"}, timeout=5)
    api.post(f"{base}/flows/validate", headers=YAML, timeout=5,
             data=FLOW + "---\nid: bad\nnamespace: Bad NS\ntasks: []\n---\nid: x\nnamespace: y\ntasks:\n"
                         "  - id: t\n    type: Nope\n")
    api.post(f"{base}/flows/validate", files={"flows": ("hello.yml", FLOW)}, timeout=5)
    zipped = api.get(f"{base}/flows/export/by-query", params={"filters[namespace][EQUALS]": "company.team"},
                     timeout=5).content
    api.post(f"{base}/flows/export/by-ids", json=[{"namespace": "company.team", "id": "hello"}], timeout=5)
    api.post(f"{base}/flows/import", params={"failOnError": "false"}, files={"fileUpload": ("flows.zip", zipped)},
             timeout=5)
    api.post(f"{base}/flows/company.team", params={"delete": "false", "override": "false"}, data=FLOW,
             headers=YAML, timeout=5)
    api.post(f"{base}/flows/bulk", params={"delete": "false", "namespace": "company.team",
                                           "allowNamespaceChild": "false"}, data=FLOW + "---\n" + FAILING,
             headers=YAML, timeout=5)

    ex = api.post(f"{base}/executions/company.team/hello", params={"labels": ["run:contract", "ticket:OPS-1"]},
                  files={"who": (None, "you"), "count": (None, "2")}, timeout=5).json()
    api.post(f"{base}/executions/company.team/boom", params={"wait": "true"}, timeout=5)
    with api.get(f"{base}/executions/{ex['id']}/follow", stream=True, timeout=5) as r:
        r.content
    api.get(f"{base}/executions/{ex['id']}", timeout=5)
    stuck = kestra.add_execution("company.team", "hello", "RUNNING", started_ago=7200, labels={"team": "data"})
    api.get(f"{base}/executions/search", timeout=5, params={
        "page": 1, "size": 25, "sort": "state.startDate:desc", "filters[state][IN]": "RUNNING,PAUSED",
        "filters[startDate][LESS_THAN]": "2100-01-01T00:00:00Z", "filters[namespace][PREFIX]": "company"})
    api.delete(f"{base}/executions/{stuck['id']}/kill", params={"isOnKillCascade": "true"}, timeout=5)
    time.sleep(0.05)
    api.delete(f"{base}/executions/{stuck['id']}/kill", params={"isOnKillCascade": "false"},
               timeout=5)  # 409: already finished
    api.delete(f"{base}/executions/{ex['id']}", params={"deleteLogs": "true"}, timeout=5)
    api.delete(f"{base}/flows/company.team/boom", timeout=5)

    kv = f"{base}/namespaces/company.team/kv"
    api.put(f"{kv}/greeting", data='"hello"', headers={"Content-Type": "text/plain"}, timeout=5)
    api.put(f"{kv}/limits", data='{"max": 3, "on": true}', headers={"Content-Type": "text/plain"}, timeout=5)
    api.put(f"{kv}/bad key", data="1", headers={"Content-Type": "text/plain"}, timeout=5)  # 422
    api.get(f"{kv}/greeting", timeout=5)
    api.get(f"{kv}/limits", timeout=5)
    api.get(f"{kv}/missing", timeout=5)  # 404
    api.get(kv, timeout=5)
    api.delete(f"{kv}/limits", timeout=5)
    files = f"{base}/namespaces/company.team/files"
    api.post(files, params={"path": "/sql/q.sql"}, files={"fileContent": ("content", b"select 1")}, timeout=5)
    api.post(files, params={"path": "/_flows/x.yml"}, files={"fileContent": ("content", b"x")}, timeout=5)  # 422
    api.get(files, params={"path": "/sql/q.sql"}, timeout=5)
    api.get(files, params={"path": "/sql/q.sql", "revision": 1}, timeout=5)
    api.get(files, params={"path": "/nope.txt"}, timeout=5)  # 404
    api.get(f"{files}/directory", timeout=5)
    api.get(f"{files}/directory", params={"path": "/sql"}, timeout=5)
    api.get(f"{files}/directory", params={"path": "/nope"}, timeout=5)  # 404
    api.post(f"{base}/flows", data=CANARY, headers=YAML, timeout=5)
    api.post(f"{base}/executions/company.team/canary", params={"wait": "true"}, timeout=5)


def test_every_route_of_the_fake_is_in_the_document(contract):
    for method, template in FakeKestra.routes():
        if (method, template) in UNDOCUMENTED_ROUTES:
            assert any(m == method and re.search(rx, template) for m, rx, _ in KNOWN_UNDOCUMENTED)
            continue
        concrete = template.replace("{tenant}", "main")
        found, _, _ = contract.operation(method, concrete)
        assert found == template, f"{method} {template} resolves to {found} in the document"


def test_all_traffic_of_a_tour_matches_the_document(contract, kestra, api):
    tour(kestra, api)
    failures, statuses = [], {}
    for request, response in kestra.exchanges:
        statuses.setdefault(request.method + " " + request.path, []).append(response.status)
        try:
            contract.check_exchange(request, response)
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n\n".join(failures)
    unexpected = {k: v for k, v in statuses.items() if any(s is None or s >= 500 for s in v)}
    assert not unexpected, unexpected

    served = {(m, t) for m, t in FakeKestra.routes() if (m, t) not in UNDOCUMENTED_ROUTES}
    for kind in ("request", "response"):
        checked = {(m, t) for k, m, t in contract.checked if k == kind}
        assert served <= checked, f"{kind}s never checked: {sorted(served - checked)}"


def test_sse_follow_events_validate_as_executions(contract, kestra, api):
    kestra.add_flow(FLOW)
    ex = api.post(f"{kestra.api_url}/executions/company.team/hello", timeout=5).json()
    path = f"/api/v1/main/executions/{ex['id']}/follow"
    with api.get(kestra.url + path, stream=True, timeout=5) as r:
        events = parse_sse(r.content)
    assert [e for e, _ in events][0] == "start" and events[-1][0] == "end"
    contract.check_response("GET", path, 200, events, content_type=r.headers["Content-Type"])


def test_errata_are_still_needed(contract):
    stale = contract.stale_errata()
    assert not stale, f"the document changed, drop or update these errata: {stale}"


def test_without_errata_the_document_rejects_real_flows(contract, kestra):
    strict = OpenAPIContract(OPENAPI, errata=())
    body = kestra.add_flow(FLOW)
    contract.check_response("GET", "/api/v1/main/flows/company.team/hello", 200, body)
    with pytest.raises(AssertionError, match="variables"):
        strict.check_response("GET", "/api/v1/main/flows/company.team/hello", 200, body)


@pytest.mark.parametrize("method, path, query, ctype, expected", [
    ("GET", "/api/v1/main/flows/search", {"namespace": "a"}, None, "'namespace' is not documented"),
    ("GET", "/api/v1/main/flows/search", {"page": "first"}, None, "is not of type 'integer'"),
    ("GET", "/api/v1/main/flows/search", {"filters[namespaces][PREFIX]": "a"}, None, "filter field"),
    ("GET", "/api/v1/main/flows/search", {"filters[namespace][STARTSWITH]": "a"}, None, "filter operation"),
    ("POST", "/api/v1/main/flows", None, "application/yaml", "content type application/yaml not accepted"),
    ("POST", "/api/v1/main/flows", None, None, "request body required"),
    ("GET", "/api/v1/main/flows/a/b", None, "application/json", "documents no request body"),
    ("POST", "/api/v1/main/flows/ns", {"delete": "no"}, "application/x-yaml", "'no' is not of type 'boolean'"),
    ("POST", "/api/v1/main/executions/ns/id", {"wait": ["true", "false"]}, None, "repeated"),
    ("GET", "/api/v1/prod/flows/search", None, None, "tenant is 'prod'"),
    ("GET", "/api/v1/flows/search", None, None, "no such path"),
    ("PATCH", "/api/v1/main/flows/search", None, None, "method not documented"),
])
def test_contract_rejects_bad_requests(contract, method, path, query, ctype, expected):
    with pytest.raises(AssertionError, match=expected.replace("(", r"\(").replace("[", r"\[")):
        contract.check_request(method, path, query, ctype)


def test_contract_rejects_bad_responses(contract, kestra):
    flow = kestra.add_flow(FLOW)
    path = "/api/v1/main/flows/company.team/hello"
    broken = {k: v for k, v in flow.items() if k != "deleted"}
    with pytest.raises(AssertionError, match="'deleted' is a required property"):
        contract.check_response("GET", path, 200, broken)
    with pytest.raises(AssertionError, match="is not of type 'integer'"):
        contract.check_response("GET", path, 200, {**flow, "revision": "1"})
    with pytest.raises(AssertionError, match="status not documented"):
        contract.check_response("GET", path, 201, flow)
    with pytest.raises(AssertionError, match="not a JsonError"):
        contract.check_response("GET", path, 404, {"error": "nope"})
    contract.check_response("GET", path, 404, {"message": "Not Found"})
    with pytest.raises(AssertionError, match="'CREATED' is not one of|is not one of"):
        ex = kestra.add_execution("company.team", "hello")
        contract.check_response("GET", f"/api/v1/main/executions/{ex['id']}", 200,
                                {**ex, "state": {**ex["state"], "current": "STARTED"}})
    events = [("start", {"id": "x"}), ("progress", {"id": "x"})]
    with pytest.raises(AssertionError, match="event 1"):
        contract.check_response("GET", "/api/v1/main/executions/x/follow", 200, events,
                                content_type="text/event-stream")


def test_export_zip_is_octet_stream(contract, kestra, api):
    kestra.add_flow(FLOW)
    r = api.get(f"{kestra.api_url}/flows/export/by-query", timeout=5)
    contract.check_response("GET", "/api/v1/main/flows/export/by-query", 200, r.content,
                            content_type=r.headers["Content-Type"])
    assert zipfile.ZipFile(io.BytesIO(r.content)).namelist() == ["company.team-hello.yml"]
