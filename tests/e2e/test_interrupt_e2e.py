"""Ctrl-C during an upgrade, on the real control plane, with kestra-ops and the real helm as
processes in one process group (a terminal's Ctrl-C signals the whole foreground group):

* one Ctrl-C: helm cancels, kestra-ops rolls the release back to the revision before and frees
  the lock (exit 130);
* the whole group killed (an OOM kill, a closed laptop, an API outage ending the session): the
  release is left ``pending-upgrade`` and the Lease held by a dead process; the documented
  repair is ``lock status`` / ``lock break`` and ``rollback``.

The new revision crash-loops (a fake-kubelet fault in the pod template), so helm is still waiting
when the signal comes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.e2e.support import wait_until

CRASH = "  workerThreads: 8\n  podAnnotations:\n    fake-kubelet/state: crashloop\n"


def start_upgrade(install) -> subprocess.Popen:
    install.run_ok("deploy", "--env", "dev", "--yes", "--skip-bucket")
    install.overlay().write_text(install.overlay().read_text().replace(
        "  workerThreads: 8\n", CRASH, 1))
    proc = subprocess.Popen([sys.executable, "-m", "kestra_ops", "deploy", "--env", "dev",
                             "--yes", "--skip-bucket", "--timeout", "3m"], cwd=install.root,
                            env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_until("helm to be waiting on revision 2",
                   lambda: [r["status"] for r in install.history()][-1:] == ["pending-upgrade"]
                   and len(install.history()) == 2, timeout=60)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc


def fault_in_template(install) -> bool:
    annotations = install.deployment()["spec"]["template"]["metadata"].get("annotations") or {}
    return "fake-kubelet/state" in annotations


def test_one_ctrl_c_rolls_back_and_frees_the_lock(install):
    proc = start_upgrade(install)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, out + err
    assert "rolling back to revision 1" in err and "Traceback" not in err
    assert [r["status"] for r in install.history()] == ["superseded", "failed", "deployed"]
    assert not fault_in_template(install)
    assert install.lease() is None
    wait_until("the rolled-back pods to be ready",
               lambda: install.deployment()["status"].get("readyReplicas") == 1)


def test_killed_upgrade_is_repaired_with_lock_break_and_rollback(install):
    proc = start_upgrade(install)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert [r["status"] for r in install.history()] == ["deployed", "pending-upgrade"]
    assert fault_in_template(install)
    lease = install.lease()
    assert lease is not None and str(proc.pid) in lease["spec"]["holderIdentity"]

    refused = install.run("rollback", "--env", "dev", "--yes")
    assert refused.exit_code == 1 and str(proc.pid) in refused.stderr
    status = install.run("lock", "status", "--env", "dev")
    assert status.exit_code == 1 and str(proc.pid) in status.stdout + status.stderr
    install.run_ok("lock", "break", "--env", "dev", "--yes", "--force")
    assert install.lease() is None

    install.run_ok("rollback", "--env", "dev", "--yes")
    # helm keeps the interrupted revision's record as it was; the release is on revision 3
    assert [r["status"] for r in install.history()] == ["superseded", "pending-upgrade",
                                                        "deployed"]
    assert install.run_ok("deploy", "--env", "dev", "--dry-run", "--skip-bucket").exit_code == 0
    assert not fault_in_template(install)
    assert install.lease() is None
    changes = (install.root / "backups" / "changes.jsonl").read_text()
    assert '"lock-break"' in changes and '"rollback"' in changes
