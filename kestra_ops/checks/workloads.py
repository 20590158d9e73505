"""Doctor rules on the namespace's workloads (source ``workloads``: Deployments, the
HorizontalPodAutoscalers and PodDisruptionBudgets), one pure function each, in the style of
Argo CD's health rules:

* ``component-down``: a Kestra server Deployment of the release (the standalone server, or a
  component of a distributed install: webserver, executor, scheduler, worker) that should run
  pods (``spec.replicas`` > 0) has none ready;
* ``hpa-at-max``: an autoscaler running at its ``maxReplicas`` (it cannot add more: the load
  queues up);
* ``pdb-blocks-drain``: a PodDisruptionBudget that allows no disruption while its pods are
  healthy (e.g. ``minAvailable: 1`` over one replica): ``kubectl drain`` of the node waits on
  it forever.
"""

from __future__ import annotations

from typing import Iterator

from kestra_ops.checks.declare import Rule
from kestra_ops.results import FAIL, WARN, Item

ORDER = 105
COMPONENTS = ("standalone", "webserver", "executor", "scheduler", "worker")


def _finding(id: str, status: str, summary: str, evidence: list[str], fix: str) -> Item:
    return Item(id, status, summary, list(evidence), fix=fix)


def _meta(obj: dict) -> tuple[str, dict]:
    md = obj.get("metadata") or {}
    return str(md.get("name") or "?"), md.get("labels") or {}


def component_of(obj: dict) -> str | None:
    """The Kestra server component a Deployment runs (one of :data:`COMPONENTS`, from the
    chart's ``app.kubernetes.io/component`` label), None for any other workload. The one
    recogniser of Kestra's components: the doctor's ``component-down`` and the checklist's
    ``components`` item both use it."""
    _, labels = _meta(obj)
    component = labels.get("app.kubernetes.io/component")
    if component not in COMPONENTS or labels.get("app.kubernetes.io/name") not in (
            None, "kestra"):
        return None
    return component


def kestra_deployments(deployments: list[dict] | None) -> list[tuple[str, dict]]:
    """(component, Deployment) of every Kestra server Deployment among ``deployments``."""
    found = [(component_of(dep), dep) for dep in deployments or []]
    return [(component, dep) for component, dep in found if component]


def component_down(snap) -> Iterator[Item]:
    for component, dep in kestra_deployments(snap.deployments):
        name, _ = _meta(dep)
        wanted = (dep.get("spec") or {}).get("replicas", 1) or 0
        ready = (dep.get("status") or {}).get("readyReplicas") or 0
        if wanted > 0 and ready == 0:
            yield _finding("component-down", FAIL,
                           f"Kestra {component} (Deployment {name}) has no ready pod "
                           f"(0 of {wanted})", [f"deployment {name}: 0/{wanted} ready"],
                           f"see why its pods fail: kestra-ops check --env {snap.env} --only "
                           "pods,events")


def hpa_at_max(snap) -> Iterator[Item]:
    for hpa in snap.hpas or []:
        name, _ = _meta(hpa)
        top = (hpa.get("spec") or {}).get("maxReplicas")
        now = (hpa.get("status") or {}).get("currentReplicas")
        if isinstance(top, int) and isinstance(now, int) and now >= top:
            target = ((hpa.get("spec") or {}).get("scaleTargetRef") or {}).get("name", "?")
            yield _finding("hpa-at-max", WARN,
                           f"autoscaler {name} runs {target} at its maximum ({now} of {top} "
                           "replicas): it cannot add more", [f"hpa {name}: {now}/{top}"],
                           "raise its maxReplicas (or the workers' threads) if the queue grows")


def pdb_blocks_drain(snap) -> Iterator[Item]:
    for pdb in snap.pdbs or []:
        name, _ = _meta(pdb)
        status = pdb.get("status") or {}
        allowed = status.get("disruptionsAllowed")
        healthy, desired = status.get("currentHealthy"), status.get("desiredHealthy")
        expected = status.get("expectedPods")
        if allowed == 0 and isinstance(healthy, int) and isinstance(desired, int) and \
                healthy >= desired and (expected or 0) > 0:
            yield _finding("pdb-blocks-drain", WARN,
                           f"PodDisruptionBudget {name} allows no disruption with all its "
                           f"pods healthy ({healthy} healthy, {desired} required, {expected} "
                           "expected): a node drain waits on it forever",
                           [f"pdb {name}: disruptionsAllowed 0"],
                           "run more than one replica, or use maxUnavailable: 1")


FINDINGS = [
    Rule((("component-down", "a Kestra server Deployment (standalone or a component) has no "
           "ready pod"),), component_down, needs=("workloads",)),
    Rule((("hpa-at-max", "an autoscaler runs at its maxReplicas"),), hpa_at_max,
         needs=("workloads",)),
    Rule((("pdb-blocks-drain", "a PodDisruptionBudget allows no disruption while its pods are "
           "healthy (a node drain would wait forever)"),), pdb_blocks_drain,
         needs=("workloads",)),
]
