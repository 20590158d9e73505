"""Why a rollout failed, read while the failing pods still exist: before any rollback.

A rollback replaces the failing ReplicaSet's pods within seconds, and the Warning events about
them stop; what is left afterwards explains nothing. So a failed upgrade (and a failed
post-deploy checklist) gathers its evidence first: the ``pods``, ``readiness`` and ``events``
items of the checklist, now, with their details (pod, container, waiting/terminated reason, restart
count, the last log lines where the cluster serves logs, the Warning events since the deploy).
"""

from __future__ import annotations

from kestra_ops.errors import KestraOpsError

ITEMS = "pods,readiness,events"


def explain(check_report) -> list[dict]:
    """The failing items of a :class:`~kestra_ops.workflows.check.CheckReport`, with evidence."""
    return [{"id": r.id, "reason": r.reason, "details": list(r.details), "items": list(r.items)}
            for r in check_report.results if r.status == "fail"]


def gather(env, kube, *, progress=None) -> list[dict]:
    """The failing pods / readiness / events items now (one entry saying why when they cannot
    be read: the rollback that follows must not wait on the explanation)."""
    from kestra_ops.workflows.check import run_check

    try:
        found = run_check(env, only=ITEMS, wait=0, timeout=20.0, progress=progress, kube=kube)
    except KestraOpsError as err:
        return [{"id": "evidence", "reason": f"could not read the pods and events: {err}",
                 "details": [], "items": []}]
    return explain(found)


def lines(evidence: list[dict]) -> list[str]:
    """The evidence as indented text lines (for a terminal report)."""
    out = []
    for item in evidence:
        out.append(f"FAIL {item['id']}: {item['reason']}")
        out += [f"     {d}" for d in item["details"]]
    return out
