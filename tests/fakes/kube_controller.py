"""Simulated kube-controller-manager + kubelet for the fake Kubernetes API.

Driven by a background thread (`start()`) or explicitly (`tick()`). Deployments get ReplicaSets
and pods `<name>-<hash>-<suffix>`, StatefulSets pods `<name>-<ordinal>`, Jobs pods
`<name>-<suffix>`; the kubelet moves pods to Running/Ready `ready_delay` seconds after they are
created, unless a failure mode was set for the workload with `set_failure()`.
"""
from __future__ import annotations

import copy
import datetime as _dt
import threading
import time

from . import kube_patch as kp
from .kube_kubelet import FAILURE_MODES, NODE, EventRecorder, pod_status
from .kube_store import random_suffix
from .kube_workloads import (_omit_zero, _ready, _set_cond, bind_pvc, owner_ref, reconcile_job,
                             reconcile_statefulset, template_hash)


class Controller:
    def __init__(self, store, *, ready_delay=0.05, interval=0.01, restart_interval=None,
                 progress_deadline=None, errors=None):
        self.store = store
        self.errors = errors if errors is not None else []  # tracebacks from the thread
        self.ready_delay = ready_delay
        self.restart_interval = restart_interval or max(ready_delay, 0.02)
        self.progress_deadline = progress_deadline  # seconds; None: spec.progressDeadlineSeconds
        self.interval = interval
        self.events = EventRecorder(store)
        self.failures: dict[tuple, tuple] = {}
        self.frozen: set[str] = set()
        self._seen: dict[str, tuple] = {}
        self._sigs: dict[tuple, object] = {}
        self._ips: dict[str, str] = {}
        self._progress: dict[tuple, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- public API
    def start(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fake-kube-controller",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
            self._thread = None

    def set_failure(self, name, mode, namespace=None, container=None):
        """Failure mode for a Deployment / StatefulSet / Job (or bare pod) name: one of
        crashloop, imagepull, oom, never-ready, unschedulable, fail; None clears it.
        `container`: which container fails (default: the first one)."""
        if mode is None:
            self.failures.pop((namespace, name), None)
            return
        if mode not in FAILURE_MODES:
            raise ValueError(f"unknown failure mode {mode!r}; one of {FAILURE_MODES}")
        self.failures[(namespace, name)] = (mode, container)

    def tick(self):
        """Run every controller until nothing changes at this instant (at most 6 passes)."""
        with self._lock, self.store.lock:
            now = time.monotonic()
            for _ in range(6):
                before = self.store.resource_version
                self._pass(now)
                if self.store.resource_version == before:
                    break

    def trigger_cronjob(self, namespace, name, job_name=None) -> dict:
        """What `kubectl create job --from=cronjob/NAME` does."""
        cj = self.store.read("cronjobs", namespace, name)
        tmpl = copy.deepcopy(cj["spec"]["jobTemplate"])
        md = tmpl.get("metadata") or {}
        md.update(name=job_name or f"{name}-manual-{random_suffix(3)}", namespace=namespace,
                  ownerReferences=[owner_ref(cj)])
        md.setdefault("annotations", {})["cronjob.kubernetes.io/instantiate"] = "manual"
        return self.store.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": md,
                                  "spec": tmpl.get("spec") or {}}, namespace)

    def seed_completed_job_pod(self, namespace, job_name, *, container="main",
                               image="docker.io/library/busybox:1.36", sidecar=True) -> dict:
        """A Job whose pod finished its work while the istio-proxy sidecar keeps running:
        `kubectl get pods` shows READY 1/2 (the runbook's normal post-install state)."""
        labels = {"sidecar.istio.io/inject": "true" if sidecar else "false"}
        with self._lock, self.store.lock:
            job = self.store.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
                "name": job_name, "namespace": namespace}, "spec": {"template": {
                    "metadata": {"labels": labels},
                    "spec": {"restartPolicy": "Never",
                             "containers": [{"name": container, "image": image}]}}}}, namespace)
            pod = self._new_pod(job, f"{job_name}-{random_suffix()}", job["spec"]["template"])
            t0 = kp.utcnow() - _dt.timedelta(seconds=30)
            status, _ = pod_status(pod, mode=None, failing=None, elapsed=30.0, t0=t0, delay=1.0,
                                   restart_interval=1.0, pod_ip=self.store.next_ip("10.244"))
            self.frozen.add(pod["metadata"]["uid"])
            pod["spec"]["nodeName"] = NODE
            pod["status"] = status
            pod = self.store.replace(pod, namespace)
            reconcile_job(self, self.store.read("jobs", namespace, job_name))
        return pod

    # ----------------------------------------------------------------- loop
    def _run(self):
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # keep the simulation alive; tests assert on `errors`
                import traceback
                self.errors.append(traceback.format_exc())
            self._stop.wait(self.interval)

    def _pass(self, now):
        s = self.store
        for pvc in s.list("persistentvolumeclaims"):
            if (pvc.get("status") or {}).get("phase") == "Pending":
                bind_pvc(self, pvc)
        for d in s.list("deployments"):
            self._deployment(d, now)
        for rs in s.list("replicasets"):
            self._replicaset(rs)
        for sts in s.list("statefulsets"):
            reconcile_statefulset(self, sts)
        for job in s.list("jobs"):
            reconcile_job(self, job)
        for pod in s.list("pods"):
            self._kubelet(pod, now)

    # ----------------------------------------------------------------- helpers
    def _mode(self, pod):
        md = pod["metadata"]
        ns, name = md.get("namespace"), md["name"]
        for ref in md.get("ownerReferences") or []:
            name = ref["name"]
            if ref["kind"] == "ReplicaSet":
                rs = self.store.get("replicasets", ns, ref["name"]) or {"metadata": {}}
                name = next((r["name"] for r in rs["metadata"].get("ownerReferences") or []),
                            ref["name"])
        mode, container = self.failures.get((ns, name)) or self.failures.get((None, name)) or \
            (None, None)
        if mode and not container:
            container = next((c["name"] for c in pod["spec"].get("containers", [])), None)
        return mode, container

    def _new_pod(self, owner, name, template, extra_labels=None, **spec_extra) -> dict:
        tmd = template.get("metadata") or {}
        md = {"name": name, "namespace": owner["metadata"]["namespace"],
              "labels": {**(tmd.get("labels") or {}), **(extra_labels or {})},
              "ownerReferences": [owner_ref(owner)]}
        if tmd.get("annotations"):
            md["annotations"] = dict(tmd["annotations"])
        spec = {**copy.deepcopy(template.get("spec") or {}), **spec_extra}
        pod = self.store.create({"apiVersion": "v1", "kind": "Pod", "metadata": md,
                                 "spec": spec}, md["namespace"])
        self.events.emit(owner, "Normal", "SuccessfulCreate", f"Created pod: {name}",
                         component=f"{owner['kind'].lower()}-controller")
        return pod

    def _delete_pod(self, owner, pod):
        md = pod["metadata"]
        self.store.delete("pods", md["namespace"], md["name"])
        self.events.emit(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {md['name']}",
                         component=f"{owner['kind'].lower()}-controller")

    def _pods(self, owner) -> list[dict]:
        return [p for p in self.store.owned_by("pods", owner["metadata"]["namespace"],
                                                owner["metadata"]["uid"])
                if not p["metadata"].get("deletionTimestamp")]

    # ----------------------------------------------------------------- deployments
    def _deployment(self, d, now):
        md, spec = d["metadata"], d["spec"]
        if md.get("deletionTimestamp"):
            return
        ns, want = md["namespace"], spec.get("replicas", 1)
        h = template_hash(spec["template"])
        rss = self.store.owned_by("replicasets", ns, md["uid"])
        new = next((r for r in rss if r["metadata"]["labels"].get("pod-template-hash") == h), None)
        olds = [r for r in rss if r is not new]
        revs = [int(r["metadata"].get("annotations", {}).get(
            "deployment.kubernetes.io/revision", "0")) for r in olds]
        recreate = spec.get("strategy", {}).get("type") == "Recreate"
        if not new and not spec.get("paused"):
            if recreate and any(self._pods(r) for r in olds):
                for r in olds:
                    self._scale_rs(d, r, 0)
                return
            tmpl = copy.deepcopy(spec["template"])
            tmpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
            sel = copy.deepcopy(spec["selector"])
            sel.setdefault("matchLabels", {})["pod-template-hash"] = h
            rev = str(max(revs, default=0) + 1)
            new = self.store.create({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
                "name": f"{md['name']}-{h}", "namespace": ns, "labels": tmpl["metadata"]["labels"],
                "annotations": {"deployment.kubernetes.io/desired-replicas": str(want),
                                "deployment.kubernetes.io/max-replicas": str(want + 1),
                                "deployment.kubernetes.io/revision": rev},
                "ownerReferences": [owner_ref(d)]},
                "spec": {"replicas": 0, "selector": sel, "template": tmpl}}, ns)
            self._progress[(md["uid"], h)] = now
            d = self.store.mutate("deployments", ns, md["name"], lambda o: o["metadata"].setdefault(
                "annotations", {}).__setitem__("deployment.kubernetes.io/revision", rev)) or d
        if not new:
            return
        self._progress.setdefault((md["uid"], h), now)
        self._scale_rs(d, new, want)
        new_ready = sum(_ready(p) for p in self._pods(new))
        if new_ready >= want:
            for r in olds:
                self._scale_rs(d, r, 0)
        self._deployment_status(d, new, olds, want, now)

    def _scale_rs(self, d, rs, n):
        if rs["spec"].get("replicas") == n:
            return
        old_n = rs["spec"].get("replicas", 0)
        self.store.mutate("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"],
                          lambda o: o["spec"].__setitem__("replicas", n))
        rs["spec"]["replicas"] = n
        verb = "up" if n > old_n else "down"
        self.events.emit(d, "Normal", "ScalingReplicaSet", f"Scaled {verb} replica set "
                         f"{rs['metadata']['name']} from {old_n} to {n}",
                         component="deployment-controller")

    def _deployment_status(self, d, new, olds, want, now):
        pods_new = self._pods(new)
        pods = pods_new + [p for r in olds for p in self._pods(r)]
        ready = sum(_ready(p) for p in pods)
        spec = d["spec"]
        mu = (spec.get("strategy", {}).get("rollingUpdate") or {}).get("maxUnavailable", "25%")
        max_unavail = int(want * int(mu[:-1]) / 100) if isinstance(mu, str) else int(mu)
        at = kp.fmt_time()
        st = d.get("status") or {}
        conds = _set_cond(st.get("conditions"), "Available", ready >= want - max_unavail,
                          *(("MinimumReplicasAvailable", "Deployment has minimum availability.")
                            if ready >= want - max_unavail else
                            ("MinimumReplicasUnavailable",
                             "Deployment does not have minimum availability.")), at)
        rs_name = new["metadata"]["name"]
        deadline = self.progress_deadline if self.progress_deadline is not None else \
            spec.get("progressDeadlineSeconds", 600)
        if len(pods_new) == want and len(pods) == want and ready >= want:
            prog = (True, "NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully '
                                                    f"progressed.")
        elif now - self._progress.get((d["metadata"]["uid"], new["metadata"]["labels"].get(
                "pod-template-hash")), now) > deadline:
            prog = (False, "ProgressDeadlineExceeded", f'ReplicaSet "{rs_name}" has timed out '
                                                       f"progressing.")
        else:
            prog = (True, "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        conds = _set_cond(conds, "Progressing", *prog, at)
        status = _omit_zero({
            "observedGeneration": d["metadata"].get("generation", 1), "replicas": len(pods),
            "updatedReplicas": len(pods_new), "readyReplicas": ready, "availableReplicas": ready,
            "unavailableReplicas": max(want - ready, 0), "conditions": conds})
        if status != st:
            self.store.mutate("deployments", d["metadata"]["namespace"], d["metadata"]["name"],
                              lambda o: o.__setitem__("status", status))

    def _replicaset(self, rs):
        want = rs["spec"].get("replicas", 1)
        pods = self._pods(rs)
        owner = rs
        for _ in range(want - len(pods)):
            pods.append(self._new_pod(rs, f"{rs['metadata']['name']}-{random_suffix()}",
                                      rs["spec"]["template"]))
        for p in sorted(pods, key=lambda p: (_ready(p), p["metadata"]["creationTimestamp"]))[
                :max(len(pods) - want, 0)]:
            self._delete_pod(owner, p)
            pods.remove(p)
        ready = sum(_ready(p) for p in pods)
        status = _omit_zero({"replicas": len(pods), "fullyLabeledReplicas": len(pods),
                             "readyReplicas": ready, "availableReplicas": ready,
                             "observedGeneration": rs["metadata"].get("generation", 1)},
                            keep=("replicas",))
        if status != rs.get("status"):
            self.store.mutate("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"],
                              lambda o: o.__setitem__("status", status))

    # ----------------------------------------------------------------- kubelet
    def _kubelet(self, pod, now):
        md = pod["metadata"]
        uid, st = md["uid"], pod.get("status") or {}
        if uid in self.frozen or md.get("deletionTimestamp"):
            return
        if uid not in self._seen:
            if st.get("containerStatuses") or st.get("phase") not in (None, "Pending"):
                self.frozen.add(uid)  # seeded with an explicit status: leave it alone
                return
            self._seen[uid] = (now, kp.utcnow())
        if st.get("phase") in ("Succeeded", "Failed"):
            return
        t_mono, t_wall = self._seen[uid]
        mode, failing = self._mode(pod)
        ip = self._ips.setdefault(uid, self.store.next_ip("10.244"))
        status, sigs = pod_status(pod, mode=mode, failing=failing, elapsed=now - t_mono,
                                  t0=t_wall, delay=self.ready_delay,
                                  restart_interval=self.restart_interval, pod_ip=ip)
        node = None if mode == "unschedulable" else NODE
        if status != st or pod["spec"].get("nodeName") != node:
            def write(o):
                o["status"] = status
                if node:
                    o["spec"]["nodeName"] = node
            pod = self.store.mutate("pods", md["namespace"], md["name"], write) or pod
        for key, (sig, events) in sigs.items():
            if self._sigs.get((uid, key)) != sig:
                self._sigs[(uid, key)] = sig
                for etype, reason, message, path, component in events:
                    self.events.emit(pod, etype, reason, message, path, component)
