"""config patch and config restore take the deploy lock (issue 12, item 6): they cannot
interleave with a deploy, a rollback or a release. A held lock refuses them, naming its holder,
with nothing written; while they run, the Lease is theirs; afterwards it is gone."""

from __future__ import annotations

import datetime as dt
import json

from kestra_ops.workflows.deploy.lock import LEASE_NAME, OPERATION_ANNOTATION
from tests.helpers_configmap import (NS, app_yml, backup_files, changes, cm_rv,  # noqa: F401
                                     project, restarted_at, run)


def seed_lease(fake_kube, holder: str, operation: str = "deploy") -> None:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fake_kube.seed({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": LEASE_NAME, "namespace": NS,
                                 "annotations": {OPERATION_ANNOTATION: operation}},
                    "spec": {"holderIdentity": holder, "leaseDurationSeconds": 60,
                             "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 0}})


def lease(fake_kube):
    return fake_kube.store.get("leases", NS, LEASE_NAME)


def test_patch_is_refused_while_a_deploy_holds_the_lock(project, fake_kube):
    seed_lease(fake_kube, "alice@ci:42")
    before, rv0 = app_yml(fake_kube), cm_rv(fake_kube)
    result = run(project, "config", "patch", "--env", "dev", "--set",
                 "kestra.jdbc.cleaner.retention=14d", "--yes")
    assert result.exit_code == 1, result.output
    assert "alice@ci:42 (deploy)" in result.stderr and "deploy lock" in result.stderr
    assert "Traceback" not in result.output
    assert app_yml(fake_kube) == before and cm_rv(fake_kube) == rv0
    assert backup_files(project) == [] and restarted_at(fake_kube) is None
    assert lease(fake_kube)["spec"]["holderIdentity"] == "alice@ci:42"


def test_restore_is_refused_while_a_deploy_holds_the_lock(project, fake_kube):
    done = run(project, "config", "patch", "--env", "dev", "--set",
               "kestra.jdbc.cleaner.retention=14d", "--yes", "--no-restart")
    assert done.exit_code == 0, done.output
    [backup] = backup_files(project)
    seed_lease(fake_kube, "bob@laptop:7", operation="release")
    before = app_yml(fake_kube)
    result = run(project, "config", "restore", "--env", "dev", backup.name, "--yes",
                 "--no-restart")
    assert result.exit_code == 1, result.output
    assert "bob@laptop:7 (release)" in result.stderr
    assert app_yml(fake_kube) == before and backup_files(project) == [backup]


def test_patch_and_restore_hold_the_lock_while_writing_and_release_it(project, fake_kube,
                                                                      monkeypatch):
    from kestra_ops.adapters import kube_config

    seen = []
    replace = kube_config.replace_configmap

    def watching(*args, **kwargs):
        held = lease(fake_kube)
        seen.append((held["spec"]["holderIdentity"],
                     held["metadata"]["annotations"][OPERATION_ANNOTATION]) if held else None)
        return replace(*args, **kwargs)

    monkeypatch.setattr(kube_config, "replace_configmap", watching)
    result = run(project, "config", "patch", "--env", "dev", "--set",
                 "kestra.jdbc.cleaner.retention=14d", "--yes", "--output", "json")
    assert result.exit_code == 0, result.output
    [backup] = backup_files(project)
    result = run(project, "config", "restore", "--env", "dev", backup.name, "--yes",
                 "--no-restart", "--output", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["changed"]
    assert [op for _, op in seen] == ["config patch", "config restore"]
    assert all(holder.rsplit(":", 1)[1].isdigit() for holder, _ in seen)
    assert lease(fake_kube) is None


def test_a_lock_broken_during_the_prompt_stops_the_write(project, fake_kube):
    """Someone ran `lock break` (and a deploy took the lock) while the diff waited for a yes:
    nothing is written, the command says why."""
    import pytest

    from kestra_ops.errors import Conflict
    from kestra_ops.settings import load_config
    from kestra_ops.workflows.configmap.doc import Patch
    from kestra_ops.workflows.configmap.patch import patch_config

    env = load_config(project / "kestra-ops.yaml").environment("dev")
    before = app_yml(fake_kube)

    def broken_meanwhile(shown: str) -> bool:
        fake_kube.store.delete("leases", NS, LEASE_NAME)
        seed_lease(fake_kube, "carol@ci:9")
        return True

    with pytest.raises(Conflict, match="lost before the write.*carol@ci:9"):
        patch_config(env, Patch(sets=("kestra.jdbc.cleaner.retention=14d",)),
                     confirm=broken_meanwhile, restart=False)
    assert app_yml(fake_kube) == before and backup_files(project) == []
    assert lease(fake_kube)["spec"]["holderIdentity"] == "carol@ci:9"
