"""The gates of an irreversible upgrade step: the fresh set, the required environment."""

from __future__ import annotations

import datetime
import json

from kestra_ops.upgrades.version import Version
from kestra_ops.workflows.backup.sets import BackupSet
from kestra_ops.workflows.upgrade import gates

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.timezone.utc)


def bset(name: str, minutes_ago: int, *, included=("db", "flows"), complete=True):
    return BackupSet(name, NOW - datetime.timedelta(minutes=minutes_ago), complete,
                     {"included": list(included)} if complete else None)


def test_the_newest_fresh_set_with_the_database(monkeypatch):
    sets = [bset("c", 5, included=("flows",)), bset("b", 30), bset("a", 90)]
    monkeypatch.setattr("kestra_ops.workflows.backup.locations.list_all",
                        lambda env, now=None: (sets, [], [], []))
    found, why = gates.fresh_set(object(), 3600, now=NOW)
    assert found.name == "b" and why == ""
    found, why = gates.fresh_set(object(), 600, now=NOW)
    assert found is None and "b, is 30 min old" in why
    monkeypatch.setattr("kestra_ops.workflows.backup.locations.list_all",
                        lambda env, now=None: ([bset("x", 1, complete=False)], [], [], []))
    assert gates.fresh_set(object(), 3600, now=NOW) == \
        (None, "no complete backup set with the database")


class Env:
    def __init__(self, root, name="staging"):
        self.root, self.name, self.minio_bucket = root, name, None


def write_report(root, kind, stamp, **data):
    folder = root / "backups" / kind / "staging" / stamp
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"started": stamp, **data}))


def test_the_required_env_must_run_the_target_with_a_passing_check(tmp_path, monkeypatch):
    env = Env(tmp_path)
    target = Version(2, 0, 8)
    monkeypatch.setattr(gates, "_running", lambda e, **_: Version(1, 3, 22))
    item = gates.requires_gate(env, target, storage=False)
    assert not item.ok and "runs Kestra 1.3.22, not 2.0.8" in item.reason
    monkeypatch.setattr(gates, "_running", lambda e, **_: target)
    item = gates.requires_gate(env, target, storage=False)
    assert not item.ok and "no release or upgrade report" in item.reason
    write_report(tmp_path, "upgrades", "20261205T100000Z", command="upgrade run",
                 outcome="upgraded", to="2.0.8", check={"exit_code": 0})
    write_report(tmp_path, "releases", "20261206T100000Z", command="release",
                 outcome="rolled-back", image="kestra/kestra:v2.0.8", check={"exit_code": 1})
    item = gates.requires_gate(env, target, storage=False)
    assert not item.ok and "ended 'rolled-back'" in item.reason  # the newest one counts
    write_report(tmp_path, "releases", "20261206T110000Z", command="release",
                 outcome="released", image="kestra/kestra:v2.0.8-slim", check={"exit_code": 0})
    item = gates.requires_gate(env, target, storage=False)
    assert item.ok, item.reason
    assert gates.requires_gate(None, target).ok  # nothing required


def test_report_version():
    assert gates.report_version({"to": "2.0.8"}) == Version(2, 0, 8)
    assert gates.report_version({"image": "reg:5000/kestra/kestra:v1.3.22"}) == \
        Version(1, 3, 22)
    assert gates.report_version({"image": "kestra/kestra:latest"}) is None


def test_a_set_of_another_version_does_not_guard_this_step(monkeypatch):
    older = bset("b", 10)
    older.manifest["versions"] = {"kestra": "1.3.2"}
    unknown = bset("a", 20)  # recorded no version: taken as it is
    monkeypatch.setattr("kestra_ops.workflows.backup.locations.list_all",
                        lambda env, now=None: ([older], [], [], []))
    found, why = gates.fresh_set(object(), 3600, now=NOW, running=Version(1, 3, 22))
    assert found is None and "taken from Kestra 1.3.2, not the running 1.3.22" in why
    found, _ = gates.fresh_set(object(), 3600, now=NOW, running=Version(1, 3, 2))
    assert found.name == "b"
    monkeypatch.setattr("kestra_ops.workflows.backup.locations.list_all",
                        lambda env, now=None: ([older, unknown], [], [], []))
    found, _ = gates.fresh_set(object(), 3600, now=NOW, running=Version(1, 3, 22))
    assert found.name == "a"
    assert gates.set_version({"versions": {"image": "kestra/kestra:v2.0.8-slim"}}) == \
        Version(2, 0, 8)


def test_restore_refuses_values_that_name_another_version(tmp_path):
    from kestra_ops.workflows.upgrade.recover import version_mismatch

    values = tmp_path / "v.yaml"
    values.write_text('image:\n  repository: kestra/kestra\n  tag: "v2.0.8"\n')

    class Env:
        name, values_paths = "prod", (values,)

    why = version_mismatch(Env(), {"versions": {"kestra": "1.3.22"}})
    assert "taken from Kestra 1.3.22" in why and "v2.0.8" in why
    assert version_mismatch(Env(), {"versions": {"kestra": "2.0.8"}}) is None
    assert version_mismatch(Env(), {"versions": {}}) is None
