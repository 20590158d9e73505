"""The doctor's workload findings on the real control plane: a PodDisruptionBudget the real
disruption controller judges (minAvailable 1 over the one standalone pod: no disruption
allowed) is ``pdb-blocks-drain``; the server's pod crash-looping is ``component-down``.
Asserted against the budget's status as the API server reports it."""

from __future__ import annotations

import json

from tests.e2e.support import wait_until


def doctor(install) -> dict:
    result = install.run("doctor", "--env", "dev", "--output", "json",
                         "--kestra-url", "http://127.0.0.1:9")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def ids(data: dict) -> set[str]:
    return {f["id"] for f in data["findings"]}


def test_a_budget_that_blocks_a_drain_and_a_component_down(install):
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    before = doctor(install)
    assert not ids(before) & {"pdb-blocks-drain", "component-down", "hpa-at-max"}
    assert "workloads" not in json.dumps(before.get("not_checked") or {})
    body = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "too-strict"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {
                "app.kubernetes.io/component": "standalone"}}}}
    install._raw("POST", f"/apis/policy/v1/namespaces/{install.namespace}/"
                         "poddisruptionbudgets", body, "application/json")
    status = wait_until("the disruption controller's verdict", lambda: (install.get(
        f"/apis/policy/v1/namespaces/{install.namespace}/poddisruptionbudgets/too-strict")
        .get("status") or {}).get("expectedPods") == 1 and install.get(
        f"/apis/policy/v1/namespaces/{install.namespace}/poddisruptionbudgets/too-strict")[
        "status"])
    assert status["disruptionsAllowed"] == 0
    found = {f["id"]: f for f in doctor(install)["findings"]}
    assert "too-strict" in found["pdb-blocks-drain"]["reason"]

    install.set_fault("crashloop")
    wait_until("the server to be unready",
               lambda: not install.deployment()["status"].get("readyReplicas"), timeout=30)
    found = {f["id"]: f for f in doctor(install)["findings"]}
    assert found["component-down"]["status"] == "fail"
    assert "kestra-standalone" in found["component-down"]["reason"]
