"""Errors and registry strategies (defaults, decoding checks, validation) of the fake API server.

Messages, reasons and codes follow the real kube-apiserver so that callers parsing `Status`
bodies (or matching on messages) behave as they would against a cluster.
"""
from __future__ import annotations

import base64
import binascii
import copy
import json
import re

from . import kube_patch as kp
from .kube_kubelet import inject_istio, pod_spec_defaults

GEN_KINDS = {"Deployment", "StatefulSet", "ReplicaSet", "Job", "CronJob"}
_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                  "characters, '-' or '.', and must start and end with an alphanumeric character "
                  f"(e.g. 'example.com', regex used for validation is '{_SUBDOMAIN}')")
_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
              "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
              f"'123-abc', regex used for validation is '{_LABEL}')")
_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_QUALIFIED = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def details(res, name, kind=None) -> dict:
    d = {"name": name} if name else {}
    if res.group:
        d["group"] = res.group
    d["kind"] = kind or res.plural
    return d


def not_found(res, name) -> ApiError:
    return ApiError(404, "NotFound", f'{res.gr} "{name}" not found', details(res, name))


def conflict(res, name, why=None) -> ApiError:
    why = why or ("the object has been modified; please apply your changes to the latest "
                  "version and try again")
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.gr} "{name}": {why}',
                    details(res, name))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def decode_error(res, why: str) -> ApiError:
    return bad_request(f'{res.kind} in version "{res.version}" cannot be handled as a '
                       f'{res.kind}: {why}')


def forbidden(res, verb, name, namespace, user, sub=None) -> ApiError:
    what = f"{res.plural}/{sub}" if sub else res.plural
    subject = f'{res.gr} "{name}"' if name else res.gr
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return ApiError(403, "Forbidden", f'{subject} is forbidden: User "{user}" cannot {verb} '
                    f'resource "{what}" in API group "{res.group}" {scope}', details(res, name))


def _gofmt(value) -> str:
    if isinstance(value, dict):
        return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in value.items()) + "}"
    return json.dumps(value)


def invalid(res, name, causes) -> ApiError:
    items = []
    for fld, typ, detail, *value in causes:
        if typ == "Required":
            msg = "Required value" + (f": {detail}" if detail else "")
        elif typ == "Invalid":
            msg = f"Invalid value: {_gofmt(value[0] if value else '')}: {detail}"
        elif typ == "Unsupported":
            msg = f"Unsupported value: {_gofmt(value[0] if value else '')}: {detail}"
        else:
            msg = f"{typ}: {detail}"
        items.append({"reason": f"FieldValue{typ}", "message": msg, "field": fld})
    body = ", ".join(f'{c["field"]}: {c["message"]}' for c in items)
    body = body if len(items) == 1 else f"[{body}]"
    kind = f"{res.kind}.{res.group}" if res.group else res.kind
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {body}',
                    {**details(res, name, res.kind), "causes": items})


# ----------------------------------------------------------------------------- strategy

def apply_strategy(store, res, obj, old, api: bool) -> None:
    """Decode checks (400), defaults and validation (422) for a create (old None) or update."""
    md = obj["metadata"]
    _decode_checks(res, obj)
    causes: list[tuple] = []
    name = md.get("name")
    if not name:
        causes.append(("metadata.name", "Required", "name or generateName is required"))
    elif res.group.startswith("rbac."):
        if "/" in name or "%" in name or name in (".", ".."):
            causes.append(("metadata.name", "Invalid", "may not contain '/' or '%'", name))
    elif res.kind in ("Namespace", "Service"):
        if not re.fullmatch(_LABEL, name) or len(name) > 63:
            causes.append(("metadata.name", "Invalid", _LABEL_MSG, name))
    elif not re.fullmatch(_SUBDOMAIN, name) or len(name) > 253:
        causes.append(("metadata.name", "Invalid", _SUBDOMAIN_MSG, name))
    for key, value in (md.get("labels") or {}).items():
        if not re.fullmatch(_LABEL_VALUE, value) or len(value) > 63:
            causes.append((f"metadata.labels", "Invalid", "a valid label must be an empty string "
                           "or consist of alphanumeric characters, '-', '_' or '.', and must "
                           "start and end with an alphanumeric character", value))
        if not re.fullmatch(rf"([a-z0-9.-]+/)?{_QUALIFIED}", key):
            causes.append(("metadata.labels", "Invalid", "name part must consist of "
                           "alphanumeric characters, '-', '_' or '.'", key))
    if old is None and res.kind in GEN_KINDS:
        md["generation"] = 1
    fn = _STRATEGIES.get(res.kind)
    if fn:
        fn(store, obj, old, api, causes)
    if causes:
        raise invalid(res, name, causes)


def _decode_checks(res, obj):
    md = obj["metadata"]
    for field in ("labels", "annotations"):
        value = md.get(field)
        if value is not None and (not isinstance(value, dict) or
                                  not all(isinstance(v, str) for v in value.values())):
            raise decode_error(res, f"json: cannot unmarshal number into Go struct field "
                                    f"ObjectMeta.metadata.{field} of type string")
    if res.kind in ("ConfigMap", "Secret"):
        for field in ("data", "stringData"):
            for k, v in (obj.get(field) or {}).items():
                if not isinstance(v, str):
                    raise decode_error(res, f"json: cannot unmarshal {type(v).__name__} into Go "
                                            f"struct field {res.kind}.{field} of type string")
        for field in ("binaryData",) if res.kind == "ConfigMap" else ("data",):
            for k, v in (obj.get(field) or {}).items():
                try:
                    base64.b64decode(v, validate=True)
                except (binascii.Error, ValueError):
                    raise decode_error(res, "illegal base64 data at input byte 0") from None
    paths = {"Lease": [("spec", "acquireTime", kp.normalize_micro),
                       ("spec", "renewTime", kp.normalize_micro)],
             "Event": [(None, "eventTime", kp.normalize_micro),
                       ("series", "lastObservedTime", kp.normalize_micro),
                       (None, "firstTimestamp", kp.normalize_time),
                       (None, "lastTimestamp", kp.normalize_time)]}.get(res.kind, [])
    for parent, key, norm in paths:
        holder = obj.get(parent) if parent else obj
        if isinstance(holder, dict) and holder.get(key) is not None:
            try:
                holder[key] = norm(holder[key])
            except kp.TimeFormatError as e:
                raise decode_error(res, str(e)) from None


def _immutable(obj, old, api, causes, path):
    if api and old is not None and _dig(obj, path) != _dig(old, path):
        causes.append((path, "Invalid", "field is immutable", _dig(obj, path)))


def _dig(obj, path):
    for p in path.split("."):
        obj = obj.get(p) if isinstance(obj, dict) else None
    return obj


def _namespace(store, obj, old, api, causes):
    md = obj["metadata"]
    md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


def _configmap(store, obj, old, api, causes):
    if old is not None and old.get("immutable") and api:
        for f in ("data", "binaryData", "immutable"):
            if obj.get(f) != old.get(f):
                causes.append((f, "Forbidden", "field is immutable when `immutable` is set"))


def _secret(store, obj, old, api, causes):
    string_data = obj.pop("stringData", None) or {}
    for k, v in string_data.items():
        obj.setdefault("data", {})[k] = base64.b64encode(v.encode()).decode()
    obj.setdefault("type", "Opaque")
    _configmap(store, obj, old, api, causes)
    _immutable(obj, old, api, causes, "type")


def _validate_pod_spec(spec, path, causes, restart=None):
    containers = spec.get("containers")
    if not containers:
        causes.append((f"{path}.containers", "Required", ""))
    seen = set()
    for i, c in enumerate(containers or []):
        if not c.get("name"):
            causes.append((f"{path}.containers[{i}].name", "Required", ""))
        elif c["name"] in seen:
            causes.append((f"{path}.containers[{i}].name", "Duplicate", "", c["name"]))
        seen.add(c.get("name"))
        if not c.get("image"):
            causes.append((f"{path}.containers[{i}].image", "Required", ""))
    if restart:
        rp = spec.get("restartPolicy")
        if not rp:
            causes.append((f"{path}.restartPolicy", "Required",
                           'valid values: "OnFailure", "Never"'))
        elif rp not in restart:
            causes.append((f"{path}.restartPolicy", "Unsupported",
                           'supported values: "OnFailure", "Never"', rp))


def _template(obj, causes, path="spec.template", restart=None):
    tmpl = _dig(obj, path) or {}
    spec = tmpl.setdefault("spec", {}) if isinstance(tmpl, dict) else {}
    _validate_pod_spec(spec, f"{path}.spec", causes, restart)
    pod_spec_defaults(spec, pod=False)


def _selector(obj, old, api, causes):
    spec = obj.get("spec") or {}
    sel = spec.get("selector")
    if not sel:
        causes.append(("spec.selector", "Required", ""))
        return
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not kp.labels_match(kp.selector_from_label_selector(sel), labels):
        causes.append(("spec.template.metadata.labels", "Invalid",
                       "`selector` does not match template `labels`", labels))
    _immutable(obj, old, api, causes, "spec.selector")


def _deployment(store, obj, old, api, causes):
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    if strategy.setdefault("type", "RollingUpdate") == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})
    _template(obj, causes)
    _selector(obj, old, api, causes)


def _replicaset(store, obj, old, api, causes):
    obj.setdefault("spec", {}).setdefault("replicas", 1)
    _template(obj, causes)
    _selector(obj, old, api, causes)


def _statefulset(store, obj, old, api, causes):
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("updateStrategy", {"type": "RollingUpdate",
                                       "rollingUpdate": {"partition": 0}})
    spec.setdefault("persistentVolumeClaimRetentionPolicy",
                    {"whenDeleted": "Retain", "whenScaled": "Retain"})
    _template(obj, causes)
    _selector(obj, old, api, causes)
    if api and old is not None:
        mutable = ("replicas", "ordinals", "template", "updateStrategy", "minReadySeconds",
                   "persistentVolumeClaimRetentionPolicy")
        strip = lambda o: {k: v for k, v in (o.get("spec") or {}).items() if k not in mutable}
        if strip(obj) != strip(old):
            causes.append(("spec", "Forbidden", "updates to statefulset spec for fields other "
                           "than 'replicas', 'ordinals', 'template', 'updateStrategy', "
                           "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                           "forbidden"))


def _job(store, obj, old, api, causes):
    spec = obj.setdefault("spec", {})
    for k, v in (("parallelism", 1), ("completions", 1), ("backoffLimit", 6),
                 ("completionMode", "NonIndexed"), ("suspend", False),
                 ("podReplacementPolicy", "TerminatingOrFailed"), ("manualSelector", None)):
        if v is not None:
            spec.setdefault(k, v)
    md = obj["metadata"]
    if old is None and not spec.get("manualSelector") and md.get("uid"):
        gen = {"batch.kubernetes.io/controller-uid": md["uid"], "controller-uid": md["uid"],
               "batch.kubernetes.io/job-name": md.get("name", ""), "job-name": md.get("name", "")}
        tmd = spec.setdefault("template", {}).setdefault("metadata", {})
        tmd["labels"] = {**(tmd.get("labels") or {}), **gen}
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": md["uid"]}}
        if not md.get("labels"):
            md["labels"] = {k: v for k, v in tmd["labels"].items() if k not in ("controller-uid",)}
    _template(obj, causes, restart=("Never", "OnFailure"))
    _immutable(obj, old, api, causes, "spec.template")
    _immutable(obj, old, api, causes, "spec.selector")


def _cronjob(store, obj, old, api, causes):
    spec = obj.setdefault("spec", {})
    if not spec.get("schedule"):
        causes.append(("spec.schedule", "Required", ""))
    for k, v in (("concurrencyPolicy", "Allow"), ("suspend", False),
                 ("successfulJobsHistoryLimit", 3), ("failedJobsHistoryLimit", 1)):
        spec.setdefault(k, v)
    spec.setdefault("jobTemplate", {}).setdefault("spec", {})
    _template(obj, causes, "spec.jobTemplate.spec.template", restart=("Never", "OnFailure"))


def _service(store, obj, old, api, causes):
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    if old is not None and not spec.get("clusterIP"):
        spec["clusterIP"] = (old.get("spec") or {}).get("clusterIP")
        spec["clusterIPs"] = (old.get("spec") or {}).get("clusterIPs")
    if spec["type"] != "ExternalName":
        if not spec.get("clusterIP"):
            spec["clusterIP"] = store.next_ip("10.96")
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    spec.setdefault("sessionAffinity", "None")
    for i, p in enumerate(spec.get("ports") or []):
        if "port" not in p:
            causes.append((f"spec.ports[{i}].port", "Required", ""))
        p.setdefault("protocol", "TCP")
        p.setdefault("targetPort", p.get("port"))
    _immutable(obj, old, api, causes, "spec.clusterIP")


def _pvc(store, obj, old, api, causes):
    spec = obj.setdefault("spec", {})
    if not spec.get("accessModes"):
        causes.append(("spec.accessModes", "Required", "at least 1 access mode is required"))
    if not _dig(obj, "spec.resources.requests.storage"):
        causes.append(("spec.resources[storage]", "Required", ""))
    spec.setdefault("volumeMode", "Filesystem")


def _pod(store, obj, old, api, causes):
    spec = obj.setdefault("spec", {})
    if old is None:
        _validate_pod_spec(spec, "spec", causes)
        pod_spec_defaults(spec, pod=True)
        inject_istio(store, obj)
    elif api:
        def strip(o):
            s = copy.deepcopy(o.get("spec") or {})
            for c in s.get("containers", []) + s.get("initContainers", []):
                c.pop("image", None)
            for k in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
                s.pop(k, None)
            return s
        if strip(obj) != strip(old):
            causes.append(("spec", "Forbidden", "pod updates may not change fields other than "
                           "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                           "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                           "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it "
                           "to be set to 1 if it was previously negative)"))


def _event(store, obj, old, api, causes):
    ns = obj["metadata"].get("namespace")
    inv_ns = (obj.get("involvedObject") or {}).get("namespace")
    if not obj.get("eventTime"):
        if (not inv_ns and ns not in ("", "default")) or (inv_ns and inv_ns != ns):
            causes.append(("involvedObject.namespace", "Invalid", "does not match event.namespace",
                           inv_ns or ""))
        return
    if not inv_ns and ns not in ("default", "kube-system"):
        causes.append(("involvedObject.namespace", "Invalid", "does not match event.namespace",
                       inv_ns or ""))
    for field in ("reportingComponent", "reportingInstance", "action", "reason"):
        if not obj.get(field):
            causes.append((field, "Required", ""))


def _rolebinding(store, obj, old, api, causes):
    ref = obj.get("roleRef") or {}
    for k in ("kind", "name"):
        if not ref.get(k):
            causes.append((f"roleRef.{k}", "Required", ""))
    if api and old is not None and ref != old.get("roleRef"):
        causes.append(("roleRef", "Invalid", "cannot change roleRef", ref))


_STRATEGIES = {
    "Namespace": _namespace, "ConfigMap": _configmap, "Secret": _secret, "Pod": _pod,
    "Deployment": _deployment, "ReplicaSet": _replicaset, "StatefulSet": _statefulset,
    "Job": _job, "CronJob": _cronjob, "Service": _service, "PersistentVolumeClaim": _pvc,
    "Event": _event, "RoleBinding": _rolebinding, "ClusterRoleBinding": _rolebinding,
}
