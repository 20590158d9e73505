"""``kestra-ops scale`` on the real control plane with the real helm (issue 16, item 3): standalone
-> distributed -> standalone with the fake Kestra's flows, executions and triggers intact, the
cluster's Deployments and Service read through the API after each step; and a crash-looping
worker (fake-kubelet/state: crashloop on the workers' pod template) that fails the release, which
rolls back to standalone and puts the overlay back. Kestra's API and MinIO's health endpoints are
test servers on loopback (as in test_release_e2e.py)."""

from __future__ import annotations

import json

import pytest

from kestra_ops.adapters.kestra_api import KestraClient
from tests.e2e.conftest import SECRETS
from tests.e2e.support import wait_until
from tests.fakes.kestra_server import FakeKestra
from tests.fakes.minio_health import MinioHealth

USERNAME = "platform-admin@example.com"  # kestra.server.basic-auth.username in values/base.yaml
COMPONENTS = ("kestra-webserver", "kestra-executor", "kestra-scheduler", "kestra-worker")
FLOWS = [
    "id: nightly\nnamespace: company.team\ntasks:\n  - id: log\n"
    "    type: io.kestra.plugin.core.log.Log\n    message: hi\ntriggers:\n  - id: every-night\n"
    "    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 2 * * *\"\n",
    "id: hello\nnamespace: company.team\ntasks:\n  - id: log\n"
    "    type: io.kestra.plugin.core.log.Log\n    message: hello\n",
]
CRASHING_WORKERS = """
distributed:
  worker:
    podAnnotations:
      fake-kubelet/state: crashloop
"""


@pytest.fixture
def kestra(install, monkeypatch):
    """Kestra's API (with two flows, one scheduled, and an execution) and MinIO's health
    endpoints on loopback, as the env's."""
    fake = FakeKestra(USERNAME, SECRETS["KESTRA_OPS_BASIC_AUTH_PASSWORD"],
                      step_seconds=0.02).start()
    minio = MinioHealth().start()
    monkeypatch.setenv("KESTRA_OPS_KESTRA_URL", fake.url)
    monkeypatch.setenv("KESTRA_OPS_MINIO_ENDPOINT", minio.endpoint)
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECURE", "false")
    client = KestraClient(fake.url, fake.username, fake.password)
    for source in FLOWS:
        client.create_flow(source)
    run = client.create_execution("company.team", "hello")
    wait_until("the seeded execution to end", lambda: client.get_execution(run["id"])[
        "state"]["current"] in KestraClient.TERMINAL_STATES)
    client.close()
    try:
        yield fake
    finally:
        fake.stop()
        minio.stop()


def run(install, *args: str) -> tuple[int, dict]:
    result = install.run(*args, "--env", "dev", "--yes", "--skip-bucket", "--skip-backup",
                         "--check-timeout", "60s", "--output", "json")
    assert result.exit_code in (0, 1, 130), result.stdout + result.stderr
    return result.exit_code, json.loads(result.stdout)


def deployments(install) -> dict[str, dict]:
    items = install.get(f"/apis/apps/v1/namespaces/{install.namespace}/deployments")["items"]
    return {d["metadata"]["name"]: d for d in items}


def selector(install) -> str:
    service = install.get(f"/api/v1/namespaces/{install.namespace}/services/kestra")
    return service["spec"]["selector"]["app.kubernetes.io/component"]


def flows(fake) -> set[str]:
    return {f"{f['namespace']}.{f['id']}" for f in fake.all_flows()}


def test_standalone_to_distributed_and_back_loses_nothing(install, kestra):
    code, first = run(install, "release")
    assert code == 0, first["message"]
    seeded = flows(kestra)
    assert seeded == {"company.team.nightly", "company.team.hello"}

    code, out = run(install, "scale", "--mode", "distributed", "--workers", "3")
    assert code == 0 and out["outcome"] == "scaled", out["message"]
    assert "mode: distributed" in install.overlay().read_text()
    before, after = out["counts_before"], out["counts_after"]
    assert before["flows"] == after["flows"] == 2
    assert before["triggers"] == after["triggers"] == 1  # the fake keeps the declared trigger
    assert after["executions"] >= before["executions"] >= 1
    live = deployments(install)
    assert "kestra-standalone" not in live
    for name in COMPONENTS:
        wanted = 3 if name == "kestra-worker" else 2 if name == "kestra-webserver" else 1
        assert live[name]["spec"]["replicas"] == wanted, name
        assert live[name]["status"].get("readyReplicas") == wanted, name
    assert selector(install) == "webserver"
    assert out["components"]["ok"] is True and not out["components"]["problems"]
    assert [r["status"] for r in install.history()] == ["superseded", "deployed"]
    assert flows(kestra) == seeded and install.lease() is None
    # the distributed install passes the whole checklist, each component judged on its own
    # (health on 8081 is not reached here: nothing listens there; a warning, not a failure)
    checked = install.run("check", "--env", "dev", "--output", "json")
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    items = {c["id"]: c for c in json.loads(checked.stdout)["checks"]}
    assert all(c["status"] in ("pass", "warn") for c in items.values()), items
    assert items["pods"]["status"] == items["readiness"]["status"] == "pass"
    rows = {r["component"]: (r["ready"], r["desired"]) for r in items["components"]["items"]}
    assert rows == {"webserver": (2, 2), "executor": (1, 1), "scheduler": (1, 1),
                    "worker": (3, 3)}

    code, back = run(install, "scale", "--mode", "standalone")
    assert code == 0 and back["outcome"] == "scaled", back["message"]
    live = deployments(install)
    assert not set(COMPONENTS) & set(live), sorted(live)
    assert live["kestra-standalone"]["status"].get("readyReplicas") == 1
    assert selector(install) == "standalone"
    assert back["counts_after"]["flows"] == 2 and back["counts_after"]["triggers"] == 1
    assert back["counts_after"]["executions"] >= after["executions"]
    assert flows(kestra) == seeded
    assert "mode: standalone" in install.overlay().read_text()
    assert [r["status"] for r in install.history()] == ["superseded", "superseded", "deployed"]
    # stored like the release report
    stored = install.root / "backups" / "scale" / "dev" / back["started"] / "report.json"
    assert json.loads(stored.read_text())["outcome"] == "scaled"


def test_a_crash_looping_worker_rolls_the_scale_back(install, kestra):
    install.overlay().write_text(install.overlay().read_text() + CRASHING_WORKERS)
    code, first = run(install, "release")
    assert code == 0, first["message"]  # standalone: the workers' annotation renders nothing
    before = install.overlay().read_text()

    code, out = run(install, "scale", "--mode", "distributed", "--timeout", "20s")
    assert code == 1 and out["outcome"] == "rolled-back", out["message"]
    assert out["release"]["outcome"] == "rolled-back"
    assert "stays standalone" in out["message"]
    # helm and the live objects are back on the standalone revision
    assert [r["status"] for r in install.history()] == ["superseded", "failed", "deployed"]
    live = deployments(install)
    assert not set(COMPONENTS) & set(live), sorted(live)
    wait_until("kestra-standalone ready again", lambda: deployments(install)[
        "kestra-standalone"]["status"].get("readyReplicas") == 1)
    assert selector(install) == "standalone"
    # the overlay is put back byte for byte; nothing was lost
    assert install.overlay().read_text() == before
    assert out["overlay_restored"] is True
    assert flows(kestra) == {"company.team.nightly", "company.team.hello"}
    assert install.lease() is None


def test_a_dead_holders_lock_stops_the_scale_before_anything_changes(install, kestra):
    """Worst path: a release killed 2 minutes ago left its 15-minute Lease. The scale stops at
    the lock with the holder named; the overlay, helm's history, the Deployments and the
    Lease are as they were (read through the API); after `lock break` the scale goes through."""
    from tests.e2e.test_lock_e2e import GHOST, seed_dead_holder

    code, first = run(install, "release")
    assert code == 0, first["message"]
    seeded = seed_dead_holder(install)
    before = install.overlay().read_bytes()

    code, out = run(install, "scale", "--mode", "distributed")
    assert code == 1 and out["outcome"] == "failed", out["message"]
    assert f"the deploy lock is held by {GHOST} (release)" in out["message"]
    assert install.overlay().read_bytes() == before and out["overlay_restored"] is None
    assert [r["status"] for r in install.history()] == ["deployed"]
    assert "kestra-standalone" in deployments(install)
    assert not set(COMPONENTS) & set(deployments(install))
    assert install.lease()["metadata"]["resourceVersion"] == \
        seeded["metadata"]["resourceVersion"]

    install.run_ok("lock", "break", "--env", "dev", "--yes")
    code, out = run(install, "scale", "--mode", "distributed")
    assert code == 0 and out["outcome"] == "scaled", out["message"]
    assert set(COMPONENTS) <= set(deployments(install)) and install.lease() is None
