"""Golden files of ``check``'s text and JSON renderings (tests/golden/check-*.txt|json): the
checklist judged on RECORDED state (tests/fixtures/checks: a crash loop on the e2e control plane,
Kestra's answers), made into the command's report and rendered as ``emit`` renders it. The
items' times are fixed, so nothing needs normalising here; the CLI's own golden files
(tests/integration/test_check_cli_golden.py) normalise theirs. KESTRA_OPS_UPDATE_GOLDEN=1 rewrites
them."""

from __future__ import annotations

import json

import pytest

from kestra_ops.checks import configmap, events, kestra, pods, storage
from kestra_ops.output import render
from kestra_ops.workflows.check import CheckReport
from tests.fixtures.checks import cluster
from tests.fixtures.checks import kestra as answer
from tests.helpers_golden import assert_golden

NS = "hyperplane-kestra"


def judged(fixture: str, *, login_errors: str = "basic-auth-valid") -> CheckReport:
    """Every item of the checklist on one recorded state, with fixed times."""
    state = cluster(fixture)
    crashed = pods.wanted_logs(state["pods"])
    logs = {(pod, container): ["Starting Kestra", "Exception in thread main: boom"]
            for pod, container, _ in crashed}
    since, label = events.rollout_time(state["deployment"], state["replicasets"])
    execution = answer("execution-success")
    run = kestra.E2ERun("kestra-ops.checks", "check-20261206-004000-abcdef", created=True,
                        execution_id=execution["id"], state=execution["state"]["current"],
                        deleted=True, steps=["created flow kestra-ops.checks.check-20261206-"
                                             "004000-abcdef", "deleted flow kestra-ops.checks."
                                             "check-20261206-004000-abcdef"])
    first = answer("flows-search")["results"][0]
    url = "https://kestra-dev.example.com"
    items = [
        pods.check_pods(state["pods"], logs, NS),
        pods.check_readiness(state["pods"], NS),
        events.check_events(state["events"], since, label, NS,
                            {"Pod": state["pods"], "PersistentVolumeClaim": state["claims"]}),
        storage.check_minio(None, None, None, storage.NO_ENDPOINT),
        kestra.check_api(url, True, None, f"{first['namespace']}.{first['id']}"),
        kestra.check_login("platform-admin@example.com", answer("configs"), answer(login_errors)),
        kestra.check_e2e(run),
        configmap.check_configmap(state["configmap"]),
    ]
    for n, item in enumerate(items):
        item.seconds = 0.05 * (n + 1)
    return CheckReport("dev", NS, items, seconds=1.234, kestra_url=url,
                       kestra_url_source="kestra_url of the environment")


def rendered(report: CheckReport, fmt: str, **kw) -> str:
    return render(report.to_report(), fmt, **kw) + "\n"


@pytest.mark.parametrize("fmt, suffix", [("text", "txt"), ("json", "json")])
def test_a_crash_loop_matches_its_golden_file(fmt, suffix):
    report = judged("crashloop", login_errors="basic-auth-invalid-username")
    assert report.exit_code == 1
    assert_golden(f"check-crashloop.{suffix}", rendered(report, fmt))


@pytest.mark.parametrize("fmt, suffix", [("text", "txt"), ("json", "json")])
def test_a_healthy_install_matches_its_golden_file(fmt, suffix):
    report = judged("healthy")
    assert report.exit_code == 0
    assert_golden(f"check-healthy.{suffix}", rendered(report, fmt))


def test_quiet_text_keeps_only_the_failures():
    text = rendered(judged("crashloop", login_errors="basic-auth-invalid-username"), "text",
                    quiet=True)
    assert_golden("check-crashloop-quiet.txt", text)
    assert [line.split()[1] for line in text.splitlines() if line.startswith("  FAIL")] == [
        "pods", "readiness", "events", "login"]
    assert "PASS" not in text and "WARN" not in text


def test_the_json_keeps_the_keys_scripts_read():
    data = json.loads(rendered(judged("crashloop"), "json"))
    assert {"checks", "counts", "ok", "exit_code", "env", "namespace", "kestra_url",
            "kestra_url_source", "seconds", "warnings"} <= set(data)
    assert data["counts"] == {"pass": 4, "warn": 1, "fail": 3} and data["ok"] is False
    assert data == {**data, **judged("crashloop").to_dict()}  # what release stores, too
    assert all(set(c) >= {"id", "status", "reason", "seconds", "attempts", "details", "items"}
               for c in data["checks"])
