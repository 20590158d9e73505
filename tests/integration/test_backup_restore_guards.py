"""backup restore checks what it brings back before any write (issue 12, items 3 and 6):
flows.zip passes the rules of `flows validate` (the env's plugin blacklist included) or nothing
is restored; a set dated in the future is never `latest`, is flagged by list and verify, and
prune does not count it; --config holds the deploy lock."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import zipfile

import pytest

from kestra_ops.workflows.backup import sets as bs
from tests.helpers_configmap import NS, app_yml
from tests.integration.backup_support import (  # noqa: F401 - fixtures
    BACKUP_BUCKET, BUCKET, FLOW, backup_env, backup_json, kestra, pg_cluster, pg_db, project, run,
    s3, seaweed)

DOCKER_FLOW = """id: containers
namespace: company.team
tasks:
  - id: run
    type: io.kestra.plugin.docker.Run
    containerImage: alpine
"""


def zipped(**entries: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in entries.items():
            zf.writestr(name, text)
    return buf.getvalue()


def put_set(s3, when: datetime.datetime, artefacts: dict[str, bytes],
            bucket: str = BACKUP_BUCKET) -> str:
    """A complete set at ``when`` holding ``artefacts``, as backup run lays it out, in the
    backup bucket (or ``bucket``: Kestra's, the legacy location)."""
    name = bs.stamp(when)
    client = s3.client()
    for artefact, data in artefacts.items():
        client.put_object(bucket, bs.key("dev", name, artefact), io.BytesIO(data), len(data))
    included = [w for w, arts in bs.ARTEFACTS.items() if arts[0] in artefacts]
    manifest = json.dumps({"version": 1, "env": "dev", "set": name, "status": "complete",
                           "included": included, "artefacts": {
                               a: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
                               for a, d in artefacts.items()}}).encode()
    client.put_object(bucket, bs.key("dev", name, bs.MANIFEST), io.BytesIO(manifest),
                      len(manifest))
    return name


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def imports(kestra) -> list:
    return kestra.calls("POST", r"/flows/import$")


# ------------------------------------------------------------------ item 3: flows.zip checked

def test_a_blacklisted_flow_in_the_set_is_refused_before_any_write(backup_env, s3, kestra):
    project, _ = backup_env
    kestra.add_flow(DOCKER_FLOW)
    code, data, output = backup_json(project, "--what", "flows")
    assert code == 0, output
    result = run(project, "backup", "restore", "--env", "dev", data["set"], "--flows", "--yes",
                 "--output", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["outcome"] == "refused" and "nothing restored" in report["message"]
    [finding] = [f for r in report["reports"] for f in r["findings"]
                 if f["rule"] == "flows/blacklisted-type"]
    assert "io.kestra.plugin.docker.Run" in finding["message"]
    assert finding["file"].startswith(
        f"s3://{BACKUP_BUCKET}/backups/dev/{data['set']}/flows.zip!")
    assert finding["line"] == 5
    assert imports(kestra) == []
    text = run(project, "backup", "restore", "--env", "dev", data["set"], "--flows", "--yes")
    assert text.exit_code == 1 and "flows.zip fails the flows rules" in text.output
    assert "Traceback" not in text.output and imports(kestra) == []


def test_a_file_that_is_not_a_flow_is_refused(backup_env, s3, kestra):
    project, _ = backup_env
    name = put_set(s3, now() - datetime.timedelta(hours=1),
                   {bs.FLOWS: zipped(**{"company.team.hello.yml": FLOW, "payload.json": "{}"})})
    result = run(project, "backup", "restore", "--env", "dev", name, "--flows", "--yes")
    assert result.exit_code == 1, result.output
    assert "payload.json: not a flow file" in result.output
    assert imports(kestra) == []


def test_an_unreadable_flow_is_exit_2(backup_env, s3, kestra):
    project, _ = backup_env
    name = put_set(s3, now() - datetime.timedelta(hours=1),
                   {bs.FLOWS: zipped(**{"a.yml": "id: [unclosed\n"})})
    result = run(project, "backup", "restore", "--env", "dev", name, "--flows", "--yes")
    assert result.exit_code == 2, result.output
    assert f"flows.zip!a.yml" in result.output and imports(kestra) == []


def test_a_refused_flows_zip_restores_no_database_either(backup_env, s3, kestra, pg_cluster,
                                                        pg_db):
    project, _ = backup_env
    kestra.add_flow(DOCKER_FLOW)
    code, data, output = backup_json(project, "--what", "db,flows")
    assert code == 0, output
    target = pg_db()
    result = run(project, "backup", "restore", "--env", "dev", data["set"], "--flows", "--yes",
                 "--to-database", pg_cluster.url(target))
    assert result.exit_code == 1, result.output
    import psycopg

    with psycopg.connect(pg_cluster.url(target)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                            ).fetchone()[0] == 0


def test_good_flows_are_imported(backup_env, s3, kestra):
    project, _ = backup_env
    code, data, output = backup_json(project, "--what", "flows")
    assert code == 0, output
    result = run(project, "backup", "restore", "--env", "dev", "latest", "--flows", "--yes")
    assert result.exit_code == 0, result.output
    assert len(imports(kestra)) == 1


# ------------------------------------------------------------------ item 3: sets from the future

def test_a_future_set_is_never_latest_and_is_flagged(backup_env, s3, kestra):
    project, _ = backup_env
    code, data, output = backup_json(project, "--what", "flows")
    assert code == 0, output
    real = data["set"]
    future = put_set(s3, now() + datetime.timedelta(days=3650),
                     {bs.FLOWS: zipped(**{"company.team.hello.yml": FLOW})})
    near = put_set(s3, now() + datetime.timedelta(minutes=2),  # within the skew: a real set
                   {bs.FLOWS: zipped(**{"company.team.hello.yml": FLOW})})

    restored = run(project, "backup", "restore", "--env", "dev", "latest", "--flows", "--yes",
                   "--output", "json")
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.stdout)["set"] == near

    listed = run(project, "backup", "list", "--env", "dev", "--output", "json")
    sets = {s["name"]: s for s in json.loads(listed.stdout)["sets"]}
    assert sets[future]["future"] and not sets[near]["future"] and not sets[real]["future"]
    text = run(project, "backup", "list", "--env", "dev")
    [line] = [ln for ln in text.stdout.splitlines() if ln.split()[:1] == [future]]
    assert line.split()[1] == "future"
    assert "1 dated in the future" in text.stdout and "dated in the future" in text.output

    verified = run(project, "backup", "verify", "--env", "dev", future, "--output", "json")
    report = json.loads(verified.stdout)
    assert report["future"] is True
    assert [c["status"] for c in report["checks"] if c["id"] == "date"] == ["warn"]
    assert any("dated in the future" in w for w in report["warnings"])
    latest = json.loads(run(project, "backup", "verify", "--env", "dev", "latest",
                            "--output", "json").stdout)
    assert latest["set"] == near


def test_only_future_sets_means_no_latest(backup_env, s3):
    project, _ = backup_env
    future = put_set(s3, now() + datetime.timedelta(days=1),
                     {bs.FLOWS: zipped(**{"company.team.hello.yml": FLOW})})
    result = run(project, "backup", "verify", "--env", "dev", "latest")
    assert result.exit_code == 1, result.output
    assert "no complete backup set" in result.output and future in result.output


def test_prune_never_counts_a_future_set(backup_env, s3):
    project, _ = backup_env
    flows = {bs.FLOWS: zipped(**{"company.team.hello.yml": FLOW})}
    old = [put_set(s3, now() - datetime.timedelta(days=d), flows) for d in (3, 2, 1)]
    future = put_set(s3, now() + datetime.timedelta(days=30), flows)
    result = run(project, "backup", "prune", "--env", "dev", "--keep-daily", "1",
                 "--keep-weekly", "0", "--keep-monthly", "0", "--confirm", "--output", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ignored"] == [future]
    assert list(report["keep"]) == [old[-1]]  # the newest REAL set, not the future one
    assert sorted(report["deleted"]) == sorted(old[:2])
    left = {o.object_name.split("/")[2] for o in s3.client().list_objects(
        BACKUP_BUCKET, prefix="backups/dev/", recursive=True)}
    assert left == {old[-1], future}


# ------------------------------------------------------------------ item 6: the deploy lock

def _seed_lease(fake_kube, holder: str) -> None:
    from kestra_ops.workflows.deploy.lock import LEASE_NAME

    stamp = now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fake_kube.seed({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": LEASE_NAME, "namespace": NS},
                    "spec": {"holderIdentity": holder, "leaseDurationSeconds": 60,
                             "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 0}})


def test_restore_config_waits_for_no_deploy(backup_env, s3, kestra, fake_kube):
    project, _ = backup_env
    code, data, output = backup_json(project, "--what", "flows,config")
    assert code == 0, output
    patched = run(project, "config", "patch", "--env", "dev", "--yes", "--no-restart",
                  "--set", "kestra.jdbc.cleaner.retention=30d")
    assert patched.exit_code == 0, patched.output
    before = app_yml(fake_kube)
    _seed_lease(fake_kube, "deployer@ci:42")
    result = run(project, "backup", "restore", "--env", "dev", data["set"], "--yes",
                 "--flows", "--config")
    assert result.exit_code == 1, result.output
    assert "deploy lock is held by deployer@ci:42" in result.output
    assert app_yml(fake_kube) == before and imports(kestra) == []  # nothing restored


def test_restore_config_holds_the_deploy_lock_while_writing(backup_env, s3, kestra, fake_kube,
                                                          monkeypatch):
    from kestra_ops.workflows.configmap import patch
    from kestra_ops.workflows.deploy.lock import LEASE_NAME, OPERATION_ANNOTATION

    project, _ = backup_env
    code, data, output = backup_json(project, "--what", "config")
    assert code == 0, output
    seen = []
    real = patch.restore_config

    def watching(*args, **kw):
        seen.append(fake_kube.store.get("leases", NS, LEASE_NAME))
        return real(*args, **kw)

    monkeypatch.setattr(patch, "restore_config", watching)
    result = run(project, "backup", "restore", "--env", "dev", data["set"], "--yes", "--config")
    assert result.exit_code == 0, result.output
    [held] = seen
    assert held and held["metadata"]["annotations"][OPERATION_ANNOTATION] == "backup restore"
    assert fake_kube.store.get("leases", NS, LEASE_NAME) is None  # released


@pytest.mark.parametrize("when", ["now", "skew"])
def test_future_is_judged_with_a_small_skew(when):
    t = now() + (datetime.timedelta(minutes=1) if when == "now" else
                 bs.FUTURE_SKEW + datetime.timedelta(minutes=1))
    assert bs.is_future(t) is (when == "skew")
