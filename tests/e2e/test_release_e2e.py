"""``kestra-ops release`` on the real control plane with the real helm 4: a first install; a
release over a ConfigMap changed by ``config patch`` (item 1); a crash-looping new revision that
is rolled back with its evidence read BEFORE the rollback (item 3); a failed release is never
"no changes" (item 2). The checklist's Kestra and MinIO items talk to test servers on loopback
(``--kestra-url``; the service-proxy path is covered by test_check_e2e.py). Assertions read the
cluster through the API and helm's own history."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import SECRETS
from tests.e2e.support import ROOT, wait_until
from tests.fakes.kestra_server import FakeKestra
from tests.fakes.minio_health import MinioHealth

USERNAME = "platform-admin@example.com"  # kestra.server.basic-auth.username in values/base.yaml
CRASH = "\n  podAnnotations:\n    fake-kubelet/state: crashloop\n"


@pytest.fixture
def servers(install, monkeypatch):
    """Kestra's API and MinIO's health endpoints on loopback, as the env's."""
    kestra = FakeKestra(USERNAME, SECRETS["KESTRA_OPS_BASIC_AUTH_PASSWORD"],
                        step_seconds=0.02).start()
    minio = MinioHealth().start()
    monkeypatch.setenv("KESTRA_OPS_KESTRA_URL", kestra.url)
    monkeypatch.setenv("KESTRA_OPS_MINIO_ENDPOINT", minio.endpoint)
    monkeypatch.setenv("KESTRA_OPS_MINIO_SECURE", "false")
    try:
        yield kestra
    finally:
        kestra.stop()
        minio.stop()


def release(install, *args: str) -> tuple[int, dict]:
    result = install.run("release", "--env", "dev", "--yes", "--skip-bucket", "--skip-backup",
                         "--check-timeout", "60s", "--output", "json", *args)
    assert result.exit_code in (0, 1, 130), result.stdout + result.stderr
    return result.exit_code, json.loads(result.stdout)


def statuses(install) -> list[str]:
    return [r["status"] for r in install.history()]


def test_first_install_then_nothing_to_change(install, servers):
    code, data = release(install)
    assert code == 0, data["message"]
    assert data["outcome"] == "released" and data["revision_after"] == 1
    assert statuses(install) == ["deployed"]
    assert install.deployment()["status"].get("readyReplicas") == 1
    assert install.lease() is None
    code, again = release(install)
    assert code == 0 and again["outcome"] == "unchanged"
    assert statuses(install) == ["deployed"]


def test_release_over_a_config_patch_takes_the_field_back(install, servers):
    assert release(install)[0] == 0
    install.run_ok("config", "patch", "--env", "dev", "--set",
                   "kestra.server.termination-grace-period=4m", "--yes")
    code, data = release(install)
    assert code == 0, data["message"]
    assert data["outcome"] == "released" and data["force_conflicts"] is True
    assert any("kestra-ops" in line and ".data.application.yml" in line
               for line in data["drift"])
    assert statuses(install) == ["superseded", "deployed"]
    assert install.app_yml()["kestra"]["server"]["termination-grace-period"] == "5m"


def test_crashloop_release_rolls_back_with_the_evidence(install, servers):
    assert release(install)[0] == 0
    ready_pod = install.pods()[0]["metadata"]["name"]
    install.overlay().write_text(install.overlay().read_text().replace(
        "  workerThreads: 8\n", "  workerThreads: 8" + CRASH, 1))
    code, data = release(install, "--timeout", "15s", "--rollback-timeout", "60s")
    assert code == 1 and data["outcome"] == "rolled-back", data["message"]
    assert data["rolled_back_to"] == 1 and data["revision_after"] == 2
    assert "the upgrade failed" in data["message"]
    # the evidence was read while the crash-looping pod existed, before the rollback
    names = [s["name"] for s in data["steps"]]
    evidence = next(i for i, n in enumerate(names) if n.startswith("evidence:"))
    rollback = next(i for i, n in enumerate(names) if n.startswith("helm rollback"))
    assert evidence < rollback
    found = {item["id"]: item for item in data["explanation"]}
    assert "CrashLoopBackOff" in json.dumps(found["pods"]), found
    assert "BackOff" in json.dumps(found["events"])
    crashed = [d for d in found["pods"]["details"] if ready_pod not in d]
    assert crashed, "the evidence names the new revision's pod"
    # the cluster is back on revision 1's spec, ready
    assert statuses(install) == ["superseded", "failed", "deployed"]
    template = install.deployment()["spec"]["template"]["metadata"].get("annotations") or {}
    assert "fake-kubelet/state" not in template
    wait_until("the rolled-back pods to be ready",
               lambda: install.deployment()["status"].get("readyReplicas") == 1)
    assert data["recheck"]["ok"] is True
    assert install.lease() is None


def test_a_failed_release_is_never_no_changes(install, servers):
    assert release(install)[0] == 0
    # helm itself leaves a failed revision (its wait gave up on a crash loop)
    crash = install.root / "crash.yaml"
    crash.write_text("standalone:" + CRASH)
    values = [arg for name in ("base.yaml", "dev.yaml")
              for arg in ("-f", str(install.root / "values" / name))]
    failed = install.helm("upgrade", "kestra", str(ROOT / "charts" / "kestra"), *values, "-f",
                          str(crash), "--wait", "--timeout", "10s", check=False)
    assert failed.returncode != 0 and statuses(install) == ["deployed", "failed"]
    # helm 4's description of it spans two lines; `history` keeps one line per revision
    assert "\n" in install.history()[-1]["description"]
    table = install.run_ok("history", "--env", "dev").stdout.splitlines()
    assert len([line for line in table if "failed" in line]) == 1
    assert len(table) == 2 + 2  # title, header, one line per revision

    dry = install.run("deploy", "--env", "dev", "--dry-run", "--detailed-exitcode",
                      "--skip-bucket")
    assert dry.exit_code == 3, dry.stdout + dry.stderr
    assert "failed at revision 2" in dry.stdout
    code, data = release(install)
    assert code == 0 and data["outcome"] == "released", data["message"]
    assert any("failed at revision 2" in w for w in data["warnings"])
    assert statuses(install) == ["superseded", "failed", "deployed"]
    wait_until("the repaired pods to be ready",
               lambda: install.deployment()["status"].get("readyReplicas") == 1)


def test_failing_check_after_helm_succeeded_is_failed_on_every_line(install, servers):
    """Helm's wait passes, the end-to-end flow fails: rolled back, and the progress line of the
    check step says FAIL as the summary does (item 5)."""
    assert release(install)[0] == 0
    servers.flow_store.rules.fail_markers = ("io.kestra.plugin.core.log.Log",)
    install.edit_overlay("workerThreads: 8", "workerThreads: 9")
    result = install.run("release", "--env", "dev", "--yes", "--skip-bucket", "--skip-backup",
                         "--check-timeout", "5s")
    assert result.exit_code == 1, result.stdout + result.stderr
    done = [line.split() for line in result.stderr.splitlines() if line.startswith("  ")
            and line.rstrip().endswith("s)")]
    marks = {" ".join(words[1:3]): words[0] for words in done}
    assert marks["check (wait"] == "FAIL" and marks["helm rollback"] == "PASS", done
    assert "rolled back to revision 1" in result.stdout
    assert [r["status"] for r in install.history()] == ["superseded", "superseded", "deployed"]
    args = install.deployment()["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "9" not in args
