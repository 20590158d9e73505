"""kestra-ops history / rollback against the recording helm stand-in and the fake Kubernetes API.

Both Helm 3 and Helm 4 stand-ins; through Click's runner and through the library."""

from __future__ import annotations

import io
import json
import signal
import threading
import time

import pytest
from click.testing import CliRunner

from kestra_ops.adapters.helm import Helm
from kestra_ops.adapters.kube import Kube
from kestra_ops.cli import cli
from kestra_ops.errors import Aborted, InvalidInput, NotFound
from kestra_ops.settings import load_config
from kestra_ops.workflows.deploy.lock import LEASE_NAME, identity
from kestra_ops.workflows.deploy.rollback import History, plan_rollback, release_history, rollback
from tests.helpers_cli import changes, lease, run

NS = "hyperplane-kestra"
VERSIONS = ["v3.17.3", "v4.1.4"]
MIXED = ["superseded", "superseded", "failed", "deployed"]  # revision 4 is current


@pytest.fixture
def project(tmp_path, monkeypatch, fake_kube):
    """An empty project dir (embedded dev/staging/production config) wired to the fake API."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KESTRA_OPS_CONFIG", raising=False)
    return tmp_path


@pytest.fixture
def standin(helm_standin, project):
    return helm_standin("v4.1.4")


@pytest.fixture(params=VERSIONS)
def each_standin(request, helm_standin, project):
    """For the tests where Helm 3 and Helm 4 could differ."""
    return helm_standin(request.param)


def dev():
    return load_config().environment("dev")


class Terminal(io.BytesIO):
    """stdin as a terminal the user answers on."""

    def isatty(self) -> bool:
        return True


# ------------------------------------------------------------------------------ history
def test_history_table_marks_current_and_statuses(standin):
    standin.state.seed(MIXED)
    result = run("history", "--env", "dev")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "release kestra in hyperplane-kestra (dev)"
    assert lines[1].split()[:4] == ["REVISION", "UPDATED", "(UTC)", "STATUS"]
    rows = [line.split() for line in lines[2:]]
    assert [r[0] for r in rows[:3]] == ["1", "2", "3"] and rows[3][:2] == ["*", "4"]
    assert [r[4] if r[0] == "*" else r[3] for r in rows] == MIXED
    call = standin.calls("history")[0]
    assert call[:2] == ["history", "kestra"] and "json" in call
    assert call[call.index("--kube-context") + 1] == "fake"


def test_history_json(each_standin):
    each_standin.state.seed(MIXED)
    result = run("history", "--env", "dev", "--output", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["env"], data["release"], data["namespace"], data["current"]) == \
        ("dev", "kestra", NS, 4)
    assert [r["status"] for r in data["revisions"]] == MIXED
    assert set(data["revisions"][0]) == {"revision", "status", "chart", "app_version", "updated",
                                         "description"}
    assert data["revisions"][2]["description"].startswith('Upgrade "kestra" failed')


def test_history_of_a_missing_release_exits_1(standin):
    result = run("history", "--env", "dev")
    assert result.exit_code == 1
    assert "release 'kestra' not found in namespace 'hyperplane-kestra'" in result.output


def test_history_warns_about_a_pending_release(standin):
    standin.state.seed(["deployed", "pending-upgrade"])
    result = CliRunner().invoke(cli, ["history", "--env", "dev"])
    assert result.exit_code == 0
    assert ("warning: revision 2 is pending-upgrade: an interrupted helm left it; `kestra-ops "
            "rollback --env dev` repairs it") in result.stdout
    data = json.loads(CliRunner().invoke(cli, ["history", "--env", "dev", "-o", "json"]).stdout)
    assert data["warnings"] == [next(line for line in result.stdout.splitlines()
                                     if "warning:" in line).split("warning: ", 1)[1]]


# ------------------------------------------------------------------------------ plan
def _history(statuses):
    from kestra_ops.adapters.helm import Revision

    return History("dev", "kestra", NS, [Revision(i, s, "kestra-0.1.0", "1.3.0", "", "")
                                         for i, s in enumerate(statuses, start=1)])


def test_plan_picks_the_previous_good_revision():
    assert plan_rollback(_history(MIXED)).target.revision == 2
    assert plan_rollback(_history(["deployed", "pending-upgrade"])).target.revision == 1
    with pytest.raises(NotFound, match="no deployed or superseded revision before revision 2"):
        plan_rollback(_history(["failed", "deployed"]))


@pytest.mark.parametrize("to,why", [(9, "has no revision 9"), (3, "revision 3 of kestra is "
                                    "failed"), (4, "revision 4 is the current revision")])
def test_plan_refuses_bad_targets(to, why):
    with pytest.raises(InvalidInput, match=why):
        plan_rollback(_history(MIXED), to)


# ------------------------------------------------------------------------------ rollback (CLI)
def test_rollback_default_target_json(each_standin, project, fake_kube):
    each_standin.state.seed(MIXED)
    result = CliRunner().invoke(
        cli, ["rollback", "--env", "dev", "--yes", "--output", "json", "--timeout", "2m"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["from_revision"], data["to_revision"], data["new_revision"]) == (4, 2, 5)
    assert data["ok"] is True and data["new"]["description"] == "Rollback to 2"
    assert (data["command"], data["status"], data["outcome"]) == ("rollback", "pass",
                                                                  "rolled-back")
    assert [(s["name"], s["status"]) for s in data["steps"]] == [
        ("helm history kestra", "pass"), ("compare revision 2 with the live objects", "warn"),
        ("helm rollback kestra to revision 2 (wait 2m)", "pass")]
    assert data["steps"][-1]["detail"] == "revision 5 deployed"
    assert data["lock_holder"] == identity()
    assert each_standin.state.statuses()[-2:] == [(4, "superseded"), (5, "deployed")]
    (call,) = each_standin.calls("rollback")
    assert call[:3] == ["rollback", "kestra", "2"]
    assert call[call.index("--timeout") + 1] == "120s" and "--wait" in call
    assert "--atomic" not in call and "--rollback-on-failure" not in call
    assert lease(fake_kube) is None
    assert fake_kube.requests_matching("POST", "/leases"), "the lock was never taken"
    (entry,) = changes(project)
    assert (entry["action"], entry["env"], entry["target"], entry["before"], entry["after"]) == \
        ("rollback", "dev", "release kestra", 4, 5)


def test_rollback_to_named_revision_text(standin):
    standin.state.seed(MIXED)
    result = run("rollback", "--env", "dev", "--to", "1", "--yes")
    assert result.exit_code == 0, result.output
    assert "from revision 4 to 1: new revision 5, deployed" in result.output
    assert standin.calls("rollback")[0][:3] == ["rollback", "kestra", "1"]


@pytest.mark.parametrize("to", ["9", "3", "4"])
def test_rollback_bad_revision_exits_2_and_changes_nothing(standin, project, fake_kube, to):
    standin.state.seed(MIXED)
    result = run("rollback", "--env", "dev", "--to", to, "--yes")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1].startswith("error: ")
    assert "Traceback" not in result.output
    assert standin.calls("rollback") == [] and changes(project) == []
    assert not fake_kube.requests_matching(path_contains="/leases")


def test_rollback_bad_timeout_exits_2(standin):
    result = run("rollback", "--env", "dev", "--timeout", "ten minutes", "--yes")
    assert result.exit_code == 2 and "invalid duration" in result.output


def test_rollback_without_a_terminal_and_without_yes_is_refused(standin, project, fake_kube):
    standin.state.seed(MIXED)
    result = run("rollback", "--env", "dev")  # no --yes, stdin is no terminal
    assert result.exit_code == 2
    assert ("error: refusing to roll back dev without --yes (stdin is not a terminal); nothing "
            "was changed") in result.stderr
    assert "revision 4 (deployed" in result.stderr and "revision 2 (superseded" in result.stderr
    assert standin.calls("rollback") == [] and changes(project) == []
    assert not fake_kube.requests_matching(path_contains="/leases")


def test_rollback_confirmed_on_a_terminal(standin):
    standin.state.seed(MIXED)
    result = run("rollback", "--env", "dev", input=Terminal(b"y\n"))
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == \
        "rollback dev: release kestra in hyperplane-kestra (context fake)"
    assert "roll back dev? [y/N]" in result.stderr
    assert standin.state.statuses()[-1] == (5, "deployed")


def test_rollback_declined_on_a_terminal(standin, project, fake_kube):
    standin.state.seed(MIXED)
    result = run("rollback", "--env", "dev", input=Terminal(b"n\n"))
    assert result.exit_code == 1, result.output
    assert "error: aborted, nothing changed" in result.stderr
    assert standin.calls("rollback") == [] and changes(project) == []
    assert not fake_kube.requests_matching(path_contains="/leases")


def test_rollback_refused_while_someone_holds_the_lock(standin, project, fake_kube):
    standin.state.seed(MIXED)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.123456Z", time.gmtime())
    fake_kube.seed({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": LEASE_NAME, "namespace": NS},
                    "spec": {"holderIdentity": "alice@ci:42", "leaseDurationSeconds": 900,
                             "acquireTime": stamp, "renewTime": stamp}})
    result = run("rollback", "--env", "dev", "--yes")
    assert result.exit_code == 1
    assert "the deploy lock is held by alice@ci:42" in result.output
    assert standin.calls("rollback") == [] and changes(project) == []
    assert lease(fake_kube)["spec"]["holderIdentity"] == "alice@ci:42"


def test_failed_helm_rollback_exits_1_releases_lock_and_logs(each_standin, project, fake_kube):
    each_standin.state.seed(MIXED)
    each_standin.state.set_fault("rollback", "fail", "Deployment kestra-standalone not ready")
    result = run("rollback", "--env", "dev", "--yes")
    assert result.exit_code == 1
    assert ("error: helm rollback kestra to revision 2: release kestra failed: Deployment "
            "kestra-standalone not ready") in result.output
    assert each_standin.state.statuses()[-1] == (5, "failed")
    assert lease(fake_kube) is None
    (entry,) = changes(project)
    assert entry["after"] == 5 and entry["status"] == "failed" and "not ready" in entry["error"]


# ------------------------------------------------------------------------------ library
def _kube():
    return Kube(context="fake", namespace=NS)


def test_library_history_and_rollback(standin, project, fake_kube):
    standin.state.seed(["superseded", "deployed"])
    env = dev()
    assert [r.status for r in release_history(env).revisions] == ["superseded", "deployed"]
    asked = []
    result = rollback(env, kube=_kube(), confirm=lambda plan: asked.append(plan) or True)
    assert asked[0].target.revision == 1 and result.new.revision == 3 and result.ok
    with pytest.raises(Aborted):
        rollback(env, kube=_kube(), confirm=lambda plan: False)
    assert standin.state.statuses()[-1] == (3, "deployed")


def test_lock_is_held_during_rollback_and_released_after(standin, project, fake_kube):
    standin.state.seed(MIXED)
    gate = project / "let-helm-finish"
    standin.state.set_fault("rollback", "hang", until=str(gate), seconds=20)
    outcome = {}

    def work():
        try:
            outcome["result"] = rollback(dev(), kube=_kube(), helm=Helm(context="fake"))
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            outcome["error"] = err

    worker = threading.Thread(target=work)
    worker.start()
    try:
        assert fake_kube.wait_until(  # helm is in the middle of the rollback...
            lambda: standin.state.statuses()[-1] == (5, "pending-rollback"), timeout=10)
        held = lease(fake_kube)  # ...and the lock is ours
        assert held["spec"]["holderIdentity"] == identity()
        assert held["metadata"]["annotations"]["kestra-ops/operation"] == "rollback"
    finally:
        gate.touch()
        worker.join(20)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].new.revision == 5 and lease(fake_kube) is None


def test_ctrl_c_during_rollback_releases_the_lock(standin, project, fake_kube):
    standin.state.seed(MIXED)
    standin.state.set_fault("rollback", "hang", seconds=20)
    main = threading.get_ident()

    def press_ctrl_c():
        fake_kube.wait_until(lambda: standin.state.statuses()[-1][1] == "pending-rollback",
                             timeout=10)
        time.sleep(0.1)  # let the stand-in reach its wait
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        rollback(dev(), kube=_kube(), helm=Helm(context="fake", interrupt_grace=5))
    assert time.monotonic() - started < 10
    assert lease(fake_kube) is None
    # helm's rollback does not trap SIGINT: like the real one it dies and leaves pending-rollback,
    # which history shows and a later rollback repairs
    assert standin.state.statuses()[-1] == (5, "pending-rollback")
    assert changes(project) == []
