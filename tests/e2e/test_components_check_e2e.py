"""``check --only components`` on the real control plane (issue 16, item 4): a distributed
install, each component's pods asked for ``/health`` through the real API server's pod proxy.

The fake kubelet gives every pod this host's primary IP, so the API server's pod proxy dials
``<host-ip>:<port>``: the test serves Kestra's management endpoints on ``0.0.0.0`` at free ports
(tests/fakes/kestra_health.py) and points the components' management container port at them.
The chart fixes that port at Kestra's 8081 (charts/kestra/templates/_helpers.tpl), which this
shared host may not have free, so the test patches the live Deployments' port named
``management`` (a JSON patch: the pods roll out again, as after a deploy). The check reads each
pod's own port, whatever it is."""

from __future__ import annotations

import json

import pytest

from tests.e2e.support import wait_until
from tests.fakes.kestra_health import KestraHealth

DISTRIBUTED = "\nmode: distributed\n"
COMPONENTS = ("webserver", "executor", "scheduler", "worker")
REPLICAS = {"webserver": 2, "executor": 1, "scheduler": 1, "worker": 2}


@pytest.fixture
def health():
    """Kestra's /health on every address of this host: one server UP, one DOWN."""
    up, down = KestraHealth(host="0.0.0.0").start(), KestraHealth(host="0.0.0.0", down=True)
    down.start()
    try:
        yield up, down
    finally:
        up.stop()
        down.stop()


def deployment(install, name: str) -> dict:
    return install.get(f"/apis/apps/v1/namespaces/{install.namespace}/deployments/{name}")


def set_management_port(install, name: str, port: int) -> None:
    """The Deployment's container port named management becomes ``port`` (a JSON patch on its
    index: the strategic merge would add a second entry, ports merging on containerPort)."""
    dep = deployment(install, name)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    index = next(i for i, p in enumerate(container["ports"]) if p["name"] == "management")
    install.apps.patch_namespaced_deployment(name, install.namespace, [
        {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "kestra"},
        {"op": "replace", "path": f"/spec/template/spec/containers/0/ports/{index}/"
                                  "containerPort", "value": port}])


def rolled_out(install, name: str, replicas: int, port: int) -> bool:
    dep = deployment(install, name)
    status = dep.get("status") or {}
    if status.get("observedGeneration", 0) < dep["metadata"]["generation"]:
        return False
    if (status.get("updatedReplicas"), status.get("readyReplicas"), status.get("replicas")) \
            != (replicas, replicas, replicas):
        return False
    pods = install.pods(f"app.kubernetes.io/component={name.split('-', 1)[1]}")
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    ports = {p["containerPort"] for pod in live for p in pod["spec"]["containers"][0]["ports"]
             if p["name"] == "management"}
    return len(live) == replicas and ports == {port}


def components(install, wait: str = "30s") -> tuple[int, dict]:
    result = install.run("check", "--env", "dev", "--only", "components", "--output", "json",
                         "--wait", wait)
    assert result.exit_code in (0, 1), result.stdout + result.stderr
    data = json.loads(result.stdout)
    return result.exit_code, next(c for c in data["checks"] if c["id"] == "components")


def test_every_component_is_checked_through_the_pod_proxy(install, health):
    up, down = health
    install.overlay().write_text(install.overlay().read_text() + DISTRIBUTED)
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    for name in COMPONENTS:
        set_management_port(install, f"kestra-{name}", up.port)
    for name in COMPONENTS:
        wait_until(f"kestra-{name} rolled out on port {up.port}", lambda n=name: rolled_out(
            install, f"kestra-{n}", REPLICAS[n], up.port), timeout=90)

    code, item = components(install)
    assert code == 0 and item["status"] == "pass", json.dumps(item, indent=1)
    assert item["reason"] == (f"4 component(s) in {install.namespace} ready and healthy: "
                              "webserver, executor, scheduler, worker")
    rows = {r["component"]: r for r in item["items"]}
    assert list(rows) == list(COMPONENTS)
    for name in COMPONENTS:
        assert (rows[name]["ready"], rows[name]["desired"]) == (REPLICAS[name], REPLICAS[name])
        assert [h["status"] for h in rows[name]["health"]] == ["pass"] * REPLICAS[name]
        assert all(h["code"] == 200 and h["health"] == "UP" for h in rows[name]["health"])
    # every pod was asked on its own management port, at /health, through the real API server
    assert up.requests.count("/health") >= sum(REPLICAS.values())
    assert "Kestra's own view of its servers: not in the OSS API" in item["details"][-1]

    # the scheduler's management port now answers 503 DOWN: the check fails naming it
    set_management_port(install, "kestra-scheduler", down.port)
    wait_until("kestra-scheduler rolled out on the DOWN port", lambda: rolled_out(
        install, "kestra-scheduler", 1, down.port), timeout=90)
    started = len(down.requests)
    result = install.run("check", "--env", "dev", "--only", "components")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "failing: scheduler (deployment kestra-scheduler)" in result.stdout
    assert "DOWN (HTTP 503)" in result.stdout
    for name in ("webserver", "executor", "worker"):  # one line per component, each passing
        assert f"{name} (deployment kestra-{name}): {REPLICAS[name]}/{REPLICAS[name]} ready; " \
               "no restart since the last deploy; health UP" in result.stdout
    assert len(down.requests) > started
    code, item = components(install, "3s")  # waiting does not turn DOWN into a pass
    assert code == 1 and {r["component"]: r["status"] for r in item["items"]} == {
        "webserver": "pass", "executor": "pass", "scheduler": "fail", "worker": "pass"}
