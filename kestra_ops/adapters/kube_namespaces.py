"""Namespaces for a disaster recovery or a drill: is one empty, create it with our labels, keep
a small state ConfigMap in it, delete it.

"Empty" is judged on what a Kestra install would collide with: no workloads (Deployments,
StatefulSets, Jobs, CronJobs, Pods), no Services, no Helm release records (Secrets of type
``helm.sh/release.v1``) and no ConfigMaps but the API server's own ``kube-root-ca.crt`` and the
recovery state (:data:`STATE`). Other Secrets are allowed: an operator may create the Secrets
the chart reads before a recovery (a set without sealed Secrets needs that). Every write names
kestra-ops's field manager (:data:`kestra_ops.adapters.kube.FIELD_MANAGER`).
"""

from __future__ import annotations

import json

from kestra_ops.errors import NotFound

STATE = "kestra-ops-recovery"  # ConfigMap: which set is being restored here, steps done
MANAGED_BY = {"app.kubernetes.io/managed-by": "kestra-ops"}
_WORKLOADS = (("apps/v1", "deployments"), ("apps/v1", "statefulsets"), ("batch/v1", "jobs"),
              ("batch/v1", "cronjobs"), ("v1", "pods"), ("v1", "services"))
_OWN_CONFIGMAPS = {"kube-root-ca.crt", STATE}


def exists(kube, name: str) -> bool:
    try:
        kube.call(f"namespace {name}", kube.core.read_namespace, name)
    except NotFound:
        return False
    return True


def contents(kube, name: str) -> list[str]:
    """What in namespace ``name`` a new install would collide with (see the module doc), as
    ``kind/name`` (at most 10), empty when the namespace holds nothing of the kind."""
    from kestra_ops.adapters.kube_read import KubeReader

    reader = KubeReader(kube)
    found: list[str] = []
    for group_version, plural in _WORKLOADS:
        for obj in reader.objects(plural, name, group_version=group_version):
            found.append(f"{plural[:-1]}/{obj['metadata']['name']}")
    for obj in reader.objects("configmaps", name):
        if obj["metadata"]["name"] not in _OWN_CONFIGMAPS:
            found.append(f"configmap/{obj['metadata']['name']}")
    for obj in reader.objects("secrets", name, field_selector="type=helm.sh/release.v1"):
        found.append(f"helm release record/{obj['metadata']['name']}")
    return found[:10]


def create(kube, name: str, labels: dict[str, str]) -> None:
    body = {"metadata": {"name": name, "labels": {**MANAGED_BY, **labels}}}
    kube.call(f"namespace {name}", kube.core.create_namespace, body)


def labels(kube, name: str) -> dict[str, str]:
    ns = kube.call(f"namespace {name}", kube.core.read_namespace, name)
    return dict(ns.metadata.labels or {})


def delete(kube, name: str) -> bool:
    """Delete the namespace (the namespace controller removes what it holds); False when it was
    already gone."""
    try:
        kube.call(f"namespace {name}", kube.core.delete_namespace, name)
    except NotFound:
        return False
    return True


def read_state(kube, namespace: str) -> dict | None:
    """The recovery state kept in ``namespace`` (None when there is none or it is unreadable)."""
    from kestra_ops.adapters.kube_config import read_configmap

    try:
        cm = read_configmap(kube, namespace, STATE)
    except NotFound:
        return None
    try:
        state = json.loads((cm.get("data") or {}).get("state.json") or "")
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


def write_state(kube, namespace: str, state: dict) -> None:
    """Create or replace the state ConfigMap (never a secret in it: names and steps only)."""
    body = {"metadata": {"name": STATE, "labels": dict(MANAGED_BY)},
            "data": {"state.json": json.dumps(state, sort_keys=True)}}
    from kestra_ops.adapters.kube_config import replace_configmap

    try:
        replace_configmap(kube, namespace, STATE, body)
    except NotFound:
        kube.call(f"configmap {STATE} in {namespace}", kube.core.create_namespaced_config_map,
                  namespace, body)
