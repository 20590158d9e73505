"""Warning events in the namespace since the last deploy.

"Since the last deploy" is the time of the Helm release's current revision (``helm history``);
without a release (or without helm), the last rollout of Deployment kestra-standalone (its newest
ReplicaSet), else the Deployment's creation. Every Warning event seen after that time is listed:
the object it is about, its reason, message and count.
"""

from __future__ import annotations

import datetime

from kestra_ops.checks import DEPLOYMENT, FAIL, PASS, CheckResult, kube_json, parse_time


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


def _object(event: dict) -> str:
    obj = event.get("involvedObject") or event.get("regarding") or {}
    return f"{obj.get('kind') or '?'}/{obj.get('name') or '?'}"


def check_events(events: list[dict], since: datetime.datetime | None, since_label: str = "",
                 namespace: str = "") -> CheckResult:
    """The ``events`` item: zero Warning events after ``since`` (None: every one counts)."""
    where = f" in {namespace}" if namespace else ""
    # core/v1 event times have one-second precision: an event of the deploy's second counts
    floor = since.replace(microsecond=0) if since is not None else None
    warnings = []
    for event in events:
        if event.get("type") != "Warning":
            continue
        when = last_seen(event)
        if floor is not None and when is not None and when < floor:
            continue
        warnings.append((when, event))
    warnings.sort(key=lambda pair: pair[0] or datetime.datetime.min.replace(
        tzinfo=datetime.timezone.utc), reverse=True)
    items = [{"object": _object(e), "reason": e.get("reason") or "",
              "message": (e.get("message") or "").strip(), "count": int(e.get("count") or 1),
              "last_seen": when.isoformat() if when else None} for when, e in warnings]
    details = [f"{i['object']}: {i['reason']}: {i['message']} (x{i['count']})" for i in items]
    scope = f"since {since_label}" if since is not None else \
        f"(no deploy time found: {since_label or 'every event counted'})"
    if items:
        return CheckResult("events", FAIL, f"{len(items)} Warning event(s){where} {scope}: "
                           f"{details[0]}", details, items=items)
    return CheckResult("events", PASS, f"no Warning events{where} {scope}")


# --------------------------------------------------------------------------- fetchers

def fetch_events(kube, namespace: str, *, timeout: float = 10.0) -> list[dict]:
    return kube_json(kube, f"events in {namespace}", f"/api/v1/namespaces/{namespace}/events",
                     timeout=timeout).get("items") or []


def deploy_time(env, kube, *, helm=None, timeout: float = 10.0
                ) -> tuple[datetime.datetime | None, str]:
    """(time of the last deploy, how it was found). Helm's current revision first; then the
    Deployment's last rollout; (None, why) when neither is known."""
    from kestra_ops.errors import KestraOpsError

    why = []
    try:
        from kestra_ops.adapters.helm import Helm

        helm = helm or Helm.for_env(env)
        history = helm.history(env.release, env.namespace)
        if history:
            latest = history[-1]
            when = parse_time(latest.updated)
            if when is not None:
                return when, f"release {env.release} revision {latest.revision} " \
                             f"({latest.status}, {latest.updated})"
            why.append(f"revision {latest.revision} has no readable time")
    except KestraOpsError as err:
        why.append(str(err))
    try:
        dep = kube_json(kube, f"deployment {DEPLOYMENT}",
                        f"/apis/apps/v1/namespaces/{env.namespace}/deployments/{DEPLOYMENT}",
                        timeout=timeout)
    except KestraOpsError as err:
        return None, "; ".join(why + [str(err)])
    labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    uid = dep["metadata"].get("uid")
    try:
        sets = kube_json(kube, "replicasets",
                         f"/apis/apps/v1/namespaces/{env.namespace}/replicasets",
                         timeout=timeout, labelSelector=selector or None).get("items") or []
    except KestraOpsError:
        sets = []
    times = [parse_time(rs["metadata"].get("creationTimestamp")) for rs in sets
             if any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or [])]
    times = [t for t in times if t is not None]
    if times:
        return max(times), f"the last rollout of deployment {DEPLOYMENT} " \
                           f"({max(times):%Y-%m-%dT%H:%M:%SZ})"
    created = parse_time(dep["metadata"].get("creationTimestamp"))
    if created is not None:
        return created, f"the creation of deployment {DEPLOYMENT} ({created:%Y-%m-%dT%H:%M:%SZ})"
    return None, "; ".join(why + [f"deployment {DEPLOYMENT} has no creation time"])
