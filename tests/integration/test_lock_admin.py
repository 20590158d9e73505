"""kestra-ops lock status / lock break against the fake API server, through Click's runner (and
the library for the races): what is shown, what is refused, what is deleted and logged."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import socket
import subprocess
import sys

import pytest

from kestra_ops.adapters.kube import Kube
from kestra_ops.errors import Conflict
from kestra_ops.settings import load_config
from kestra_ops.workflows.deploy.lock import LEASE_NAME, DeployLock
from kestra_ops.workflows.deploy.lock_admin import ago, break_lock, lock_status
from tests.helpers_cli import CtrlCTerminal, changes, lease, run

NS = "hyperplane-kestra"


@pytest.fixture
def project(tmp_path, monkeypatch, fake_kube):
    """An empty project dir (embedded dev/staging/production config) wired to the fake API."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KESTRA_OPS_CONFIG", raising=False)
    return tmp_path


@pytest.fixture
def kube(project):
    k = Kube(context="fake", namespace=NS)
    yield k
    k.close()


class Terminal(io.BytesIO):
    """stdin as a terminal the user answers on."""

    def isatty(self) -> bool:
        return True


def seed_lease(fake_kube, holder, *, renewed_ago: float, duration: int = 60,
               acquired_ago: float | None = None, operation: str = "release"):
    now = dt.datetime.now(dt.timezone.utc)

    def stamp(seconds):
        return (now - dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    return fake_kube.seed({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": LEASE_NAME, "namespace": NS,
                     "annotations": {"kestra-ops/operation": operation}},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration,
                 "acquireTime": stamp(acquired_ago if acquired_ago is not None else renewed_ago),
                 "renewTime": stamp(renewed_ago), "leaseTransitions": 0}})[0]


def dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


@pytest.fixture
def live_lock(kube):
    """A lock held (and renewed) by a running kestra-ops: this test process."""
    held = DeployLock(kube, NS, holder="alice@ci-7:4242", operation="deploy")
    held.acquire()
    yield held
    held.release()


# --- status ----------------------------------------------------------------------------------

def test_ago():
    assert [ago(s) for s in (0, 42, 89, 125, 3600 + 7 * 60, 50 * 3600)] == [
        "0 s", "42 s", "89 s", "2m05s", "1h07m", "2d02h"]


def test_status_free(project):
    result = run("lock", "status", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == ("deploy lock of dev (lease kestra-ops-deploy in "
                                     "hyperplane-kestra): free")
    data = json.loads(run("lock", "status", "--env", "dev", "--output", "json").stdout)
    assert data == {"command": "lock status", "env": "dev", "status": "pass",
                    "outcome": "free", "message": result.stdout.strip(), "warnings": [],
                    "namespace": NS, "lease": LEASE_NAME, "state": "free", "exit_code": 0}


def test_status_held_by_a_live_holder(project, live_lock):
    result = run("lock", "status", "--env", "dev")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == ("deploy lock of dev (lease kestra-ops-deploy in hyperplane-kestra): "
                         "held by alice@ci-7:4242")
    text = "\n".join(lines)
    for expected in ("holder     alice@ci-7:4242", "operation  deploy",
                     "host       ci-7 (process 4242 on another host)", "s ago)",
                     "unless renewed", "duration   60 s"):
        assert expected in text, text
    data = json.loads(run("lock", "status", "--env", "dev", "-o", "json").stdout)
    assert data["state"] == "held" and data["exit_code"] == 0
    assert (data["holder"], data["user"], data["host"], data["pid"], data["operation"]) == (
        "alice@ci-7:4242", "alice", "ci-7", 4242, "deploy")
    assert 0 <= data["age_seconds"] < 10 and 50 < data["expires_in_seconds"] <= 60
    assert data["this_host"] is False and data["process_running"] is None


def test_status_stale_names_holder_and_how_long_ago_it_stopped(project, fake_kube):
    seed_lease(fake_kube, "ghost@ci-runner-3:77", renewed_ago=125, acquired_ago=600)
    result = run("lock", "status", "--env", "dev")
    assert result.exit_code == 1, result.output
    text = result.stdout
    assert ("deploy lock of dev (lease kestra-ops-deploy in hyperplane-kestra): STALE, its holder "
            "ghost@ci-runner-3:77 stopped renewing 2m0") in text
    assert "operation  release" in text and "acquired" in text and "(10m0" in text
    assert "kestra-ops lock break --env dev" in text
    data = json.loads(run("lock", "status", "--env", "dev", "-o", "json").stdout)
    assert data["state"] == "stale" and data["exit_code"] == 1
    assert 124 <= data["seconds_since_renewal"] < 135 and data["expires_in_seconds"] < 0


def test_status_says_when_the_holder_process_on_this_host_is_gone(project, fake_kube):
    holder = f"bob@{socket.gethostname()}:{dead_pid()}"
    seed_lease(fake_kube, holder, renewed_ago=1, operation="rollback")
    result = run("lock", "status", "--env", "dev")
    assert result.exit_code == 1, result.output
    assert "is NOT running on this host" in result.stdout
    assert f"kestra-ops lock break --env dev --force" in result.stdout
    data = json.loads(run("lock", "status", "--env", "dev", "-o", "json").stdout)
    assert data["state"] == "held" and data["this_host"] is True
    assert data["process_running"] is False and data["exit_code"] == 1


def test_status_of_a_holder_running_on_this_host(project, fake_kube):
    import os

    seed_lease(fake_kube, f"me@{socket.gethostname()}:{os.getpid()}", renewed_ago=1)
    result = run("lock", "status", "--env", "dev")
    assert result.exit_code == 0 and "is running on this host" in result.stdout


def test_status_errors_are_one_line(project, fake_kube):
    fake_kube.fail_next("get", "leases", code=403, reason="Forbidden", message="no leases")
    result = run("lock", "status", "--env", "dev")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: lease kestra-ops-deploy in hyperplane-kestra: "
                                    "forbidden")
    assert "Traceback" not in result.output
    result = run("lock", "status", "--env", "nope")
    assert result.exit_code == 2 and "Traceback" not in result.output


# --- break -----------------------------------------------------------------------------------

def test_break_a_free_lock_is_nothing_to_break(project, fake_kube):
    result = run("lock", "break", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert "is free: nothing to break" in result.stdout and changes(project) == []


def test_break_a_stale_lock_with_yes_deletes_and_logs_it(project, fake_kube):
    seed_lease(fake_kube, "ghost@ci-runner-3:77", renewed_ago=125, acquired_ago=600)
    result = run("lock", "break", "--env", "dev", "--yes")
    assert result.exit_code == 0, result.output
    assert lease(fake_kube) is None
    lines = result.stdout.splitlines()  # the lock as it was, then what was done
    assert lines[0].startswith("deploy lock of dev (lease kestra-ops-deploy in "
                               "hyperplane-kestra): STALE, its holder ghost@ci-runner-3:77")
    assert "  holder     ghost@ci-runner-3:77" in lines
    assert "  operation  release" in lines and "  host       ci-runner-3 (" in result.stdout
    assert lines[-1].startswith("broke the deploy lock of dev (lease kestra-ops-deploy in "
                                "hyperplane-kestra) held by ghost@ci-runner-3:77 (release)")
    assert "[y/N]" not in result.stderr  # --yes: nothing asked
    (entry,) = changes(project)
    assert (entry["action"], entry["env"], entry["before"], entry["after"]) == (
        "lock-break", "dev", "ghost@ci-runner-3:77", None)
    assert entry["target"] == f"lease {LEASE_NAME} in {NS}" and entry["status"] == "broken"
    assert entry["operation"] == "release" and entry["host"] == "ci-runner-3"
    assert entry["pid"] == 77 and entry["forced"] is False and entry["state"] == "stale"
    assert 599 <= entry["age_seconds"] < 610 and 124 <= entry["seconds_since_renewal"] < 135
    deletes = fake_kube.requests_matching("DELETE", "/leases/")
    assert deletes[0].body["preconditions"]["resourceVersion"]


def test_break_json_output(project, fake_kube):
    seed_lease(fake_kube, "ghost@ci-runner-3:77", renewed_ago=125)
    result = run("lock", "break", "--env", "dev", "--yes", "--output", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["outcome"] == "broken" and data["forced"] is False
    assert data["lock"]["holder"] == "ghost@ci-runner-3:77" and data["lock"]["state"] == "stale"


def test_break_without_a_terminal_and_without_yes_changes_nothing(project, fake_kube):
    seed_lease(fake_kube, "ghost@ci-runner-3:77", renewed_ago=125)
    result = run("lock", "break", "--env", "dev")
    assert result.exit_code == 2
    assert "holder     ghost@ci-runner-3:77" in result.stderr
    assert ("error: refusing to break the deploy lock of dev without --yes (stdin is not a "
            "terminal); nothing was changed" in result.stderr)
    assert lease(fake_kube) is not None and changes(project) == []


@pytest.mark.parametrize("answer, code, broken", [(b"y\n", 0, True), (b"n\n", 1, False),
                                                  (b"", 1, False)])
def test_break_asks_on_a_terminal(project, fake_kube, answer, code, broken):
    seed_lease(fake_kube, "ghost@ci-runner-3:77", renewed_ago=125)
    result = run("lock", "break", "--env", "dev", input=Terminal(answer))
    assert result.exit_code == code, result.output
    assert "break the deploy lock of dev held by ghost@ci-runner-3:77? [y/N]" in result.stderr
    assert (lease(fake_kube) is None) is broken
    assert len(changes(project)) == (1 if broken else 0)
    if not broken:
        assert "not breaking the deploy lock; nothing changed" in result.stderr


def test_ctrl_c_at_the_prompt_is_exit_130_and_changes_nothing(project, fake_kube):
    seed_lease(fake_kube, "ghost@ci-runner-3:77", renewed_ago=125)
    result = run("lock", "break", "--env", "dev", input=CtrlCTerminal())
    assert result.exit_code == 130, result.output
    assert lease(fake_kube) is not None and changes(project) == []


def test_break_refuses_a_lock_still_being_renewed(project, fake_kube, live_lock):
    result = run("lock", "break", "--env", "dev", "--yes")
    assert result.exit_code == 1
    assert ("error: not breaking the deploy lock of dev: alice@ci-7:4242 (deploy) on ci-7 "
            "renewed it") in result.stderr
    assert "hint: wait for its operation to finish; --force breaks it anyway" in result.stderr
    assert lease(fake_kube)["spec"]["holderIdentity"] == "alice@ci-7:4242"
    assert changes(project) == []


def test_break_force_breaks_a_live_lock_and_its_holder_sees_it_lost(project, fake_kube, kube):
    held = DeployLock(kube, NS, duration=3, renew_interval=0.05, holder="alice@ci-7:4242")
    held.acquire()
    try:
        result = run("lock", "break", "--env", "dev", "--yes", "--force")
        assert result.exit_code == 0, result.output
        assert "(forced: it was still being renewed)" in result.stdout
        assert fake_kube.wait_until(lambda: held.lost is not None, timeout=5)
        assert "its Lease was deleted" in held.lost and lease(fake_kube) is None
        (entry,) = changes(project)
        assert entry["forced"] is True and entry["state"] == "held"
    finally:
        held.release()


def test_break_never_deletes_a_lock_that_changed_hands_after_it_was_shown(project, fake_kube,
                                                                         kube):
    seed_lease(fake_kube, "ghost@ci-runner-3:77", renewed_ago=125)
    env = load_config().environment("dev")

    def confirm(status):  # while the operator reads, a deploy takes the expired lock over
        assert status.lease.holder == "ghost@ci-runner-3:77"
        fake_kube.store.delete("leases", NS, LEASE_NAME)
        seed_lease(fake_kube, "bob@laptop:7", renewed_ago=0, operation="deploy")
        return True

    with pytest.raises(Conflict) as refused:
        break_lock(env, kube, confirm=confirm)
    assert "changed since it was shown (now held by bob@laptop:7 (deploy)" in str(refused.value)
    assert "nothing deleted" in str(refused.value)
    assert lease(fake_kube)["spec"]["holderIdentity"] == "bob@laptop:7"
    assert changes(project) == []


def test_break_of_a_lock_released_meanwhile_is_nothing_to_break(project, fake_kube, kube):
    seed_lease(fake_kube, "ghost@ci-runner-3:77", renewed_ago=125)
    env = load_config().environment("dev")

    def confirm(status):
        fake_kube.store.delete("leases", NS, LEASE_NAME)
        return True

    result = break_lock(env, kube, confirm=confirm)
    assert result.outcome == "gone" and "released meanwhile" in result.message
    assert changes(project) == []


def test_status_and_break_read_times_in_the_servers_clock(project, fake_kube, kube, monkeypatch):
    """A laptop whose clock is 10 minutes fast does not see a live lock as stale."""
    from kestra_ops.workflows.deploy import lock as lock_module

    real_now = lock_module._now
    monkeypatch.setattr(lock_module, "_now", lambda: real_now() + dt.timedelta(minutes=10))
    from kestra_ops.workflows.deploy import lock_clock

    monkeypatch.setattr(lock_clock, "_now", lambda: real_now() + dt.timedelta(minutes=10))
    seed_lease(fake_kube, "alice@ci-7:4242", renewed_ago=3)
    env = load_config().environment("dev")
    status = lock_status(env, kube)
    assert status.state == "held" and status.exit_code == 0
    (note,) = [line for line in status.lines() if "clock" in line]
    ahead = re.search(r"this host's clock is (\d+) s ahead of the API server's", note)
    assert ahead and 598 <= int(ahead.group(1)) <= 602, note
    with pytest.raises(Conflict, match="renewed it"):
        break_lock(env, kube, confirm=lambda status: True)
    assert lease(fake_kube) is not None
