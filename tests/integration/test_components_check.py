"""``check --only components`` against the fake Kubernetes API (its pod proxy reaching Kestra's
management endpoints of tests/fakes/kestra_health.py), for the standalone install of
tests/helpers_checks and for a distributed one rendered by the real chart; and the release's
own checklist waiting for the components, then rolling back when one stays down."""

from __future__ import annotations

import json

import yaml

from tests.fakes.kestra_health import KestraHealth
from tests.helpers_checks import DEP, NS, ROOT, install  # noqa: F401
from tests.integration.release_support import after_rollback, after_upgrade, release

COMPONENTS = ("webserver", "executor", "scheduler", "worker")


def components(install, *args) -> tuple[int, dict]:
    result = install.run("--only", "components", "--output", "json", *args)
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.stdout)
    return result.exit_code, next(c for c in data["checks"] if c["id"] == "components")


def go_distributed(install, tmp_path) -> None:
    """The chart's distributed Deployments (real ``helm template``, mode: distributed) instead
    of kestra-standalone, made ready by the fake's controllers."""
    from kestra_ops.adapters.helm_cli import template

    extra = tmp_path / "distributed.yaml"
    extra.write_text("mode: distributed\n")
    values = [ROOT / "values" / "base.yaml", ROOT / "values" / "dev.yaml", extra]
    rendered = template(ROOT / "charts" / "kestra", values, release="kestra", namespace=NS)
    assert rendered.ok, rendered.stderr
    deps = [d for d in yaml.safe_load_all(rendered.stdout) if d and d["kind"] == "Deployment"]
    assert sorted(d["metadata"]["name"] for d in deps) == sorted(
        f"kestra-{c}" for c in COMPONENTS)
    install.kube.store.delete("deployments", NS, DEP, propagation="Background")
    install.kube.seed(*deps)

    def ready() -> bool:
        live = [p for p in install.pods("kestra-") if not p["metadata"]["name"].startswith(
            ("kestra-post-install", "kestra-postgres", DEP))]
        return len(live) == 6 and all(
            cs.get("ready") for p in live for cs in p["status"].get("containerStatuses", [{}]))
    install.wait_pods(ready)


# --------------------------------------------------------------------------- standalone

def test_a_healthy_standalone_server_passes(install):
    result = install.run("--only", "components")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].startswith("  PASS  components  1 component(s) in hyperplane-kestra ready "
                               "and healthy: standalone")
    # one line per component under the item, even when it passes
    assert lines[2].strip() == ("standalone (deployment kestra-standalone): 1/1 ready; no "
                                "restart since the last deploy; health UP on 1 pod(s)")
    assert "restarts counted since release kestra revision 2" in result.output
    # asked through the API server's pod proxy, on the pod's management port, at /health
    asked = install.kube.requests_matching("GET", "/proxy/")
    assert [r.path.split("/pods/")[1] for r in asked] == [
        f"{install.pod(DEP)['metadata']['name']}:8081/proxy/health"]
    assert install.health.requests == ["/health"]


def test_json_lists_each_component(install):
    code, item = components(install)
    assert code == 0 and item["status"] == "pass"
    [row] = item["items"]
    assert (row["component"], row["deployment"], row["desired"], row["ready"],
            row["restarts"]) == ("standalone", DEP, 1, 1, 0)
    assert row["health"] == [{"pod": install.pod(DEP)["metadata"]["name"], "status": "pass",
                              "code": 200, "health": "UP"}]


def test_health_down_fails_the_component(install):
    install.health.down = True
    code, item = components(install)
    assert code == 1 and item["status"] == "fail"
    assert "standalone (deployment kestra-standalone)" in item["reason"]
    assert "DOWN (HTTP 503)" in item["reason"]


def test_no_get_on_pods_proxy_is_a_clear_warning(install):
    install.kube.deny("get", "pods/proxy", NS)
    code, item = components(install)
    assert code == 0 and item["status"] == "warn"
    assert "not checked: needs get on pods/proxy" in item["reason"]
    assert 'cannot get resource "pods/proxy"' in item["reason"]
    assert install.health.requests == []


def test_a_pod_the_api_server_cannot_reach_warns(install):
    install.kube.pod_servers.clear()  # nothing listens on the pod's 8081
    code, item = components(install)
    assert code == 0 and item["status"] == "warn"
    assert "not reached through the API server's pod proxy (error trying to reach service: " \
           "dial tcp" in item["reason"]


def test_a_crash_looping_server_fails_with_its_restarts(install):
    install.kube.controller.set_failure(DEP, "crashloop")
    install.wait_pods(lambda: "CrashLoopBackOff" in json.dumps(install.pod(DEP)["status"]))
    code, item = components(install)
    assert code == 1 and "CrashLoopBackOff" in item["reason"]
    assert item["items"][0]["ready"] == 0


def test_wait_waits_for_the_component(install):
    install.health.down_times = 2
    code, item = components(install, "--wait", "20s")
    assert code == 0 and item["status"] == "pass" and item["attempts"] == 3


# --------------------------------------------------------------------------- distributed

def test_a_distributed_install_passes_one_line_per_component(install, tmp_path):
    go_distributed(install, tmp_path)
    code, item = components(install)
    assert code == 0, item
    assert [r["component"] for r in item["items"]] == list(COMPONENTS)
    assert {(r["component"], r["ready"], r["desired"]) for r in item["items"]} == {
        ("webserver", 2, 2), ("executor", 1, 1), ("scheduler", 1, 1), ("worker", 2, 2)}
    assert all(len(r["health"]) == r["desired"] for r in item["items"])
    result = install.run("--only", "components")
    for name in COMPONENTS:
        assert f"{name} (deployment kestra-{name}): " in result.output


def test_one_distributed_component_down_fails_naming_it(install, tmp_path):
    go_distributed(install, tmp_path)
    with KestraHealth(down=True) as down:
        install.kube.serve_pods(down.url, port=8081, prefix="kestra-scheduler-")
        code, item = components(install)
    assert code == 1
    assert item["reason"].startswith("1 of 4 component(s) in hyperplane-kestra failing: "
                                     "scheduler (deployment kestra-scheduler)")
    assert {r["component"]: r["status"] for r in item["items"]} == {
        "webserver": "pass", "executor": "pass", "scheduler": "fail", "worker": "pass"}


def test_a_deleted_distributed_component_fails(install, tmp_path):
    go_distributed(install, tmp_path)
    install.kube.store.delete("deployments", NS, "kestra-executor", propagation="Background")
    code, item = components(install)
    assert code == 1 and "executor (deployment kestra-executor): missing" in item["reason"]


def test_a_component_short_of_replicas_fails(install, tmp_path):
    go_distributed(install, tmp_path)

    def two(dep):
        dep["spec"]["replicas"] = 3
    install.kube.controller.set_failure("kestra-worker", "never-ready")
    install.kube.store.mutate("deployments", NS, "kestra-worker", two)
    install.wait_pods(lambda: len(install.pods("kestra-worker-")) == 3)
    code, item = components(install)
    assert code == 1 and "worker (deployment kestra-worker)" in item["reason"]
    worker = next(r for r in item["items"] if r["component"] == "worker")
    assert worker["desired"] == 3 and worker["ready"] < 3


# --------------------------------------------------------------------------- release

def test_the_release_waits_for_a_component_coming_up(install, monkeypatch):
    after_upgrade(monkeypatch, lambda: setattr(install.health, "down_times", 2))
    result, data = release(install, "--check-timeout", "30s")
    assert result.exit_code == 0, result.output
    assert data["outcome"] == "released"
    checked = {c["id"]: c for c in data["check"]["checks"]}
    assert checked["components"]["status"] == "pass" and checked["components"]["attempts"] >= 2


def test_a_component_staying_down_rolls_the_release_back(install, monkeypatch):
    after_upgrade(monkeypatch, lambda: setattr(install.health, "down", True))
    after_rollback(monkeypatch, lambda: setattr(install.health, "down", False))
    result, data = release(install, "--check-timeout", "3s")
    assert result.exit_code == 1 and data["outcome"] == "rolled-back", result.output
    assert [e["id"] for e in data["explanation"]] == ["components"]
    assert "DOWN (HTTP 503)" in data["explanation"][0]["reason"]
    assert data["recheck"]["ok"] is True

