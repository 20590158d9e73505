"""The events item's pure judge: is the cause of each Warning event still there? One rule per kind
(Pod, PersistentVolumeClaim), fail closed for the rest. Objects are shaped as the real API server
1.35 returns them (FailedScheduling from the scheduler carries eventTime and no count)."""

from __future__ import annotations

import datetime

import pytest

from kestra_ops.checks import parse_time
from kestra_ops.checks.events import (check_events, claim_event, judge, kinds_to_read,
                                      last_seen, pod_event)

NS = "kestra"
T = "2026-12-05T23:31:{:02d}Z"
DEPLOYED = parse_time(T.format(40))


def pod(name="kestra-postgres-0", uid="u-1", *, ready_at=47, scheduled_at=47, phase="Running",
        ready=True, waiting=None, scheduled=True, deleting=False, containers=("postgres",)):
    statuses = []
    for c in containers:
        state = {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "x"}}
        statuses.append({"name": c, "ready": ready and not waiting, "restartCount": 0,
                         "state": state})
    conditions = [{"type": "PodScheduled", "status": "True" if scheduled else "False",
                   "lastTransitionTime": T.format(scheduled_at),
                   **({} if scheduled else {"reason": "Unschedulable",
                                            "message": "0/1 nodes are available"})}]
    if scheduled:
        conditions.append({"type": "Ready", "status": "True" if ready and not waiting else
                           "False", "lastTransitionTime": T.format(ready_at)})
    md = {"name": name, "namespace": NS, "uid": uid}
    if deleting:
        md["deletionTimestamp"] = T.format(59)
    return {"metadata": md, "spec": {"containers": [{"name": c} for c in containers]},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": statuses if scheduled else []}}


def event(reason="BackOff", *, kind="Pod", name="kestra-postgres-0", uid="u-1", at=45,
          message="Back-off restarting failed container", scheduler=False, count=3):
    obj = {"kind": kind, "namespace": NS, "name": name, "uid": uid, "apiVersion": "v1"}
    if scheduler:  # events.k8s.io shape, as kube-scheduler writes them
        return {"type": "Warning", "reason": reason, "message": message, "involvedObject": obj,
                "firstTimestamp": None, "lastTimestamp": None, "count": None,
                "eventTime": T.format(at).replace("Z", f".{at * 1000:06d}Z")}
    return {"type": "Warning", "reason": reason, "message": message, "involvedObject": obj,
            "count": count, "firstTimestamp": T.format(at), "lastTimestamp": T.format(at)}


def verdict(ev, found):
    return pod_event(ev, found, last_seen(ev))


# --------------------------------------------------------------------------- Pod

def test_scheduling_event_resolved_once_scheduled_and_ready_even_in_the_same_second():
    ev = event("FailedScheduling", scheduler=True, at=47,
               message="0/1 nodes are available: pod has unbound immediate "
                       "PersistentVolumeClaims. not found")
    resolved, why = verdict(ev, pod(ready_at=47, scheduled_at=47))
    assert resolved and why == ("pod kestra-postgres-0 was scheduled at 2026-12-05T23:31:47Z "
                                "and is ready")


def test_scheduling_event_present_while_not_scheduled_or_not_ready():
    ev = event("FailedScheduling", scheduler=True)
    assert verdict(ev, pod(scheduled=False)) == (
        False, "pod kestra-postgres-0 is still not scheduled: 0/1 nodes are available")
    resolved, why = verdict(ev, pod(waiting="ContainerCreating"))
    assert not resolved and why.startswith("pod kestra-postgres-0 is scheduled but not ready")


def test_backoff_present_while_crashlooping():
    resolved, why = verdict(event(), pod(waiting="CrashLoopBackOff"))
    assert not resolved
    assert why == ("pod kestra-postgres-0 is not ready: 0/1 ready; not ready: postgres "
                   "(waiting: CrashLoopBackOff)")


def test_backoff_resolved_when_last_seen_before_the_pod_became_ready():
    assert verdict(event(at=45), pod(ready_at=47)) == (
        True, "pod kestra-postgres-0 is running and ready since 2026-12-05T23:31:47Z")


@pytest.mark.parametrize("at", [47, 50])
def test_event_seen_at_or_after_the_ready_transition_is_still_happening(at):
    resolved, why = verdict(event("Unhealthy", at=at), pod(ready_at=47))
    assert not resolved
    assert why == (f"seen at 2026-12-05T23:31:{at}Z, after pod kestra-postgres-0 became ready "
                   "(2026-12-05T23:31:47Z): still happening")


def test_ready_pod_without_a_ready_time_fails_closed():
    found = pod()
    found["status"]["conditions"] = [c for c in found["status"]["conditions"]
                                     if c["type"] != "Ready"]
    resolved, why = verdict(event(), found)
    assert not resolved and "unknown" in why


def test_pod_gone_recreated_deleting_or_completed_is_resolved():
    assert verdict(event(), None) == (
        True, "pod kestra-postgres-0 no longer exists (replaced or deleted)")
    assert verdict(event(uid="old"), pod(uid="new", waiting="CrashLoopBackOff"))[1] == \
        "pod kestra-postgres-0 was re-created since: the event is about an earlier pod"
    assert verdict(event(), pod(deleting=True, waiting="CrashLoopBackOff")) == (
        True, "pod kestra-postgres-0 is being deleted (replaced)")
    assert verdict(event(), pod(phase="Succeeded", ready=False)) == (
        True, "pod kestra-postgres-0 has completed")


def test_job_pod_done_with_its_sidecar_running_is_resolved():
    done = pod("kestra-post-install-x", containers=("job", "istio-proxy"), ready=False)
    done["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 0}}
    done["status"]["containerStatuses"][1].update(ready=True)
    assert verdict(event(name="kestra-post-install-x"), done) == (
        True, "pod kestra-post-install-x has completed")


def test_event_without_uid_is_judged_against_the_pod_of_that_name():
    ev = event(at=45)
    del ev["involvedObject"]["uid"]
    assert verdict(ev, pod(ready_at=47))[0] is True
    assert verdict(ev, pod(waiting="CrashLoopBackOff"))[0] is False


# --------------------------------------------------------------------------- PVC and the rest

def claim(phase="Bound", uid="c-1"):
    return {"metadata": {"name": "data-kestra-postgres-0", "uid": uid},
            "spec": {"volumeName": "pv-1"}, "status": {"phase": phase}}


def test_claim_rule():
    ev = event("FailedBinding", kind="PersistentVolumeClaim", name="data-kestra-postgres-0",
               uid="c-1", message="no persistent volumes available for this claim")
    assert claim_event(ev, claim()) == (True, "claim data-kestra-postgres-0 is Bound to volume "
                                              "pv-1")
    assert claim_event(ev, claim("Pending")) == (False, "claim data-kestra-postgres-0 is still "
                                                        "Pending")
    assert claim_event(ev, None)[0] is True
    assert claim_event(ev, claim("Pending", uid="c-2"))[0] is True


def test_kinds_without_a_rule_or_unreadable_objects_fail_closed():
    ev = event("FailedCreate", kind="ReplicaSet", name="kestra-standalone-abc")
    assert judge(ev, {"Pod": []}) == (
        False, "no rule tells whether the cause is gone for a ReplicaSet: counted as present")
    denied = "pods in kestra: forbidden: cannot list pods"
    assert judge(event(), {"Pod": denied}) == (
        False, f"cannot tell whether the cause is gone: {denied}")
    assert judge(event(), {})[0] is False  # pods not read at all


# --------------------------------------------------------------------------- the item

def test_first_install_history_passes():
    events = [event("FailedScheduling", scheduler=True, at=47, message="unbound PVCs"),
              {**event("Scheduled", scheduler=True, at=48), "type": "Normal"}]
    since = DEPLOYED
    assert kinds_to_read(events, since) == ["Pod"]
    result = check_events(events, since, "release kestra revision 1", NS,
                          {"Pod": [pod(ready_at=48)]})
    assert result.status == "pass"
    assert result.reason == (
        "no Warning event in kestra since release kestra revision 1 is still present; 1 "
        "resolved (history: Pod/kestra-postgres-0 FailedScheduling, pod kestra-postgres-0 was "
        "scheduled at 2026-12-05T23:31:47Z and is ready)")
    assert result.details == [
        "resolved: Pod/kestra-postgres-0: FailedScheduling: unbound PVCs (x1, last "
        "2026-12-05T23:31:47Z); pod kestra-postgres-0 was scheduled at 2026-12-05T23:31:47Z and "
        "is ready"]
    assert result.data[0]["resolved"] is True and result.data[0]["count"] == 1


def test_present_events_fail_first_and_history_follows():
    events = [event("FailedScheduling", scheduler=True, at=42, message="unbound PVCs"),
              event("BackOff", name="kestra-standalone-1", uid="s-1", at=50),
              event("BackOff", at=41)]  # about the postgres pod, before it became ready
    objects = {"Pod": [pod(ready_at=47), pod("kestra-standalone-1", "s-1",
                                             waiting="CrashLoopBackOff")]}
    result = check_events(events, DEPLOYED, "revision 2", NS, objects)
    assert result.status == "fail"
    assert result.reason.startswith("1 Warning event(s) in kestra since revision 2 still "
                                    "present: Pod/kestra-standalone-1: BackOff: Back-off")
    assert result.reason.endswith("; 2 resolved")
    assert [i["resolved"] for i in result.data] == [False, True, True]
    assert result.details[0].endswith("(waiting: CrashLoopBackOff)")
    assert all(d.startswith("resolved: ") for d in result.details[1:])


def test_events_before_the_deploy_are_not_counted_and_none_passes():
    old = event(at=10)
    assert kinds_to_read([old], DEPLOYED) == []
    result = check_events([old], DEPLOYED, "revision 2", NS, {})
    assert (result.status, result.reason) == ("pass", "no Warning events in kestra since "
                                                      "revision 2")
    result = check_events([old], None, "no release", NS, {})
    assert result.status == "fail"  # no deploy time: every event counts, and pods not read


def test_last_seen_prefers_the_most_precise_time():
    ev = event("FailedScheduling", scheduler=True, at=47)
    assert last_seen(ev) == datetime.datetime(2026, 12, 5, 23, 31, 47, 47000,
                                              tzinfo=datetime.timezone.utc)
