"""Why a rollout failed, read while the failing pods still exist: before any rollback.

A rollback replaces the failing ReplicaSet's pods within seconds, and the Warning events about
them stop; what is left afterwards explains nothing. So a failed upgrade (and a failed
post-deploy checklist) gathers its evidence first: the ``pods``, ``readiness`` and ``events``
items of the checklist, now, with their details (pod, container, waiting/terminated reason, restart
count, the last log lines where the cluster serves logs, the Warning events since the deploy).
"""

from __future__ import annotations

from kestra_ops.errors import KestraOpsError
from kestra_ops.results import FAIL, Item

ITEMS = "pods,readiness,events"


def explain(check_report) -> list[Item]:
    """The failing items of a :class:`~kestra_ops.workflows.check.CheckReport`, with their
    evidence (details, and the same as data)."""
    return [item for item in check_report.results if item.status == FAIL]


def gather(env, kube, *, progress=None) -> list[Item]:
    """The failing pods / readiness / events items now (one item saying why when they cannot
    be read: the rollback that follows must not wait on the explanation)."""
    from kestra_ops.workflows.check import run_check

    try:
        found = run_check(env, only=ITEMS, wait=0, timeout=20.0, progress=progress, kube=kube)
    except KestraOpsError as err:
        return [Item("evidence", FAIL, f"could not read the pods and events: {err}")]
    return explain(found)
