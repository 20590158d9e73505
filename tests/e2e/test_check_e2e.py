"""``check`` on the real control plane after a first install: the transient events of a first
install are history, a crash loop fails ``pods`` and ``events`` with its BackOff, and the Kestra
items reach a fake Kestra through the API server's service proxy (basic auth as the BASIC_AUTH
cookie, since the proxy drops Authorization)."""

from __future__ import annotations

import json
import time

import yaml

from kestra_ops.checks import parse_time
from tests.e2e.conftest import CONTEXT, SECRETS
from tests.e2e.support import wait_until
from tests.fakes.kestra_server import FakeKestra

USERNAME = "platform-admin@example.com"  # kestra.server.basic-auth.username in values/base.yaml


def check_json(install, *args: str) -> tuple[int, dict]:
    result = install.run("check", "--env", "dev", "--output", "json", *args)
    assert result.exit_code in (0, 1), f"{result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result.exit_code, json.loads(result.stdout)


def item(data: dict, check_id: str) -> dict:
    return next(c for c in data["checks"] if c["id"] == check_id)


def warnings(install) -> list[dict]:
    return [e for e in install.get(f"/api/v1/namespaces/{install.namespace}/events")["items"]
            if e["type"] == "Warning"]


def test_first_install_events_are_history_and_a_crash_loop_fails_with_its_backoff(install):
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    code, data = check_json(install, "--only", "pods,readiness,events")
    assert code == 0 and data["ok"], json.dumps(data, indent=1)
    events = item(data, "events")
    assert events["status"] == "pass"
    # every Warning event the cluster recorded since the deploy is listed, each as history
    assert len(events["items"]) == len(warnings(install))
    assert all(i["resolved"] for i in events["items"]), events["items"]
    scheduling = [i for i in events["items"] if i["reason"] == "FailedScheduling"]
    for i in scheduling:  # "pod has unbound immediate PersistentVolumeClaims", until PG's PV binds
        assert i["object"] == "Pod/kestra-postgres-0" and "PersistentVolumeClaims" in i["message"]
        assert "was scheduled at" in i["why"] and i["why"].endswith("and is ready")
        assert i["last_seen"]
    if scheduling:
        assert "resolved (history: " in events["reason"]
        assert any(d.startswith("resolved: Pod/kestra-postgres-0: FailedScheduling") for d in
                   events["details"])

    install.set_fault("crashloop")
    wait_until("a BackOff event", lambda: [e for e in warnings(install)
                                           if e["reason"] == "BackOff"], timeout=30)
    code, data = check_json(install, "--only", "pods,readiness,events")
    assert code == 1
    pods = item(data, "pods")
    assert pods["status"] == "fail" and "CrashLoopBackOff" in pods["reason"]
    events = item(data, "events")
    present = [i for i in events["items"] if not i["resolved"]]
    assert events["status"] == "fail" and present
    assert {i["reason"] for i in present} == {"BackOff"}
    assert present[0]["object"].startswith("Pod/kestra-standalone-")
    assert "is not ready" in present[0]["why"] and "CrashLoopBackOff" in present[0]["why"]
    assert ": BackOff: Back-off restarting failed container" in events["reason"]

    # the fault taken off in a later second than the last BackOff (the kubelet's pace: 5 s):
    # the pod is ready again, the BackOff events become history
    last = max(parse_time(e["lastTimestamp"]) for e in warnings(install)
               if e["reason"] == "BackOff")
    time.sleep(max(0.0, last.timestamp() + 1.05 - time.time()))
    install.set_fault(None)
    wait_until("kestra-standalone ready again", lambda: all(
        c.get("ready") for p in install.pods() for c in p["status"]["containerStatuses"]),
        timeout=30)
    code, data = check_json(install, "--only", "events")
    events = item(data, "events")
    assert code == 0 and events["status"] == "pass", json.dumps(events, indent=1)
    backoff = [i for i in events["items"] if i["reason"] == "BackOff"]
    assert backoff and all(i["resolved"] and "is running and ready since" in i["why"]
                           for i in backoff)


def _wait_for_endpoint_port(install, port: int) -> None:
    path = (f"/apis/discovery.k8s.io/v1/namespaces/{install.namespace}/endpointslices"
            "?labelSelector=kubernetes.io%2Fservice-name%3Dkestra")
    wait_until(f"the kestra Service's endpoints on port {port}", lambda: any(
        p.get("port") == port for s in install.get(path)["items"] for p in s.get("ports") or []),
        timeout=30)


def test_check_reaches_kestra_through_the_service_proxy(install, monkeypatch):
    monkeypatch.delenv("KESTRA_OPS_BASIC_AUTH_USERNAME", raising=False)  # from the values
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    # the fake kubelet gives the pod this host's IPv4: a server on 0.0.0.0 at the Service's
    # targetPort is what the service proxy reaches (never a ClusterIP)
    with FakeKestra(host="0.0.0.0", username=USERNAME, step_seconds=0.02,
                    password=SECRETS["KESTRA_OPS_BASIC_AUTH_PASSWORD"]) as kestra:
        install.core.patch_namespaced_service("kestra", install.namespace, {"spec": {"ports": [
            {"port": 8080, "name": "http", "targetPort": kestra.port},
            {"port": 8081, "name": "management", "targetPort": kestra.port}]}},
            field_manager="e2e-test")
        _wait_for_endpoint_port(install, kestra.port)
        code, data = check_json(install)
        for check_id in ("kestra-api", "login", "e2e-flow"):
            assert item(data, check_id)["status"] == "pass", json.dumps(data, indent=1)
        assert f"logged in as user {USERNAME}" in item(data, "login")["reason"]
        created = kestra.calls("POST", r"/flows$")
        assert len(created) == 1 and b"namespace: kestra-ops.checks" in created[0].body
        assert kestra.calls("DELETE", r"/flows/kestra-ops\.checks/check-")
        assert kestra.all_flows() == []

    admin = yaml.safe_load(install.kubeconfig.read_text())
    context = next(c["context"] for c in admin["contexts"] if c["name"] == CONTEXT)
    server = next(c["cluster"]["server"] for c in admin["clusters"]
                  if c["name"] == context["cluster"])
    assert data["kestra_url"] == (f"{server.rstrip('/')}/api/v1/namespaces/{install.namespace}"
                                  "/services/kestra:8080/proxy")
    assert data["kestra_url_source"] == f"Kubernetes API service proxy (kubeconfig context " \
                                        f"{CONTEXT})"
    assert SECRETS["KESTRA_OPS_BASIC_AUTH_PASSWORD"] not in json.dumps(data)
