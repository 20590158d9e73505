"""The deploy lock (a Lease) against the fake API through the real client and a kubeconfig:
taking, refusing, taking over, releasing, and the renewals while held (lost, failed, stopped)."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from kestra_ops.adapters.kube import Kube
from kestra_ops.errors import Conflict
from kestra_ops.settings import Environment
from kestra_ops.workflows.deploy import lock as lock_module
from kestra_ops.workflows.deploy.lock import (LEASE_NAME, LEASE_SECONDS, DeployLock, LockLost,
                                       deploy_lock)

NS = "hyperplane-kestra"


@pytest.fixture
def kube(fake_kube):
    k = Kube(context="fake", namespace=NS)
    yield k
    k.close()


@pytest.fixture
def env(tmp_path):
    return Environment(name="dev", root=tmp_path, namespace=NS)


@pytest.fixture(autouse=True)
def stop_renewals(monkeypatch):
    """Locks a test leaves held stop renewing when it ends (their fake server is gone)."""
    started = []
    start = DeployLock._start_renewing

    def recording(self):
        started.append(self)
        start(self)

    monkeypatch.setattr(DeployLock, "_start_renewing", recording)
    yield started
    for held in started:
        held._stop_renewing()


def lease(fake_kube):
    return fake_kube.store.get("leases", NS, LEASE_NAME)


def seed_lease(fake_kube, holder, *, renewed_ago: float, duration: int = 60):
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=renewed_ago)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fake_kube.seed({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": LEASE_NAME, "namespace": NS},
                    "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration,
                             "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 2}})


def test_acquire_writes_holder_duration_and_microtimes_then_release_deletes(kube, fake_kube):
    lock = DeployLock(kube, NS, duration=45, holder="alice@ci:42", operation="rollback")
    info = lock.acquire()
    stored = lease(fake_kube)
    spec = stored["spec"]
    assert spec["holderIdentity"] == "alice@ci:42" and spec["leaseDurationSeconds"] == 45
    # MicroTime: six fractional digits, as the real API server requires
    for key in ("acquireTime", "renewTime"):
        assert len(spec[key].split(".")[1].rstrip("Z")) == 6, spec[key]
    assert stored["metadata"]["annotations"]["kestra-ops/operation"] == "rollback"
    assert info.holder == "alice@ci:42" and not info.stale()
    assert lock.release() is True
    assert lease(fake_kube) is None


def test_second_holder_is_refused_with_holder_named(kube, fake_kube):
    first = DeployLock(kube, NS, holder="alice@ci:42")
    first.acquire()
    with pytest.raises(Conflict) as refused:
        DeployLock(kube, NS, holder="bob@laptop:7").acquire()
    message = str(refused.value)
    assert "alice@ci:42 (deploy) since" in message and "expires" in message
    assert lease(fake_kube)["spec"]["holderIdentity"] == "alice@ci:42"
    # bob cannot release alice's lock either
    assert DeployLock(kube, NS, holder="bob@laptop:7").release() is False
    assert lease(fake_kube) is not None


def test_stale_lease_is_taken_over(kube, fake_kube):
    seed_lease(fake_kube, "crashed@ci:1", renewed_ago=120, duration=60)
    info = DeployLock(kube, NS, holder="bob@laptop:7").acquire()
    spec = lease(fake_kube)["spec"]
    assert spec["holderIdentity"] == "bob@laptop:7" and spec["leaseTransitions"] == 3
    assert info.acquired > dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=30)


def test_fresh_lease_of_someone_else_is_not_taken_over(kube, fake_kube):
    seed_lease(fake_kube, "alice@ci:42", renewed_ago=5, duration=60)
    with pytest.raises(Conflict, match="alice@ci:42"):
        DeployLock(kube, NS, holder="bob@laptop:7").acquire()


def test_take_over_race_loses_cleanly(kube, fake_kube):
    seed_lease(fake_kube, "crashed@ci:1", renewed_ago=120, duration=60)
    lock = DeployLock(kube, NS, holder="bob@laptop:7")
    fake_kube.fail_next("update", "leases", code=409, reason="Conflict")
    with pytest.raises(Conflict):
        lock.acquire()
    assert lease(fake_kube)["spec"]["holderIdentity"] == "crashed@ci:1"


def test_renew_moves_expiry_and_detects_a_lost_lock(kube, fake_kube):
    lock = DeployLock(kube, NS, duration=60, holder="alice@ci:42")
    first = lock.acquire()
    renewed = lock.renew()
    assert renewed.renewed > first.renewed and renewed.acquired == first.acquired
    fake_kube.store.delete("leases", NS, LEASE_NAME)
    seed_lease(fake_kube, "bob@laptop:7", renewed_ago=0)
    with pytest.raises(LockLost, match="lost to bob@laptop:7"):
        lock.renew()
    assert lease(fake_kube)["spec"]["holderIdentity"] == "bob@laptop:7"


def test_context_manager_releases_on_exception(kube, fake_kube, env):
    with pytest.raises(RuntimeError):
        with deploy_lock(kube, env) as lock:
            assert lease(fake_kube)["spec"]["holderIdentity"] == lock.holder
            raise RuntimeError("helm blew up")
    assert lease(fake_kube) is None


def test_context_manager_releases_on_keyboard_interrupt(kube, fake_kube, env):
    with pytest.raises(KeyboardInterrupt):
        with deploy_lock(kube, env, duration=30):
            assert lease(fake_kube)["spec"]["leaseDurationSeconds"] == 30
            raise KeyboardInterrupt
    assert lease(fake_kube) is None


def test_release_failure_does_not_hide_the_original_error(kube, fake_kube, env):
    with pytest.raises(RuntimeError) as raised:
        with deploy_lock(kube, env):
            fake_kube.fail_next("get", "leases", code=500)
            raise RuntimeError("helm blew up")
    assert "could not be released" in "".join(getattr(raised.value, "__notes__", []))


def test_ctrl_c_while_the_api_server_answers_leaves_no_lease(kube, fake_kube, monkeypatch):
    """The Lease was created, then Ctrl-C came before the answer: it is deleted again."""
    lock = DeployLock(kube, NS, holder="alice@ci:42")
    take = DeployLock._take

    def interrupted(self):
        take(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(DeployLock, "_take", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with deploy_lock(kube, Environment(name="dev", root=".", namespace=NS)):
            pass
    assert lease(fake_kube) is None
    with pytest.raises(KeyboardInterrupt):
        lock.acquire()
    assert lease(fake_kube) is None and lock.held is None


def test_ctrl_c_does_not_delete_someone_elses_lease(kube, fake_kube, monkeypatch):
    seed_lease(fake_kube, "bob@laptop:7", renewed_ago=1)

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(DeployLock, "_take", interrupted)
    with pytest.raises(KeyboardInterrupt):
        DeployLock(kube, NS, holder="alice@ci:42").acquire()
    assert lease(fake_kube)["spec"]["holderIdentity"] == "bob@laptop:7"


# --- renewal while held ----------------------------------------------------------------------

def renew_time(fake_kube) -> str:
    return lease(fake_kube)["spec"]["renewTime"]


def lease_writes(fake_kube) -> int:
    return len([r for r in fake_kube.requests if r.method in ("PUT", "POST", "DELETE")
                and "/leases" in r.path])


def test_callers_long_durations_are_capped_and_the_lock_is_renewed_instead(kube, fake_kube, env):
    """A caller asking for a long Lease (a script, an older caller passing its whole timeout)
    gets one of LEASE_SECONDS: the lock is renewed while held instead."""
    with deploy_lock(kube, env, duration=1500, operation="release") as held:
        assert lease(fake_kube)["spec"]["leaseDurationSeconds"] == LEASE_SECONDS == 60
        assert held.renew_interval == 20 and held._renewer.is_alive()
    assert lease(fake_kube) is None and held._renewer is None


def test_held_lock_is_renewed_in_the_background_until_released(kube, fake_kube):
    lock = DeployLock(kube, NS, duration=2, renew_interval=0.05, holder="alice@ci:42")
    first = lock.acquire()
    first_spec = lease(fake_kube)["spec"]
    assert fake_kube.wait_until(lambda: lock.renewals >= 3, timeout=5)
    spec = lease(fake_kube)["spec"]
    assert spec["renewTime"] > first_spec["renewTime"] and spec["holderIdentity"] == "alice@ci:42"
    assert spec["acquireTime"] == first_spec["acquireTime"]
    assert len(spec["renewTime"].split(".")[1].rstrip("Z")) == 6
    time.sleep(2.2)  # longer than the Lease's duration: still held, never stale
    current = lock.current()
    assert current.holder == "alice@ci:42" and not current.stale() and not current.expired()
    assert current.acquired == first.acquired and not lock.lost and not lock.warnings
    assert lock.release() is True
    assert lease(fake_kube) is None
    writes = lease_writes(fake_kube)
    time.sleep(0.3)
    assert lease_writes(fake_kube) == writes  # no renewal after the release


def test_failed_renewals_are_recorded_and_retried_not_raised(kube, fake_kube):
    lock = DeployLock(kube, NS, duration=3, renew_interval=0.05, holder="alice@ci:42")
    lock.acquire()
    fake_kube.fail_next("update", "leases", code=500, times=2)
    assert fake_kube.wait_until(lambda: len(lock.warnings) >= 2, timeout=5)
    assert "renewing the deploy lock of hyperplane-kestra failed" in lock.warnings[0]
    assert "retrying" in lock.warnings[0]
    stamp = renew_time(fake_kube)
    assert fake_kube.wait_until(lambda: renew_time(fake_kube) > stamp, timeout=5)
    assert lock.lost is None and lock._renewer.is_alive()
    assert lock.release() is True and lease(fake_kube) is None


def test_lock_taken_by_someone_else_is_marked_lost_and_left_alone(kube, fake_kube):
    lock = DeployLock(kube, NS, duration=3, renew_interval=0.05, holder="alice@ci:42")
    lock.acquire()
    fake_kube.store.delete("leases", NS, LEASE_NAME)
    seed_lease(fake_kube, "bob@laptop:7", renewed_ago=0)
    assert fake_kube.wait_until(lambda: lock.lost is not None, timeout=5)
    assert "lost to bob@laptop:7" in lock.lost and "renewals stopped" in lock.warnings[-1]
    renewer = lock._renewer
    renewer.join(timeout=2)
    assert not renewer.is_alive()
    bob = lease(fake_kube)
    assert lock.release() is False
    assert lease(fake_kube) == bob  # bob's lock: neither renewed nor deleted by alice


def test_a_broken_lock_is_lost_not_recreated(kube, fake_kube):
    lock = DeployLock(kube, NS, duration=3, renew_interval=0.05, holder="alice@ci:42")
    lock.acquire()
    fake_kube.store.delete("leases", NS, LEASE_NAME)
    assert fake_kube.wait_until(lambda: lock.lost is not None, timeout=5)
    assert "its Lease was deleted" in lock.lost
    time.sleep(0.2)
    assert lease(fake_kube) is None and lock.release() is False


def test_a_holder_that_stops_renewing_goes_stale_and_is_taken_over(kube, fake_kube):
    """A dead process: it took the lock, then never renewed nor released it."""
    dead = DeployLock(kube, NS, duration=1, renew_interval=0.05, holder="ghost@ci:1")
    dead.acquire()
    dead._stop_renewing()  # what a kill -9 does to the renewals
    with pytest.raises(Conflict, match="ghost@ci:1"):
        DeployLock(kube, NS, holder="bob@laptop:7").acquire()
    time.sleep(1.2)
    assert dead.current().stale() and dead.current().expired()
    taker = DeployLock(kube, NS, holder="bob@laptop:7")
    taker.acquire()
    assert lease(fake_kube)["spec"]["holderIdentity"] == "bob@laptop:7"
    assert taker.release() is True


def test_a_long_lease_that_stopped_renewing_is_stale_but_not_taken_over(kube, fake_kube):
    """A 15-minute Lease from an older kestra-ops or another tool, renewed 2 minutes ago: a
    renewing holder would have renewed it; only a person (lock break) removes it before expiry."""
    seed_lease(fake_kube, "ghost@ci:1", renewed_ago=120, duration=900)
    info = DeployLock(kube, NS, holder="bob@laptop:7").current()
    assert info.stale() and not info.expired()
    with pytest.raises(Conflict) as refused:
        DeployLock(kube, NS, holder="bob@laptop:7").acquire()
    assert "ghost@ci:1" in str(refused.value) and "stopped renewing 12" in str(refused.value)
    assert "kestra-ops lock break --env ENV" in refused.value.hint
    assert lease(fake_kube)["spec"]["holderIdentity"] == "ghost@ci:1"


# --- clocks: Lease times are the API server's ------------------------------------------------

@pytest.mark.parametrize("skew", [300, -300])
def test_a_wrong_local_clock_neither_steals_a_live_lock_nor_keeps_a_dead_one(kube, fake_kube,
                                                                           monkeypatch, skew):
    real_now = lock_module._now
    monkeypatch.setattr(lock_module, "_now", lambda: real_now() + dt.timedelta(seconds=skew))
    from kestra_ops.workflows.deploy import lock_clock

    monkeypatch.setattr(lock_clock, "_now", lambda: real_now() + dt.timedelta(seconds=skew))

    def written_drift() -> float:
        written = dt.datetime.strptime(renew_time(fake_kube), "%Y-%m-%dT%H:%M:%S.%fZ")
        return (written.replace(tzinfo=dt.timezone.utc) - real_now()).total_seconds()

    first = DeployLock(kube, NS, holder="carol@ci:9")
    first.acquire()  # no Lease yet: the 404's Date header sets the clock before the create
    assert abs(written_drift()) < 3 and first.release() is True
    seed_lease(fake_kube, "alice@ci:42", renewed_ago=5, duration=60)  # live, server time
    with pytest.raises(Conflict, match="alice@ci:42"):
        DeployLock(kube, NS, holder="bob@laptop:7").acquire()
    fake_kube.store.delete("leases", NS, LEASE_NAME)
    seed_lease(fake_kube, "ghost@ci:1", renewed_ago=90, duration=60)  # dead, server time
    taker = DeployLock(kube, NS, holder="bob@laptop:7")
    info = taker.acquire()
    assert abs(taker.clock.offset + skew) < 3
    assert abs(written_drift()) < 3  # written in the server's clock, not the local one
    assert info.holder == "bob@laptop:7" and taker.release() is True
