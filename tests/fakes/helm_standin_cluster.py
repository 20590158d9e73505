"""What the stand-in helm does to the cluster: apply a release's manifest as a real helm does.

Loaded by ``helm_standin_exe.py`` (a separate process, standard library and PyYAML only) from the
path in ``$KESTRA_OPS_TEST_HELM_CLUSTER``. After a successful upgrade or rollback, every object of
the new manifest is applied server-side (``PATCH ...?fieldManager=helm&force=true``, the ownership
metadata helm adds included) and the objects the old manifest had and the new one lacks are
deleted, on the cluster of ``--kubeconfig``/``$KUBECONFIG`` and ``--kube-context``. Only a fake API
server (a plain-HTTP server with a token in the kubeconfig) is touched: without one, nothing is.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

# kind -> (API path prefix, plural) for what charts render here
PATHS = {"ConfigMap": ("/api/v1", "configmaps"), "Secret": ("/api/v1", "secrets"),
         "Service": ("/api/v1", "services"), "ServiceAccount": ("/api/v1", "serviceaccounts"),
         "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims"),
         "Deployment": ("/apis/apps/v1", "deployments"),
         "StatefulSet": ("/apis/apps/v1", "statefulsets"),
         "DaemonSet": ("/apis/apps/v1", "daemonsets"), "Job": ("/apis/batch/v1", "jobs"),
         "CronJob": ("/apis/batch/v1", "cronjobs"),
         "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles"),
         "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings")}


class ClusterError(Exception):
    """An apply or delete the API server refused, or an unreachable server (helm's message)."""


def _target(opts: dict) -> tuple[str, str] | None:
    """(server, token) of the fake API server the kubeconfig names, or None."""
    given = opts.get("kubeconfig")
    path = given[-1] if given else next(
        (p for p in os.environ.get("KUBECONFIG", "").split(":") if p), None)
    if not path or not Path(path).is_file():
        return None
    config = yaml.safe_load(Path(path).read_text()) or {}
    wanted = (opts.get("kube-context") or [None])[-1] or config.get("current-context")
    context = next((c["context"] for c in config.get("contexts") or []
                    if c.get("name") == wanted), None)
    if context is None:
        return None
    cluster = next((c["cluster"] for c in config.get("clusters") or []
                    if c.get("name") == context.get("cluster")), {})
    user = next((u["user"] for u in config.get("users") or []
                 if u.get("name") == context.get("user")), {})
    server = cluster.get("server") or ""
    if not server.startswith("http://") or not user.get("token"):
        return None
    return server.rstrip("/"), user["token"]


def _objects(manifest: str) -> dict[tuple, dict]:
    out = {}
    for doc in yaml.safe_load_all(manifest or ""):
        if isinstance(doc, dict) and doc.get("kind") in PATHS:
            meta = doc.get("metadata") or {}
            out[(doc["kind"], meta.get("name"))] = doc
    return out


def _call(server: str, token: str, method: str, path: str, body=None, ctype=None) -> None:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
    except urllib.error.HTTPError as err:
        if method == "DELETE" and err.code == 404:
            return
        try:
            message = json.loads(err.read() or b"{}").get("message") or err.reason
        except ValueError:
            message = err.reason
        raise ClusterError(str(message)) from None
    except (urllib.error.URLError, OSError) as err:
        raise ClusterError(f"Kubernetes cluster unreachable: {getattr(err, 'reason', err)}") \
            from None


def sync(opts: dict, release: str, namespace: str, old: str, new: str) -> None:
    """Apply ``new`` (and delete what only ``old`` had) on the kubeconfig's fake cluster."""
    target = _target(opts)
    if target is None:
        return
    server, token = target
    before, after = _objects(old), _objects(new)
    for (kind, name), obj in after.items():
        prefix, plural = PATHS[kind]
        obj = json.loads(json.dumps(obj))
        meta = obj.setdefault("metadata", {})
        ns = meta.setdefault("namespace", namespace)
        meta.setdefault("annotations", {}).update({"meta.helm.sh/release-name": release,
                                                   "meta.helm.sh/release-namespace": namespace})
        meta.setdefault("labels", {})["app.kubernetes.io/managed-by"] = "Helm"
        query = urllib.parse.urlencode({"fieldManager": "helm", "force": "true"})
        _call(server, token, "PATCH", f"{prefix}/namespaces/{ns}/{plural}/{name}?{query}", obj,
              "application/apply-patch+yaml")
    for (kind, name), obj in before.items():
        if (kind, name) not in after:
            prefix, plural = PATHS[kind]
            ns = (obj.get("metadata") or {}).get("namespace") or namespace
            _call(server, token, "DELETE", f"{prefix}/namespaces/{ns}/{plural}/{name}")
