"""Warning events in the namespace since the last deploy, each judged by whether its cause is
still there.

"Since the last deploy" is the time of the Helm release's current revision (``helm history``);
without a release (or without helm), the last rollout of Deployment kestra-standalone (its newest
ReplicaSet), else the Deployment's creation.

A Warning event is a symptom: a first install always sees ``FailedScheduling ... unbound
PersistentVolumeClaims`` until PostgreSQL's claim binds, a rollout sees readiness probes fail while
the server starts. So every Warning event after that time is judged against the object it is about
(``involvedObject``: kind, name, uid), one pure rule per kind, in the style of Argo CD's health
rules:

* ``Pod`` (:func:`pod_event`): **resolved** when the pod no longer exists (its ReplicaSet was
  replaced, a hook Job's pod deleted), when the pod of that name has another uid (a StatefulSet pod
  re-created: the event is about an earlier one), when it is being deleted, when it has completed,
  or when it is Running and Ready and the event was last seen before the second it became Ready;
  for a scheduling event (``FailedScheduling``) the pod must be scheduled and Ready, whenever the
  event was seen. **Still present** otherwise: the pod is not scheduled or not ready, or the event
  was seen again at or after the Ready transition (a probe failing, a BackOff still counting up).
  A tie within the same second counts as still present.
* ``PersistentVolumeClaim`` (:func:`claim_event`): resolved when Bound (or gone, or re-created);
  still present while Pending or Lost.
* Any other kind (Deployment, ReplicaSet, StatefulSet, Job, Node, ...), or a kind whose objects
  could not be read: no rule tells whether the cause is gone, so the event stays a failure (fail
  closed).

An event still present fails the item. Resolved events are history: listed in the details and
the JSON items with when they were last seen and why they count as resolved, and the item passes
(status ``pass``, not ``warn``: the cause is verifiably gone, and a warning on every first install
would teach operators to ignore warnings; the ``pods`` item already warns about restarted
containers).
"""

from __future__ import annotations

import datetime
from typing import Callable, Mapping

from kestra_ops.chart import DEPLOYMENT
from kestra_ops.checks import parse_time
from kestra_ops.checks.declare import Check
from kestra_ops.results import FAIL, PASS, Item

ORDER = 20

# reasons whose cause is "the pod is not on a node yet"
SCHEDULING = ("FailedScheduling", "NotTriggerScaleUp", "FailedPreemption")
# kind -> (group/version, plural) that lists it in a namespace (only kinds with a rule below)
LISTS = {"Pod": ("v1", "pods"), "PersistentVolumeClaim": ("v1", "persistentvolumeclaims")}


def last_seen(event: dict) -> datetime.datetime | None:
    """When the event last happened (core/v1 and events.k8s.io fields, most precise first)."""
    series = event.get("series") or {}
    for value in (event.get("lastTimestamp"), series.get("lastObservedTime"),
                  event.get("eventTime"), event.get("firstTimestamp"),
                  (event.get("metadata") or {}).get("creationTimestamp")):
        when = parse_time(value)
        if when is not None:
            return when
    return None


def involved(event: dict) -> dict:
    return event.get("involvedObject") or event.get("regarding") or {}


def _object(event: dict) -> str:
    obj = involved(event)
    return f"{obj.get('kind') or '?'}/{obj.get('name') or '?'}"


def _stamp(when: datetime.datetime | None) -> str:
    return f"{when:%Y-%m-%dT%H:%M:%SZ}" if when is not None else "an unknown time"


def _condition(obj: dict, kind: str) -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c.get("type") == kind), {})


def _replaced(event: dict, obj: dict) -> bool:
    """The event names a uid, and the live object of that name has another one."""
    uid, live = involved(event).get("uid"), (obj.get("metadata") or {}).get("uid")
    return bool(uid and live and uid != live)


# --------------------------------------------------------------------------- rules, one per kind

def pod_event(event: dict, pod: dict | None, when: datetime.datetime | None) -> tuple[bool, str]:
    """(resolved?, why) for a Warning event about a Pod; ``pod`` is the live pod of that name
    (None: there is none)."""
    from kestra_ops.checks.pods import pod_readiness

    name = involved(event).get("name") or "?"
    if pod is None:
        return True, f"pod {name} no longer exists (replaced or deleted)"
    if _replaced(event, pod):
        return True, f"pod {name} was re-created since: the event is about an earlier pod"
    if pod["metadata"].get("deletionTimestamp"):
        return True, f"pod {name} is being deleted (replaced)"
    if (pod.get("status") or {}).get("phase") == "Succeeded":
        return True, f"pod {name} has completed"
    ready, state = pod_readiness(pod)
    if event.get("reason") in SCHEDULING:
        scheduled = _condition(pod, "PodScheduled")
        if scheduled.get("status") != "True":
            return False, f"pod {name} is still not scheduled" + (
                f": {scheduled['message']}" if scheduled.get("message") else "")
        if not ready:
            return False, f"pod {name} is scheduled but not ready: {state}"
        return True, f"pod {name} was scheduled at " \
                     f"{_stamp(parse_time(scheduled.get('lastTransitionTime')))} and is ready"
    if not ready:
        return False, f"pod {name} is not ready: {state}"
    if "Completed" in state:  # a Job pod done, its sidecar still running
        return True, f"pod {name} has completed"
    since = parse_time(_condition(pod, "Ready").get("lastTransitionTime"))
    if since is None or when is None:
        return False, f"pod {name} is ready, but whether the event came after that is unknown " \
                      "(no time on the event or on the pod's Ready condition)"
    if when.replace(microsecond=0) >= since:  # Ready times have one-second precision
        return False, f"seen at {_stamp(when)}, after pod {name} became ready " \
                      f"({_stamp(since)}): still happening"
    return True, f"pod {name} is running and ready since {_stamp(since)}"


def claim_event(event: dict, claim: dict | None,
                when: datetime.datetime | None = None) -> tuple[bool, str]:
    """(resolved?, why) for a Warning event about a PersistentVolumeClaim."""
    name = involved(event).get("name") or "?"
    if claim is None:
        return True, f"claim {name} no longer exists"
    if _replaced(event, claim):
        return True, f"claim {name} was re-created since: the event is about an earlier one"
    phase = (claim.get("status") or {}).get("phase") or "Pending"
    if phase == "Bound":
        volume = (claim.get("spec") or {}).get("volumeName")
        return True, f"claim {name} is Bound" + (f" to volume {volume}" if volume else "")
    return False, f"claim {name} is still {phase}"


RULES: dict[str, Callable[[dict, dict | None, datetime.datetime | None], tuple[bool, str]]] = {
    "Pod": pod_event, "PersistentVolumeClaim": claim_event}


def judge(event: dict, objects: Mapping[str, list[dict] | str],
          when: datetime.datetime | None = None) -> tuple[bool, str]:
    """(resolved?, why) for one Warning event. ``objects``: kind -> the namespace's live objects
    of that kind, or why they could not be read; a kind without a rule or without objects is
    not judged: still present (fail closed)."""
    obj = involved(event)
    kind, name = obj.get("kind") or "?", obj.get("name")
    rule, live = RULES.get(kind), objects.get(kind)
    if rule is None:
        return False, f"no rule tells whether the cause is gone for a {kind}: counted as present"
    if not isinstance(live, list):
        return False, f"cannot tell whether the cause is gone: {live or f'{kind}s not read'}"
    found = next((o for o in live if (o.get("metadata") or {}).get("name") == name), None)
    return rule(event, found, when)


def kinds_to_read(events: list[dict], since: datetime.datetime | None) -> list[str]:
    """The kinds (with a rule) that the Warning events counted by :func:`check_events` are
    about: what the fetcher must list."""
    return sorted({involved(e).get("kind") for e, _ in _warnings(events, since)} & set(RULES))


def _warnings(events: list[dict], since: datetime.datetime | None):
    # core/v1 event times have one-second precision: an event of the deploy's second counts
    floor = since.replace(microsecond=0) if since is not None else None
    for event in events:
        if event.get("type") != "Warning":
            continue
        when = last_seen(event)
        if floor is not None and when is not None and when < floor:
            continue
        yield event, when


def check_events(events: list[dict], since: datetime.datetime | None, since_label: str = "",
                 namespace: str = "", objects: Mapping[str, list[dict] | str] | None = None
                 ) -> Item:
    """The ``events`` item: every Warning event after ``since`` (None: every one counts) judged
    with :func:`judge` against ``objects``; fails when one is still present."""
    where = f" in {namespace}" if namespace else ""
    warnings = sorted(_warnings(events, since), key=lambda pair: pair[1] or datetime.datetime.min
                      .replace(tzinfo=datetime.timezone.utc), reverse=True)
    items = []
    for event, when in warnings:
        resolved, why = judge(event, objects or {}, when)
        items.append({"object": _object(event), "reason": event.get("reason") or "",
                      "message": (event.get("message") or "").strip(),
                      "count": int(event.get("count") or (event.get("series") or {}).get("count")
                                   or 1),
                      "last_seen": when.isoformat() if when else None,
                      "resolved": resolved, "why": why})
    present = [i for i in items if not i["resolved"]]
    history = [i for i in items if i["resolved"]]
    details = [f"{i['object']}: {i['reason']}: {i['message']} (x{i['count']}); {i['why']}"
               for i in present]
    details += [f"resolved: {i['object']}: {i['reason']}: {i['message']} (x{i['count']}, last "
                f"{_stamp(parse_time(i['last_seen']))}); {i['why']}" for i in history]
    items = present + history
    scope = f"since {since_label}" if since is not None else \
        f"(no deploy time found: {since_label or 'every event counted'})"
    if present:
        first = present[0]
        return Item("events", FAIL, f"{len(present)} Warning event(s){where} {scope} still "
                           f"present: {first['object']}: {first['reason']}: {first['message']} "
                           f"({first['why']})" + (f"; {len(history)} resolved" if history else ""),
                           details, data=items)
    if history:
        first = history[0]
        return Item("events", PASS, f"no Warning event{where} {scope} is still present; "
                           f"{len(history)} resolved (history: {first['object']} "
                           f"{first['reason']}, {first['why']})", details, data=items)
    return Item("events", PASS, f"no Warning events{where} {scope}")


# --------------------------------------------------------------------------- fetchers

def fetch_objects(kube, namespace: str, kinds: list[str], *, timeout: float = 10.0
                  ) -> dict[str, list[dict] | str]:
    """kind -> the namespace's objects of that kind through ``kube`` (a KubeReader), for
    :func:`judge`, or the one-line reason they could not be read (the events about them then
    stay failures)."""
    from kestra_ops.errors import KestraOpsError

    found: dict[str, list[dict] | str] = {}
    for kind in kinds:
        group_version, plural = LISTS[kind]
        try:
            found[kind] = kube.objects(plural, namespace, group_version=group_version,
                                       timeout=timeout)
        except KestraOpsError as err:
            found[kind] = str(err)
    return found


def deploy_time(release: str, namespace: str, kube, helm, *, timeout: float = 10.0
                ) -> tuple[datetime.datetime | None, str]:
    """(time of the last deploy, how it was found). Helm's current revision first (``helm``:
    a callable giving the environment's Helm, which may raise); then the Deployment's last
    rollout; (None, why) when neither is known."""
    from kestra_ops.errors import KestraOpsError

    why = []
    try:
        history = helm().history(release, namespace)
        if history:
            latest = history[-1]
            when = parse_time(latest.updated)
            if when is not None:
                return when, f"release {release} revision {latest.revision} " \
                             f"({latest.status}, {latest.updated})"
            why.append(f"revision {latest.revision} has no readable time")
    except KestraOpsError as err:
        why.append(str(err))
    try:
        dep = kube.read("deployments", namespace, DEPLOYMENT, group_version="apps/v1",
                        timeout=timeout)
    except KestraOpsError as err:
        return None, "; ".join(why + [str(err)])
    return rollout_time(dep, _replica_sets(kube, namespace, dep, timeout), why)


def _replica_sets(kube, namespace: str, dep: dict, timeout: float) -> list[dict]:
    from kestra_ops.errors import KestraOpsError

    labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    try:
        return kube.objects("replicasets", namespace, group_version="apps/v1", timeout=timeout,
                            label_selector=selector or None)
    except KestraOpsError:
        return []


def rollout_time(dep: dict, sets: list[dict], why: list[str] | None = None
                 ) -> tuple[datetime.datetime | None, str]:
    """(when Deployment ``dep`` last rolled out: its newest ReplicaSet, else its creation, how
    that was found) from the Deployment and the ReplicaSets of the namespace."""
    uid = dep["metadata"].get("uid")
    times = [parse_time(rs["metadata"].get("creationTimestamp")) for rs in sets
             if any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or [])]
    times = [t for t in times if t is not None]
    if times:
        return max(times), f"the last rollout of deployment {DEPLOYMENT} " \
                           f"({max(times):%Y-%m-%dT%H:%M:%SZ})"
    created = parse_time(dep["metadata"].get("creationTimestamp"))
    if created is not None:
        return created, f"the creation of deployment {DEPLOYMENT} ({created:%Y-%m-%dT%H:%M:%SZ})"
    return None, "; ".join((why or []) + [f"deployment {DEPLOYMENT} has no creation time"])


def events_item(ctx) -> Item:
    """Each Warning event judged against the object it is about (the pods, the claims)."""
    since, label = deploy_time(ctx.env.release, ctx.namespace, ctx.kube, ctx.helm,
                               timeout=ctx.timeout)
    found = ctx.kube.events(ctx.namespace, timeout=ctx.timeout)
    objects = fetch_objects(ctx.kube, ctx.namespace, kinds_to_read(found, since),
                            timeout=ctx.timeout)
    return check_events(found, since, label, ctx.namespace, objects)


CHECKS = [
    Check("events", "no Warning event since the last deploy whose cause is still there (a pod "
          "not ready, not scheduled, a probe or BackOff still repeating); resolved ones (the "
          "pod is ready since, gone or re-created; the claim Bound) are listed as history; "
          "events on other kinds fail", events_item, needs=("kube", "helm")),
]
