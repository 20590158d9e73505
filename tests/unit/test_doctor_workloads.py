"""The doctor's workload rules: a component with no ready pod, an autoscaler at its maximum, a
disruption budget that blocks a node drain."""

from __future__ import annotations

from kestra_ops.checks import workloads
from kestra_ops.checks.doctor_rules import Snapshot


def snap(**kw):
    return Snapshot("prod", "ns", **kw)


def dep(name, component, replicas, ready, app="kestra"):
    return {"metadata": {"name": name, "labels": {"app.kubernetes.io/component": component,
                                                  "app.kubernetes.io/name": app}},
            "spec": {"replicas": replicas}, "status": {"readyReplicas": ready}}


def ids(items):
    return [(i.id, i.status) for i in items]


def test_a_component_with_no_ready_pod():
    found = list(workloads.component_down(snap(deployments=[
        dep("kestra-worker", "worker", 3, 0), dep("kestra-webserver", "webserver", 2, 1),
        dep("kestra-standalone", "standalone", 0, 0),  # stopped on purpose (restore, upgrade)
        dep("other", "worker", 1, 0, app="something-else"),
        dep("kestra-postgres-exporter", "metrics", 1, 0)])))
    assert ids(found) == [("component-down", "fail")]
    assert "Kestra worker (Deployment kestra-worker) has no ready pod (0 of 3)" in \
        found[0].reason


def test_an_autoscaler_at_its_maximum():
    hpa = {"metadata": {"name": "kestra-worker"},
           "spec": {"maxReplicas": 5, "scaleTargetRef": {"name": "kestra-worker"}},
           "status": {"currentReplicas": 5}}
    below = {"metadata": {"name": "b"}, "spec": {"maxReplicas": 5}, "status": {"currentReplicas": 4}}
    found = list(workloads.hpa_at_max(snap(hpas=[hpa, below, {"metadata": {}}])))
    assert ids(found) == [("hpa-at-max", "warn")] and "5 of 5" in found[0].reason


def test_a_budget_that_blocks_a_drain():
    blocking = {"metadata": {"name": "kestra-webserver"}, "status": {
        "disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}}
    degraded = {"metadata": {"name": "x"}, "status": {  # 0 allowed because a pod is down
        "disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 2, "expectedPods": 3}}
    fine = {"metadata": {"name": "y"}, "status": {
        "disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2}}
    found = list(workloads.pdb_blocks_drain(snap(pdbs=[blocking, degraded, fine])))
    assert ids(found) == [("pdb-blocks-drain", "warn")]
    assert "drain waits on it forever" in found[0].reason


def test_nothing_fetched_is_nothing_found():
    assert not any(list(rule.run(snap())) for rule in workloads.FINDINGS)
