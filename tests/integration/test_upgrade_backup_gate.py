"""The backup gate of an irreversible upgrade step and `upgrade restore`'s own check, on real
PostgreSQL and SeaweedFS: a fresh verified set passes; a stale one, a corrupt one or none is
refused (--take-backup takes and verifies one); `upgrade restore` of a set that does not pass
verify changes nothing."""

from __future__ import annotations

import pytest

from kestra_ops.results import Recorder, Report
from kestra_ops.workflows.backup import sets as bs
from kestra_ops.workflows.upgrade import gates
from tests.integration.backup_support import (  # noqa: F401 - fixtures
    BACKUP_BUCKET, backup_env, backup_json, kestra, pg_cluster, pg_db, project, run, s3,
    seaweed)


@pytest.fixture
def env(backup_env):
    from kestra_ops.settings import load_config

    project, _ = backup_env
    return load_config(project / "kestra-ops.yaml").environment("dev")


def gate(env, **kw):
    rec = Recorder(Report("test"))
    return gates.backup_gate(env, rec, **{"max_age": 3600, "take": False, **kw})


def test_none_then_taken_then_fresh(env, s3):
    item, name = gate(env)
    assert not item.ok and name is None and "no complete backup set" in item.reason
    item, name = gate(env, take=True)
    assert item.ok and name, item.reason
    assert "passes verify" in item.reason
    again, same = gate(env)
    assert again.ok and same == name  # fresh: used, not taken again
    stale, none = gate(env, max_age=1e-6)
    assert not stale.ok and none is None and f"{name}, is 0 min old" in stale.reason


def test_a_set_that_does_not_pass_verify_is_refused(env, backup_env, s3):
    project, _ = backup_env
    code, data, output = backup_json(project, "--what", "db")
    assert code == 0, output
    key = bs.key("dev", data["set"], bs.DB)
    s3.client().put_object(BACKUP_BUCKET, key, __import__("io").BytesIO(b"x" * 10), 10)
    item, name = gate(env)
    assert not item.ok and name is None and "does not pass verify" in item.reason


def test_upgrade_restore_of_a_bad_set_changes_nothing(env, backup_env, s3):
    from kestra_ops.workflows.upgrade.recover import upgrade_restore

    class NoCluster:  # nothing may reach the cluster before the set is verified
        def __getattr__(self, name):
            raise AssertionError(f"the cluster was used: {name}")

    result = upgrade_restore(env, "20200101T000000Z", kube=NoCluster())
    assert result.exit_code == 1 and result.outcome == "failed", result.message
    assert "20200101T000000Z" in result.message
    assert [s.name for s in result.steps] == \
        ["verify backup set 20200101T000000Z before anything changes"]
