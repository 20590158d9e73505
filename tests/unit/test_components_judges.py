"""The ``components`` item's judges (kestra_ops.checks.components): pure functions over
Deployments, pods and the pods' health answers, as the API server gives them."""

from __future__ import annotations

import datetime
import json

import pytest

from kestra_ops.checks import components as c
from kestra_ops.results import FAIL, PASS, WARN

NS = "hyperplane-kestra"
DEPLOYED = datetime.datetime(2026, 12, 6, 10, 0, tzinfo=datetime.timezone.utc)
UP = c.Health(200, json.dumps({"name": "kestra", "status": "UP"}).encode())
DOWN = c.Health(503, json.dumps({"name": "kestra", "status": "DOWN"}).encode())


def labels(component: str) -> dict:
    return {"app.kubernetes.io/name": "kestra", "app.kubernetes.io/instance": "kestra",
            "app.kubernetes.io/component": component}


def deployment(component: str, *, replicas: int = 1, ready: int | None = None,
               updated: int | None = None, total: int | None = None, generation: int = 2,
               observed: int = 2, conditions: list | None = None) -> dict:
    ready = replicas if ready is None else ready
    updated = replicas if updated is None else updated
    return {"metadata": {"name": f"kestra-{component}", "generation": generation,
                         "labels": labels(component)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels(component)}},
            "status": {"observedGeneration": observed, "readyReplicas": ready,
                       "updatedReplicas": updated,
                       "replicas": updated if total is None else total,
                       "conditions": conditions or []}}


def pod(component: str, n: int = 0, *, port: int | None = 8081, restarts: int = 0,
        last_finished: str | None = None, waiting: str | None = None,
        phase: str = "Running") -> dict:
    state = {"waiting": {"reason": waiting}} if waiting else \
        {"running": {"startedAt": "2026-12-06T09:00:00Z"}}
    last = {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": last_finished}} \
        if last_finished else {}
    ports = [{"name": "http", "containerPort": 8080}]
    if port is not None:
        ports.append({"name": "management", "containerPort": port})
    return {"metadata": {"name": f"kestra-{component}-abc-{n}", "labels": labels(component)},
            "spec": {"containers": [{"name": "kestra", "ports": ports}]},
            "status": {"phase": phase, "podIP": "192.0.2.2",
                       "containerStatuses": [{"name": "kestra", "ready": not waiting,
                                              "restartCount": restarts, "state": state,
                                              "lastState": last}]}}


DISTRIBUTED = ("webserver", "executor", "scheduler", "worker")


def distributed(**overrides) -> tuple[list[dict], list[dict]]:
    deps = [overrides.get(name) or deployment(name) for name in DISTRIBUTED]
    pods = [pod(name) for name in DISTRIBUTED]
    return deps, pods


def health_of(pods, answer=UP, **by_pod) -> dict:
    return {p["metadata"]["name"]: by_pod.get(p["metadata"]["name"], answer) for p in pods}


# --------------------------------------------------------------------------- health

@pytest.mark.parametrize("answer,status,words", [
    (UP, PASS, "UP"),
    (DOWN, FAIL, "DOWN (HTTP 503)"),
    (c.Health(200, b'{"status": "DOWN"}'), FAIL, "DOWN (HTTP 200)"),
    (c.Health(404, b"not found"), FAIL, "no health status in the answer (HTTP 404)"),
    (c.Health(200, b"<html>ok</html>"), FAIL, "no health status"),
    (c.Health(403, json.dumps({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
        "message": 'pods "p:8081" is forbidden: User "ci" cannot get resource "pods/proxy"',
        "code": 403}).encode()), WARN, "not checked: needs get on pods/proxy"),
    (c.Health(503, json.dumps({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason":
        "ServiceUnavailable", "message": "error trying to reach service: dial tcp "
        "192.0.2.2:8081: connect: connection refused", "code": 503}).encode()), WARN,
     "not reached through the API server's pod proxy (error trying to reach service"),
    (c.Health(error="cannot reach the Kubernetes API at https://k: timed out"), WARN,
     "no answer (cannot reach"),
], ids=["up", "down", "200-down", "404", "not-json", "forbidden", "refused", "no-answer"])
def test_judge_health(answer, status, words):
    got, why = c.judge_health(answer)
    assert got == status and words in why, why


def test_a_pod_answering_a_status_shaped_body_itself_is_judged_as_an_answer():
    """Only the API server's own Status (apiVersion v1, status Failure) is "not reached"."""
    got, _ = c.judge_health(c.Health(503, b'{"kind": "Status", "status": "DOWN"}'))
    assert got == FAIL


# --------------------------------------------------------------------------- rollout

@pytest.mark.parametrize("dep,status,words", [
    (deployment("worker", replicas=2), PASS, "2/2 ready"),
    (deployment("worker", replicas=2, ready=1), FAIL, "1 of 2 ready"),
    (deployment("worker", generation=3, observed=2), FAIL, "generation 3 not yet observed"),
    (deployment("worker", replicas=2, updated=1, ready=2), FAIL, "1 of 2 replicas updated"),
    (deployment("worker", replicas=2, total=3), FAIL, "1 old replica(s) still terminating"),
    (deployment("worker", replicas=0), WARN, "scaled to 0"),
    (deployment("worker", conditions=[{"type": "Progressing", "status": "False", "reason":
                                       "ProgressDeadlineExceeded", "message": "RS x has "
                                       "timed out progressing."}]), FAIL,
     "progress deadline exceeded: RS x has timed out"),
], ids=["ready", "one-unready", "unobserved", "not-updated", "old-pods", "zero", "deadline"])
def test_judge_rollout(dep, status, words):
    got, why, numbers = c.judge_rollout(dep)
    assert got == status and words in why, why
    assert numbers["desired"] == dep["spec"]["replicas"]


def test_rollout_without_a_replicas_field_wants_one():
    dep = deployment("worker")
    del dep["spec"]["replicas"]
    assert c.judge_rollout(dep)[:2] == (PASS, "1/1 ready")


# --------------------------------------------------------------------------- restarts

def test_restarts_since_the_last_deploy_warn_older_ones_are_history():
    before = pod("worker", 0, restarts=3, last_finished="2026-12-06T09:00:00Z")
    after = pod("worker", 1, restarts=1, last_finished="2026-12-06T10:05:00Z")
    assert c.judge_restarts([before], DEPLOYED) == (PASS, [], 0)
    status, lines, count = c.judge_restarts([before, after], DEPLOYED)
    assert status == WARN and count == 1
    assert lines == ["pod kestra-worker-abc-1 container kestra: restarted (Error) (1 restart); "
                     "last exit 1 Error since the last deploy"]
    # no deploy time known: every restart counts
    assert c.judge_restarts([before], None)[0] == WARN


def test_a_crash_loop_fails_whenever_it_started():
    looping = pod("worker", restarts=7, waiting="CrashLoopBackOff",
                  last_finished="2026-12-06T09:00:00Z")
    status, lines, count = c.judge_restarts([looping], DEPLOYED)
    assert status == FAIL and count == 7 and "CrashLoopBackOff" in lines[0]


# --------------------------------------------------------------------------- ports, targets

def test_the_management_port_is_the_named_container_port():
    assert c.management_port(pod("worker", port=38181)) == 38181
    assert c.management_port(pod("worker", port=None)) == 8081  # Kestra's default
    pending = pod("worker", phase="Pending")
    deleted = pod("worker", 2)
    deleted["metadata"]["deletionTimestamp"] = "2026-12-06T10:00:00Z"
    no_ip = pod("worker", 3)
    del no_ip["status"]["podIP"]
    assert c.health_targets([pod("worker", port=9000), pending, deleted, no_ip]) == [
        ("kestra-worker-abc-0", 9000)]


# --------------------------------------------------------------------------- the item

def test_a_healthy_distributed_install_passes_with_one_line_per_component():
    deps, pods = distributed()
    item = c.check_components(deps, pods, health_of(pods), DEPLOYED, "release kestra "
                              "revision 3", NS)
    assert item.status == PASS and item.always_details
    assert item.reason == (f"4 component(s) in {NS} ready and healthy: webserver, executor, "
                           "scheduler, worker")
    assert [d.split(" ")[0] for d in item.details[:4]] == list(DISTRIBUTED)
    assert item.details[0] == ("webserver (deployment kestra-webserver): 1/1 ready; no restart "
                               "since the last deploy; health UP on 1 pod(s)")
    assert item.details[4] == "restarts counted since release kestra revision 3"
    assert "not in the OSS API" in item.details[5]
    assert [(d["component"], d["status"], d["ready"], d["desired"]) for d in item.data] == [
        (name, PASS, 1, 1) for name in DISTRIBUTED]
    assert item.data[3]["health"] == [{"pod": "kestra-worker-abc-0", "status": PASS,
                                       "code": 200, "health": "UP"}]


def test_one_component_down_fails_naming_it():
    deps, pods = distributed()
    worker = pods[3]["metadata"]["name"]
    item = c.check_components(deps, pods, health_of(pods, **{worker: DOWN}), namespace=NS)
    assert item.status == FAIL
    assert item.reason.startswith(f"1 of 4 component(s) in {NS} failing: worker (deployment "
                                  "kestra-worker)")
    assert item.reason.endswith(f"1/1 ready; no restart since the last deploy; health of pod "
                                f"{worker}: DOWN (HTTP 503)")
    assert {d["component"]: d["status"] for d in item.data} == {
        "webserver": PASS, "executor": PASS, "scheduler": PASS, "worker": FAIL}


def test_a_component_not_ready_fails_and_one_not_reached_warns():
    deps, pods = distributed(executor=deployment("executor", replicas=2, ready=1))
    refused = c.Health(503, json.dumps({"kind": "Status", "apiVersion": "v1", "status":
                                        "Failure", "message": "error trying to reach service",
                                        "code": 503}).encode())
    item = c.check_components(deps, pods, health_of(pods, **{
        pods[0]["metadata"]["name"]: refused}))
    assert item.status == FAIL and "executor (deployment kestra-executor): 1 of 2 ready" in \
        item.reason
    assert {d["component"]: d["status"] for d in item.data}["webserver"] == WARN


def test_a_missing_distributed_component_fails():
    deps, pods = distributed()
    item = c.check_components([d for d in deps if d["metadata"]["name"] != "kestra-scheduler"],
                              pods, health_of(pods))
    assert item.status == FAIL
    assert "scheduler (deployment kestra-scheduler): missing" in item.reason
    assert [d["component"] for d in item.data] == list(DISTRIBUTED)  # in the chart's order


def test_standalone_is_one_component_and_other_workloads_are_not_judged():
    deps = [deployment("standalone"), {"metadata": {"name": "my-app", "labels": {
        "app.kubernetes.io/component": "worker", "app.kubernetes.io/name": "other"}}}]
    pods = [pod("standalone")]
    item = c.check_components(deps, pods, health_of(pods))
    assert item.status == PASS and [d["component"] for d in item.data] == ["standalone"]


def test_no_kestra_deployment_fails():
    item = c.check_components([], [], {}, namespace=NS)
    assert item.status == FAIL and "no Kestra server Deployment in hyperplane-kestra" in \
        item.reason


def test_many_pods_down_are_summed_up_in_one_line():
    deps = [deployment("standalone", replicas=5)]
    pods = [pod("standalone", n) for n in range(5)]
    item = c.check_components(deps, pods, health_of(pods, DOWN))
    assert item.reason.endswith("health of 5 of 5 pods: DOWN (HTTP 503) (kestra-standalone-abc-0"
                                ", kestra-standalone-abc-1, kestra-standalone-abc-2, ...)")
    assert len(item.data[0]["health"]) == 5  # every pod in the data


def test_a_pod_whose_health_was_not_asked_is_not_a_pass():
    deps, pods = distributed()
    item = c.check_components(deps, pods, {})
    assert item.status == WARN and "no answer (not asked)" in item.reason


def test_pods_of_another_component_are_not_counted():
    deps, pods = distributed()
    looping = pod("worker", 9, restarts=4, waiting="CrashLoopBackOff")
    item = c.check_components(deps, pods + [looping], health_of(pods))
    verdicts = {d["component"]: d for d in item.data}
    assert verdicts["worker"]["status"] == FAIL and verdicts["webserver"]["status"] == PASS
    assert verdicts["worker"]["restarts"] == 4


# --------------------------------------------------------------------------- fetch_health

class Reader:
    """Answers of the pod proxy by pod (an exception is raised); records each call."""

    def __init__(self, answers: dict):
        self.answers, self.calls = answers, []

    def pod_proxy_get(self, namespace, pod, port, path, *, timeout):
        self.calls.append((namespace, pod, port, path, timeout))
        answer = self.answers[pod]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_fetch_health_asks_each_pod_on_its_port_and_keeps_errors_in_words():
    from kestra_ops.errors import Unreachable

    reader = Reader({"a": (200, b'{"status": "UP"}'),
                     "b": Unreachable("cannot reach the Kubernetes API at https://k: timed out")})
    got = c.fetch_health(reader, NS, [("a", 8081), ("b", 9000)], timeout=2.0)
    assert got == {"a": c.Health(200, b'{"status": "UP"}'),
                   "b": c.Health(error="cannot reach the Kubernetes API at https://k: timed "
                                       "out")}
    assert sorted(call[:4] for call in reader.calls) == [(NS, "a", 8081, "/health"),
                                                         (NS, "b", 9000, "/health")]
    assert all(call[4] <= 2.0 for call in reader.calls)


def test_fetch_health_never_outlasts_its_budget():
    reader = Reader({"a": (200, b"{}")})
    got = c.fetch_health(reader, NS, [("a", 8081)], budget=0.1)
    assert reader.calls == [] and got["a"].error.startswith("not asked: the 0.1s")
    assert c.judge_health(got["a"])[0] == WARN
