"""kestra-ops check against the fake Kubernetes API (pods in each failure state, Istio sidecars, a
Completed Job pod with its live sidecar, events, logs), the fake Kestra server and MinIO's health
endpoints: every checklist item failing and passing, --wait, --only, JSON and JUnit."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.helpers_checks import CM, DEP, JOB, NS, PG, ROOT, install  # noqa: F401

ALL = ["pods", "readiness", "components", "events", "minio", "kestra-api", "login", "e2e-flow",
       "configmap"]


def as_json(result) -> dict:
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def item(result, check_id: str) -> dict:
    return next(c for c in as_json(result)["checks"] if c["id"] == check_id)


def run_json(install, *args):
    return install.run("--output", "json", *args)


def flows_left(install) -> list[str]:
    return [f"{f['namespace']}.{f['id']}" for f in install.kestra.all_flows()]


# --------------------------------------------------------------------------- everything passes

def test_healthy_install_passes_every_item(install):
    result = install.run()
    assert result.exit_code == 0, result.output
    for check_id in ALL:
        assert f"PASS  {check_id}" in result.output
    assert "check dev: ok: 9 passed, 0 warning(s), 0 failed" in result.output
    assert flows_left(install) == []  # the e2e flow was deleted
    created = install.kestra.calls("POST", r"/flows$")
    assert len(created) == 1 and b"namespace: kestra-ops.checks" in created[0].body
    assert install.kestra.calls("DELETE", r"/flows/kestra-ops\.checks/check-")


def test_json_report(install):
    data = as_json(run_json(install))
    assert data["ok"] is True and data["exit_code"] == 0 and data["env"] == "dev"
    assert [c["id"] for c in data["checks"]] == ALL
    assert {c["status"] for c in data["checks"]} == {"pass"}
    assert all(c["seconds"] > 0 and c["attempts"] == 1 for c in data["checks"])
    assert data["counts"] == {"pass": 9, "warn": 0, "fail": 0}


def test_json_names_the_kestra_url_used_and_how_it_was_chosen(install, monkeypatch):
    data = as_json(run_json(install, "--only", "kestra-api"))
    assert data["kestra_url"] == install.kestra.url
    assert data["kestra_url_source"] == "KESTRA_OPS_KESTRA_URL"
    host = install.kestra.url.split("://", 1)[1]
    result = run_json(install, "--only", "kestra-api",
                      "--kestra-url", f"http://someone:S3cret-pw@{host}")
    data = as_json(result)
    assert data["kestra_url"] == install.kestra.url and data["kestra_url_source"] == \
        "--kestra-url"
    assert "S3cret-pw" not in result.output
    monkeypatch.delenv("KESTRA_OPS_KESTRA_URL")
    data = as_json(run_json(install, "--only", "configmap"))  # no Kestra item: nothing given
    assert data["kestra_url"] is None and data["kestra_url_source"] is None


# --------------------------------------------------------------------------- pods and readiness

@pytest.mark.parametrize("mode,reason", [("crashloop", "CrashLoopBackOff"),
                                         ("imagepull", "Image"),
                                         ("oom", "CrashLoopBackOff (OOMKilled)"),
                                         ("unschedulable", "Unschedulable")])
def test_pods_fails_for_each_failure_state(install, mode, reason):
    install.kube.controller.set_failure(DEP, mode)
    install.wait_pods(lambda: any(reason.split()[0] in json.dumps(p.get("status"))
                                  for p in install.pods(DEP)))
    pod = install.pod(DEP)["metadata"]["name"]
    install.kube.store.set_log(NS, pod, "kestra", "boot\nCaused by: fatal thing\n", previous=True)
    result = run_json(install, "--only", "pods,readiness")
    assert result.exit_code == 1
    pods = item(result, "pods")
    assert pods["status"] == "fail"
    assert f"pod {pod}" in pods["reason"] and reason in pods["reason"]
    problem = next(i for i in pods["items"] if i["pod"] == pod)
    assert reason.split()[0] in problem["reason"]
    if mode != "unschedulable":
        assert problem["container"] == "kestra"
    if mode in ("crashloop", "oom"):
        assert problem["restarts"] >= 1
        assert problem["log"] == ["boot", "Caused by: fatal thing"]  # the crashed instance's log
        assert "exit 137" in problem["message"] if mode == "oom" else "exit 1" in problem["message"]
    assert item(result, "readiness")["status"] == "fail"


def test_crashloop_table_names_pod_container_restarts_and_log(install):
    install.kube.controller.set_failure(DEP, "crashloop")
    install.wait_pods(lambda: "CrashLoopBackOff" in json.dumps(install.pod(DEP)["status"]))
    pod = install.pod(DEP)["metadata"]["name"]
    install.kube.store.set_log(NS, pod, "kestra", "Exception in thread main\n", previous=True)
    result = install.run("--only", "pods")
    assert result.exit_code == 1
    # one line per item: mark, id, why (naming the pod, container, reason and restarts), time
    assert re.search(rf"^  FAIL  pods  1 of 3 pod\(s\) in {NS} failing: pod {pod} container "
                     r"kestra: CrashLoopBackOff \(\d+ restarts?\) \(\d+\.\d\ds\)$", result.output,
                     re.M), result.output
    assert "| Exception in thread main" in result.output


def test_job_pod_that_failed_with_live_sidecar(install):
    install.kube.seed({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": "kestra-broken", "namespace": NS}, "spec": {"template": {
            "metadata": {"labels": {"sidecar.istio.io/inject": "true"}},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "main", "image": "busybox:1.36"}]}}}})
    install.kube.controller.set_failure("kestra-broken", "fail")
    install.wait_pods(lambda: install.pods("kestra-broken") and "terminated" in json.dumps(
        install.pod("kestra-broken")["status"].get("containerStatuses")))
    install.kube.store.set_log(NS, install.pod("kestra-broken")["metadata"]["name"], "main",
                               "migration failed\n")
    result = run_json(install, "--only", "pods,readiness")
    pods, ready = item(result, "pods"), item(result, "readiness")
    assert pods["status"] == "fail" and "container main: Error" in pods["reason"]
    assert "exit 1" in pods["details"][0] and pods["items"][0]["message"] == "exit 1"
    assert pods["items"][0]["log"] == ["migration failed"]  # the current (terminated) log
    assert ready["status"] == "fail"
    assert "1/2 ready; not ready: main (terminated: Error exit 1)" in ready["reason"]


def test_never_ready_passes_pods_but_fails_readiness(install):
    install.kube.controller.set_failure(DEP, "never-ready")
    install.wait_pods(lambda: not install.pod(DEP)["status"]["containerStatuses"][0]["ready"])
    result = run_json(install, "--only", "pods,readiness")
    assert item(result, "pods")["status"] == "pass"
    ready = item(result, "readiness")
    assert ready["status"] == "fail"
    assert "1/2 ready; not ready: kestra (running, readiness probe failing)" in ready["reason"]


def test_readiness_with_istio_sidecars_and_completed_job(install):
    result = run_json(install, "--only", "readiness")
    ready = item(result, "readiness")
    assert ready["status"] == "pass"
    states = {i["pod"].rsplit("-", 1)[0] if i["pod"].startswith(JOB) else i["pod"]: i["state"]
              for i in ready["items"]}
    assert states[f"{PG}-0"] == "2/2 (with istio-proxy)"
    assert states[JOB] == "1/2 Completed (istio-proxy still running: normal for a Job pod)"
    assert ready["reason"] == f"3 pod(s) in {NS} ready (1 Completed)"
    assert "2 Running, 1 Completed" in item(run_json(install, "--only", "pods"), "pods")["reason"]


def test_restarted_container_is_a_warning(install):
    pod = install.pod(f"{PG}-0")

    def restarted(p):
        cs = p["status"]["containerStatuses"][0]
        cs["restartCount"] = 2
        cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error"}}
    install.kube.controller.frozen.add(pod["metadata"]["uid"])
    install.kube.store.mutate("pods", NS, f"{PG}-0", restarted)
    install.kube.store.set_log(NS, f"{PG}-0", "postgres", "FATAL: could not start\n",
                               previous=True)
    result = run_json(install, "--only", "pods")
    assert result.exit_code == 0
    pods = item(result, "pods")
    assert pods["status"] == "warn" and "1 container(s) restarted" in pods["reason"]
    assert pods["items"][0]["restarts"] == 2 and pods["items"][0]["log"] == [
        "FATAL: could not start"]


def test_no_pods_fails(install):
    for pod in install.pods():
        install.kube.controller.frozen.add(pod["metadata"]["uid"])
    install.kube.store.delete("deployments", NS, DEP)
    install.kube.store.delete("statefulsets", NS, PG)
    install.kube.store.delete("jobs", NS, JOB, propagation="Background")
    for pod in install.pods():
        install.kube.store.delete("pods", NS, pod["metadata"]["name"])
    assert install.kube.wait_until(lambda: not install.pods(), timeout=5)
    result = run_json(install, "--only", "pods,readiness")
    assert item(result, "pods")["reason"] == f"no pods in {NS}: is Kestra deployed?"
    assert item(result, "readiness")["status"] == "fail"


# --------------------------------------------------------------------------- events

def test_warning_events_since_the_deploy_are_listed(install):
    old = "2020-01-01T00:00:00Z"
    install.warning_event("kestra-old", "BackOff", "before the deploy", when=old)
    install.warning_event(f"{PG}-0", "Unhealthy", "Readiness probe failed: 503", count=4)
    result = run_json(install, "--only", "events")
    events = item(result, "events")
    assert result.exit_code == 1 and events["status"] == "fail"
    assert "1 Warning event(s)" in events["reason"] and "since release kestra revision 2" \
        in events["reason"]
    # the pod is ready, but the probe failed again at (or after) the second it became ready
    why = events["items"][0]["why"]
    assert why.startswith("seen at ") and f"after pod {PG}-0 became ready" in why
    assert events["items"] == [{"object": f"Pod/{PG}-0", "reason": "Unhealthy",
                                "message": "Readiness probe failed: 503", "count": 4,
                                "last_seen": events["items"][0]["last_seen"],
                                "resolved": False, "why": why}]
    assert events["details"] == [f"Pod/{PG}-0: Unhealthy: Readiness probe failed: 503 (x4); "
                                 f"{why}"]


def test_crashloop_warning_events(install):
    install.kube.controller.set_failure(DEP, "crashloop")
    install.wait_pods(lambda: any(e["type"] == "Warning" for e in
                                  install.kube.store.list("events", NS)))
    events = item(run_json(install, "--only", "events"), "events")
    assert events["status"] == "fail"
    assert any(i["reason"] == "BackOff" and i["object"].startswith(f"Pod/{DEP}")
               for i in events["items"])


def test_crashloop_events_become_history_once_the_pod_is_ready_again(install, monkeypatch):
    monkeypatch.setattr(install.kube.controller, "restart_interval", 30.0)  # a kubelet's pace
    install.kube.controller.set_failure(DEP, "crashloop")
    install.wait_pods(lambda: any(e["reason"] == "BackOff" for e in
                                  install.kube.store.list("events", NS)))
    assert item(run_json(install, "--only", "events"), "events")["status"] == "fail"
    time.sleep(1.05 - time.time() % 1)  # the pod becomes ready in a later second than the event
    install.kube.controller.set_failure(DEP, None)
    install.wait_pods(lambda: install.pod(DEP)["status"]["containerStatuses"][0]["ready"])
    result = run_json(install, "--only", "events")
    events = item(result, "events")
    assert result.exit_code == 0 and events["status"] == "pass", events
    assert "is still present" in events["reason"] and "resolved (history" in events["reason"]
    backoff = [i for i in events["items"] if i["reason"] == "BackOff"]
    assert backoff and all(i["resolved"] and "is running and ready since" in i["why"]
                           for i in backoff)
    assert all(d.startswith("resolved: ") for d in events["details"])


def test_events_about_kinds_without_a_rule_stay_failures(install):
    install.warning_event(DEP, "FailedCreate", "admission webhook denied the request",
                          kind="ReplicaSet")
    events = item(run_json(install, "--only", "events"), "events")
    assert events["status"] == "fail"
    assert events["items"][0]["resolved"] is False
    assert "no rule tells whether the cause is gone for a ReplicaSet" in events["items"][0]["why"]


def test_events_pass_and_fall_back_to_the_rollout_time(install):
    install.helm.state.path.unlink()  # no release: the Deployment's last rollout counts
    install.warning_event("kestra-old", "BackOff", "long ago", when="2020-01-01T00:00:00Z")
    events = item(run_json(install, "--only", "events"), "events")
    assert events["status"] == "pass"
    assert f"since the last rollout of deployment {DEP}" in events["reason"]


# --------------------------------------------------------------------------- minio

@pytest.mark.parametrize("live,cluster,status,words", [
    (200, 200, "pass", "is live and has write quorum"),
    (200, None, "pass", "/minio/health/cluster not served"),
    (503, 200, "fail", "is not live: /minio/health/live answered HTTP 503"),
    (200, 503, "fail", "has lost write quorum"),
])
def test_minio_health(install, live, cluster, status, words):
    install.minio.live, install.minio.cluster = live, cluster
    result = run_json(install, "--only", "minio")
    minio = item(result, "minio")
    assert minio["status"] == status and words in minio["reason"]
    assert result.exit_code == (0 if status == "pass" else 1)
    assert "/minio/health/live" in install.minio.requests


def test_minio_unreachable_and_not_configured(install, monkeypatch):
    install.minio.stop()
    minio = item(run_json(install, "--only", "minio"), "minio")
    assert minio["status"] == "fail" and "not reachable" in minio["reason"]
    monkeypatch.setenv("KESTRA_OPS_MINIO_ENDPOINT", "")
    (install.root / "kestra-ops.yaml").write_text(
        "environments:\n  dev:\n    values: [values/base.yaml, values/dev.yaml]\n")
    result = run_json(install, "--only", "minio")
    assert result.exit_code == 0
    assert item(result, "minio")["status"] == "warn"
    assert item(result, "minio")["reason"].startswith("skipped: no MinIO endpoint")


def test_minio_tls_verified_unless_insecure(install, tmp_path, monkeypatch):
    from tests.fakes.minio_health import MinioHealth, self_signed

    cert, key = self_signed(tmp_path)
    with MinioHealth(tls=(cert, key)) as minio:
        monkeypatch.setenv("KESTRA_OPS_MINIO_ENDPOINT", minio.url)
        minio_item = item(run_json(install, "--only", "minio"), "minio")
        assert minio_item["status"] == "fail"
        assert "TLS certificate verify failed: self" in minio_item["reason"]  # self-signed ...
        assert "--insecure" in minio_item["reason"]
        assert item(run_json(install, "--only", "minio", "--insecure"), "minio")["status"] == \
            "pass"
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)  # or trust its CA
        assert item(run_json(install, "--only", "minio"), "minio")["status"] == "pass"


# --------------------------------------------------------------------------- kestra api, login

def test_kestra_api_unreachable_and_5xx(install):
    install.kestra.fail_next(10, status=503, path=r"/flows/search")
    api = item(run_json(install, "--only", "kestra-api"), "kestra-api")
    assert api["status"] == "fail" and "503" in api["reason"]
    url = install.kestra.url
    install.kestra.stop()
    api = item(run_json(install, "--only", "kestra-api"), "kestra-api")
    assert api["status"] == "fail"
    assert f"cannot reach Kestra at {url}: connection refused" in api["reason"]


def test_login_with_wrong_password(install, monkeypatch):
    monkeypatch.setenv("KESTRA_OPS_BASIC_AUTH_PASSWORD", "Wrong-Passw0rd")
    result = run_json(install, "--only", "kestra-api,login")
    login = item(result, "login")
    assert login["status"] == "fail"
    assert "login as user admin@example.com failed" in login["reason"]
    assert "Kestra refused the credentials" in login["reason"]
    assert any(d.startswith("rule: the username is") for d in login["details"])
    assert "Wrong-Passw0rd" not in result.output
    assert item(result, "kestra-api")["status"] == "warn"  # it answered; login says the rest


def test_login_failing_with_503_has_no_credentials_rule(install):
    install.kestra.fail_next(10, status=503, path=r"/basicAuthValidationErrors")
    login = item(run_json(install, "--only", "login"), "login")
    assert login["status"] == "fail" and "503" in login["reason"]
    assert login["details"] == []  # nothing about the username/password rule
    install.kestra.stop()
    login = item(run_json(install, "--only", "login"), "login")
    assert login["status"] == "fail" and "cannot reach Kestra" in login["reason"]
    assert login["details"] == []


def test_login_fails_on_basic_auth_validation_errors(install):
    install.kestra.basic_auth_validation_errors = [
        "Invalid username for Basic Authentication. Please provide a valid email address."]
    login = item(run_json(install, "--only", "login"), "login")
    assert login["status"] == "fail"
    assert "1 basic-auth validation error(s): Invalid username" in login["reason"]
    assert any("an e-mail address" in d for d in login["details"])
    install.kestra.basic_auth_validation_errors = []
    install.kestra.basic_auth_initialized = False
    login = item(run_json(install, "--only", "login"), "login")
    assert login["status"] == "fail" and "basic auth is not initialised" in login["reason"]


# --------------------------------------------------------------------------- e2e flow

def test_e2e_flow_failed_is_still_deleted(install):
    install.kestra.flow_store.rules.fail_markers = ("io.kestra.plugin.core.log.Log",)
    result = run_json(install, "--only", "e2e-flow")
    e2e = item(result, "e2e-flow")
    assert result.exit_code == 1 and e2e["status"] == "fail"
    assert "ended FAILED" in e2e["reason"]
    assert e2e["items"][0]["deleted"] is True and flows_left(install) == []
    assert install.kestra.calls("DELETE", r"/flows/kestra-ops\.checks/check-")


def test_e2e_flow_still_running_at_the_timeout_is_deleted(install):
    install.kestra.flow_store.rules.hang_markers = ("io.kestra.plugin.core.log.Log",)
    result = run_json(install, "--only", "e2e-flow", "--timeout-per-check", "2s")
    e2e = item(result, "e2e-flow")
    assert e2e["status"] == "fail" and "still RUNNING" in e2e["reason"]
    assert flows_left(install) == []


def test_e2e_flow_that_cannot_be_created(install):
    install.kestra.fail_next(1, status=500, path=r"/flows$", method="POST")
    e2e = item(run_json(install, "--only", "e2e-flow"), "e2e-flow")
    assert e2e["status"] == "fail" and "500" in e2e["reason"]
    assert not install.kestra.calls("DELETE") and flows_left(install) == []


def test_ctrl_c_during_the_e2e_flow_still_deletes_it(install):
    """A real SIGINT to a real process while the execution runs: exit 130, flow deleted."""
    install.kestra.flow_store.rules.hang_markers = ("io.kestra.plugin.core.log.Log",)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "kestra_ops", "--config", str(install.config),
                             "check", "--env", "dev", "--only", "e2e-flow"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert install.kube.wait_until(lambda: install.kestra.executions, timeout=20)
        assert flows_left(install)  # created and running
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert flows_left(install) == []
    assert install.kestra.calls("DELETE", r"/flows/kestra-ops\.checks/check-")


# --------------------------------------------------------------------------- configmap

def test_configmap_missing_a_section(install):
    app = install.application()
    del app["datasources"]["default"]
    install.set_configmap(app)
    result = run_json(install, "--only", "configmap")
    cm = item(result, "configmap")
    assert result.exit_code == 1 and cm["status"] == "fail"
    assert "lacks datasources.default" in cm["reason"]
    assert "MISSING: datasources.default" in cm["details"]
    install.kube.store.delete("configmaps", NS, CM)
    cm = item(run_json(install, "--only", "configmap"), "configmap")
    assert cm["reason"] == f"configmap {CM} not found"


# --------------------------------------------------------------------------- --wait, --only

def test_wait_turns_a_failing_check_into_a_pass(install):
    install.kube.controller.set_failure(DEP, "never-ready")
    install.wait_pods(lambda: not install.pod(DEP)["status"]["containerStatuses"][0]["ready"])
    threading.Timer(1.0, install.kube.controller.set_failure, (DEP, None)).start()
    started = time.monotonic()
    result = run_json(install, "--only", "readiness", "--wait", "20s")
    assert result.exit_code == 0, result.output
    ready = item(result, "readiness")
    assert ready["status"] == "pass" and ready["attempts"] >= 2
    assert time.monotonic() - started < 15


def test_wait_gives_up_at_the_deadline(install):
    install.kube.controller.set_failure(DEP, "never-ready")
    install.wait_pods(lambda: not install.pod(DEP)["status"]["containerStatuses"][0]["ready"])
    started = time.monotonic()
    result = install.run("--only", "readiness,configmap", "--wait", "2s")
    assert result.exit_code == 1
    assert "FAIL  readiness" in result.output and "attempts)" in result.output
    assert "PASS  configmap" in result.output and "waiting for readiness" in result.stderr
    assert 2 <= time.monotonic() - started < 10


def test_only_runs_the_named_checks(install):
    data = as_json(run_json(install, "--only", "minio,configmap"))
    assert [c["id"] for c in data["checks"]] == ["minio", "configmap"]
    assert install.kestra.requests_log == []  # no Kestra check ran
    result = install.run("--only", "pods,nope")
    assert result.exit_code == 2 and "unknown check(s) nope" in result.output


def test_timeout_per_check(install):
    install.kestra.slow(3.0, path=r"/flows/search")
    started = time.monotonic()
    api = item(run_json(install, "--only", "kestra-api", "--timeout-per-check", "1s"),
               "kestra-api")
    assert api["status"] == "fail"
    assert "within" in api["reason"]  # the client's read timeout or the runner's budget
    assert time.monotonic() - started < 2.9


# --------------------------------------------------------------------------- junit

def test_junit_output_for_ci(install, monkeypatch):
    from junitparser import Failure, JUnitXml, Skipped

    app = install.application()
    del app["datasources"]["default"]
    install.set_configmap(app)
    monkeypatch.setenv("KESTRA_OPS_MINIO_ENDPOINT", "")
    (install.root / "kestra-ops.yaml").write_text(
        "environments:\n  dev:\n    values: [values/base.yaml, values/dev.yaml]\n")
    result = install.run("--output", "junit")
    assert result.exit_code == 1
    xml = JUnitXml.fromstring(result.stdout)
    suites = list(xml) if hasattr(xml, "__iter__") else [xml]
    cases = {case.name: case for suite in suites for case in suite}
    assert sorted(cases) == sorted(ALL)
    assert xml.tests == 9 and xml.failures == 1
    assert isinstance(cases["configmap"].result[0], Failure)
    assert "lacks datasources.default" in cases["configmap"].result[0].message
    assert isinstance(cases["minio"].result[0], Skipped)
    assert cases["pods"].is_passed and cases["pods"].time > 0


def test_unreachable_cluster_fails_only_the_cluster_items_and_quiet(install):
    api = install.kube.url
    install.kube.stop()
    result = install.run("--quiet", "--only", "pods,events,configmap,kestra-api,login")
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert [line.split()[1] for line in lines[:-1]] == ["pods", "events", "configmap"]
    # in words, naming the host: no exception class (MaxRetryError, NewConnectionError)
    assert all(f"cannot reach the Kubernetes API at {api}: connection refused ("
               in line for line in lines[:-1]), lines
    assert "Error" not in result.stdout.replace("FAILED", "")
    assert lines[-1].startswith("check dev: FAILED: 2 passed, 0 warning(s), 3 failed")
