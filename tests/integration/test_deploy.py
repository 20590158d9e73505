"""kestra-ops deploy end to end: the fake Kubernetes API (through KUBECONFIG), the recording
stand-in helm (which renders with the real helm), Helm 3 and Helm 4, and every fault of issue 3."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kestra_ops.adapters.helm import Helm
from kestra_ops.errors import Conflict
from kestra_ops.cli import cli
from kestra_ops.settings import load_config
from kestra_ops.workflows.deploy.upgrade import deploy
from kestra_ops.workflows.deploy.lock import LEASE_NAME

ROOT = Path(__file__).resolve().parents[2]
NS = "hyperplane-kestra"


@pytest.fixture
def project(tmp_path, monkeypatch, fake_kube):
    """A project dir with copies of the values layers and the repo's chart."""
    shutil.copytree(ROOT / "values", tmp_path / "values")
    (tmp_path / "kestra-ops.yaml").write_text(
        f"defaults: {{chart: {ROOT / 'charts' / 'kestra'}}}\n"
        "environments:\n  dev: {values: [values/base.yaml, values/dev.yaml]}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KESTRA_OPS_CONFIG", raising=False)
    monkeypatch.setenv("KESTRA_OPS_NO_CACHE", "1")
    return tmp_path


@pytest.fixture(params=["v3.17.3", "v4.1.4"])
def helm(request, helm_standin, project):
    return helm_standin(request.param)


def run(*args):
    return CliRunner().invoke(cli, list(args))


def changes(root: Path) -> list[dict]:
    path = root / "backups" / "changes.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_first_install_then_no_changes(helm, project, fake_kube):
    first = run("deploy", "--env", "dev", "--yes", "--output", "json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert data["outcome"] == "deployed" and data["revision_before"] is None
    assert data["revision_after"] == 1
    assert [s["name"] for s in data["steps"]][:2] == ["validate values", "preflight"]
    upgrade = helm.calls("upgrade")[0]
    assert {"--install", "--wait"} <= set(upgrade) and "--create-namespace" not in upgrade
    # kestra-ops rolls back itself, after reading why the upgrade failed (helm's own rollback
    # would take the failing pods with it)
    assert "--atomic" not in upgrade and "--rollback-on-failure" not in upgrade
    assert upgrade[upgrade.index("--kube-context") + 1] == "fake"
    assert fake_kube.store.get("leases", NS, LEASE_NAME) is None  # the lock was released
    assert changes(project)[-1]["action"] == "deploy" and changes(project)[-1]["after"] == 1

    again = run("deploy", "--env", "dev", "--yes", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "no changes" in again.output
    assert len(helm.calls("upgrade")) == 1


def test_dry_run_shows_the_diff_and_changes_nothing(helm, project):
    assert run("deploy", "--env", "dev", "--yes").exit_code == 0
    overlay = project / "values" / "dev.yaml"
    overlay.write_text(overlay.read_text().replace("workerThreads: 8", "workerThreads: 12"))
    result = run("deploy", "--env", "dev", "--dry-run", "--detailed-exitcode")
    assert result.exit_code == 3, result.output
    assert "-        - '8'" in result.output or "- '8'" in result.output
    assert "'12'" in result.output and "1 to update" in result.output
    assert len(helm.calls("upgrade")) == 1


class Terminal(io.BytesIO):
    """stdin as a terminal the user answers on."""

    def isatty(self) -> bool:
        return True


def test_refused_without_a_terminal_and_without_yes(helm, project, fake_kube):
    assert run("deploy", "--env", "dev", "--yes").exit_code == 0
    overlay = project / "values" / "dev.yaml"
    overlay.write_text(overlay.read_text().replace("workerThreads: 8", "workerThreads: 12"))
    result = CliRunner().invoke(cli, ["deploy", "--env", "dev"])
    assert result.exit_code == 2, result.output
    assert ("error: refusing to deploy to dev without --yes (stdin is not a terminal); nothing "
            "was changed") in result.stderr
    assert "'12'" in result.stderr  # the diff it would have asked about
    assert len(helm.calls("upgrade")) == 1 and [c["action"] for c in changes(project)] == [
        "deploy"]
    assert fake_kube.store.get("leases", NS, LEASE_NAME) is None


@pytest.mark.parametrize("answer, code", [(b"n\n", 1), (b"y\n", 0)])
def test_confirmed_or_declined_on_a_terminal(helm, project, answer, code):
    assert run("deploy", "--env", "dev", "--yes").exit_code == 0
    overlay = project / "values" / "dev.yaml"
    overlay.write_text(overlay.read_text().replace("workerThreads: 8", "workerThreads: 12"))
    result = CliRunner().invoke(cli, ["deploy", "--env", "dev"], input=Terminal(answer))
    assert result.exit_code == code, result.output
    # the first line says which cluster this is about, before anything is asked
    assert result.stderr.splitlines()[0] == \
        "deploy dev: release kestra in hyperplane-kestra (context fake)"
    assert "deploy these changes to dev? [y/N]" in result.stderr
    if code:
        assert result.stdout.rstrip().endswith("deploy dev: aborted, nothing changed")
        assert len(helm.calls("upgrade")) == 1
    else:
        assert "deploy dev: deployed revision 2" in result.stdout
        assert len(helm.calls("upgrade")) == 2


def test_upgrade_failure_rolls_back_and_exits_1(helm, project, fake_kube):
    assert run("deploy", "--env", "dev", "--yes").exit_code == 0
    overlay = project / "values" / "dev.yaml"
    overlay.write_text(overlay.read_text().replace("workerThreads: 8", "workerThreads: 12"))
    helm.state.set_fault("upgrade", "fail", "context deadline exceeded")
    result = run("deploy", "--env", "dev", "--yes", "--output", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert "context deadline exceeded" in data["message"]
    assert "rolled back to revision 1 (now revision 3)" in data["message"]
    assert (data["revision_after"], data["rolled_back_to"], data["revision_final"]) == (2, 1, 3)
    assert fake_kube.store.get("leases", NS, LEASE_NAME) is None
    failed, rolled = changes(project)[-2:]
    assert failed["action"] == "deploy" and failed["status"] == "failed"
    assert rolled["action"] == "rollback" and rolled["to"] == 1
    assert [s for _, s in helm.state.statuses()] == ["superseded", "failed", "deployed"]
    assert helm.calls("rollback")[-1][1:3] == ["kestra", "1"]
    # the evidence is read before the rollback, while the failing pods still exist
    names = [s["name"] for s in data["steps"]]
    evidence = next(i for i, n in enumerate(names) if n.startswith("evidence:"))
    rollback = next(i for i, n in enumerate(names) if n.startswith("helm rollback"))
    assert names[evidence - 1].startswith("helm upgrade") and evidence < rollback
    assert data["steps"][names.index(names[evidence - 1])]["status"] == "fail"


def test_stuck_release_is_reported_then_repaired(helm, project):
    helm.state.seed(["superseded", "deployed", "pending-upgrade"])
    stuck = run("deploy", "--env", "dev", "--yes")
    assert stuck.exit_code == 1
    assert "pending-upgrade" in stuck.output and "--repair" in stuck.output
    assert not helm.calls("upgrade") and not helm.calls("rollback")
    repaired = run("deploy", "--env", "dev", "--yes", "--repair")
    assert repaired.exit_code == 0, repaired.output
    rollback = helm.calls("rollback")[0]
    assert rollback[1:3] == ["kestra", "2"]
    assert helm.calls("upgrade")
    assert [c["action"] for c in changes(project)] == ["repair", "deploy"]


def test_missing_rbac_stops_before_anything_is_written(helm, project, fake_kube):
    fake_kube.deny("create", "secrets")
    result = run("deploy", "--env", "dev", "--yes")
    assert result.exit_code == 1
    assert "cannot create secrets in hyperplane-kestra" in result.output
    assert not helm.calls("upgrade") and fake_kube.store.get("leases", NS, LEASE_NAME) is None
    assert not any(r.method in ("POST", "PUT", "PATCH", "DELETE") and "selfsubjectaccessreviews"
                   not in r.path for r in fake_kube.requests)


def test_invalid_values_stop_before_the_cluster(helm, project, fake_kube):
    (project / "values" / "dev.yaml").write_text("standalone:\n  workerThreads: many\n")
    result = run("deploy", "--env", "dev", "--yes")
    assert result.exit_code == 1 and "schema/type" in result.output
    assert not fake_kube.requests and not helm.calls()


def test_ctrl_c_during_the_upgrade_releases_the_lock(helm, project, fake_kube, monkeypatch):
    def interrupted(*args, **kwargs):
        held = fake_kube.store.get("leases", NS, LEASE_NAME)  # held during helm, renewed
        assert held["spec"]["leaseDurationSeconds"] == 60
        raise KeyboardInterrupt

    monkeypatch.setattr(Helm, "upgrade_install", interrupted)
    result = run("deploy", "--env", "dev", "--yes")
    assert result.exit_code == 130 and "interrupted" in result.output
    assert fake_kube.store.get("leases", NS, LEASE_NAME) is None


def test_first_install_prints_no_library_warnings(helm, project):
    """As a real process (no pytest log capture): pyhelm3's 'command failed' warning for the
    expected 'release: not found' of a first install must not reach the terminal."""
    proc = subprocess.run([sys.executable, "-m", "kestra_ops", "deploy", "--env", "dev",
                           "--dry-run", "--quiet"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "command failed" not in proc.stderr and "Traceback" not in proc.stderr


def test_library_call_without_click(helm, project):
    env = load_config().environment("dev")
    result = deploy(env, timeout="5m", dry_run=True)
    assert result.outcome == "dry-run" and result.diff.changed
    assert {c.action for c in result.diff.changes} == {"create"}
    assert result.exit_code(detailed=True) == 3 and result.exit_code() == 0


def test_a_lock_broken_while_confirming_stops_the_deploy(helm, project, fake_kube):
    """Someone ran `lock break --force` while the diff waited for an answer: nothing changes."""
    from kestra_ops.workflows.deploy.upgrade import deploy as run_deploy

    env = load_config().environment("dev")

    def confirm(diff) -> bool:
        fake_kube.store.delete("leases", NS, LEASE_NAME)
        return True

    with pytest.raises(Conflict, match="lock of hyperplane-kestra was lost before the upgrade"):
        run_deploy(env, confirm=confirm, helm=Helm.for_env(env))
    assert not helm.calls("upgrade")
