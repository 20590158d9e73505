"""Endpoint handlers of the fake Kubernetes API server: watch streams, pod logs, discovery,
SelfSubjectAccessReview, the scale subresource and the pod proxy."""
from __future__ import annotations

import base64
import copy
import itertools
import time

from . import kube_patch as kp
from .kube_rules import ApiError, bad_request, invalid
from .kube_store import FIELD_LABELS, GROUPS, RESOURCES, Store, _META_FIELDS, resolve

_CATEGORY_ALL = {"pods", "services", "deployments", "statefulsets", "replicasets", "jobs",
                 "cronjobs"}
_NOT_STARTED = {"ContainerCreating", "PodInitializing", "ErrImagePull", "ImagePullBackOff",
                "CreateContainerConfigError", "InvalidImageName"}


def watch_stream(fake, res, ns, query):
    """Yield watch events: ADDED for current objects (no resourceVersion given) or the changes
    after `resourceVersion`, then live changes until timeoutSeconds (default fake.watch_timeout)
    or until the server stops."""
    store: Store = fake.store
    labels = kp.parse_label_selector(query.get("labelSelector"))
    fields = kp.parse_field_selector(query.get("fieldSelector"),
                                     _META_FIELDS | FIELD_LABELS.get(res.kind, set()))
    deadline = time.monotonic() + float(query.get("timeoutSeconds") or fake.watch_timeout)
    rv = query.get("resourceVersion") or ""
    matches = lambda o: o is not None and (not ns or o["metadata"].get("namespace") == ns) and \
        store.matches(res, o, labels, fields)
    with store.lock:
        if rv in ("", "0"):
            cursor = int(store.resource_version)
            initial = [{"type": "ADDED", "object": o} for o in store.list(res, ns, labels) if
                       store.matches(res, o, labels, fields)]
        else:
            cursor, initial = int(rv), []
            oldest = store.history[0][0] if store.history else int(store.resource_version) + 1
            if cursor < oldest - 1:
                initial = [{"type": "ERROR", "object": ApiError(
                    410, "Expired", f"too old resource version: {cursor} ({oldest - 1})").status()}]
    yield from initial
    if initial and initial[0]["type"] == "ERROR":
        return
    while not fake.stopping.is_set():
        with store.changed:
            batch = list(itertools.takewhile(lambda h: h[0] > cursor,
                                             reversed(store.history)))[::-1]
            if not batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                store.changed.wait(min(remaining, 0.2))
                continue
        for rv_, etype, plural, obj, old in batch:
            cursor = rv_
            if plural != res.plural:
                continue
            now, before = matches(obj), matches(old)
            if etype == "DELETED":
                kind = "DELETED" if before else None
            elif now:
                kind = "MODIFIED" if before and etype == "MODIFIED" else "ADDED"
            else:
                kind = "DELETED" if before else None
            if kind:
                yield {"type": kind, "object": copy.deepcopy(obj)}


def logs_response(store: Store, ns, name, query):
    pod = store.read("pods", ns, name)
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    names = [c["name"] for c in spec.get("containers") or []]
    init_names = [c["name"] for c in spec.get("initContainers") or []]
    container = query.get("container")
    if not container:
        if len(names) != 1:
            raise bad_request(f"a container name must be specified for pod {name}, choose one "
                              f"of: [{' '.join(names)}]" + (
                                  f" or one of the init containers: [{' '.join(init_names)}]"
                                  if init_names else ""))
        container = names[0]
    if container not in names + init_names:
        raise bad_request(f"container {container} is not valid for pod {name}")
    cs = next((c for c in (status.get("containerStatuses") or []) +
               (status.get("initContainerStatuses") or []) if c.get("name") == container), {})
    previous = query.get("previous") in ("true", "1")
    if previous:
        if not (cs.get("lastState") or {}).get("terminated"):
            raise bad_request(f'previous terminated container "{container}" in pod "{name}" '
                              f'not found')
    else:
        waiting = (cs.get("state") or {"waiting": {"reason": "ContainerCreating"}}).get("waiting")
        if waiting and waiting.get("reason") in _NOT_STARTED and not cs.get("restartCount"):
            raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: '
                              f'{waiting.get("reason")}')
    text = store.get_log(ns, name, container, previous) or ""
    lines = text.splitlines(keepends=True)
    if query.get("tailLines"):
        try:
            n = int(query["tailLines"])
        except ValueError:
            raise bad_request(f'invalid tailLines "{query["tailLines"]}"') from None
        lines = lines[-n:] if n > 0 else []
    if query.get("timestamps") in ("true", "1"):
        stamp = kp.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
        lines = [f"{stamp} {line}" for line in lines]
    text = "".join(lines)
    if query.get("limitBytes"):
        text = text.encode()[:int(query["limitBytes"])].decode("utf-8", "ignore")
    return 200, text, "text/plain"


def scale_view(res, obj) -> dict:
    md = obj["metadata"]
    sel = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                            "creationTimestamp") if k in md},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sel.items())}}


def update_scale(store, res, ns, name, body, dry):
    replicas = (body.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise invalid(res, name, [("spec.replicas", "Invalid",
                                   "must be greater than or equal to 0", replicas)])
    patch = {"spec": {"replicas": replicas}}
    rv = (body.get("metadata") or {}).get("resourceVersion")
    if rv:
        patch["metadata"] = {"resourceVersion": rv}
    return scale_view(res, store.patch(res, ns, name, patch, "merge", api=True, dry_run=dry))


def ssar(fake, body: dict) -> dict:
    spec = body.get("spec") or {}
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if bool(ra) == bool(nra):
        raise invalid(resolve("selfsubjectaccessreviews"), "", [(
            "spec.resourceAttributes", "Invalid",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            "null")])
    if ra:
        resource = ra.get("resource", "")
        if ra.get("group"):
            resource = f"{resource}.{ra['group']}"
        if ra.get("subresource"):
            resource = f"{resource}/{ra['subresource']}"
        allowed, reason = fake.is_allowed(ra.get("verb", ""), resource, ra.get("namespace") or None)
    else:
        allowed, reason = True, "RBAC: non-resource URLs are allowed by the fake"
    return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None}, "spec": spec,
            "status": {"allowed": allowed, "reason": reason}}


def group_names() -> list[str]:
    return list(dict.fromkeys(r.group for r in RESOURCES if r.group))


def group(name) -> dict:
    versions = [{"groupVersion": f"{name}/{v}", "version": v}
                for v in dict.fromkeys(r.version for r in RESOURCES if r.group == name)]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def resource_list(gv) -> dict:
    out = []
    for r in GROUPS[gv]:
        entry = {"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": list(r.verbs),
                 "storageVersionHash": base64.b64encode(r.gr.encode()[:8]).decode()}
        if r.short:
            entry["shortNames"] = list(r.short)
        if r.plural in _CATEGORY_ALL:
            entry["categories"] = ["all"]
        out.append(entry)
        for sub in r.sub:
            e = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": ["get", "patch", "update"]}
            if sub == "scale":
                e.update(group="autoscaling", version="v1", kind="Scale")
            elif sub == "log":
                e["verbs"] = ["get"]
            elif sub == "proxy":
                e.update(kind="PodProxyOptions", verbs=["create", "delete", "get", "patch",
                                                        "update"])
            elif sub == "finalize":
                e["verbs"] = ["update"]
            out.append(e)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


def check_kind(res, body, sub):
    if sub == "scale":
        return
    if body.get("apiVersion") not in (None, "", res.api_version):
        raise bad_request(f"the API version in the data ({body['apiVersion']}) does not match "
                          f"the expected API version ({res.api_version})")
    if body.get("kind") not in (None, "", res.kind):
        raise bad_request(f'{res.kind} in version "{res.version}" cannot be handled as a '
                          f'{res.kind}: no kind "{body["kind"]}" is registered for version '
                          f'"{res.api_version}"')


def list_response(res, items, rv, query) -> dict:
    start = 0
    if query.get("continue"):
        try:
            start = int(base64.urlsafe_b64decode(query["continue"]).decode())
        except ValueError:
            raise bad_request("continue key is not valid") from None
    limit = int(query.get("limit") or 0)
    page = items[start:start + limit] if limit else items[start:]
    meta = {"resourceVersion": rv}
    if limit and start + limit < len(items):
        meta["continue"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
        meta["remainingItemCount"] = len(items) - start - limit
    for o in page:  # the real server leaves kind/apiVersion off list items
        o.pop("kind", None)
        o.pop("apiVersion", None)
    return {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta,
            "items": page}


def pod_proxy(fake, ns, name_port: str, path: str, query: dict):
    """``GET /api/v1/namespaces/NS/pods/NAME:PORT/proxy/PATH``: the request forwarded to the
    server a test registered for the pod and port (``FakeKube.serve_pods``), its answer passed
    through (status, body, content type) as the real API server passes a pod's answer; with no
    server, the real API server's answer to a port nothing listens on (503 ServiceUnavailable,
    "error trying to reach service: dial tcp IP:PORT: connect: connection refused", as
    kube-apiserver 1.35 answers it)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    name, _, port = name_port.partition(":")
    pod = fake.store.read("pods", ns, name)  # 404: pods "NAME" not found
    if not port.isdigit():
        raise bad_request(f'invalid port "{port}" in pod proxy request')  # (named: unsupported)
    target = fake.pod_server(name, int(port))
    if target is None:
        ip = (pod.get("status") or {}).get("podIP") or "<nil>"
        raise ApiError(503, "ServiceUnavailable", f"error trying to reach service: dial tcp "
                       f"{ip}:{port}: connect: connection refused")
    url = target.rstrip("/") + "/" + path.lstrip("/")
    if query:
        url += "?" + urllib.parse.urlencode(query)
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - a test's server
            return answer.status, answer.read().decode("utf-8", "replace"), \
                answer.headers.get("Content-Type") or "text/plain"
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace"), \
            err.headers.get("Content-Type") or "text/plain"
    except OSError as err:
        raise ApiError(503, "ServiceUnavailable", f"error trying to reach service: {err}") from None
