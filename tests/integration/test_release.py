"""kestra-ops release end to end: the fake Kubernetes API, the recording stand-in helm (the real
helm renders), the fake Kestra server and MinIO's health endpoints (helpers_checks.install).
What helm does to the fake cluster is played in the tests (release_support)."""

from __future__ import annotations

import json
import os
import re
import stat

from kestra_ops.adapters.helm import Helm
from kestra_ops.workflows import check as check_workflow
from tests.helpers_checks import DEP, NS, install  # noqa: F401
from tests.integration.release_support import (CHECK, after_rollback, after_upgrade, lock_free,
                                               release, step)


def test_good_release(install):
    templates = len(install.helm.calls("template"))
    result, data = release(install)
    assert result.exit_code == 0, result.output
    assert data["outcome"] == "released"
    assert (data["command"], data["env"], data["status"], data["exit_code"]) == (
        "release", "dev", "pass", 0)
    assert data["revision_before"] == 2 and data["revision_after"] == 3
    assert data["message"] == "release dev: released revision 3 (was 2)"
    names = [s["name"] for s in data["steps"]]
    assert names[0] == "chart lint" and "preflight" in names
    assert any(n.startswith("helm upgrade") for n in names)
    assert any(n.startswith("check (wait") for n in names)
    assert all(s["status"] in ("pass", "skip") for s in data["steps"]), data["steps"]
    # one recorder: the deploy's steps carry their own details in the release's report
    assert step(data, "preflight")["detail"] == "5 checks"
    assert step(data, "diff against the live objects")["detail"].startswith("1 to update")
    assert data["check"]["ok"] and data["check"]["counts"]["fail"] == 0
    assert not install.helm.calls("rollback") and lock_free(install)
    # the chart is rendered once: the lint's render is the diff's
    assert len(install.helm.calls("template")) == templates + 1
    # the pre-release backup: ConfigMap + values of revision 2, private files
    files = data["backup"]["files"]
    for path in files.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert files["values"].endswith("values-2.yaml") and "kestra-config" in open(
        files["configmap"]).read()
    assert "not configured" in data["backup"]["database"]  # no S3 credentials: said, not silent
    report = install.root / "backups" / "releases" / "dev" / data["started"] / "report.json"
    assert json.loads(report.read_text())["outcome"] == "released"


def test_skip_backup_is_reported(install):
    result, data = release(install, "--skip-backup")
    assert result.exit_code == 0
    assert data["backup"]["database"] == "skipped (--skip-backup)"
    assert step(data, "pre-release backup: database")["status"] == "skip"


def test_text_report(install):
    result = install.run("--yes", *CHECK, command="release")
    assert result.exit_code == 0, result.output
    assert "revisions: before 2, after 3, now 3" in result.output
    assert "release dev: released revision 3 (was 2)" in result.output


def test_refused_without_a_terminal_and_without_yes(install):
    result = install.run("--output", "json", *CHECK, command="release")  # stdin: no terminal
    assert result.exit_code == 2, result.output
    data = json.loads(result.stdout)
    assert (data["outcome"], data["status"], data["exit_code"]) == ("refused", "fail", 2)
    assert data["message"] == ("release dev: refusing to release to dev without --yes (stdin is "
                               "not a terminal); nothing was changed")
    assert step(data, "confirm the diff")["status"] == "fail"
    assert "1 to update" in result.stderr  # the diff it would have asked about
    assert not install.helm.calls("upgrade") and lock_free(install)
    assert data["backup"] == {} and data["revision_final"] == 2
    stored = install.root / "backups" / "releases" / "dev" / data["started"] / "report.json"
    assert json.loads(stored.read_text())["outcome"] == "refused"


def test_no_changes(install):
    assert release(install)[0].exit_code == 0
    upgrades = len(install.helm.calls("upgrade"))
    result, data = release(install)
    assert result.exit_code == 0 and data["outcome"] == "unchanged"
    assert "no changes" in data["message"]
    assert len(install.helm.calls("upgrade")) == upgrades and lock_free(install)
    assert data["backup"] == {}  # nothing to back up when nothing is released


def test_crashloop_after_helm_succeeded_rolls_back(install, monkeypatch):
    controller = install.kube.controller

    def crash():  # the new revision's pods crash-loop
        controller.set_failure(DEP, "crashloop")
        install.wait_pods(lambda: "CrashLoopBackOff" in json.dumps(install.pod(DEP)["status"]))
        pod = install.pod(DEP)["metadata"]["name"]
        install.kube.store.set_log(NS, pod, "kestra", "Caused by: fatal thing\n", previous=True)

    after_upgrade(monkeypatch, crash)
    after_rollback(monkeypatch, lambda: controller.set_failure(DEP, None))
    result, data = release(install)
    assert result.exit_code == 1, result.output
    assert data["outcome"] == "rolled-back"
    assert "rolled back to revision 2" in data["message"]
    assert install.helm.calls("rollback")[0][1:3] == ["kestra", "2"]
    assert data["rolled_back_to"] == 2 and data["revision_final"] == 4
    pods = next(e for e in data["explanation"] if e["id"] == "pods")
    text = " ".join([pods["reason"], *pods["details"]])
    assert DEP in text and "CrashLoopBackOff" in text and "Caused by: fatal thing" in text
    assert lock_free(install)
    assert step(data, "helm rollback to revision 2")["status"] == "pass"


def test_credentials_in_the_failing_container_log_are_masked(install, monkeypatch):
    controller = install.kube.controller
    secret_line = (f"Caused by: jdbc:postgresql://kestra:S3cr3t-pw@db:5432/kestra refused; "
                   f"retried with {install.kestra.password}; datasource.password=hunter2")

    def crash():
        controller.set_failure(DEP, "crashloop")
        install.wait_pods(lambda: "CrashLoopBackOff" in json.dumps(install.pod(DEP)["status"]))
        pod = install.pod(DEP)["metadata"]["name"]
        install.kube.store.set_log(NS, pod, "kestra", secret_line + "\n", previous=True)

    after_upgrade(monkeypatch, crash)
    after_rollback(monkeypatch, lambda: controller.set_failure(DEP, None))
    result, data = release(install)
    assert result.exit_code == 1 and data["outcome"] == "rolled-back", result.output
    pods = next(e for e in data["explanation"] if e["id"] == "pods")
    assert any("jdbc:postgresql://kestra:******@db:5432/kestra refused" in d
               for d in pods["details"]), pods["details"]
    stored = (install.root / "backups" / "releases" / "dev" / data["started"] /
              "report.json").read_text()
    for text in (result.output, stored):
        for secret in ("S3cr3t-pw", install.kestra.password, "hunter2"):
            assert secret not in text


def test_failing_test_flow_rolls_back(install, monkeypatch):
    rules = install.kestra.flow_store.rules
    after_upgrade(monkeypatch, lambda: setattr(rules, "fail_markers",
                                               ("io.kestra.plugin.core.log.Log",)))
    after_rollback(monkeypatch, lambda: setattr(rules, "fail_markers", ("Fail",)))
    result = install.run("--yes", *CHECK, command="release")
    assert result.exit_code == 1, result.output
    assert "rolled back to revision 2" in result.output
    assert re.search(r"FAIL +e2e-flow +.*ended FAILED", result.stdout), result.stdout
    assert install.helm.calls("rollback") and lock_free(install)


def test_no_rollback_leaves_the_new_revision(install, monkeypatch):
    rules = install.kestra.flow_store.rules
    after_upgrade(monkeypatch, lambda: setattr(rules, "fail_markers",
                                               ("io.kestra.plugin.core.log.Log",)))
    result, data = release(install, "--no-rollback")
    assert result.exit_code == 1 and data["outcome"] == "failed"
    assert "not rolled back (--no-rollback)" in data["message"]
    assert not install.helm.calls("rollback") and lock_free(install)


def test_interrupted_during_the_upgrade(install, monkeypatch):
    def upgrade(self, *args, **kwargs):
        assert not lock_free(install)  # the lock is held during helm
        install.helm.state.seed(["pending-upgrade"])  # helm was half-way through
        raise KeyboardInterrupt

    monkeypatch.setattr(Helm, "upgrade_install", upgrade)
    result, data = release(install)
    assert result.exit_code == 130, result.output
    assert data["outcome"] == "interrupted"
    assert data["stopped_at"].startswith("helm upgrade --install")
    assert step(data, "helm upgrade")["status"] == "interrupted"
    assert install.helm.calls("rollback")[0][1:3] == ["kestra", "2"]
    assert "rolled back to revision 2" in data["message"]
    assert install.helm.state.statuses()[-1][1] == "deployed" and lock_free(install)


def test_interrupted_during_the_check(install, monkeypatch):
    def check(*args, **kwargs):
        assert not lock_free(install)  # held across the check
        raise KeyboardInterrupt

    monkeypatch.setattr(check_workflow, "run_check", check)
    result = install.run("--yes", *CHECK, command="release")
    assert result.exit_code == 130, result.output
    assert "stopped at: check (wait 2s" in result.output
    assert "rolled back to revision 2" in result.output
    assert lock_free(install)


def test_interrupted_before_the_lock(install, monkeypatch):
    from kestra_ops.workflows.deploy import chart_lint

    def lint(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(chart_lint, "lint_chart", lint)
    result, data = release(install)
    assert result.exit_code == 130 and data["stopped_at"] == "chart lint"
    assert not install.helm.calls("upgrade") and lock_free(install)


def test_progress_lines_agree_with_the_report_when_the_check_fails(install, monkeypatch):
    """Issue 10 item 5: the checklist step ran but failed: its progress line says FAIL."""
    controller = install.kube.controller

    def crash():
        controller.set_failure(DEP, "crashloop")
        install.wait_pods(lambda: "CrashLoopBackOff" in json.dumps(install.pod(DEP)["status"]))

    after_upgrade(monkeypatch, crash)
    after_rollback(monkeypatch, lambda: controller.set_failure(DEP, None))
    result = install.run("--yes", *CHECK, command="release")
    assert result.exit_code == 1, result.output
    done = [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")
            and line.rstrip().endswith("s)")]
    first_check = next(line for line in done if "check (wait" in line)
    assert first_check.startswith("FAIL "), done
    assert next(line for line in done if "helm rollback" in line).startswith("PASS")
    report = [line.split() for line in result.stdout.splitlines()]
    assert ["FAIL", "check", "(wait"] in [words[:3] for words in report]  # the report too
