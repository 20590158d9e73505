"""The helm facade against the recording stand-in (Helm 3 and 4; it renders with the real helm)."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from kestra_ops.adapters.helm import (Helm, UpgradeFailed, error_line, go_duration,
                                      parse_duration)
from kestra_ops.errors import Conflict, InvalidInput, NotFound, OperationFailed

NS = "hyperplane-kestra"
VERSIONS = ["v3.17.3", "v4.1.4"]
FLAG = {"v3.17.3": "--atomic", "v4.1.4": "--rollback-on-failure"}


@pytest.fixture
def chart(tmp_path):
    root = tmp_path / "chart"
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: kestra\nversion: 0.4.2\n"
                                     "appVersion: 1.3.1\n")
    (root / "values.yaml").write_text("greeting: hello\n")
    (root / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kestra-config\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n")
    (tmp_path / "base.yaml").write_text("greeting: base\nkeep: 1\n")
    (tmp_path / "dev.yaml").write_text("greeting: dev\n")
    return root


@pytest.fixture(params=VERSIONS)
def standin(request, helm_standin):
    """Helm 3 and Helm 4: for what differs (flags, messages) or could."""
    return helm_standin(request.param)


@pytest.fixture
def standin4(helm_standin):
    return helm_standin("v4.1.4")


def values(tmp_path):
    return [tmp_path / "base.yaml", tmp_path / "dev.yaml"]


# ------------------------------------------------------------------------------ pure helpers
def test_durations():
    assert parse_duration("10m") == 600 and parse_duration("1h30m") == 5400
    assert parse_duration("1.5s") == 1.5 and parse_duration(90) == 90 and parse_duration("45") == 45
    assert go_duration("10m") == "600s" and go_duration(90) == "90s" and go_duration(0.5) == "500ms"
    assert parse_duration("PT5M") == 300 and go_duration("PT1H30M") == "5400s"  # one grammar
    for bad in ("ten minutes", "", "5x", "-1s", "0s", "1m x", 0):
        with pytest.raises(InvalidInput):
            parse_duration(bad)


def test_error_line_keeps_helms_whole_error_on_one_line():
    stderr = ('level=WARN msg="upgrade failed" name=kestra error="x"\n'
              "Error: UPGRADE FAILED: release kestra failed: resource not ready. status: "
              "InProgress\ncontext deadline exceeded\n")
    assert error_line(stderr) == ("UPGRADE FAILED: release kestra failed: resource not ready. "
                                  "status: InProgress; context deadline exceeded")
    assert error_line("just a line\n\n") == "just a line"


# ------------------------------------------------------------------------------ reads
def test_reads_in_helms_shapes(standin4):
    standin4.state.seed(["superseded", "failed", "deployed"], values={"greeting": "hi"})
    helm = Helm(context="fake")
    revisions = helm.history("kestra", NS)
    assert [(r.revision, r.status) for r in revisions] == [(1, "superseded"), (2, "failed"),
                                                           (3, "deployed")]
    assert revisions[0].chart == "kestra-0.1.0" and revisions[0].app_version == "1.3.0"
    assert revisions[1].description == 'Upgrade "kestra" failed: context deadline exceeded'
    status = helm.status("kestra", NS)
    assert (status.revision, status.status, status.pending) == (3, "deployed", False)
    assert helm.current_values("kestra", NS) == {"revision": 3, "greeting": "hi"}
    assert helm.current_values("kestra", NS, revision=1)["revision"] == 1
    assert "kind: ConfigMap" in helm.manifest("kestra", NS, revision=2)
    for call in standin4.calls("history") + standin4.calls("get values"):
        assert call[call.index("--kube-context") + 1] == "fake"
    # reads need no version, and pyhelm3's Client (whose constructor runs `helm version
    # --template '{{ .Version }}'` through a shell) is never built
    assert standin4.calls("version") == []


def test_missing_release_and_revision_are_not_found(standin4):
    helm = Helm()
    with pytest.raises(NotFound, match="release 'kestra' not found in namespace"):
        helm.history("kestra", NS)
    standin4.state.seed(["deployed"])
    with pytest.raises(NotFound, match="has no revision 7"):
        helm.current_values("kestra", NS, revision=7)


# ------------------------------------------------------------------------------ upgrade
def test_upgrade_install_sends_the_right_flags(standin, chart, tmp_path):
    standin.state.seed(["superseded", "deployed"])
    rev = Helm().upgrade_install("kestra", chart, NS, values(tmp_path), timeout="10m")
    assert (rev.revision, rev.status, rev.chart, rev.app_version) == \
        (3, "deployed", "kestra-0.4.2", "1.3.1")
    assert rev.description == "Upgrade complete"
    (call,) = standin.calls("upgrade")
    other = next(flag for version, flag in FLAG.items() if version != standin.version)
    assert FLAG[standin.version] in call and other not in call
    assert standin.calls("version") == [["version", "--template", "{{.Version}}"]]
    assert "--create-namespace" not in call and "--install" in call and "--wait" in call
    assert [call[i + 1] for i, a in enumerate(call) if a == "--values"] == \
        [str(p) for p in values(tmp_path)]
    assert call[call.index("--timeout") + 1] == "600s"
    assert standin.state.records()[-1]["config"] == {"greeting": "dev", "keep": 1}
    assert 'greeting: "dev"' in Helm().manifest("kestra", NS)  # rendered by the real helm


def test_failed_upgrade_is_rolled_back(standin, chart, tmp_path):
    standin.state.seed(["superseded", "deployed"])
    standin.state.set_fault("upgrade", "fail", "Deployment kestra-standalone not ready")
    with pytest.raises(UpgradeFailed) as failed:
        Helm().upgrade_install("kestra", chart, NS, values(tmp_path), timeout="5m")
    why = "rollback-on-failure" if standin.version.startswith("v4") else "atomic"
    assert failed.value.rolled_back is True and "\n" not in str(failed.value)
    assert f"has been rolled back due to {why} being set" in str(failed.value)
    assert standin.state.statuses() == [(1, "superseded"), (2, "superseded"), (3, "failed"),
                                        (4, "deployed")]


def test_failed_upgrade_without_rollback_stays_failed(standin, chart, tmp_path):
    standin.state.seed(["deployed"])
    standin.state.set_fault("upgrade", "fail", "boom")
    with pytest.raises(UpgradeFailed, match="UPGRADE FAILED: boom") as failed:
        Helm().upgrade_install("kestra", chart, NS, values(tmp_path), timeout="5m",
                               rollback_on_failure=False)
    assert failed.value.rolled_back is False
    assert all(flag not in standin.calls("upgrade")[0] for flag in FLAG.values())
    assert standin.state.statuses() == [(1, "deployed"), (2, "failed")]


def test_pending_release_is_a_conflict(standin4, chart, tmp_path):
    standin4.state.seed(["deployed", "pending-upgrade"])
    with pytest.raises(Conflict, match="another operation") as refused:
        Helm().upgrade_install("kestra", chart, NS, values(tmp_path), timeout="5m")
    assert "kestra-ops rollback" in refused.value.hint


def test_dry_run_writes_no_revision(standin4, chart, tmp_path):
    standin4.state.seed(["deployed"])
    rev = Helm().upgrade_install("kestra", chart, NS, values(tmp_path), timeout="5m",
                                 dry_run=True)
    assert rev.revision == 2 and rev.description == "Dry run complete"
    assert "--dry-run=server" in standin4.calls("upgrade")[0]
    assert standin4.state.statuses() == [(1, "deployed")]


def test_ctrl_c_lets_helm_fail_and_roll_back_not_leave_it_pending(standin4, chart, tmp_path):
    standin4.state.seed(["deployed"])
    standin4.state.set_fault("upgrade", "hang", seconds=20)
    main, told = threading.get_ident(), []

    def press_ctrl_c():
        _wait(lambda: standin4.state.statuses()[-1] == (2, "pending-upgrade"))
        time.sleep(0.1)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        Helm(interrupt_grace=10).upgrade_install("kestra", chart, NS, values(tmp_path),
                                                 timeout="5m", on_interrupt=lambda: told.append(1))
    assert told == [1]
    assert standin4.state.statuses() == [(1, "superseded"), (2, "failed"), (3, "deployed")]
    assert standin4.state.records()[1]["info"]["description"].endswith("context canceled")


def test_a_hung_helm_is_stopped_at_the_deadline(standin4, chart, tmp_path):
    standin = standin4
    standin.state.seed(["deployed"])
    standin.state.set_fault("upgrade", "hang", seconds=20)
    started = time.monotonic()
    with pytest.raises(OperationFailed, match="did not finish within 0.4s"):
        Helm().upgrade_install("kestra", chart, NS, values(tmp_path), timeout="300ms",
                               grace=0.1, rollback_on_failure=False)
    assert time.monotonic() - started < 8
    assert standin.state.statuses() == [(1, "deployed"), (2, "failed")]


# ------------------------------------------------------------------------------ offline
def test_lint_and_template_are_the_adapters_too(standin4, chart, tmp_path):
    helm = Helm(context="fake")
    linted = helm.lint(chart, values(tmp_path), namespace=NS)
    assert linted.ok, linted.stderr
    rendered = helm.template(chart, values(tmp_path), release="kestra", namespace=NS,
                             kube_version="1.31.0")
    assert rendered.ok and 'greeting: "dev"' in rendered.stdout  # the real helm rendered it
    (lint,) = standin4.calls("lint")
    assert lint[:2] == ["lint", str(chart)] and "--strict" in lint
    (template,) = standin4.calls("template")
    assert template[template.index("--kube-version") + 1] == "1.31.0"
    assert [template[i + 1] for i, a in enumerate(template) if a == "-f"] == \
        [str(p) for p in values(tmp_path)]


def test_for_env_takes_the_envs_context_and_kubeconfig(tmp_path, monkeypatch):
    from kestra_ops.settings import Environment

    env = Environment(name="dev", root=tmp_path, context="prod-cluster")
    monkeypatch.setenv("KESTRA_OPS_KUBECONFIG", str(tmp_path / "kubeconfig"))
    helm = Helm.for_env(env, helm="/opt/helm")
    assert (helm.context, helm.kubeconfig) == ("prod-cluster", str(tmp_path / "kubeconfig"))
    assert env.kubeconfig == helm.kubeconfig  # read in one place: the environment
    assert Helm.for_env(env, helm=helm) is helm  # a Helm given is the one used
    monkeypatch.delenv("KESTRA_OPS_KUBECONFIG")
    assert Helm.for_env(env).kubeconfig is None


# ------------------------------------------------------------------------------ others
def test_rollback_returns_the_new_revision(standin):
    standin.state.seed(["superseded", "deployed"])
    rev = Helm().rollback("kestra", NS, 1, timeout="3m")
    assert (rev.revision, rev.status, rev.description) == (3, "deployed", "Rollback to 1")
    with pytest.raises(NotFound, match="has no revision 9"):
        Helm().rollback("kestra", NS, 9, timeout="3m")


def test_dependency_update_only_with_dependencies(standin4, chart, tmp_path):
    standin = standin4
    assert Helm().dependency_update(chart) is False
    assert standin.calls("dependency") == []
    sub = tmp_path / "sub"
    (sub / "templates").mkdir(parents=True)
    (sub / "Chart.yaml").write_text("apiVersion: v2\nname: sub\nversion: 0.1.0\n")
    with (chart / "Chart.yaml").open("a") as fh:
        fh.write("dependencies:\n- name: sub\n  version: 0.1.0\n  repository: file://../sub\n")
    assert Helm().dependency_update(chart) is True
    assert standin.calls("dependency") == [["dependency", "update", str(chart)]]
    assert (chart / "charts" / "sub-0.1.0.tgz").is_file()  # the real helm did the work


def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
