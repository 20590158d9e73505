"""The fake Kestra server (tests/fakes/kestra_server.py) driven with plain `requests`.

These pin down the behaviours a kestra-ops client is tested against: auth, flow CRUD and
revisions, validation, export/import, the delete-by-default sync and bulk endpoints, execution
lifecycles and their SSE stream, and each injected fault.
"""
from __future__ import annotations

import io
import json
import time
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.fakes.kestra_server import FakeKestra

YAML = {"Content-Type": "application/x-yaml"}


def flow(flow_id: str, namespace: str = "company.team", *, task_type: str = "io.kestra.plugin.core.log.Log",
         task_id: str = "log", extra: str = "") -> str:
    return (f"id: {flow_id}\nnamespace: {namespace}\n{extra}tasks:\n"
            f"  - id: {task_id}\n    type: {task_type}\n    message: hello\n")


@pytest.fixture
def kestra():
    with FakeKestra(step_seconds=0.02, follow_not_found_seconds=0.2) as fake:
        yield fake


@pytest.fixture
def api(kestra):
    session = requests.Session()
    session.auth = (kestra.username, kestra.password)
    session.base = kestra.api_url
    yield session
    session.close()


def create(api, source: str) -> requests.Response:
    return api.post(f"{api.base}/flows", data=source, headers=YAML, timeout=5)


def wait_state(api, execution_id: str, timeout: float = 3.0) -> dict:
    deadline = time.time() + timeout
    while True:
        body = api.get(f"{api.base}/executions/{execution_id}", timeout=5).json()
        if body["state"]["current"] in ("SUCCESS", "FAILED", "KILLED", "WARNING") or time.time() > deadline:
            return body
        time.sleep(0.01)


def sse_events(response: requests.Response) -> list[tuple[str, dict]]:
    events, event_id = [], None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            events.append((event_id, json.loads(line[5:])))
    return events


# ---- auth, misc ----
def test_configs_is_open_and_reports_version(kestra):
    r = requests.get(f"{kestra.url}/api/v1/configs", timeout=5)
    assert r.status_code == 200
    assert r.json()["version"] == "1.3.2" and r.json()["isBasicAuthInitialized"] is True


def test_api_needs_basic_auth(kestra):
    url = f"{kestra.api_url}/flows/search"
    for auth in (None, (kestra.username, "wrong"), ("other@example.com", kestra.password)):
        r = requests.get(url, auth=auth, timeout=5)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Basic" and r.content == b""
    assert requests.get(url, auth=(kestra.username, kestra.password), timeout=5).status_code == 200
    # the filter covers unknown paths too
    assert requests.get(f"{kestra.url}/api/v1/nope", timeout=5).status_code == 401


def test_basic_auth_cookie_is_read_before_the_header(kestra):
    """BasicAuthService.isAuthenticated: the BASIC_AUTH cookie (base64 of user:password) first;
    what reaches Kestra through the API server's service proxy, which drops Authorization."""
    import base64

    url = f"{kestra.api_url}/flows/search"
    good = base64.b64encode(f"{kestra.username}:{kestra.password}".encode()).decode()
    bad = base64.b64encode(f"{kestra.username}:wrong".encode()).decode()
    assert requests.get(url, headers={"Cookie": f"x=1; BASIC_AUTH={good}"},
                        timeout=5).status_code == 200
    # a cookie present decides, even with a good header
    assert requests.get(url, headers={"Cookie": f"BASIC_AUTH={bad}"},
                        auth=(kestra.username, kestra.password), timeout=5).status_code == 401
    assert all("cookie" not in {k.lower() for k in r.headers} for r in kestra.requests_log)


def test_basic_auth_validation_errors(kestra):
    url = f"{kestra.url}/api/v1/basicAuthValidationErrors"
    assert requests.get(url, timeout=5).status_code == 401  # initialised: protected like the rest
    kestra.basic_auth_validation_errors[:] = ["password: must match ..."]
    assert requests.get(url, auth=(kestra.username, kestra.password), timeout=5).json() == ["password: must match ..."]
    kestra.basic_auth_initialized = False  # not initialised: open, and no credentials work
    assert requests.get(url, timeout=5).json() == ["password: must match ..."]
    assert requests.get(f"{kestra.url}/api/v1/configs", timeout=5).json()["isBasicAuthInitialized"] is False
    assert requests.get(f"{kestra.api_url}/flows/search", auth=(kestra.username, kestra.password),
                        timeout=5).status_code == 401


def test_health_endpoints_without_auth(kestra):
    for path in ("/health", "/health/liveness", "/health/readiness"):
        r = requests.get(kestra.url + path, timeout=5)
        assert r.status_code == 200 and r.json()["status"] == "UP"
    kestra.readiness_up = False
    assert requests.get(kestra.url + "/health/readiness", timeout=5).status_code == 503
    assert requests.get(kestra.url + "/health", timeout=5).json()["status"] == "DOWN"
    assert requests.get(kestra.url + "/health/liveness", timeout=5).status_code == 200


def test_only_tenant_main_and_no_legacy_paths(kestra, api):
    assert api.get(f"{kestra.url}/api/v1/other/flows/search", timeout=5).status_code == 404
    assert api.get(f"{kestra.url}/api/v1/flows/search", timeout=5).status_code == 404
    r = api.patch(f"{api.base}/flows/search", timeout=5)
    assert r.status_code == 405


# ---- flows ----
def test_flow_crud_and_revisions(kestra, api):
    src = flow("hello")
    r = create(api, src)
    assert r.status_code == 200
    body = r.json()
    assert (body["revision"], body["source"], body["deleted"], body["disabled"]) == (1, src, False, False)

    again = create(api, src)
    assert again.status_code == 422 and "Flow id already exists" in again.json()["message"]

    url = f"{api.base}/flows/company.team/hello"
    assert "source" not in api.get(url, timeout=5).json()
    assert api.get(url, params={"source": "true"}, timeout=5).json()["source"] == src

    assert api.put(url, data=src, headers=YAML, timeout=5).json()["revision"] == 1  # unchanged: same revision
    changed = src + "description: now documented\n"
    assert api.put(url, data=changed, headers=YAML, timeout=5).json()["revision"] == 2
    assert api.put(url, data=changed + "# only a comment\n", headers=YAML, timeout=5).json()["revision"] == 3
    renamed = api.put(url, data=flow("other"), headers=YAML, timeout=5)
    assert renamed.status_code == 422 and "Illegal flow id update" in renamed.json()["message"]
    assert api.put(f"{api.base}/flows/company.team/missing", data=src, headers=YAML, timeout=5).status_code == 404
    revs = api.get(f"{url}/revisions", timeout=5).json()
    assert [rv["revision"] for rv in revs] == [1, 2, 3]
    assert api.get(url, params={"revision": 1, "source": "true"}, timeout=5).json()["source"] == src

    assert api.delete(url, timeout=5).status_code == 204
    assert api.get(url, timeout=5).status_code == 404
    assert api.delete(url, timeout=5).status_code == 404
    assert create(api, src).json()["revision"] == 5  # the delete took revision 4


@pytest.mark.parametrize("source, expected", [
    ("namespace: company.team\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n", "id: must not be null"),
    ("id: a\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n", "namespace: must not be null"),
    ("id: a\nnamespace: company.team\n", "tasks: must not be empty"),
    (flow("a", namespace="Company Team"), 'namespace: must match'),
    (flow("a", task_type="Log"), "Invalid type: Log"),
    (flow("a", task_type="com.acme.CustomTask"), "Invalid type: com.acme.CustomTask"),
    ("id: a\nnamespace: b\nfoo: 1\ntasks: []\n", 'Unrecognized field "foo"'),
    ("id: [unclosed\n", "Illegal flow source"),
])
def test_create_rejects_invalid_flows(api, source, expected):
    r = create(api, source)
    assert r.status_code == 422
    assert r.json()["message"].startswith("Invalid entity: ") and expected in r.json()["message"]


def test_known_plugin_prefixes_are_configurable():
    with FakeKestra(known_plugin_prefixes=("io.kestra.", "com.acme.")) as fake:
        r = requests.post(f"{fake.api_url}/flows", data=flow("a", task_type="com.acme.CustomTask"), headers=YAML,
                          auth=(fake.username, fake.password), timeout=5)
        assert r.status_code == 200


def test_flow_endpoints_only_take_x_yaml(api):
    for ctype in ("application/json", "text/yaml", "application/yaml"):
        r = api.post(f"{api.base}/flows", data=flow("a"), headers={"Content-Type": ctype}, timeout=5)
        assert r.status_code == 415, ctype


def test_search_flows_filters_and_paging(kestra, api):
    for fid, ns in (("a", "company.team"), ("b", "company.team.sub"), ("c", "companyx"), ("d", "other")):
        assert create(api, flow(fid, ns)).status_code == 200
    search = f"{api.base}/flows/search"

    def ids(**params):
        r = api.get(search, params={"page": 1, "size": 10, **params}, timeout=5)
        assert r.status_code == 200, r.text
        return sorted(f["id"] for f in r.json()["results"]), r.json()["total"]

    assert ids(**{"filters[namespace][PREFIX]": "company.team"}) == (["a", "b"], 2)
    assert ids(**{"filters[namespace][EQUALS]": "company.team"}) == (["a"], 1)
    assert ids(namespace="company.team") == (["a", "b"], 2)  # deprecated parameter, still served
    assert ids(**{"filters[flowId][IN]": "a,d"}) == (["a", "d"], 2)
    page2 = api.get(search, params={"page": 2, "size": 1, "sort": "id:asc"}, timeout=5).json()
    assert [f["id"] for f in page2["results"]] == ["b"] and page2["total"] == 4
    assert "source" not in page2["results"][0]
    assert api.get(search, params={"filters[state][EQUALS]": "RUNNING"}, timeout=5).status_code == 400
    assert api.get(search, params={"filters[nope][EQUALS]": "x"}, timeout=5).status_code == 422
    assert api.get(search, params={"page": 0}, timeout=5).status_code == 422
    assert api.get(f"{api.base}/flows/company.team", timeout=5).json()[0]["id"] == "a"
    assert api.get(f"{api.base}/flows/distinct-namespaces", timeout=5).json() == [
        "company.team", "company.team.sub", "companyx", "other"]


def test_validate_multi_document(kestra, api):
    create(api, flow("known"))
    body = "\n---\n".join([
        flow("good"),
        flow("bad", namespace="Bad Namespace"),
        flow("weird", task_type="NoDots"),
        flow("known", extra="revision: 1\n"),
    ])
    r = api.post(f"{api.base}/flows/validate", data=body, headers=YAML, timeout=5)
    assert r.status_code == 200
    good, bad, weird, known = r.json()
    assert [v["index"] for v in r.json()] == [0, 1, 2, 3]
    assert good["flow"] == "good" and good["namespace"] == "company.team" and "constraints" not in good
    assert good["warnings"] == [] and good["deprecationPaths"] == [] and good["infos"] == []
    assert bad["flow"] == "bad" and "namespace: must match" in bad["constraints"]
    assert "flow" not in weird and "Invalid type: NoDots" in weird["constraints"]  # parsing failed
    assert known["outdated"] is True  # sent revision 1, next would be 2
    assert api.get(f"{api.base}/flows/company.team/good", timeout=5).status_code == 404  # nothing saved


def test_export_zip_round_trips_through_import(kestra, api):
    sources = {fid: flow(fid) for fid in ("one", "two")}
    for src in sources.values():
        create(api, src)
    create(api, flow("elsewhere", "other"))

    by_query = api.get(f"{api.base}/flows/export/by-query", params={"filters[namespace][EQUALS]": "company.team"},
                       timeout=5)
    assert by_query.status_code == 200 and by_query.headers["Content-Type"] == "application/octet-stream"
    archive = zipfile.ZipFile(io.BytesIO(by_query.content))
    assert sorted(archive.namelist()) == ["company.team-one.yml", "company.team-two.yml"]
    assert archive.read("company.team-one.yml").decode() == sources["one"]

    by_ids = api.post(f"{api.base}/flows/export/by-ids", json=[{"namespace": "company.team", "id": "two"}], timeout=5)
    assert zipfile.ZipFile(io.BytesIO(by_ids.content)).namelist() == ["company.team.two.yaml"]
    missing = api.post(f"{api.base}/flows/export/by-ids", json=[{"namespace": "x", "id": "y"}], timeout=5)
    assert missing.status_code == 404

    for fid in sources:
        api.delete(f"{api.base}/flows/company.team/{fid}", timeout=5)
    r = api.post(f"{api.base}/flows/import", files={"fileUpload": ("flows.zip", by_query.content)}, timeout=5)
    assert r.status_code == 200 and r.json() == []
    restored = api.get(f"{api.base}/flows/company.team/one", params={"source": "true"}, timeout=5).json()
    assert restored["source"] == sources["one"] and restored["revision"] == 3  # 1 created, 2 deleted, 3 imported


def test_import_multi_document_yaml_reports_bad_documents(api):
    text = flow("x") + "---\nid: broken\n---\n" + flow("y")
    r = api.post(f"{api.base}/flows/import", files={"fileUpload": ("flows.yml", text)}, timeout=5)
    assert r.status_code == 200 and r.json() == ["1"]
    assert api.get(f"{api.base}/flows/company.team/y", timeout=5).status_code == 200
    strict = api.post(f"{api.base}/flows/import", params={"failOnError": "true"},
                      files={"fileUpload": ("flows.yml", text)}, timeout=5)
    assert strict.status_code == 422 and "not imported: 1" in strict.json()["message"]
    other = api.post(f"{api.base}/flows/import", files={"fileUpload": ("flows.txt", text)}, timeout=5)
    assert other.status_code == 422


def test_namespace_sync_deletes_by_default(kestra, api):
    for fid in ("keep", "drop"):
        create(api, flow(fid))
    url = f"{api.base}/flows/company.team"
    r = api.post(url, data=flow("keep"), headers=YAML, timeout=5)  # no delete parameter: defaults to true
    assert r.status_code == 200
    assert sorted(f["id"] for f in r.json()) == ["drop", "keep"]  # the deleted flow is listed too
    assert api.get(f"{url}/drop", timeout=5).status_code == 404

    create(api, flow("extra"))
    r = api.post(url, params={"delete": "false"}, data=flow("keep") + "---\n" + flow("new"), headers=YAML, timeout=5)
    assert sorted(f["id"] for f in r.json()) == ["keep", "new"]
    assert api.get(f"{url}/extra", timeout=5).status_code == 200
    assert [c.query.get("delete") for c in kestra.calls("POST", r"/flows/company\.team$")] == [None, ["false"]]

    wrong_ns = api.post(url, params={"delete": "false"}, data=flow("z", "other"), headers=YAML, timeout=5)
    assert wrong_ns.status_code == 422 and "flow namespace is invalid" in wrong_ns.json()["message"]
    # the body is split on every literal "---": a leading document marker yields an empty flow
    leading = api.post(url, params={"delete": "false"}, data="---\n" + flow("keep"), headers=YAML, timeout=5)
    assert leading.status_code == 422


def test_bulk_without_namespace_deletes_every_other_flow(kestra, api):
    for fid, ns in (("a", "company.team"), ("b", "company.team"), ("c", "other")):
        create(api, flow(fid, ns))
    bulk = f"{api.base}/flows/bulk"
    r = api.post(bulk, params={"delete": "false", "namespace": "company.team"}, data=flow("a"), headers=YAML,
                 timeout=5)
    assert r.status_code == 200 and len(api.get(f"{api.base}/flows/search", timeout=5).json()["results"]) == 3
    r = api.post(bulk, data=flow("a"), headers=YAML, timeout=5)  # delete defaults to true, no namespace
    assert r.status_code == 200
    assert [f["id"] for f in api.get(f"{api.base}/flows/search", timeout=5).json()["results"]] == ["a"]
    assert kestra.calls("POST", r"/flows/bulk$")[-1].query == {}


def test_sync_applies_flows_one_by_one(api):
    """An invalid flow in a batch fails the call after the deletions and earlier flows were applied."""
    create(api, flow("old"))
    batch = flow("first") + "---\n" + flow("second", task_type="Nope")
    r = api.post(f"{api.base}/flows/company.team", data=batch, headers=YAML, timeout=5)
    assert r.status_code == 422
    assert api.get(f"{api.base}/flows/company.team/old", timeout=5).status_code == 404
    assert api.get(f"{api.base}/flows/company.team/first", timeout=5).status_code == 200


# ---- executions ----
def test_execution_lifecycle_success(kestra, api):
    create(api, flow("hello", extra="labels:\n  team: data\ninputs:\n  - id: count\n    type: INT\n"
                                  "  - id: who\n    type: STRING\n    defaults: world\n"))
    r = api.post(f"{api.base}/executions/company.team/hello", params={"labels": ["run:manual", "ticket:OPS-1"]},
                 files={"count": (None, "3")}, timeout=5)
    assert r.status_code == 200
    created = r.json()
    assert created["state"]["current"] == "CREATED" and created["flowRevision"] == 1
    assert created["url"].endswith(f"/ui/main/executions/company.team/hello/{created['id']}")
    assert created["inputs"] == {"count": 3, "who": "world"}
    labels = {lab["key"]: lab["value"] for lab in created["labels"]}
    assert labels == {"team": "data", "run": "manual", "ticket": "OPS-1", "system.correlationId": created["id"]}
    final = wait_state(api, created["id"])
    assert final["state"]["current"] == "SUCCESS"
    assert [h["state"] for h in final["state"]["histories"]] == ["CREATED", "RUNNING", "SUCCESS"]
    assert final["taskRunList"][0]["state"]["current"] == "SUCCESS" and "endDate" in final["state"]


def test_execution_failure_and_wait(kestra, api):
    create(api, flow("boom", task_type="io.kestra.plugin.core.execution.Fail", task_id="fail"))
    r = api.post(f"{api.base}/executions/company.team/boom", params={"wait": "true"}, timeout=5)
    assert r.status_code == 200 and r.json()["state"]["current"] == "FAILED"
    assert r.json()["taskRunList"][-1]["state"]["current"] == "FAILED"


def test_execution_errors(kestra, api):
    create(api, flow("needs", extra="inputs:\n  - id: name\n    type: STRING\n"))
    create(api, flow("off", extra="disabled: true\n"))
    base = f"{api.base}/executions/company.team"
    assert api.post(f"{base}/missing", timeout=5).status_code == 404
    assert api.post(f"{base}/off", timeout=5).status_code == 409
    assert api.post(f"{base}/needs", timeout=5).status_code == 422  # required input missing
    assert api.post(f"{base}/needs", json={"name": "x"}, timeout=5).status_code == 415  # inputs are multipart
    assert api.post(f"{base}/needs", params={"labels": "nocolon"}, files={"name": (None, "x")},
                    timeout=5).status_code == 422
    assert api.post(f"{base}/needs", params={"labels": "system.x:y"}, files={"name": (None, "x")},
                    timeout=5).status_code == 422
    assert api.get(f"{api.base}/executions/nope", timeout=5).status_code == 404


def test_follow_streams_state_changes_until_terminal(kestra, api):
    kestra.step_seconds = 0.1  # leave time to subscribe before the run ends
    create(api, flow("hello"))
    ex = api.post(f"{api.base}/executions/company.team/hello", timeout=5).json()
    with api.get(f"{api.base}/executions/{ex['id']}/follow", stream=True, timeout=5) as r:
        assert r.status_code == 200 and r.headers["Content-Type"] == "text/event-stream"
        events = sse_events(r)
    assert events[0] == ("start", {"id": ex["id"]})
    assert events[-1][0] == "end" and events[-1][1]["state"]["current"] == "SUCCESS"
    assert {e for e, _ in events[1:-1]} <= {"progress"}
    states = [d["state"]["current"] for _, d in events[1:]]
    assert states[-1] == "SUCCESS" and "RUNNING" in states

    with api.get(f"{api.base}/executions/{ex['id']}/follow", stream=True, timeout=5) as r:  # already finished
        assert [e for e, _ in sse_events(r)] == ["start", "end"]


def test_follow_unknown_execution_breaks_the_stream(kestra, api):
    with api.get(f"{api.base}/executions/unknown/follow", stream=True, timeout=5) as r:
        assert r.status_code == 200
        with pytest.raises(requests.exceptions.RequestException):
            list(r.iter_lines())


def test_search_finds_stuck_running_executions_and_kill(kestra, api):
    create(api, flow("hangs", task_type="io.kestra.plugin.core.flow.Hang", task_id="wait"))
    stuck = kestra.add_execution("company.team", "nightly", "RUNNING", started_ago=7200)
    kestra.add_execution("company.team", "nightly", "SUCCESS", started_ago=9000)
    fresh = api.post(f"{api.base}/executions/company.team/hangs", timeout=5).json()
    time.sleep(0.1)
    assert api.get(f"{api.base}/executions/{fresh['id']}", timeout=5).json()["state"]["current"] == "RUNNING"

    cutoff = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    r = api.get(f"{api.base}/executions/search", params={
        "page": 1, "size": 50, "filters[state][IN]": "RUNNING,PAUSED", "filters[startDate][LESS_THAN]": cutoff},
        timeout=5)
    assert r.status_code == 200 and [e["id"] for e in r.json()["results"]] == [stuck["id"]]
    running = api.get(f"{api.base}/executions/search", params={"filters[state][EQUALS]": "RUNNING"}, timeout=5)
    assert sorted(e["id"] for e in running.json()["results"]) == sorted([stuck["id"], fresh["id"]])
    # IN takes the first value only: a repeated key silently drops the others (real server behaviour)
    repeated = api.get(f"{api.base}/executions/search",
                       params=[("filters[state][IN]", "SUCCESS"), ("filters[state][IN]", "RUNNING")], timeout=5)
    assert [e["state"]["current"] for e in repeated.json()["results"]] == ["SUCCESS"]

    assert api.delete(f"{api.base}/executions/{stuck['id']}/kill", timeout=5).status_code == 202
    assert wait_state(api, stuck["id"])["state"]["current"] == "KILLED"
    again = f"{api.base}/executions/{stuck['id']}/kill"
    assert api.delete(again, timeout=5).status_code == 202  # isOnKillCascade defaults to true: accepted
    assert api.delete(again, params={"isOnKillCascade": "false"}, timeout=5).status_code == 409
    assert api.delete(f"{api.base}/executions/{stuck['id']}", timeout=5).status_code == 204
    assert api.get(f"{api.base}/executions/{stuck['id']}", timeout=5).status_code == 404


# ---- faults and recording ----
def test_fail_next_burst(kestra, api):
    kestra.fail_next(2, status=503, path=r"/flows/search$")
    url = f"{api.base}/flows/search"
    assert [api.get(url, timeout=5).status_code for _ in range(3)] == [503, 503, 200]
    kestra.fail_next(1, status=502)
    assert requests.get(f"{kestra.url}/api/v1/configs", timeout=5).status_code == 502  # before auth
    kestra.fail_next(1, status=500, method="POST")
    assert api.get(url, timeout=5).status_code == 200
    assert create(api, flow("x")).status_code == 500
    assert create(api, flow("x")).status_code == 200


def test_drop_next_closes_without_answer(kestra, api):
    kestra.drop_next(1, path=r"/flows/search$")
    with pytest.raises(requests.exceptions.ConnectionError):
        api.get(f"{api.base}/flows/search", timeout=5)
    assert api.get(f"{api.base}/flows/search", timeout=5).status_code == 200
    assert kestra.exchanges[0].response.status is None


def test_slow_delays_answers(kestra, api):
    kestra.slow(0.3, n=1)
    start = time.monotonic()
    assert api.get(f"{api.base}/flows/search", timeout=5).status_code == 200
    assert time.monotonic() - start >= 0.3
    start = time.monotonic()
    api.get(f"{api.base}/flows/search", timeout=5)
    assert time.monotonic() - start < 0.25
    kestra.slow(1.0)
    with pytest.raises(requests.exceptions.Timeout):
        api.get(f"{api.base}/flows/search", timeout=0.3)
    kestra.reset_faults()
    assert api.get(f"{api.base}/flows/search", timeout=5).status_code == 200


def test_requests_log_keeps_everything_but_credentials(kestra, api):
    create(api, flow("logged"))
    method, path, query, headers, body = kestra.requests_log[-1]
    assert (method, path, query) == ("POST", "/api/v1/main/flows", {})
    assert "Authorization" not in headers and headers["Content-Type"] == "application/x-yaml"
    assert body == flow("logged").encode()
    assert kestra.calls("POST", r"/flows$")[0].body == body


def test_stop_refuses_further_requests():
    fake = FakeKestra().start()
    url = f"{fake.url}/api/v1/configs"
    session = requests.Session()
    assert session.get(url, timeout=5).status_code == 200
    fake.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(url, timeout=2)
