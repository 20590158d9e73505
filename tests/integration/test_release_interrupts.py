"""kestra-ops release interrupted (Ctrl-C, a KeyboardInterrupt raised by the function the step
calls) at each of its steps: exit 130, the report names the step it stopped at, the deploy lock
Lease is free, and the release is rolled back exactly when it had moved off the revision that was
live before (never before the upgrade, never twice). Same setup as test_release.py: the fake
Kubernetes API, the recording stand-in helm, the fake Kestra server, MinIO's health endpoints
(and, for the database backup step, the S3 server behind them)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kestra_ops.adapters.helm import Helm
from kestra_ops.cli import cli
from kestra_ops.workflows import check as check_workflow
from kestra_ops.workflows.deploy.lock import DeployLock
from tests.helpers_checks import CM, install  # noqa: F401 - fixture
from tests.helpers_cli import CtrlCTerminal
from tests.integration.release_support import (CHECK, configmap_data, failing_check, interrupt,
                                               lock_free, patch_outside_helm, release, step,
                                               storage)  # noqa: F401 - fixture

CONFIG_STEP = "pre-release backup: ConfigMap and Helm values"
DB_STEP = "pre-release backup: database backup set"
RESTORE_STEP = f"restore ConfigMap {CM} from the pre-release backup"


def interrupt_after(original):
    """``original`` runs (its effect is real), then Ctrl-C arrives before it returns."""
    def wrapped(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt
    return wrapped


# --- before the upgrade: nothing to roll back ------------------------------------------------

def _validate(install, monkeypatch, request):
    from kestra_ops.workflows import values

    monkeypatch.setattr(values, "validate_env", interrupt)


def _preflight(install, monkeypatch, request):
    from kestra_ops.workflows.deploy import preflight

    monkeypatch.setattr(preflight, "run_preflight", interrupt)


def _dependencies(install, monkeypatch, request):
    monkeypatch.setattr(Helm, "dependency_update", interrupt)


def _diff(install, monkeypatch, request):
    from kestra_ops.workflows.deploy import live_diff

    monkeypatch.setattr(live_diff, "live_diff", interrupt)


def _confirm(install, monkeypatch, request):
    from kestra_ops.cli import release as release_cli

    monkeypatch.setattr(release_cli, "confirm_diff", lambda *args: interrupt)


def _config_backup(install, monkeypatch, request):
    monkeypatch.setattr(Helm, "current_values", interrupt)


def _db_backup(install, monkeypatch, request):
    from kestra_ops.workflows.backup import run as backup_run

    request.getfixturevalue("storage")
    # never reached: interrupted first
    monkeypatch.setenv("KESTRA_OPS_DATABASE_URL", "postgresql://kestra:pw@127.0.0.1:9/kestra")
    monkeypatch.setattr(backup_run, "run_backup", interrupt)


BEFORE_UPGRADE = [
    ("validate values", _validate),
    ("preflight", _preflight),
    ("helm dependency update", _dependencies),
    ("diff against the live objects", _diff),
    ("confirm the diff", _confirm),
    (CONFIG_STEP, _config_backup),
    (DB_STEP, _db_backup),
]


@pytest.mark.parametrize("name, setup", BEFORE_UPGRADE, ids=[n for n, _ in BEFORE_UPGRADE])
def test_interrupted_before_the_upgrade(install, monkeypatch, request, name, setup):
    setup(install, monkeypatch, request)
    result, data = release(install)
    assert result.exit_code == 130, result.output
    assert data["outcome"] == "interrupted" and data["exit_code"] == 130
    assert data["stopped_at"] == name
    assert step(data, name)["status"] == "interrupted"
    assert data["message"] == f"release dev: interrupted at {name}; nothing was changed"
    assert not install.helm.calls("upgrade") and not install.helm.calls("rollback")
    assert data["revision_before"] == 2 and data["revision_final"] == 2
    assert data["rolled_back_to"] is None
    assert install.helm.state.statuses()[-1] == (2, "deployed")
    assert lock_free(install)
    stored = install.root / "backups" / "releases" / "dev" / data["started"] / "report.json"
    assert json.loads(stored.read_text())["stopped_at"] == name


def test_interrupted_taking_the_lock(install, monkeypatch):
    """Ctrl-C while waiting for the API server's answer: the Lease was created but acquire never
    returned. It is released all the same (else every change is locked out until it expires)."""
    monkeypatch.setattr(DeployLock, "_take", interrupt_after(DeployLock._take))
    result, data = release(install)
    assert result.exit_code == 130, result.output
    assert data["stopped_at"] == "take the deploy lock"
    assert step(data, "take the deploy lock")["status"] == "interrupted"
    assert data["message"].startswith("release dev: interrupted at take the deploy lock")
    assert not install.helm.calls("upgrade") and not install.helm.calls("rollback")
    assert lock_free(install)


# --- after the upgrade, while the failed release is being rolled back ------------------------

def test_interrupted_during_the_rollback_rolls_back_once_more(install, monkeypatch):
    """Ctrl-C during the rollback after a failed check: the rollback is run again (the release
    must not stay on the failed revision)."""
    failing_check(install, monkeypatch, rollbacks=["interrupt", "run"])
    result, data = release(install)
    assert result.exit_code == 130, result.output
    assert data["stopped_at"] == "helm rollback to revision 2 (wait 1m)"
    rollbacks = [s for s in data["steps"] if s["name"].startswith("helm rollback")]
    assert [s["status"] for s in rollbacks] == ["interrupted", "pass"]
    assert len(install.helm.calls("rollback")) == 1
    assert data["message"] == ("release dev: interrupted at helm rollback to revision 2 (wait "
                               "1m); rolled back to revision 2 (now 4)")
    assert data["revision_after"] == 3 and data["revision_final"] == 4
    assert data["rolled_back_to"] == 2 and lock_free(install)


def test_rollback_rerun_after_ctrl_c_names_a_configmap_to_put_back(install, monkeypatch):
    """The rollback was re-run after Ctrl-C, so the ConfigMap restore never ran: the message
    says the ConfigMap (changed outside Helm before the release) differs, and how to fix it."""
    chart, _patched = patch_outside_helm(install)
    failing_check(install, monkeypatch, rollbacks=["interrupt", "run"], chart_cm=chart)
    result, data = release(install)
    assert result.exit_code == 130, result.output
    assert configmap_data(install) == chart
    assert data["message"].endswith(f"ConfigMap {CM} differs from its pre-release backup: put it "
                                    "back with kestra-ops config restore --env dev "
                                    f"{data['backup']['files']['configmap']}")


def test_second_interrupt_during_the_rollback_leaves_it(install, monkeypatch):
    failing_check(install, monkeypatch, rollbacks=["interrupt", "interrupt"])
    result, data = release(install)
    assert result.exit_code == 130, result.output
    assert data["stopped_at"] == "helm rollback to revision 2 (wait 1m)"
    assert data["message"] == ("release dev: interrupted at helm rollback to revision 2 (wait "
                               "1m); the rollback to revision 2 was interrupted too")
    assert not install.helm.calls("rollback")
    assert data["revision_final"] == 3 and data["rolled_back_to"] is None
    assert install.helm.state.statuses()[-1] == (3, "deployed") and lock_free(install)


def test_interrupted_restoring_the_configmap(install, monkeypatch):
    from kestra_ops.workflows.configmap import patch as configmap

    chart, patched = patch_outside_helm(install)
    failing_check(install, monkeypatch, chart_cm=chart)
    replace = configmap._replace
    monkeypatch.setattr(configmap, "_replace", interrupt)
    result, data = release(install)
    assert result.exit_code == 130, result.output
    assert data["stopped_at"] == RESTORE_STEP
    assert step(data, RESTORE_STEP)["status"] == "interrupted"
    assert len(install.helm.calls("rollback")) == 1  # rolled back already: not a second time
    assert data["rolled_back_to"] == 2 and data["revision_final"] == 4
    assert data["message"].startswith(f"release dev: interrupted at {RESTORE_STEP}; already "
                                      "rolled back")
    assert configmap_data(install) == chart and lock_free(install)
    # the message says how to finish what Ctrl-C stopped; that command puts the data back
    hint = data["message"].split("put it back with kestra-ops ", 1)[1]
    assert hint == f"config restore --env dev {data['backup']['files']['configmap']}"
    monkeypatch.setattr(configmap, "_replace", replace)
    restored = CliRunner().invoke(cli, ["--config", str(install.config), *hint.split(),
                                        "--yes", "--no-restart"])
    assert restored.exit_code == 0, restored.output
    assert configmap_data(install) == patched


def test_interrupted_during_the_check_after_the_rollback(install, monkeypatch):
    failing_check(install, monkeypatch)
    run_check = check_workflow.run_check
    calls = []

    def check(*args, **kwargs):
        calls.append(kwargs.get("wait"))
        if len(calls) == 2:  # the check after the rollback
            raise KeyboardInterrupt
        return run_check(*args, **kwargs)

    monkeypatch.setattr(check_workflow, "run_check", check)
    result, data = release(install)
    assert result.exit_code == 130, result.output
    assert data["stopped_at"] == "check after the rollback (wait 2s)"
    assert step(data, "check (wait 2s")["status"] == "fail"
    assert len(install.helm.calls("rollback")) == 1 and len(calls) == 2
    assert data["rolled_back_to"] == 2 and data["revision_final"] == 4
    assert "already rolled back to revision 2" in data["message"] and lock_free(install)


# --- Ctrl-C at the terminal's confirmation prompt --------------------------------------------

def test_ctrl_c_at_the_confirmation_prompt(install):
    result = CliRunner().invoke(cli, ["--config", str(install.config), "release", "--env",
                                      "dev", "--output", "json", *CHECK],
                                input=CtrlCTerminal())
    assert result.exit_code == 130, result.output
    data = json.loads(result.stdout[result.stdout.index("{"):])
    assert data["stopped_at"] == "confirm the diff"
    assert not install.helm.calls("upgrade") and lock_free(install)
