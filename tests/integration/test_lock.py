"""The deploy lock (a Lease) against the fake API through the real client and a kubeconfig."""

from __future__ import annotations

import datetime as dt

import pytest

from kestra_ops.adapters.kube import Kube
from kestra_ops.errors import Conflict
from kestra_ops.settings import Environment
from kestra_ops.workflows.lock import LEASE_NAME, DeployLock, deploy_lock

NS = "hyperplane-kestra"


@pytest.fixture
def kube(fake_kube):
    k = Kube(context="fake", namespace=NS)
    yield k
    k.close()


@pytest.fixture
def env(tmp_path):
    return Environment(name="dev", root=tmp_path, namespace=NS)


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
    lock = DeployLock(kube, NS, duration=120, holder="alice@ci:42", operation="rollback")
    info = lock.acquire()
    stored = lease(fake_kube)
    spec = stored["spec"]
    assert spec["holderIdentity"] == "alice@ci:42" and spec["leaseDurationSeconds"] == 120
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
    with pytest.raises(Conflict, match="lost to bob@laptop:7"):
        lock.renew()


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
