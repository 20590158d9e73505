"""Kestra's distributed mode on the real control plane (issue 16, the chart's part): one
Deployment per component, ready through the real controllers; a PodDisruptionBudget per
component with more than one replica and the workers' HorizontalPodAutoscaler, accepted by the
API server; Service kestra selecting the webserver; no standalone Deployment. The doctor then
sees each component."""

from __future__ import annotations

import json

from tests.e2e.support import wait_until

DISTRIBUTED = """
mode: distributed
distributed:
  webserver:
    replicas: 2
  worker:
    threads: 4
    resources:
      requests:
        cpu: 500m
        memory: 1Gi
      limits:
        memory: 1Gi
    autoscaling:
      enabled: true
      minReplicas: 2
      maxReplicas: 3
"""


def test_a_distributed_install_runs_every_component(install):
    install.overlay().write_text(install.overlay().read_text() + DISTRIBUTED)
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    ns = install.namespace
    base = f"/apis/apps/v1/namespaces/{ns}/deployments"
    for name, replicas in (("kestra-webserver", 2), ("kestra-executor", 1),
                           ("kestra-scheduler", 1), ("kestra-worker", 2)):
        wait_until(f"{name} ready", lambda n=name, r=replicas: (
            install.get(f"{base}/{n}")["status"].get("readyReplicas") == r), timeout=60)
        dep = install.get(f"{base}/{name}")
        component = name.split("-", 1)[1]
        assert dep["metadata"]["labels"]["app.kubernetes.io/component"] == component
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[:2] == ["server", component], args
    names = {d["metadata"]["name"] for d in install.get(base)["items"]}
    assert "kestra-standalone" not in names
    pdbs = {p["metadata"]["name"]: p for p in install.get(
        f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets")["items"]}
    assert {"kestra-webserver", "kestra-worker"} <= set(pdbs)
    assert "kestra-executor" not in pdbs  # one replica: no budget that would block a drain
    hpa = install.get(f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/"
                      "kestra-worker")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "kestra-worker"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 3)
    service = install.get(f"/api/v1/namespaces/{ns}/services/kestra")
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "webserver"
    # the doctor judges the components: none down
    result = install.run("doctor", "--env", "dev", "--output", "json",
                         "--kestra-url", "http://127.0.0.1:9")
    found = {f["id"] for f in json.loads(result.stdout)["findings"]}
    assert "component-down" not in found and "pdb-blocks-drain" not in found
