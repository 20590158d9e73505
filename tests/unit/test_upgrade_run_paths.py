"""upgrade run's own decisions, with the outside systems stood in for: Ctrl-C past the point of
no return leaves Kestra stopped and names the restore command; a failed release after an
irreversible step restores (never a plain helm rollback); a failed stop names the release that
brings the running version back. The overlay is put back every time. (The real thing, on the
real control plane: tests/e2e/test_upgrade_e2e.py.)"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest

from kestra_ops.errors import OperationFailed
from kestra_ops.results import PASS, Item, Report
from kestra_ops.upgrades.version import Version

ROOT = Path(__file__).resolve().parents[2]


class _Lock:
    holder, warnings = "me", []

    def __init__(self, *a, **k):
        pass

    def acquire(self):
        pass

    def release(self):
        pass


class _Client:
    def export_flows(self, namespace=None):
        buf = io.BytesIO()
        zipfile.ZipFile(buf, "w").close()
        return buf.getvalue()

    def close(self):
        pass


@pytest.fixture
def world(tmp_path, monkeypatch):
    from kestra_ops.settings import load_config
    from kestra_ops.workflows.upgrade import gates, plan, recover, report

    shutil.copytree(ROOT / "values", tmp_path / "values")
    shutil.copy(ROOT / "kestra-ops.yaml", tmp_path / "kestra-ops.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KESTRA_OPS_NO_CACHE", "1")
    env = load_config(tmp_path / "kestra-ops.yaml").environment("dev", environ={})
    calls: list[str] = []
    monkeypatch.setattr(plan, "running_version",
                        lambda env, **_: plan.Running(Version(1, 3, 2), "1.3.2"))
    monkeypatch.setattr("kestra_ops.wiring.client_for_env", lambda *a, **k: _Client())
    monkeypatch.setattr("kestra_ops.workflows.deploy.lock.DeployLock", _Lock)
    monkeypatch.setattr(gates, "requires_gate", lambda *a, **k: Item("requires", PASS, "ok"))
    monkeypatch.setattr(gates, "backup_gate",
                        lambda *a, **k: (Item("backup", PASS, "set SET1"), "SET1"))
    monkeypatch.setattr(recover, "install",
                        lambda env, helm, **k: calls.append(f"install {k.get('replicas')}")
                        or "revision 2")
    monkeypatch.setattr(report, "store", lambda *a, **k: None)
    return {"env": env, "calls": calls, "overlay": tmp_path / "values" / "dev.yaml"}


def run(world, monkeypatch, release_outcome=None, restore=None, to="1.3.22"):
    import kestra_ops.workflows.release.run as rel
    from kestra_ops.workflows.upgrade.run import upgrade_run

    def fake_release(env, **kwargs):
        world["calls"].append("release")
        code = {"released": 0, "rolled-back": 1, "interrupted": 130}[release_outcome]
        return Report("release", outcome=release_outcome, exit_code=code,
                      message=f"release {release_outcome}")

    monkeypatch.setattr(rel, "release", fake_release)
    if restore:
        monkeypatch.setattr("kestra_ops.workflows.upgrade.recover.restore_pre_upgrade",
                            restore)
    return upgrade_run(world["env"], to, kube=object(), helm=object())


def test_ctrl_c_past_the_point_leaves_kestra_stopped_and_names_the_restore(world, monkeypatch):
    before = world["overlay"].read_text()
    result = run(world, monkeypatch, release_outcome="interrupted")
    assert result.exit_code == 130 and result.outcome == "interrupted"
    assert "left STOPPED" in result.message
    assert "kestra-ops upgrade restore --env dev --set SET1" in result.message
    assert world["calls"] == ["install 0", "release"]  # stopped first; no restore on its own
    assert world["overlay"].read_text() == before


def test_a_failed_release_after_an_irreversible_step_restores(world, monkeypatch):
    before = world["overlay"].read_text()
    seen = {}

    def restore(env, rec, set_name, **kw):
        seen["set"] = set_name
        seen["overlay"] = world["overlay"].read_text()  # put back BEFORE the restore
        return ["restored"], "FAILEDSET", {"exit_code": 0}

    result = run(world, monkeypatch, release_outcome="rolled-back", restore=restore)
    assert result.outcome == "restored" and result.exit_code == 1, result.message
    assert seen == {"set": "SET1", "overlay": before}
    assert "restored backup set SET1 and Kestra 1.3.2" in result.message
    assert result.data["failed_state_set"] == "FAILEDSET"
    assert world["overlay"].read_text() == before


def test_a_failed_stop_names_the_release_that_brings_kestra_back(world, monkeypatch):
    from kestra_ops.workflows.upgrade import recover

    def failing(env, helm, **k):
        raise OperationFailed("helm upgrade failed: timed out")

    monkeypatch.setattr(recover, "install", failing)
    before = world["overlay"].read_text()
    result = run(world, monkeypatch, release_outcome="released")
    assert result.outcome == "failed" and result.exit_code == 1
    assert "no migration ran" in result.message
    assert "kestra-ops release --env dev" in result.message
    assert "release" not in world["calls"] and world["overlay"].read_text() == before


def test_a_successful_step(world, monkeypatch):
    result = run(world, monkeypatch, release_outcome="released")
    assert result.exit_code == 0 and result.outcome == "upgraded", result.message
    assert 'tag: "v1.3.22"' in world["overlay"].read_text()
    assert result.data["backup_set"] == "SET1" and result.data["to"] == "1.3.22"
    assert result.data["target"] == "1.3.22" and result.data["next"] is None


def test_a_run_toward_2_0_takes_the_first_step_and_names_the_next(world, monkeypatch):
    result = run(world, monkeypatch, release_outcome="released", to="2.0")
    assert result.exit_code == 0, result.message
    assert (result.data["to"], result.data["target"]) == ("1.3.22", "2.0.8")
    assert result.data["image"].endswith(":v1.3.22")
    assert "1 step(s) left to 2.0.8" in result.message
    assert result.data["next"] == "kestra-ops upgrade run --env dev --to 2.0.8"
