"""The checklist's judges on RECORDED state, in the style of Argo CD's gitops-engine pkg/health:
each fixture (tests/fixtures/checks: the e2e control plane's answers healthy and under each fault
of its kubelet, the fake cluster's Istio Job pods, Kestra's answers) judged by importing
kestra_ops.checks directly, no fetcher and no cluster."""

from __future__ import annotations

import copy

import pytest

from kestra_ops.checks import configmap, events, kestra, pods
from kestra_ops.checks.pods import pod_problems
from tests.fixtures.checks import cluster
from tests.fixtures.checks import kestra as answer

NS = "ns"


def standalone(state: dict) -> dict:
    return next(p for p in state["pods"] if p["metadata"]["name"].startswith("kestra-standalone"))


def restarts(pod: dict) -> int:
    return pod["status"]["containerStatuses"][0]["restartCount"]


def plural(n: int) -> str:
    return f"{n} restart{'s' * (n != 1)}"


# --------------------------------------------------------------------------- pods

def test_pods_healthy_and_completed():
    assert pods.check_pods(cluster("healthy")["pods"], {}, NS).reason == \
        "2 pod(s) in ns: 2 Running, 0 Completed"
    item = pods.check_pods(cluster("fake-istio-job-completed")["pods"], {}, NS)
    assert (item.status, item.reason) == ("pass", "3 pod(s) in ns: 2 Running, 1 Completed")
    assert item.details == [] and item.data == []


@pytest.mark.parametrize("fixture, reason", [
    ("crashloop", "CrashLoopBackOff"),
    ("oom", "CrashLoopBackOff (OOMKilled)"),
    ("image-pull", "ImagePullBackOff"),  # (its earlier OOM kill is not the cause here)
])
def test_pods_failing_names_pod_container_reason_restarts(fixture, reason):
    state = cluster(fixture)
    pod = standalone(state)
    name, n = pod["metadata"]["name"], restarts(pod)
    item = pods.check_pods(state["pods"], {(name, "kestra"): ["boom"]}, NS)
    assert item.status == "fail"
    assert item.reason == f"1 of 2 pod(s) in ns failing: pod {name} container kestra: " \
                          f"{reason} ({plural(n)})"
    [problem] = item.data
    assert (problem["pod"], problem["container"], problem["reason"], problem["restarts"]) == \
        (name, "kestra", reason, n)
    assert item.details[0].startswith(f"pod {name} container kestra: {reason} ({plural(n)}); ")
    assert item.details[1:] == ["  | boom"] and problem["log"] == ["boom"]


def test_which_logs_are_read():
    crash = standalone(cluster("crashloop"))["metadata"]["name"]
    assert pods.wanted_logs(cluster("crashloop")["pods"]) == [(crash, "kestra", True)]
    assert pods.wanted_logs(cluster("image-pull")["pods"]) == []  # never started: no log
    assert pods.wanted_logs(cluster("healthy")["pods"]) == []
    failed = next(p for p in cluster("fake-istio-job-failed")["pods"]
                  if p["metadata"]["name"].startswith("kestra-broken"))
    assert pods.wanted_logs([failed]) == [(failed["metadata"]["name"], "main", False)]


def test_a_restarted_container_running_again_is_a_warning():
    state = cluster("recovered")
    item = pods.check_pods(state["pods"], {}, NS)
    assert (item.status, item.reason) == ("warn", "2 pod(s) in ns: 2 Running, 0 Completed; "
                                                  "1 container(s) restarted")
    assert item.data[0]["reason"] == "restarted (OOMKilled)"
    assert item.data[0]["message"] == "last exit 137 OOMKilled"


def test_a_job_pod_failed_beside_its_live_sidecar():
    item = pods.check_pods(cluster("fake-istio-job-failed")["pods"], {}, NS)
    assert item.status == "fail" and "container main: Error (0 restarts)" in item.reason
    assert item.data[0]["message"] == "exit 1"


def test_no_pods():
    assert pods.check_pods([], {}, NS).reason == "no pods in ns: is Kestra deployed?"
    deleting = copy.deepcopy(cluster("healthy")["pods"])
    for pod in deleting:
        pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert pods.check_pods(deleting, {}, NS).status == "fail"


# --------------------------------------------------------------------------- readiness

@pytest.mark.parametrize("fixture, status, state", [
    ("healthy", "pass", "1/1"),
    ("recovered", "pass", "1/1"),
    ("crashloop", "fail", "0/1 ready; not ready: kestra (waiting: CrashLoopBackOff)"),
    ("image-pull", "fail", "0/1 ready; not ready: kestra (waiting: ImagePullBackOff)"),
    ("never-ready", "fail", "0/1 ready; not ready: kestra (running, readiness probe failing)"),
])
def test_readiness(fixture, status, state):
    recorded = cluster(fixture)
    item = pods.check_readiness(recorded["pods"], NS)
    assert item.status == status
    row = next(r for r in item.data if r["pod"] == standalone(recorded)["metadata"]["name"])
    assert row["state"] == state and row["ready"] is (status == "pass")


def test_readiness_of_the_istio_job_pods():
    item = pods.check_readiness(cluster("fake-istio-job-completed")["pods"], NS)
    assert (item.status, item.reason) == ("pass", "3 pod(s) in ns ready (1 Completed)")
    states = {r["pod"].split("-")[1]: r["state"] for r in item.data}
    assert states == {"postgres": "2/2 (with istio-proxy)", "standalone": "2/2 (with istio-proxy)",
                      "post": "1/2 Completed (istio-proxy still running: normal for a Job pod)"}
    failed = pods.check_readiness(cluster("fake-istio-job-failed")["pods"], NS)
    assert failed.status == "fail"
    assert "1/2 ready; not ready: main (terminated: Error exit 1)" in failed.reason


# --------------------------------------------------------------------------- the rollout's view

@pytest.mark.parametrize("fixture, reason, gives_up", [
    ("crashloop", "CrashLoopBackOff", None),  # gives up once restarted 3 times
    ("oom", "CrashLoopBackOff (OOMKilled)", None),
    ("image-pull", "ImagePullBackOff", True),  # waiting will not pull it
    ("never-ready", "running but not ready", False),  # a probe may still pass
])
def test_one_judge_for_the_rollout_wait(fixture, reason, gives_up):
    pod = standalone(cluster(fixture))
    [problem] = [p for p in pod_problems(pod, unready=True) if p.status == "fail"]
    assert problem.reason == reason and problem.restarts == restarts(pod)
    expected = restarts(pod) >= 3 if gives_up is None else gives_up
    assert problem.gives_up(crashloop_restarts=3) is expected
    assert problem.gives_up(crashloop_restarts=10 ** 6) is (gives_up is True)
    # the checklist does not count a running, unready container as a pod problem
    assert all(p.reason != "running but not ready" for p in pod_problems(pod))


# --------------------------------------------------------------------------- events

def judge_events(state: dict):
    since, label = events.rollout_time(state["deployment"], state["replicasets"])
    objects = {"Pod": state["pods"], "PersistentVolumeClaim": state["claims"]}
    return events.check_events(state["events"], since, label, NS, objects)


def test_first_install_events_are_history():
    item = judge_events(cluster("healthy"))
    assert item.status == "pass"
    assert item.reason.startswith("no Warning event in ns since the last rollout of deployment "
                                  "kestra-standalone (")
    scheduling = [i for i in item.data if i["reason"] == "FailedScheduling"]
    assert scheduling and all(i["resolved"] and i["object"] == "Pod/kestra-postgres-0"
                              and "PersistentVolumeClaims" in i["message"]
                              and "was scheduled at" in i["why"] for i in scheduling)
    assert all(i["last_seen"] for i in item.data)  # events.k8s.io times (no lastTimestamp)


@pytest.mark.parametrize("fixture, reasons", [
    ("crashloop", {"BackOff"}),
    ("oom", {"BackOff"}),
    ("image-pull", {"Failed"}),
    ("never-ready", {"Unhealthy"}),
])
def test_events_of_a_fault_still_present_fail(fixture, reasons):
    state = cluster(fixture)
    item = judge_events(state)
    present = [i for i in item.data if not i["resolved"]]
    assert item.status == "fail" and {i["reason"] for i in present} >= reasons
    name = standalone(state)["metadata"]["name"]
    assert item.reason.startswith(f"{len(present)} Warning event(s) in ns since the last "
                                  f"rollout of deployment kestra-standalone (")
    assert any(i["object"] == f"Pod/{name}" for i in present)
    assert all("is not ready" in i["why"] for i in present if i["object"] == f"Pod/{name}")


def test_events_once_recovered_are_history():
    item = judge_events(cluster("recovered"))
    assert item.status == "pass", item.data
    assert {i["reason"] for i in item.data} >= {"BackOff", "Failed", "Unhealthy"}
    assert all(i["resolved"] for i in item.data)
    pod = standalone(cluster("recovered"))["metadata"]["name"]
    assert all(i["why"].startswith(f"pod {pod} is running and ready since")
               for i in item.data if i["object"] == f"Pod/{pod}")


def test_deploy_time_from_the_newest_replicaset():
    state = cluster("healthy")
    [rs] = state["replicasets"]
    since, label = events.rollout_time(state["deployment"], state["replicasets"])
    assert since.strftime("%Y-%m-%dT%H:%M:%SZ") == rs["metadata"]["creationTimestamp"]
    assert label == f"the last rollout of deployment kestra-standalone ({since:%Y-%m-%dT%H:%M:%SZ})"
    since, label = events.rollout_time(state["deployment"], [])
    assert label.startswith("the creation of deployment kestra-standalone")


# --------------------------------------------------------------------------- configmap

def test_configmap_as_deployed_and_without_a_section():
    live = cluster("healthy")["configmap"]
    item = configmap.check_configmap(live)
    assert item.status == "pass" and item.details == [
        "present: datasources.default", "present: datasources.postgres",
        "present: kestra.datasources.postgres"]
    text = live["data"]["application.yml"]
    live["data"]["application.yml"] = text.replace("datasources:\n  default:", "datasources:\n"
                                                   "  other:", 1)
    item = configmap.check_configmap(live)
    assert item.status == "fail" and item.data == [{"missing": "datasources.default"}]
    assert configmap.check_configmap(None).reason == "configmap kestra-config not found"


# --------------------------------------------------------------------------- Kestra's answers

def test_kestra_api_and_login_from_recorded_answers():
    first = answer("flows-search")["results"][0]
    item = kestra.check_api("http://k", True, None, f"{first['namespace']}.{first['id']}")
    assert item.reason == "Kestra at http://k answers on the flows endpoint (e.g. " \
                          "company.team.etl)"
    configs = answer("configs")
    item = kestra.check_login("admin@example.com", configs, answer("basic-auth-valid"))
    assert (item.status, item.reason) == ("pass", "logged in as user admin@example.com (Kestra "
                                          f"{configs['version']}); no basic-auth validation "
                                          "errors")
    errors = answer("basic-auth-invalid-username")
    item = kestra.check_login("admin@example.com", configs, errors)
    assert item.status == "fail" and item.details[0] == errors[0]
    item = kestra.check_login("admin@example.com", answer("configs-basic-auth-not-initialized"),
                              errors)
    assert item.status == "fail" and "basic auth is not initialised" in item.reason


def test_e2e_flow_judged_from_a_recorded_execution():
    execution = answer("execution-success")
    run = kestra.E2ERun("kestra-ops.checks", "check-e2e", created=True,
                        execution_id=execution["id"], state=execution["state"]["current"],
                        deleted=True)
    item = kestra.check_e2e(run)
    assert item.status == "pass" and execution["id"] in item.reason
    run.deleted, run.delete_error = False, "DELETE flows/kestra-ops.checks/check-e2e: 503"
    assert kestra.check_e2e(run).status == "warn"
