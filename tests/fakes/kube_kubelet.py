"""Pod-side simulation for the fake Kubernetes API: pod defaults, the Istio sidecar injection
webhook, the kubelet (pod status from failure mode and elapsed time) and an event recorder that
de-duplicates like the real one (count / lastTimestamp)."""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time

from . import kube_patch as kp

FAILURE_MODES = ("crashloop", "imagepull", "oom", "never-ready", "unschedulable", "fail")
NODE = "fake-node-1"
HOST_IP = "172.18.0.2"
ISTIO_IMAGE = "docker.io/istio/proxyv2:1.22.3"


def pod_spec_defaults(spec: dict, *, pod: bool) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    if pod:
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if not isinstance(c, dict):
            continue
        image = c.get("image") or ""
        tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
        c.setdefault("imagePullPolicy", "IfNotPresent" if tagged and not image.endswith(
            ":latest") else "Always")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            p.setdefault("protocol", "TCP")


def wants_istio(store, pod) -> bool:
    md = pod.get("metadata") or {}
    flags = {(md.get("labels") or {}).get("sidecar.istio.io/inject"),
             (md.get("annotations") or {}).get("sidecar.istio.io/inject")}
    if "false" in flags:
        return False
    ns = store.get("namespaces", None, md.get("namespace")) or {"metadata": {}}
    return "true" in flags or (ns["metadata"].get("labels") or {}).get(
        "istio-injection") == "enabled"


def inject_istio(store, pod):
    """What Istio's mutating webhook does to a pod: istio-init + istio-proxy."""
    spec, md = pod["spec"], pod["metadata"]
    names = [c.get("name") for c in spec.get("containers") or []]
    if "istio-proxy" in names or not wants_istio(store, pod):
        return
    spec.setdefault("initContainers", []).append({
        "name": "istio-init", "image": ISTIO_IMAGE, "imagePullPolicy": "IfNotPresent",
        "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337"],
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "resources": {}})
    spec["containers"].append({
        "name": "istio-proxy", "image": ISTIO_IMAGE, "imagePullPolicy": "IfNotPresent",
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "resources": {"requests": {"cpu": "10m", "memory": "40Mi"}}})
    ann = md.setdefault("annotations", {})
    ann.setdefault("kubectl.kubernetes.io/default-container", names[0] if names else "")
    ann["sidecar.istio.io/status"] = json.dumps({
        "initContainers": ["istio-init"], "containers": ["istio-proxy"],
        "volumes": [], "imagePullSecrets": None, "revision": "default"})
    labels = md.setdefault("labels", {})
    labels.setdefault("security.istio.io/tlsMode", "istio")
    labels.setdefault("service.istio.io/canonical-name",
                      labels.get("app.kubernetes.io/name") or labels.get("app") or md["name"])
    labels.setdefault("service.istio.io/canonical-revision", "latest")


def _cond(old_conds, ctype, ok: bool, at: str, reason=None, message=None) -> dict:
    prev = next((c for c in old_conds or [] if c.get("type") == ctype), None)
    status = "True" if ok else "False"
    c = {"type": ctype, "status": status, "lastProbeTime": None,
         "lastTransitionTime": prev["lastTransitionTime"] if prev and prev.get("status") == status
         else at}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def _cid(pod_uid, name, n=0) -> str:
    return "containerd://" + hashlib.sha256(f"{pod_uid}/{name}/{n}".encode()).hexdigest()


def _image_id(image) -> str:
    repo = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def pod_status(pod, *, mode, failing, elapsed, t0: _dt.datetime, delay, restart_interval,
               pod_ip) -> tuple[dict, dict]:
    """Desired pod status and per-container event signatures {key: (sig, [events])}.

    An event is (type, reason, message, fieldPath, component)."""
    md, spec, old = pod["metadata"], pod["spec"], pod.get("status") or {}
    name, ns, uid = md["name"], md.get("namespace"), md.get("uid")
    conds = old.get("conditions")
    at0, started = kp.fmt_time(t0), elapsed >= delay
    at = kp.fmt_time(t0 + _dt.timedelta(seconds=elapsed))
    t_run = kp.fmt_time(t0 + _dt.timedelta(seconds=delay))
    qos = old.get("qosClass", "BestEffort")
    sigs: dict = {}
    if mode == "unschedulable":
        msg = ("0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are "
               "available: 3 No preemption victims found for incoming pod.")
        sigs["pod"] = ("unschedulable", [("Warning", "FailedScheduling", msg, None,
                                          "default-scheduler")])
        return {"phase": "Pending", "qosClass": qos, "conditions": [
            _cond(conds, "PodScheduled", False, at0, "Unschedulable", msg)]}, sigs
    sigs["pod"] = ("scheduled", [("Normal", "Scheduled", f"Successfully assigned {ns}/{name} to "
                                  f"{NODE}", None, "default-scheduler")])
    is_job = spec.get("restartPolicy") in ("Never", "OnFailure")
    n_tick = int((elapsed - delay) / restart_interval) if started else 0
    statuses, init_statuses = [], []
    for c in spec.get("initContainers") or []:
        st = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": at0,
                             "finishedAt": t_run, "containerID": _cid(uid, c["name"])}} \
            if started else {"waiting": {"reason": "PodInitializing"}}
        init_statuses.append({"name": c["name"], "image": c.get("image", ""),
                              "imageID": _image_id(c.get("image", "")) if started else "",
                              "ready": started, "restartCount": 0, "started": False,
                              "state": st, "lastState": {},
                              **({"containerID": _cid(uid, c["name"])} if started else {})})
    for c in spec.get("containers") or []:
        cname, image = c["name"], c.get("image", "")
        path = f"spec.containers{{{cname}}}"
        cs = {"name": cname, "image": image, "imageID": "", "ready": False, "restartCount": 0,
              "started": False, "lastState": {}}
        fails = mode in FAILURE_MODES and cname == failing
        sidecar = cname == "istio-proxy"
        if not started:
            reason = "PodInitializing" if spec.get("initContainers") else "ContainerCreating"
            cs["state"] = {"waiting": {"reason": reason}}
            statuses.append(cs)
            continue
        running = {"running": {"startedAt": t_run}}
        start_events = [("Normal", "Pulled", f'Container image "{image}" already present on '
                                             f"machine", path, "kubelet"),
                        ("Normal", "Created", f"Created container: {cname}", path, "kubelet"),
                        ("Normal", "Started", f"Started container {cname}", path, "kubelet")]
        if fails and mode == "imagepull":
            err = n_tick % 2 == 0
            cs["state"] = {"waiting": {"reason": "ErrImagePull" if err else "ImagePullBackOff",
                                       "message": (f'rpc error: code = NotFound desc = failed to '
                                                   f'pull and unpack image "{image}": not found')
                                       if err else f'Back-off pulling image "{image}"'}}
            sigs[cname] = (("pull", n_tick), [
                ("Warning", "Failed", f'Failed to pull image "{image}": rpc error: code = '
                 f'NotFound desc = failed to pull and unpack image "{image}": not found',
                 path, "kubelet"), ("Warning", "Failed", "Error: ErrImagePull", path, "kubelet")]
                if err else [("Normal", "BackOff", f'Back-off pulling image "{image}"', path,
                              "kubelet"), ("Warning", "Failed", "Error: ImagePullBackOff", path,
                                           "kubelet")])
        elif fails and mode in ("crashloop", "oom", "fail") and not (
                is_job and spec.get("restartPolicy") == "Never"):
            n = 1 + n_tick
            oom = mode == "oom"
            cs.update(restartCount=n, containerID=_cid(uid, cname, n), imageID=_image_id(image))
            cs["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": (
                f"back-off {min(10 * 2 ** (n - 1), 300)}s restarting failed container={cname} "
                f"pod={name}_{ns}({uid})")}}
            cs["lastState"] = {"terminated": {
                "exitCode": 137 if oom else 1, "reason": "OOMKilled" if oom else "Error",
                "startedAt": t_run, "finishedAt": t_run, "containerID": _cid(uid, cname, n)}}
            sigs[cname] = (("restart", n), [("Warning", "BackOff", f"Back-off restarting failed "
                                             f"container {cname} in pod {name}_{ns}({uid})",
                                             path, "kubelet")])
        elif is_job and not sidecar and elapsed >= 2 * delay:
            bad = fails and mode in ("crashloop", "oom", "fail")
            oom = bad and mode == "oom"
            cs.update(containerID=_cid(uid, cname), imageID=_image_id(image))
            cs["state"] = {"terminated": {
                "exitCode": (137 if oom else 1) if bad else 0,
                "reason": ("OOMKilled" if oom else "Error") if bad else "Completed",
                "startedAt": t_run, "finishedAt": kp.fmt_time(), "containerID": cs["containerID"]}}
            sigs[cname] = ("started", start_events)
        else:
            probe_fail = fails and mode == "never-ready"
            cs.update(containerID=_cid(uid, cname), imageID=_image_id(image), started=True,
                      ready=not probe_fail, state=running)
            sigs[cname] = ("started", start_events)
            if probe_fail:
                sigs[cname + "/probe"] = (("probe", n_tick), [(
                    "Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with "
                    "statuscode: 503", path, "kubelet")])
        statuses.append(cs)
    states = [next(iter(s["state"])) for s in statuses]
    never_started = any(s["state"].get("waiting") and not s["restartCount"] for s in statuses)
    if statuses and all(st == "terminated" for st in states):
        ok = all(s["state"]["terminated"]["exitCode"] == 0 for s in statuses)
        phase = "Succeeded" if ok else "Failed"
    else:
        phase = "Pending" if never_started or not started else "Running"
    unready = [s["name"] for s in statuses if not s["ready"]]
    done = phase in ("Succeeded", "Failed")
    why = ("PodCompleted", None) if done else (
        "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]")
    status = {
        "phase": phase, "qosClass": qos, "hostIP": HOST_IP, "hostIPs": [{"ip": HOST_IP}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": at0,
        # a condition that changes now has now as its lastTransitionTime (as the kubelet does)
        "conditions": [
            _cond(conds, "PodReadyToStartContainers", started and not done, at),
            _cond(conds, "Initialized", started or not spec.get("initContainers"), at,
                  *(() if started or not spec.get("initContainers") else
                    ("ContainersNotInitialized", "containers with incomplete status: "
                     f"[{' '.join(c['name'] for c in spec['initContainers'])}]"))),
            _cond(conds, "Ready", not unready and not done, at, *(() if not unready and not done
                                                                else why)),
            _cond(conds, "ContainersReady", not unready and not done, at,
                  *(() if not unready and not done else why)),
            _cond(conds, "PodScheduled", True, at0)],
        "containerStatuses": statuses}
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    return status, sigs


class EventRecorder:
    """core/v1 Events with the kubelet/controller de-duplication (same object+reason+message
    bumps `count` and `lastTimestamp`)."""

    def __init__(self, store):
        self.store = store
        self._names: dict[tuple, str] = {}

    def emit(self, obj, etype, reason, message, field_path=None, component="kubelet"):
        md = obj["metadata"]
        ns = md.get("namespace") or "default"
        key = (ns, md.get("uid"), reason, message, field_path)
        now = kp.fmt_time()
        name = self._names.get(key)
        if name and self.store.get("events", ns, name):
            def bump(e):
                e["count"] = e.get("count", 1) + 1
                e["lastTimestamp"] = now
            return self.store.mutate("events", ns, name, bump)
        name = f"{md['name']}.{time.time_ns():x}"[:253]
        self._names[key] = name
        involved = {"kind": obj.get("kind"), "namespace": ns, "name": md["name"],
                    "uid": md.get("uid"), "apiVersion": obj.get("apiVersion"),
                    "resourceVersion": md.get("resourceVersion")}
        if field_path:
            involved["fieldPath"] = field_path
        return self.store.create({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved, "reason": reason, "message": message,
            "source": {"component": component, **({"host": NODE} if component == "kubelet"
                                                 else {})},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": etype,
            "eventTime": None, "reportingComponent": component,
            "reportingInstance": NODE if component == "kubelet" else ""}, ns)
