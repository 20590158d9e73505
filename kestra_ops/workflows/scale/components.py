"""What the cluster runs after a scale, read through the Kubernetes API: the Deployments of the
new mode present and ready (``readyReplicas`` = ``replicas``), none of the other mode's left,
and Service kestra selecting the webserver (distributed) or the standalone server. The names come
from :mod:`kestra_ops.chart` (charts/kestra/templates/distributed.yaml and deployment.yaml).

Pods of the previous mode may still be terminating: Kubernetes gives each its
terminationGracePeriodSeconds to finish the tasks it runs (Kestra waits up to
kestra.server.terminationGracePeriod for them: https://kestra.io/docs/administrator-guide/
server-lifecycle); they are listed, not failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kestra_ops import chart

COMPONENT_LABEL = "app.kubernetes.io/component"


@dataclass
class Components:
    mode: str
    ready: list[str] = field(default_factory=list)  # "kestra-worker 3/3"
    problems: list[str] = field(default_factory=list)
    terminating: list[str] = field(default_factory=list)  # pods of the other mode still there

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"mode": self.mode, "ok": self.ok, "ready": list(self.ready),
                "problems": list(self.problems), "terminating": list(self.terminating)}


def expected(mode: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the Deployments ``mode`` runs, those it must not)."""
    standalone = (chart.DEPLOYMENT,)
    if mode == "distributed":
        return chart.DISTRIBUTED_DEPLOYMENTS, standalone
    return standalone, chart.DISTRIBUTED_DEPLOYMENTS


def read_components(kube, env, mode: str) -> Components:
    """The judgement above, read now (one list of Deployments, the Service, the pods)."""
    from kestra_ops.adapters.kube_read import KubeReader

    reader = KubeReader(kube)
    found = Components(mode)
    deployments = {d["metadata"]["name"]: d for d in reader.objects(
        "deployments", env.namespace, group_version="apps/v1")}
    wanted, gone = expected(mode)
    for name in wanted:
        dep = deployments.get(name)
        if dep is None:
            found.problems.append(f"deployment {name} is missing")
            continue
        replicas = (dep.get("spec") or {}).get("replicas", 1)
        ready = (dep.get("status") or {}).get("readyReplicas") or 0
        if replicas and ready >= replicas:
            found.ready.append(f"{name} {ready}/{replicas} ready")
        else:
            found.problems.append(f"deployment {name}: {ready}/{replicas} ready")
    for name in gone:
        if name in deployments:
            found.problems.append(f"deployment {name} of the other mode is still there")
    service = reader.read("services", env.namespace, chart.SERVICE, missing_ok=True)
    component = "webserver" if mode == "distributed" else "standalone"
    selects = ((service or {}).get("spec") or {}).get("selector") or {}
    if service is None:
        found.problems.append(f"service {chart.SERVICE} is missing")
    elif selects.get(COMPONENT_LABEL) != component:
        found.problems.append(f"service {chart.SERVICE} selects {COMPONENT_LABEL}="
                              f"{selects.get(COMPONENT_LABEL)}, not {component}")
    old = {n.split("-", 1)[1] for n in gone}
    for pod in reader.pods(env.namespace, label_selector=f"app.kubernetes.io/instance="
                                                        f"{env.release}"):
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if labels.get(COMPONENT_LABEL) in old:
            found.terminating.append(pod["metadata"]["name"])
    return found
