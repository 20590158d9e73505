"""StatefulSet, Job and PersistentVolumeClaim controllers of the fake Kubernetes API.

Functions take the `Controller` (for its store, event recorder and pod helpers)."""
from __future__ import annotations

import copy
import hashlib
import json

from . import kube_patch as kp
from .kube_store import random_suffix

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:10])


def owner_ref(obj) -> dict:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _ready(pod) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _omit_zero(status: dict, keep=()) -> dict:
    return {k: v for k, v in status.items() if v not in (0, None) or k in keep}


def _set_cond(conds, ctype, ok, reason, message, now, with_update=True) -> list:
    conds = [dict(c) for c in conds or []]
    prev = next((c for c in conds if c["type"] == ctype), None)
    status = "True" if ok is True else "False" if ok is False else "Unknown"
    new = {"type": ctype, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": prev["lastTransitionTime"] if prev and prev["status"] == status
           else now}
    if with_update:
        same = prev and (prev["status"], prev.get("reason"), prev.get("message")) == (
            status, reason, message)
        new["lastUpdateTime"] = prev.get("lastUpdateTime", now) if same else now
    return [new if c["type"] == ctype else c for c in conds] if prev else conds + [new]


def bind_pvc(c, pvc):
    def bind(o):
        o["spec"].setdefault("volumeName", f"pvc-{o['metadata']['uid']}")
        o["spec"].setdefault("storageClassName", "standard")
        o["status"] = {"phase": "Bound", "accessModes": o["spec"].get("accessModes", []),
                       "capacity": {"storage": o["spec"]["resources"]["requests"]["storage"]}}
    c.store.mutate("persistentvolumeclaims", pvc["metadata"]["namespace"],
                      pvc["metadata"]["name"], bind)


# ----------------------------------------------------------------- statefulsets
def reconcile_statefulset(c, sts):
    md, spec = sts["metadata"], sts["spec"]
    if md.get("deletionTimestamp"):
        return
    ns, name, want = md["namespace"], md["name"], spec.get("replicas", 1)
    rev = f"{name}-{template_hash(spec['template'])}"
    by_ord = {int(p["metadata"]["name"].rsplit("-", 1)[1]): p for p in c._pods(sts)
              if p["metadata"]["name"].rsplit("-", 1)[-1].isdigit()}
    for i in sorted((i for i in by_ord if i >= want), reverse=True):
        c._delete_pod(sts, by_ord.pop(i))
    ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
    for i in range(want):
        if i in by_ord:
            continue
        if ordered and not all(_ready(by_ord[j]) for j in range(i) if j in by_ord):
            break
        by_ord[i] = _sts_pod(c, sts, i, rev)
        if ordered:
            break
    outdated = [i for i, p in by_ord.items()
                if p["metadata"]["labels"].get("controller-revision-hash") != rev]
    strategy = spec.get("updateStrategy") or {}
    partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
    if len(by_ord) == want and outdated and strategy.get("type", "RollingUpdate") == \
            "RollingUpdate" and max(outdated) >= partition:
        target = max(outdated)
        if all(_ready(p) for i, p in by_ord.items() if i != target):
            c._delete_pod(sts, by_ord.pop(target))
    pods = list(by_ord.values())
    ready = sum(_ready(p) for p in pods)
    updated = sum(p["metadata"]["labels"].get("controller-revision-hash") == rev for p in pods)
    st = sts.get("status") or {}
    current = rev if updated == want else st.get("currentRevision", rev)
    status = _omit_zero({
        "observedGeneration": md.get("generation", 1), "replicas": len(pods),
        "readyReplicas": ready,
        "currentReplicas": updated if current == rev else len(pods) - updated,
        "updatedReplicas": updated, "availableReplicas": ready,
        "currentRevision": current, "updateRevision": rev, "collisionCount": 0},
        keep=("replicas", "availableReplicas", "collisionCount"))
    if status != st:
        c.store.mutate("statefulsets", ns, name, lambda o: o.__setitem__("status", status))

def _sts_pod(c, sts, i, rev):
    md, spec = sts["metadata"], sts["spec"]
    pname = f"{md['name']}-{i}"
    volumes = list(spec["template"].get("spec", {}).get("volumes") or [])
    for tpl in spec.get("volumeClaimTemplates") or []:
        claim = f"{tpl['metadata']['name']}-{pname}"
        if not c.store.get("persistentvolumeclaims", md["namespace"], claim):
            c.store.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                               "metadata": {"name": claim, "namespace": md["namespace"],
                                            "labels": dict(spec["selector"].get(
                                                "matchLabels") or {})},
                               "spec": copy.deepcopy(tpl.get("spec") or {}),
                               "status": {"phase": "Pending"}}, md["namespace"])
        volumes.append({"name": tpl["metadata"]["name"],
                        "persistentVolumeClaim": {"claimName": claim}})
    extra = {"hostname": pname}
    if spec.get("serviceName"):
        extra["subdomain"] = spec["serviceName"]
    if volumes:
        extra["volumes"] = volumes
    return c._new_pod(sts, pname, spec["template"], {
        "controller-revision-hash": rev, "statefulset.kubernetes.io/pod-name": pname,
        "apps.kubernetes.io/pod-index": str(i)}, **extra)


# ----------------------------------------------------------------- jobs
def reconcile_job(c, job):
    md, spec = job["metadata"], job["spec"]
    if md.get("deletionTimestamp") or spec.get("suspend"):
        return
    pods = c._pods(job)
    phases = [(p.get("status") or {}).get("phase") for p in pods]
    active = [p for p, ph in zip(pods, phases) if ph not in ("Succeeded", "Failed")]
    succeeded, failed = phases.count("Succeeded"), phases.count("Failed")
    st = copy.deepcopy(job.get("status") or {})
    conds = st.get("conditions") or []
    finished = any(c["type"] in ("Complete", "Failed") and c["status"] == "True"
                   for c in conds)
    at = kp.fmt_time()
    if not finished:
        if succeeded >= spec.get("completions", 1):
            for t in ("SuccessCriteriaMet", "Complete"):
                conds = _set_cond(conds, t, True, "CompletionsReached",
                                  "Reached expected number of succeeded pods", at, False)
            st["completionTime"] = at
            c.events.emit(job, "Normal", "Completed", "Job completed", None,
                             "job-controller")
        elif failed > spec.get("backoffLimit", 6):
            for t in ("FailureTarget", "Failed"):
                conds = _set_cond(conds, t, True, "BackoffLimitExceeded",
                                  "Job has reached the specified backoff limit", at, False)
            c.events.emit(job, "Warning", "BackoffLimitExceeded",
                             "Job has reached the specified backoff limit", None,
                             "job-controller")
        else:
            room = min(spec.get("parallelism", 1), spec.get("completions", 1) - succeeded)
            for _ in range(room - len(active)):
                active.append(c._new_pod(job, f"{md['name']}-{random_suffix()}",
                                            spec["template"]))
            st.setdefault("startTime", at)
    status = _omit_zero({**st, "active": len(active), "succeeded": succeeded,
                         "failed": failed, "conditions": conds or None,
                         "ready": sum(_ready(p) for p in active),
                         "uncountedTerminatedPods": {}}, keep=("ready",))
    if status != job.get("status"):
        c.store.mutate("jobs", md["namespace"], md["name"],
                          lambda o: o.__setitem__("status", status))
