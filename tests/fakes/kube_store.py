"""Object store of the fake Kubernetes API server.

Holds every object as the JSON dict the real server would return, applies the registry
strategies (defaults, validation, status subresource, generation), keeps a global
resourceVersion counter and a short history for watches, and garbage-collects dependents.
Tests may read and write it directly (`api=False` writes keep `status` as given).
"""
from __future__ import annotations

import collections
import copy
import itertools
import threading
import uuid
from dataclasses import dataclass

from . import kube_patch as kp
from .kube_rules import ApiError, apply_strategy, bad_request, conflict, details, not_found

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short: tuple = ()
    sub: tuple = ()
    verbs: tuple = ALL_VERBS

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gr(self) -> str:  # as in error messages: `deployments.apps "x" not found`
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES = [
    Resource("", "v1", "namespaces", "Namespace", False, ("ns",), ("status", "finalize")),
    Resource("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Resource("", "v1", "secrets", "Secret"),
    Resource("", "v1", "pods", "Pod", True, ("po",), ("status", "log", "proxy")),
    Resource("", "v1", "events", "Event", True, ("ev",)),
    Resource("", "v1", "services", "Service", True, ("svc",), ("status",)),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",),
             ("status",)),
    Resource("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("status", "scale")),
    Resource("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), ("status", "scale")),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("status", "scale")),
    Resource("batch", "v1", "jobs", "Job", True, (), ("status",)),
    Resource("batch", "v1", "cronjobs", "CronJob", True, ("cj",), ("status",)),
    Resource("coordination.k8s.io", "v1", "leases", "Lease"),
    Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews",
             "SelfSubjectAccessReview", False, (), (), ("create",)),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
             False),
]
GROUPS: dict[str, list[Resource]] = collections.defaultdict(list)
for _r in RESOURCES:
    GROUPS[_r.api_version].append(_r)

_META_FIELDS = {"metadata.name", "metadata.namespace"}
FIELD_LABELS = {
    "Pod": {"status.phase", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
            "spec.serviceAccountName", "spec.hostNetwork", "status.podIP",
            "status.nominatedNodeName"},
    "Event": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.fieldPath",
              "involvedObject.resourceVersion", "reason", "reportingComponent", "source", "type"},
    "Secret": {"type"}, "Namespace": {"status.phase"}, "ReplicaSet": {"status.replicas"},
    "Job": {"status.successful"},
}
STATUS_ON_CREATE = {"Pod": {"phase": "Pending", "qosClass": "BestEffort"},
                    "Namespace": {"phase": "Active"},
                    "PersistentVolumeClaim": {"phase": "Pending"},
                    "Service": {"loadBalancer": {}},
                    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
                    "ReplicaSet": {"replicas": 0}}


def resolve(ref) -> Resource:
    """A Resource from a Resource, plural, kind, short name or `plural.group`."""
    if isinstance(ref, Resource):
        return ref
    key = str(ref)
    for r in RESOURCES:
        if key in (r.plural, r.kind, r.kind.lower(), r.gr, f"{r.kind}.{r.group}") or key in r.short:
            return r
    raise KeyError(f"unknown resource {ref!r}")


class Store:
    def __init__(self):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._objs: dict[tuple, dict] = {}
        self._rv = 1000
        self.history: collections.deque = collections.deque(maxlen=20000)
        self._logs: dict[tuple, str] = {}
        self._ips = itertools.count(10)
        self.listeners: list = []  # callables(event_type, resource, obj), called under the lock

    # ----------------------------------------------------------------- reads
    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def get(self, ref, namespace, name) -> dict | None:
        res = resolve(ref)
        with self.lock:
            obj = self._objs.get(self._key(res, namespace, name))
            return copy.deepcopy(obj) if obj else None

    def read(self, ref, namespace, name) -> dict:
        obj = self.get(ref, namespace, name)
        if obj is None:
            raise not_found(resolve(ref), name)
        return obj

    def list(self, ref, namespace=None, label_selector=None, field_selector=None) -> list[dict]:
        res = resolve(ref)
        labels = kp.parse_label_selector(label_selector) if isinstance(
            label_selector, (str, type(None))) else label_selector
        fields = kp.parse_field_selector(
            field_selector, _META_FIELDS | FIELD_LABELS.get(res.kind, set()))
        with self.lock:
            out = [copy.deepcopy(o) for (p, ns, _), o in sorted(self._objs.items())
                   if p == res.plural and (namespace in (None, "") or ns == namespace)
                   and self.matches(res, o, labels, fields)]
        return out

    @staticmethod
    def matches(res: Resource, obj: dict, labels, fields) -> bool:
        if not kp.labels_match(labels or [], obj["metadata"].get("labels")):
            return False
        view = obj
        if res.kind == "Event":
            src = (obj.get("source") or {}).get("component") or obj.get("reportingComponent")
            view = {**obj, "source": src}
        elif res.kind == "Job":
            view = {**obj, "status": {"successful": (obj.get("status") or {}).get("succeeded")}}
        return kp.fields_match(fields or [], view)

    def owned_by(self, ref, namespace, owner_uid) -> list[dict]:
        return [o for o in self.list(ref, namespace)
                if any(r.get("uid") == owner_uid for r in o["metadata"].get("ownerReferences", []))]

    # ----------------------------------------------------------------- logs
    def set_log(self, namespace, pod, container, text, previous=False):
        self._logs[(namespace, pod, container, bool(previous))] = text

    def get_log(self, namespace, pod, container, previous=False) -> str | None:
        return self._logs.get((namespace, pod, container, bool(previous)))

    # ----------------------------------------------------------------- writes
    def create(self, obj, namespace=None, *, resource=None, api=False, dry_run=False) -> dict:
        res = resolve(resource or obj.get("kind"))
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise bad_request(f"{res.kind} in version \"{res.version}\" cannot be handled as a "
                              f"{res.kind}: metadata must be an object")
        with self.lock:
            if res.namespaced:
                ns = namespace or md.get("namespace") or "default"
                if md.get("namespace") not in (None, "", ns):
                    raise bad_request("the namespace of the provided object does not match the "
                                      "namespace sent on the request")
                md["namespace"] = ns
                if self._objs.get(self._key(resolve("namespaces"), None, ns)) is None:
                    if api:
                        raise not_found(resolve("namespaces"), ns)
                    self.create({"metadata": {"name": ns}}, resource="namespaces")
            else:
                md.pop("namespace", None)
            if not md.get("name") and md.get("generateName"):
                md["name"] = md["generateName"] + random_suffix()
            obj["apiVersion"], obj["kind"] = res.api_version, res.kind
            for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
                md.pop(k, None)
            if api or not md.get("creationTimestamp"):
                md["creationTimestamp"] = kp.fmt_time()
            if api or not md.get("uid"):
                md["uid"] = str(uuid.uuid4())
            if "status" in res.sub and (api or "status" not in obj):
                obj["status"] = copy.deepcopy(STATUS_ON_CREATE.get(res.kind, {}))
            apply_strategy(self, res, obj, None, api)
            key = self._key(res, md.get("namespace"), md.get("name"))
            if key in self._objs:
                raise ApiError(409, "AlreadyExists", f'{res.gr} "{md["name"]}" already exists',
                               details(res, md["name"]))
            if dry_run:
                return obj
            return self._commit(res, key, obj, "ADDED")

    def replace(self, obj, namespace=None, *, resource=None, name=None, api=False,
                subresource=None, dry_run=False) -> dict:
        res = resolve(resource or obj.get("kind"))
        new = copy.deepcopy(obj)
        md = new.setdefault("metadata", {})
        name = name or md.get("name")
        if md.get("name") not in (None, "", name):
            raise bad_request(f"the name of the object ({md['name']}) does not match the name on "
                              f"the URL ({name})")
        ns = (namespace or md.get("namespace") or "default") if res.namespaced else None
        if res.namespaced and md.get("namespace") not in (None, "", ns):
            raise bad_request("the namespace of the provided object does not match the namespace "
                              "sent on the request")
        with self.lock:
            key = self._key(res, ns, name)
            old = self._objs.get(key)
            if old is None:
                raise not_found(res, name)
            rv = md.get("resourceVersion")
            if rv not in (None, "") and str(rv) != old["metadata"]["resourceVersion"]:
                raise conflict(res, name)
            md["resourceVersion"] = old["metadata"]["resourceVersion"]
            if api and "status" in res.sub:
                if subresource == "status":
                    status = new.get("status")
                    new = copy.deepcopy(old)
                    new["status"] = status if status is not None else {}
                else:
                    new["status"] = copy.deepcopy(old.get("status", {}))
            md = new.setdefault("metadata", {})
            for k in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation"):
                if k in old["metadata"]:
                    md[k] = old["metadata"][k]
                else:
                    md.pop(k, None)
            new["apiVersion"], new["kind"] = res.api_version, res.kind
            apply_strategy(self, res, new, old, api)
            if "generation" in md and new.get("spec") != old.get("spec"):
                md["generation"] = old["metadata"]["generation"] + 1
            if new == old:
                return copy.deepcopy(old)  # no-op writes keep the resourceVersion
            if dry_run:
                return new
            if md.get("deletionTimestamp") and not md.get("finalizers"):
                self._remove(res, key, None)
                return new
            return self._commit(res, key, new, "MODIFIED")

    def patch(self, ref, namespace, name, body, patch_type="merge", *, api=False,
              subresource=None, dry_run=False) -> dict:
        res = resolve(ref)
        with self.lock:
            current = self._objs.get(self._key(res, namespace, name))
            if current is None:
                if patch_type == "apply" and isinstance(body, dict):
                    return self.create(body, namespace, resource=res, api=api, dry_run=dry_run)
                raise not_found(res, name)
            try:
                if patch_type == "json":
                    patched = kp.json_patch(current, body)
                elif not isinstance(body, dict):
                    raise bad_request("the body of the request was in an unknown format")
                elif patch_type == "merge":
                    patched = kp.merge_patch(current, body)
                else:  # strategic, apply
                    patched = kp.strategic_merge_patch(current, body)
            except kp.PatchError as e:
                raise ApiError(422, "Invalid", str(e)) from None
            if patch_type == "apply":
                patched["metadata"].pop("resourceVersion", None)
            return self.replace(patched, namespace, resource=res, name=name, api=api,
                                subresource=subresource, dry_run=dry_run)

    def mutate(self, ref, namespace, name, fn) -> dict | None:
        """Controller helper: fn edits a copy in place; commit only if something changed."""
        with self.lock:
            obj = self.get(ref, namespace, name)
            if obj is None:
                return None
            before = copy.deepcopy(obj)
            fn(obj)
            return obj if obj == before else self.replace(obj, namespace, resource=ref, name=name)

    def delete(self, ref, namespace, name, *, propagation=None, preconditions=None,
               dry_run=False) -> tuple[dict, bool]:
        """Returns (object as last seen, removed?). Objects with finalizers are only marked."""
        res = resolve(ref)
        with self.lock:
            key = self._key(res, namespace, name)
            obj = self._objs.get(key)
            if obj is None:
                raise not_found(res, name)
            pre, md = preconditions or {}, obj["metadata"]
            for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
                if pre.get(field) and pre[field] != md[field]:
                    raise conflict(res, name, f"Precondition failed: {label} in precondition: "
                                              f"{pre[field]}, {label} in object meta: {md[field]}")
            out = copy.deepcopy(obj)
            out["metadata"].setdefault("deletionTimestamp", kp.fmt_time())
            if res.kind == "Pod":
                out["metadata"].setdefault("deletionGracePeriodSeconds", 30)
            if res.kind == "Namespace":
                out.setdefault("status", {})["phase"] = "Terminating"
            if dry_run:
                return out, False
            if obj["metadata"].get("finalizers"):
                if not obj["metadata"].get("deletionTimestamp"):
                    out = self._commit(res, key, out, "MODIFIED")
                return copy.deepcopy(out), False
            self._remove(res, key, propagation)
            return out, True

    # ----------------------------------------------------------------- internals
    @staticmethod
    def _key(res: Resource, namespace, name) -> tuple:
        return (res.plural, (namespace or "default") if res.namespaced else "", name)

    def next_ip(self, prefix: str) -> str:
        n = next(self._ips)
        return f"{prefix}.{n // 250}.{n % 250 + 2}"

    def _commit(self, res, key, obj, etype) -> dict:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        old = self._objs.get(key)
        self._objs[key] = obj
        self.history.append((self._rv, etype, res.plural, copy.deepcopy(obj), copy.deepcopy(old)))
        self.changed.notify_all()
        for fn in list(self.listeners):
            fn(etype, res, obj)
        return copy.deepcopy(obj)

    def _remove(self, res, key, propagation):
        obj = self._objs.pop(key)
        self._rv += 1
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        self.history.append((self._rv, "DELETED", res.plural, gone, copy.deepcopy(obj)))
        self.changed.notify_all()
        for fn in list(self.listeners):
            fn("DELETED", res, gone)
        if res.kind == "Namespace":
            for k in [k for k in self._objs if k[1] == key[2] and resolve(k[0]).namespaced]:
                if k in self._objs:
                    self._remove(resolve(k[0]), k, None)
            self._logs = {k: v for k, v in self._logs.items() if k[0] != key[2]}
            return
        uid = obj["metadata"]["uid"]
        for k, dep in list(self._objs.items()):
            refs = dep["metadata"].get("ownerReferences") or []
            if k not in self._objs or not any(r.get("uid") == uid for r in refs):
                continue
            if propagation == "Orphan":
                d = copy.deepcopy(dep)
                d["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                self._commit(resolve(k[0]), k, d, "MODIFIED")
            else:
                self.delete(k[0], k[1] or None, k[2])
        if res.kind == "Pod":
            self._logs = {k: v for k, v in self._logs.items() if k[:2] != (key[1], key[2])}

    def wait(self, predicate, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)


def random_suffix(n=5) -> str:
    import random
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))
