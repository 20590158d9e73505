"""``backup run --cnpg-backup``: the CloudNativePG operator's own (physical) backup of the
Cluster, recorded in the set's manifest under ``cloudnativepg``.

A ``Backup`` object is created for the Cluster (database.cloudnativepg.clusterName) and read
until its ``status.phase`` is ``completed`` (recorded: name, backupId, phase, beginWal, endWal,
beginLSN, endLSN, destinationPath, serverName, startedAt, stoppedAt) or a failed phase (the set
fails, naming the operator's error), bounded by ``timeout``; progress shows the phase. The
logical dump is taken as well (``db``), so the set restores anywhere; restoring the physical
backup is the operator's job (runbooks/backup-restore.md). Ctrl-C or the timeout leaves the
Backup object to the operator (deleting it would not stop barman-cloud-backup) and writes no
manifest. Facts about the Backup resource: :mod:`kestra_ops.adapters.cnpg`.
"""

from __future__ import annotations

import math
import re
import time

from kestra_ops.errors import InvalidInput, NotFound, OperationFailed

FIELDS = ("backupId", "phase", "beginWal", "endWal", "beginLSN", "endLSN", "destinationPath",
          "serverName", "startedAt", "stoppedAt", "method")
POLL = 2.0


def backup_name(cluster: str, set_name: str) -> str:
    """A DNS-1123 name for the set's Backup: ``<cluster>-<set stamp>`` (lower case)."""
    stamp = re.sub(r"[^a-z0-9-]+", "-", set_name.lower()).strip("-")
    return f"{cluster}-{stamp}"[:253].rstrip("-")


def take(kube, namespace: str, cluster: str, set_name: str, *, timeout: float,
         update=None, poll: float = POLL, clock=time.monotonic, sleep=time.sleep) -> dict:
    """Create the Backup and wait for it (see the module doc); the manifest entry."""
    from kestra_ops.adapters import cnpg

    if not math.isfinite(timeout) or timeout <= 0:  # nan would never time out
        raise InvalidInput(f"--cnpg-timeout {timeout!r}: a number of seconds above 0")
    if cnpg.read_cluster(kube, namespace, cluster) is None:
        raise NotFound(f"CloudNativePG cluster {cluster} not found in {namespace} (is "
                       "database.mode cloudnativepg deployed, and the operator's CRD installed?)")
    name = backup_name(cluster, set_name)
    cnpg.create_backup(kube, namespace, name, cluster,
                       labels={"app.kubernetes.io/managed-by": "kestra-ops",
                               "kestra-ops/set": backup_name("", set_name).lstrip("-")})
    started = clock()
    deadline = started + timeout
    phase = None
    while True:
        obj = cnpg.read_backup(kube, namespace, name)
        if obj is None:
            raise OperationFailed(f"CloudNativePG backup {name} in {namespace} disappeared "
                                  "before it finished")
        status = obj.get("status") or {}
        phase = status.get("phase") or None
        if update is not None:
            update(f"CloudNativePG backup {name}: {phase or 'waiting for the operator'} "
                   f"({clock() - started:.0f}s)")
        if phase == cnpg.PHASE_COMPLETED:
            return {"name": name, "cluster": cluster,
                    **{k: status.get(k) for k in FIELDS}}
        if phase in cnpg.PHASES_FAILED:
            raise OperationFailed(f"CloudNativePG backup {name} ended {phase}: "
                                  f"{status.get('error') or 'no error given'}")
        if clock() >= deadline:
            raise OperationFailed(
                f"CloudNativePG backup {name} is still {phase or 'not started'} after "
                f"{timeout:g}s; it is left to the operator (kubectl get backup {name} -n "
                f"{namespace})", hint="raise --cnpg-timeout, or check the operator's logs")
        sleep(min(poll, max(0.0, deadline - clock())))
