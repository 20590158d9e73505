"""CloudNativePG, through the Kubernetes API: its CRDs, its operator's Deployment, its
``Cluster`` and ``Backup`` objects (plain JSON over the :class:`~kestra_ops.adapters.kube.Kube`
client's connection, :func:`kestra_ops.adapters.kube_objects.request`).

Facts, from github.com/cloudnative-pg/cloudnative-pg:

* API group/version ``postgresql.cnpg.io/v1``; CRDs ``clusters.postgresql.cnpg.io`` and
  ``backups.postgresql.cnpg.io`` (config/crd/bases/postgresql.cnpg.io_clusters.yaml,
  postgresql.cnpg.io_backups.yaml).
* The operator: Deployment ``cnpg-controller-manager`` in ``cnpg-system`` labelled
  ``app.kubernetes.io/name: cloudnative-pg`` (config/manager/manager.yaml, namePrefix ``cnpg-``
  and namespace ``cnpg-system`` in config/default/kustomization.yaml); found by that label in
  any namespace, since a Helm install may name and place it otherwise.
* An on-demand backup is a ``Backup`` with ``spec.cluster.name`` and ``spec.method``
  (barmanObjectStore, the default; volumeSnapshot; plugin) (docs/src/backup.md "On-Demand
  Backups"). Its ``status.phase`` is pending, started, running, finalizing, completed, failed,
  walArchivingFailing or "invalid backup definition"; status also holds backupId, beginWal,
  endWal, beginLSN, endLSN, destinationPath, serverName, startedAt, stoppedAt and error
  (api/v1/backup_types.go BackupPhase*, BackupStatus).
"""

from __future__ import annotations

from kestra_ops.adapters.kube_objects import _raise_for, request

API = "postgresql.cnpg.io/v1"
CLUSTERS_CRD = "clusters.postgresql.cnpg.io"
BACKUPS_CRD = "backups.postgresql.cnpg.io"
OPERATOR_SELECTOR = "app.kubernetes.io/name=cloudnative-pg"
PHASE_COMPLETED = "completed"
PHASES_FAILED = ("failed", "walArchivingFailing", "invalid backup definition")


def _ns_path(namespace: str, plural: str, name: str = "") -> str:
    return f"/apis/{API}/namespaces/{namespace}/{plural}" + (f"/{name}" if name else "")


def crd(kube, name: str) -> dict | None:
    """The CustomResourceDefinition ``name`` (None: not installed). PermissionDenied when the
    account may not read CRDs (cluster-scoped)."""
    status, data = request(kube, "GET",
                           f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    if status == 404:
        return None
    _raise_for(status, data, f"customresourcedefinition {name}")
    return data


def operator_deployments(kube) -> list[dict]:
    """The operator's Deployments in every namespace (PermissionDenied when listing them across
    namespaces is not allowed)."""
    status, data = request(kube, "GET", "/apis/apps/v1/deployments",
                           query=[("labelSelector", OPERATOR_SELECTOR)])
    _raise_for(status, data, "deployments (all namespaces)")
    return list(data.get("items") or [])


def read_cluster(kube, namespace: str, name: str) -> dict | None:
    status, data = request(kube, "GET", _ns_path(namespace, "clusters", name))
    if status == 404:  # no such Cluster, or no such API (the CRD is not installed)
        return None
    _raise_for(status, data, f"cluster {name} in {namespace}")
    return data


def create_backup(kube, namespace: str, name: str, cluster: str, *,
                  method: str = "barmanObjectStore", labels: dict | None = None) -> dict:
    body = {"apiVersion": API, "kind": "Backup",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"cluster": {"name": cluster}, "method": method}}
    status, data = request(kube, "POST", _ns_path(namespace, "backups"), body=body,
                           content_type="application/json")
    _raise_for(status, data, f"create backup {name} in {namespace}")
    return data


def read_backup(kube, namespace: str, name: str) -> dict | None:
    status, data = request(kube, "GET", _ns_path(namespace, "backups", name))
    if status == 404:
        return None
    _raise_for(status, data, f"backup {name} in {namespace}")
    return data
