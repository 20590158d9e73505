"""The deploy lock on the REAL control plane: a stale lock left by a dead process, broken with
``lock break``; a held lock renewed while held; a holder killed with SIGKILL whose lock goes stale
and is taken over. Every assertion reads the Lease back through the Kubernetes API."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap

from kestra_ops.adapters.kube import Kube
from kestra_ops.workflows.deploy.lock import LEASE_NAME, DeployLock
from tests.e2e.support import CONTEXT, ROOT, wait_until

GHOST = "ghost@ci-runner-3:4242"


def stamp(seconds_ago: float) -> str:
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds_ago)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seed_dead_holder(install, *, renewed_ago: float = 120, duration: int = 900) -> dict:
    """The Lease a release left when an API outage killed it: 15 minutes long, never renewed."""
    install.coordination.create_namespaced_lease(install.namespace, {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": LEASE_NAME, "annotations": {"kestra-ops/operation": "release"}},
        "spec": {"holderIdentity": GHOST, "leaseDurationSeconds": duration,
                 "acquireTime": stamp(renewed_ago + 60), "renewTime": stamp(renewed_ago),
                 "leaseTransitions": 0}}, field_manager="e2e-test")
    return install.lease()


def changes(install) -> list[dict]:
    path = install.root / "backups" / "changes.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def kube_for(install) -> Kube:
    return Kube(context=CONTEXT, kubeconfig=str(install.kubeconfig), namespace=install.namespace)


def test_a_stale_lock_broken_with_lock_break(install):
    seeded = seed_dead_holder(install)

    refused = install.run("deploy", "--env", "dev", "--yes", "--skip-bucket")
    assert refused.exit_code == 1, refused.output
    assert f"the deploy lock is held by {GHOST} (release)" in refused.stderr
    assert "stopped renewing 12" in refused.stderr and "lock break" in refused.stderr
    assert install.history() == []  # nothing was installed
    assert install.lease()["metadata"]["resourceVersion"] == seeded["metadata"]["resourceVersion"]

    status = install.run("lock", "status", "--env", "dev")
    assert status.exit_code == 1, status.output
    assert f"STALE, its holder {GHOST} stopped renewing 2m0" in status.stdout
    data = json.loads(install.run("lock", "status", "--env", "dev", "-o", "json").stdout)
    assert (data["state"], data["holder"], data["host"], data["pid"], data["operation"]) == (
        "stale", GHOST, "ci-runner-3", 4242, "release")

    broken = install.run("lock", "break", "--env", "dev", "--yes")
    assert broken.exit_code == 0, broken.output
    assert f"held by {GHOST} (release)" in broken.stdout
    assert install.lease() is None  # gone from the API server
    (entry,) = [e for e in changes(install) if e["action"] == "lock-break"]
    assert (entry["env"], entry["before"], entry["operation"], entry["status"]) == (
        "dev", GHOST, "release", "broken")
    assert entry["namespace"] == install.namespace and 170 <= entry["age_seconds"] < 300

    deployed = install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    assert "deployed revision 1" in deployed.stdout
    assert [r["status"] for r in install.history()] == ["deployed"]
    assert install.lease() is None


def test_a_held_lock_is_renewed_on_the_server(install):
    kube = kube_for(install)
    lock = DeployLock(kube, install.namespace, duration=2, renew_interval=0.3,
                      operation="release")
    try:
        lock.acquire()
        first = install.lease()
        assert first["spec"]["holderIdentity"] == lock.holder
        assert first["spec"]["leaseDurationSeconds"] == 2
        renewed = wait_until("a renewal", lambda: (lambda now: now if now["spec"]["renewTime"]
                                                   > first["spec"]["renewTime"] else None)(
            install.lease()), timeout=10, every=0.1)
        assert renewed["spec"]["acquireTime"] == first["spec"]["acquireTime"]
        assert renewed["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
        assert "kestra-ops" in install.managers(renewed)
        wait_until("twice the Lease's duration", lambda: lock.renewals >= 10, timeout=15)
        status = install.run("lock", "status", "--env", "dev", "-o", "json")
        data = json.loads(status.stdout)
        assert status.exit_code == 0 and data["state"] == "held", status.output
        assert data["holder"] == lock.holder and data["age_seconds"] > 2
        assert data["seconds_since_renewal"] < 2 and not lock.lost and not lock.warnings
    finally:
        lock.release()
        kube.close()
    assert install.lease() is None


HOLDER = textwrap.dedent("""
    import sys, time
    from kestra_ops.adapters.kube import Kube
    from kestra_ops.workflows.deploy.lock import DeployLock
    kube = Kube(context=sys.argv[1], kubeconfig=sys.argv[2], namespace=sys.argv[3])
    DeployLock(kube, sys.argv[3], duration=2, renew_interval=0.3, operation="release").acquire()
    print("held", flush=True)
    time.sleep(300)
""")


def test_a_killed_holder_goes_stale_and_its_lock_is_taken_over(install):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, CONTEXT, str(install.kubeconfig),
                               install.namespace], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        first = install.lease()
        assert first["spec"]["holderIdentity"].endswith(f":{holder.pid}")
        wait_until("a renewal by the holder process",
                   lambda: install.lease()["spec"]["renewTime"] > first["spec"]["renewTime"],
                   timeout=10, every=0.1)
    finally:
        holder.kill()  # SIGKILL: no release, no last renewal
        holder.wait(timeout=10)
    left = install.lease()
    assert left is not None and left["spec"]["holderIdentity"] == first["spec"]["holderIdentity"]

    def stale():
        done = install.run("lock", "status", "--env", "dev", "-o", "json")
        data = json.loads(done.stdout)
        return (done, data) if data["state"] == "stale" else None

    done, data = wait_until("the lock to go stale", stale, timeout=10, every=0.2)
    assert done.exit_code == 1 and data["process_running"] is False
    assert data["holder"] == first["spec"]["holderIdentity"]

    kube = kube_for(install)
    taker = DeployLock(kube, install.namespace, operation="rollback")
    try:
        taker.acquire()  # taken over automatically: no lock break needed
        now = install.lease()
        assert now["spec"]["holderIdentity"] == taker.holder
        assert now["spec"]["leaseTransitions"] == 1 and now["spec"]["leaseDurationSeconds"] == 60
        assert now["metadata"]["annotations"]["kestra-ops/operation"] == "rollback"
    finally:
        assert taker.release() is True
        kube.close()
    assert install.lease() is None
