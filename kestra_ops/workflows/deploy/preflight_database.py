"""preflight's ``database`` check: what database.mode needs outside the chart.

* ``bundled``: nothing (no item: the chart deploys its own PostgreSQL);
* ``cloudnativepg``: the CRD ``clusters.postgresql.cnpg.io`` is installed (else FAIL: the render
  itself fails without it) and the operator runs: a Deployment labelled
  ``app.kubernetes.io/name=cloudnative-pg`` in any namespace with an available replica (facts:
  :mod:`kestra_ops.adapters.cnpg`). An account that may not read CRDs or list Deployments
  across namespaces gets a WARN saying what was not checked, never a failure;
* ``external``: the host and port from the values; the server is dialled (a TCP connect, no
  credentials) only when asked (``preflight --database-reachable``), since preflight otherwise
  talks to the Kubernetes API and the bucket only.
"""

from __future__ import annotations

from typing import Any, Mapping

from kestra_ops.errors import KestraOpsError, PermissionDenied
from kestra_ops.results import FAIL, PASS, WARN

NAME = "database"
CNPG_CLUSTER_API = "postgresql.cnpg.io/v1/Cluster"


def offline_api_versions(env) -> tuple[str, ...]:
    """What an offline ``helm template`` (plan, deploy's diff, chart lint) tells the chart the
    cluster serves: the CloudNativePG Cluster API, which the chart renders only in
    database.mode cloudnativepg and otherwise refuses to render without (in every other mode
    the answer changes nothing, so the values need not be read: a warm plan reads none).
    Whether the cluster really serves it is this module's preflight check, and ``helm upgrade``
    asks the API server itself."""
    return (CNPG_CLUSTER_API,)


def _answer(name: str, status: str, reason: str) -> tuple[str, str]:
    """What :func:`check_database` answers: (status, reason); preflight makes it its Check."""
    return status, reason


def check_database(env, kube, values: Mapping[str, Any], *, reachable: bool = False,
                   timeout: float = 5.0) -> tuple[str, str] | None:
    """(status, reason) of preflight's ``database`` check, or None in bundled mode."""
    from kestra_ops.workflows.backup import database_target as dbt

    try:
        mode = dbt.database_mode(values)
    except KestraOpsError as err:
        return _answer(NAME, FAIL, str(err))
    if mode == "bundled":
        return None
    if mode == "external":
        return _external(values, reachable, timeout)
    return _cloudnativepg(kube)


def _external(values, reachable: bool, timeout: float):
    from kestra_ops.workflows.backup import database_target as dbt

    host = str(dbt.setting(values, "external", "host") or "")
    port = int(dbt.setting(values, "external", "port") or 5432)
    sslmode = dbt.setting(values, "external", "sslmode")
    if not host:
        return _answer(NAME, FAIL, "database.mode external: database.external.host is not set")
    where = f"external PostgreSQL {host}:{port} (sslmode {sslmode})"
    if not reachable:
        return _answer(NAME, PASS, f"{where}; not dialled (--database-reachable checks that it "
                     "answers)")
    from kestra_ops.adapters.postgres import tcp_reachable

    why = tcp_reachable(host, port, timeout)
    if why:
        return _answer(NAME, FAIL, f"{where} does not answer: {why}")
    return _answer(NAME, PASS, f"{where} answers")


def _cloudnativepg(kube):
    from kestra_ops.adapters import cnpg

    notes = []
    try:
        if cnpg.crd(kube, cnpg.CLUSTERS_CRD) is None:
            return _answer(NAME, FAIL, f"database.mode cloudnativepg: CRD {cnpg.CLUSTERS_CRD} is "
                         "not installed: install the CloudNativePG operator first")
    except PermissionDenied:
        notes.append(f"cannot read customresourcedefinitions (forbidden): CRD "
                     f"{cnpg.CLUSTERS_CRD} not checked")
    try:
        deployments = cnpg.operator_deployments(kube)
    except PermissionDenied:
        notes.append(f"cannot list deployments in all namespaces (forbidden): the operator's "
                     f"Deployment ({cnpg.OPERATOR_SELECTOR}) not checked")
        return _answer(NAME, WARN, "database.mode cloudnativepg: " + "; ".join(notes))
    if not deployments:
        return _answer(NAME, FAIL, f"database.mode cloudnativepg: no CloudNativePG operator "
                     f"Deployment ({cnpg.OPERATOR_SELECTOR}) in any namespace")
    running = [d for d in deployments
               if int((d.get("status") or {}).get("availableReplicas") or 0) > 0]
    names = ", ".join(f"{d['metadata'].get('namespace')}/{d['metadata'].get('name')}"
                      for d in (running or deployments))
    if not running:
        return _answer(NAME, FAIL, f"database.mode cloudnativepg: the operator ({names}) has no "
                     "available replica")
    message = f"CRD {cnpg.CLUSTERS_CRD} installed; operator {names} running"
    if notes:
        return _answer(NAME, WARN, message + "; " + "; ".join(notes))
    return _answer(NAME, PASS, message)
